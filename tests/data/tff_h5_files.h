// Writers of small TFF federated HDF5 files (/examples/<client>/<field>) with
// the HDF5 C API, for the tff_h5 loader's tests (tests/data/tff_h5_test.cpp)
// and the end-to-end test's fixture tool (tests/data/h5_fixtures.cpp). Each
// value is a function of (example id, position), so the tests can check every
// loaded value against a hand computation.
#pragma once

#ifdef FEDSIM_HDF5

#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace fedsim::testing {

class H5Writer {
 public:
  // A new file at path; with examples = false it lacks the /examples group.
  explicit H5Writer(const std::string& path, bool examples = true) {
    file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file_ < 0) throw std::runtime_error("H5Fcreate " + path);
    examples_ = examples ? H5Gcreate2(file_, "examples", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : file_;
  }
  ~H5Writer() {
    for (auto& [name, g] : groups_) H5Gclose(g);
    if (examples_ != file_) H5Gclose(examples_);
    H5Fclose(file_);
  }
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  // An empty client group (no fields).
  void Group(const std::string& client) { ClientGroup(client); }

  // Strings, fixed-length (null-padded to the longest, as numpy's 'S' arrays
  // that TFF's files hold) or variable-length (as h5py writes Python str).
  void Strings(const std::string& client, const std::string& field, const std::vector<std::string>& v,
               bool variable) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    const hsize_t n = v.size();
    if (variable) {
      H5Tset_size(type, H5T_VARIABLE);
      std::vector<const char*> ptrs;
      for (const auto& s : v) ptrs.push_back(s.c_str());
      Write(client, field, {n}, type, type, ptrs.data());
    } else {
      size_t size = 1;
      for (const auto& s : v) size = std::max(size, s.size());
      H5Tset_size(type, size);
      H5Tset_strpad(type, H5T_STR_NULLPAD);
      std::vector<char> buf(v.size() * size, '\0');
      for (size_t i = 0; i < v.size(); ++i) std::copy(v[i].begin(), v[i].end(), buf.begin() + i * size);
      Write(client, field, {n}, type, type, buf.data());
    }
    H5Tclose(type);
  }
  void Floats(const std::string& client, const std::string& field, const std::vector<hsize_t>& dims,
              const std::vector<float>& v) {
    Write(client, field, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, v.data());
  }
  // Integers stored as file_type (TFF: int32 EMNIST labels, int64 CIFAR labels).
  void Ints(const std::string& client, const std::string& field, const std::vector<hsize_t>& dims,
            const std::vector<int64_t>& v, hid_t file_type = H5T_STD_I64LE) {
    Write(client, field, dims, file_type, H5T_NATIVE_INT64, v.data());
  }
  void Bytes(const std::string& client, const std::string& field, const std::vector<hsize_t>& dims,
             const std::vector<uint8_t>& v) {
    Write(client, field, dims, H5T_STD_U8LE, H5T_NATIVE_UINT8, v.data());
  }

 private:
  hid_t ClientGroup(const std::string& client) {
    auto it = groups_.find(client);
    if (it != groups_.end()) return it->second;
    const hid_t g = H5Gcreate2(examples_, client.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) throw std::runtime_error("H5Gcreate2 " + client);
    groups_[client] = g;
    return g;
  }
  void Write(const std::string& client, const std::string& field, const std::vector<hsize_t>& dims, hid_t file_type,
             hid_t mem_type, const void* data) {
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t ds = H5Dcreate2(ClientGroup(client), field.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT,
                                H5P_DEFAULT);
    if (ds < 0) throw std::runtime_error("H5Dcreate2 " + client + "/" + field);
    hsize_t total = 1;
    for (hsize_t d : dims) total *= d;
    if (total > 0 && H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
      throw std::runtime_error("H5Dwrite " + client + "/" + field);
    }
    H5Dclose(ds);
    H5Sclose(space);
  }

  hid_t file_ = -1;
  hid_t examples_ = -1;
  std::map<std::string, hid_t> groups_;
};

// Shakespeare: training clients a_role {"ab", "x"}, b_role {"hello world!"},
// c_role {100 characters "abab..."} as fixed-length strings (written out of
// order); test clients a_role {"d"}, c_role {"q}"} ('}' is not in TFF's
// vocabulary) and z_only {"zz"} (no training data) as variable-length strings.
inline std::string ShakespeareLong() {
  std::string s;
  for (int i = 0; i < 100; ++i) s += i % 2 == 0 ? 'a' : 'b';
  return s;
}
inline void WriteShakespeareFiles(const std::string& dir) {
  {
    H5Writer w(dir + "/shakespeare_train.h5");
    w.Strings("c_role", "snippets", {ShakespeareLong()}, false);
    w.Strings("a_role", "snippets", {"ab", "x"}, false);
    w.Strings("b_role", "snippets", {"hello world!"}, false);
  }
  H5Writer w(dir + "/shakespeare_test.h5");
  w.Strings("z_only", "snippets", {"zz"}, true);
  w.Strings("a_role", "snippets", {"d"}, true);
  w.Strings("c_role", "snippets", {"q}"}, true);
}

// StackOverflow (the tokens field): training clients u2 {"the cat sat", the
// 22 words "a b c ... v"} (written first), u1 {"the the dog", "cat  dog" (two
// spaces: an empty word)}, u3 {""}; test clients u1 {"dog unknownword"} and
// zz {"cat"} (no training data), variable-length strings.
inline std::string StackOverflowLong() {
  std::string s;
  for (char c = 'a'; c <= 'v'; ++c) s += std::string(s.empty() ? "" : " ") + c;
  return s;
}
inline void WriteStackOverflowFiles(const std::string& dir) {
  {
    H5Writer w(dir + "/stackoverflow_train.h5");
    w.Strings("u2", "tokens", {"the cat sat", StackOverflowLong()}, true);
    w.Strings("u1", "tokens", {"the the dog", "cat  dog"}, false);
    w.Strings("u3", "tokens", {""}, true);
  }
  H5Writer w(dir + "/stackoverflow_test.h5");
  w.Strings("u1", "tokens", {"dog unknownword"}, true);
  w.Strings("zz", "tokens", {"cat"}, true);
}

// EMNIST: example e's pixel j is ((3 e + j) mod 256) / 255 and its label
// (5 e + 1) mod classes. Training clients f0001_01 (examples 0, 1) and
// f0000_00 (examples 2, 3, 4); test client f0000_00 (example 10).
inline float EmnistPixel(int e, int j) { return static_cast<float>((3 * e + j) % 256) / 255.0f; }
inline int EmnistLabel(int e, int classes) { return (5 * e + 1) % classes; }
inline void WriteEmnistClient(H5Writer& w, const std::string& client, const std::vector<int>& ids, int classes) {
  std::vector<float> px;
  std::vector<int64_t> labels;
  for (int e : ids) {
    for (int j = 0; j < 784; ++j) px.push_back(EmnistPixel(e, j));
    labels.push_back(EmnistLabel(e, classes));
  }
  w.Floats(client, "pixels", {ids.size(), 28, 28}, px);
  w.Ints(client, "label", {ids.size()}, labels, H5T_STD_I32LE);
}
inline void WriteEmnistFiles(const std::string& dir, const std::string& prefix = "fed_emnist", int classes = 62) {
  {
    H5Writer w(dir + "/" + prefix + "_train.h5");
    WriteEmnistClient(w, "f0001_01", {0, 1}, classes);
    WriteEmnistClient(w, "f0000_00", {2, 3, 4}, classes);
  }
  H5Writer w(dir + "/" + prefix + "_test.h5");
  WriteEmnistClient(w, "f0000_00", {10}, classes);
}

// CIFAR-100: example e's pixel (h, w, c) is (5 e + 96 h + 3 w + c) mod 256,
// its fine label 7 e mod 100 and coarse label 11 e mod 20. Training clients
// "0" (examples 0, 1), "1" (2), "10" (3), "2" (4, 5) (sorted as strings);
// test clients "0" (20) and "10" (21).
inline uint8_t CifarPixel(int e, int h, int w, int c) {
  return static_cast<uint8_t>((5 * e + 96 * h + 3 * w + c) % 256);
}
inline int CifarFine(int e) { return 7 * e % 100; }
inline int CifarCoarse(int e) { return 11 * e % 20; }
inline void WriteCifarClient(H5Writer& w, const std::string& client, const std::vector<int>& ids) {
  std::vector<uint8_t> px;
  std::vector<int64_t> fine, coarse;
  for (int e : ids) {
    for (int h = 0; h < 32; ++h) {
      for (int x = 0; x < 32; ++x) {
        for (int c = 0; c < 3; ++c) px.push_back(CifarPixel(e, h, x, c));
      }
    }
    fine.push_back(CifarFine(e));
    coarse.push_back(CifarCoarse(e));
  }
  w.Bytes(client, "image", {ids.size(), 32, 32, 3}, px);
  w.Ints(client, "label", {ids.size()}, fine);
  w.Ints(client, "coarse_label", {ids.size()}, coarse);
}
inline void WriteCifar100Files(const std::string& dir) {
  {
    H5Writer w(dir + "/fed_cifar100_train.h5");
    WriteCifarClient(w, "2", {4, 5});
    WriteCifarClient(w, "10", {3});
    WriteCifarClient(w, "0", {0, 1});
    WriteCifarClient(w, "1", {2});
  }
  H5Writer w(dir + "/fed_cifar100_test.h5");
  WriteCifarClient(w, "0", {20});
  WriteCifarClient(w, "10", {21});
}

}  // namespace fedsim::testing

#endif  // FEDSIM_HDF5
