// TFF's federated HDF5 files (TensorFlow Federated's tff.simulation.datasets,
// which FedML distributes too): a file holds one split, every client a group
// of per-example datasets,
//   /examples/<client id>/<field>   first dimension = the client's examples
// The fields of each task, as TFF's loaders read them:
//   emnist, emnist_digits  pixels [n, 28, 28] float in [0, 1]; label [n] integer
//   shakespeare            snippets [n] strings (fixed-length or variable-length)
//   cifar100               image [n, 32, 32, 3] uint8 (height, width, RGB);
//                          label [n] (100 fine classes), coarse_label [n] (20)
// (labels may also be [n, 1]). CIFAR-100's test file holds other clients than
// its training file, so its rows are the central test set only.
// Counts come from the datasets' shapes; no attribute is read. Clients are the
// training file's client ids with at least one example, sorted as byte
// strings; the test file gives each of them its own test rows.
//
// Shakespeare follows TFF's char_prediction_preprocessing (tff.simulation.
// baselines.shakespeare): a snippet's bytes are looked up in TFF's 86-character
// vocabulary as ids 1..86 (pad = 0, oov = 87, bos = 88, eos = 89, 90 ids in
// all), framed as [bos, chars..., eos]. TFF then cuts the token stream into
// 81-token windows and predicts all 80 shifted targets of each; fedsim's
// models predict one label per sample, so each token after bos becomes one
// sample: x = the 80 tokens before it (left-padded with pad inside the
// snippet), y = the token (LEAF's convention of 80 characters -> the next).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "data/chunked.h"
#include "data/dataset.h"

#ifdef FEDSIM_HDF5
#include <hdf5.h>
#endif

namespace fedsim {
namespace {

namespace fs = std::filesystem;

enum class Task { kEmnist, kEmnistDigits, kShakespeare, kCifar100 };

Task ParseTask(const std::string& task) {
  if (task == "emnist") return Task::kEmnist;
  if (task == "emnist_digits") return Task::kEmnistDigits;
  if (task == "shakespeare") return Task::kShakespeare;
  if (task == "cifar100") return Task::kCifar100;
  if (task == "stackoverflow") {
    throw InputError(
        "data.tff_h5.task: \"stackoverflow\" is not supported yet: fedsim does not read its fields (tokens, title, "
        "tags) nor build TFF's word vocabulary (the 10,000 most frequent words plus pad, oov, bos and eos) for "
        "next-word prediction; use emnist, emnist_digits, shakespeare or cifar100");
  }
  throw InputError(fmt::format("data.tff_h5.task: unknown TFF task \"{}\"", task));
}

const char* TaskName(Task t) {
  switch (t) {
    case Task::kEmnist: return "emnist";
    case Task::kEmnistDigits: return "emnist_digits";
    case Task::kShakespeare: return "shakespeare";
    case Task::kCifar100: return "cifar100";
  }
  return "?";
}

#ifdef FEDSIM_HDF5

// TFF's file names (tff.simulation.datasets, and FedML's copies of them).
std::string DefaultFile(Task t, bool train) {
  const char* split = train ? "train" : "test";
  switch (t) {
    case Task::kEmnist: return fmt::format("fed_emnist_{}.h5", split);
    case Task::kEmnistDigits: return fmt::format("fed_emnist_digitsonly_{}.h5", split);
    case Task::kShakespeare: return fmt::format("shakespeare_{}.h5", split);
    case Task::kCifar100: return fmt::format("fed_cifar100_{}.h5", split);
  }
  return "";
}

// TFF's CHAR_VOCAB (char_prediction_preprocessing.py): the character at index
// i has token id i + 1.
constexpr char kTffChars[] =
    "dhlptx@DHLPTX $(,048cgkoswCGKOSW[_#'/37;?bfjnrvzBFJNRVZ\"&*.26:\naeimquyAEIMQUY]!%)-159\r";
constexpr int kNumChars = sizeof(kTffChars) - 1;
static_assert(kNumChars == 86, "TFF's Shakespeare vocabulary has 86 characters");
constexpr int kPad = 0;
constexpr int kOov = kNumChars + 1;    // 87
constexpr int kBos = kNumChars + 2;    // 88
constexpr int kEos = kNumChars + 3;    // 89
constexpr int kShakespeareVocab = kNumChars + 4;  // 90
constexpr int kSeqLen = 80;            // TFF's DEFAULT_SEQUENCE_LENGTH, LEAF's seq_len

// The token id of a byte of a snippet.
int CharId(unsigned char c) {
  static const auto table = [] {
    std::array<int, 256> t{};
    t.fill(kOov);
    for (int i = 0; i < kNumChars; ++i) t[static_cast<unsigned char>(kTffChars[i])] = i + 1;
    return t;
  }();
  return table[c];
}

// One split as it is read: rows client by client.
struct SplitData {
  Chunked<uint8_t> bytes;  // pixels k of k/255, CIFAR pixels, Shakespeare token ids
  Chunked<float> floats;   // EMNIST pixels once one of them is not k/255
  bool float_pixels = false;
  Chunked<int> y;
  Chunked<int> user;
  int64_t oov = 0;         // Shakespeare bytes outside TFF's vocabulary
  int64_t examples = 0;    // examples (snippets, images) read
};

// Appends the Shakespeare samples of one snippet.
void AddSnippet(const std::string& s, int user, SplitData& out) {
  std::vector<int> tokens;
  tokens.reserve(s.size() + 2);
  tokens.push_back(kBos);
  for (unsigned char c : s) {
    const int id = CharId(c);
    out.oov += id == kOov;
    tokens.push_back(id);
  }
  tokens.push_back(kEos);
  for (size_t j = 1; j < tokens.size(); ++j) {
    for (int k = static_cast<int>(j) - kSeqLen; k < static_cast<int>(j); ++k) {
      out.bytes.push_back(static_cast<uint8_t>(k < 0 ? kPad : tokens[static_cast<size_t>(k)]));
    }
    out.y.push_back(tokens[j]);
    out.user.push_back(user);
  }
}

// An HDF5 identifier closed on scope exit.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }
  void Reset(hid_t id) {
    if (id_ >= 0) close_(id_);
    id_ = id;
  }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// A field of one client: its dataset, element type and dimensions.
struct Field {
  Field(std::string w, hid_t dataset)
      : where(std::move(w)), ds(dataset, H5Dclose), type(dataset >= 0 ? H5Dget_type(dataset) : -1, H5Tclose) {
    if (type.ok()) cls = H5Tget_class(type.get());
  }
  std::string where;  // "file: /examples/<client>/<field>" for messages
  Handle ds;
  Handle type;
  H5T_class_t cls = H5T_NO_CLASS;
  std::vector<hsize_t> dims;
};

class H5File {
 public:
  H5File(const std::string& path, const std::string& key) : path_(path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw InputError(fmt::format("{}: {}: no such file", key, path));
    if (H5Fis_hdf5(path.c_str()) <= 0) throw InputError(fmt::format("{}: {}: not an HDF5 file", key, path));
    file_.Reset(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!file_.ok()) throw InputError(fmt::format("{}: {}: cannot open as HDF5", key, path));
    if (H5Lexists(file_.get(), "examples", H5P_DEFAULT) <= 0) {
      throw InputError(fmt::format("{}: no group /examples (a TFF federated file holds /examples/<client>/<field>)",
                                   path));
    }
    examples_.Reset(H5Gopen2(file_.get(), "examples", H5P_DEFAULT));
    if (!examples_.ok()) throw InputError(fmt::format("{}: /examples is not a group", path));
  }
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;

  const std::string& path() const { return path_; }

  // The client ids under /examples, sorted as byte strings. H5Literate visits
  // the links once each (looking each up by index would be quadratic in old-style
  // groups); the unversioned names map to the same API version in HDF5 1.10
  // and 1.12+.
  std::vector<std::string> Clients() const {
    std::vector<std::string> names;
    hsize_t next = 0;
    const herr_t rc = H5Literate(
        examples_.get(), H5_INDEX_NAME, H5_ITER_NATIVE, &next,
        [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
          static_cast<std::vector<std::string>*>(out)->emplace_back(name);
          return 0;
        },
        &names);
    if (rc < 0) throw InputError(fmt::format("{}: cannot list /examples", path_));
    if (names.empty()) throw InputError(fmt::format("{}: /examples holds no clients", path_));
    std::sort(names.begin(), names.end());
    return names;
  }

  // Opens /examples/<client>/<field>; throws naming it when it is missing.
  Field Open(const std::string& client, const char* field) const {
    const std::string group_path = "/examples/" + client;
    Handle group(H5Gopen2(examples_.get(), client.c_str(), H5P_DEFAULT), H5Gclose);
    if (!group.ok()) throw InputError(fmt::format("{}: {} is not a group", path_, group_path));
    const std::string where = fmt::format("{}: {}/{}", path_, group_path, field);
    if (H5Lexists(group.get(), field, H5P_DEFAULT) <= 0) throw InputError(where + ": no such dataset");
    Field f(where, H5Dopen2(group.get(), field, H5P_DEFAULT));
    if (!f.ds.ok() || !f.type.ok()) throw InputError(where + ": not a dataset");
    Handle space(H5Dget_space(f.ds.get()), H5Sclose);
    const int rank = space.ok() ? H5Sget_simple_extent_ndims(space.get()) : -1;
    if (rank < 0) throw InputError(where + ": cannot read its shape");
    f.dims.resize(static_cast<size_t>(rank));
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), f.dims.data(), nullptr);
    return f;
  }

 private:
  std::string path_;
  Handle file_{-1, H5Fclose};
  Handle examples_{-1, H5Gclose};  // declared after file_: closed first
};

std::string ShapeText(const std::vector<hsize_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", dims[i]);
  return s + "]";
}

// Checks the field's shape is [n, rest...] and returns n.
int64_t CheckShape(const Field& f, const std::vector<hsize_t>& rest, const char* what) {
  bool ok = f.dims.size() == rest.size() + 1;
  for (size_t i = 0; ok && i < rest.size(); ++i) ok = f.dims[i + 1] == rest[i];
  if (!ok) {
    std::vector<hsize_t> want{0};
    want.insert(want.end(), rest.begin(), rest.end());
    std::string w = ShapeText(want);
    w.replace(1, 1, "n");
    throw InputError(fmt::format("{}: shape {}, expected {} ({})", f.where, ShapeText(f.dims), w, what));
  }
  if (f.dims[0] > static_cast<hsize_t>(INT32_MAX)) throw InputError(f.where + ": too many examples");
  return static_cast<int64_t>(f.dims[0]);
}

void Read(const Field& f, hid_t mem_type, void* buf) {
  if (H5Dread(f.ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    throw InputError(f.where + ": read error (damaged file?)");
  }
}

std::vector<std::string> ReadStrings(const Field& f) {
  if (f.cls != H5T_STRING) throw InputError(f.where + ": not strings");
  const auto n = static_cast<size_t>(CheckShape(f, {}, "one string per example"));
  std::vector<std::string> out(n);
  if (n == 0) return out;
  const htri_t variable = H5Tis_variable_str(f.type.get());
  if (variable < 0) throw InputError(f.where + ": cannot read its string type");
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_cset(mem.get(), H5Tget_cset(f.type.get()));  // HDF5 does not convert between ASCII and UTF-8
  if (variable > 0) {
    H5Tset_size(mem.get(), H5T_VARIABLE);
    std::vector<char*> ptrs(n, nullptr);
    Read(f, mem.get(), ptrs.data());
    for (size_t i = 0; i < n; ++i) {
      if (ptrs[i] != nullptr) out[i] = ptrs[i];
    }
    Handle space(H5Dget_space(f.ds.get()), H5Sclose);
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
  } else {
    const size_t size = H5Tget_size(f.type.get());
    if (size == 0) throw InputError(f.where + ": cannot read its string size");
    H5Tset_size(mem.get(), size);
    H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
    std::vector<char> buf(n * size);
    Read(f, mem.get(), buf.data());
    for (size_t i = 0; i < n; ++i) {
      const char* s = buf.data() + i * size;
      out[i].assign(s, std::find(s, s + size, '\0'));
    }
  }
  return out;
}

// Integer labels in [0, classes).
std::vector<int> ReadLabels(const Field& f, int64_t n, int classes) {
  if (f.cls != H5T_INTEGER) throw InputError(f.where + ": not integers (labels are class indices)");
  const int64_t count = f.dims.size() == 2 && f.dims[1] == 1 ? CheckShape(f, {1}, "one label per example")
                                                             : CheckShape(f, {}, "one label per example");
  if (count != n) {
    throw InputError(fmt::format("{}: {} labels for {} examples", f.where, f.dims[0], n));
  }
  std::vector<int64_t> v(static_cast<size_t>(n));
  if (n > 0) Read(f, H5T_NATIVE_INT64, v.data());
  std::vector<int> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < 0 || v[i] >= classes) {
      throw InputError(fmt::format("{}: label {} of example {} is not in [0, {})", f.where, v[i], i, classes));
    }
    out[i] = static_cast<int>(v[i]);
  }
  return out;
}

void ReadEmnist(const H5File& file, const std::string& client, int user, int classes, SplitData& out) {
  const Field px = file.Open(client, "pixels");
  if (px.cls != H5T_FLOAT) throw InputError(px.where + ": not floating point (pixels are floats in [0, 1])");
  const int64_t n = CheckShape(px, {28, 28}, "28 x 28 pixels per example");
  const std::vector<int> labels = ReadLabels(file.Open(client, "label"), n, classes);
  std::vector<float> v(static_cast<size_t>(n) * 784);
  if (n > 0) Read(px, H5T_NATIVE_FLOAT, v.data());
  for (size_t i = 0; i < v.size(); ++i) {
    const float p = v[i];
    if (!(p >= 0.0f && p <= 1.0f)) {
      throw InputError(fmt::format("{}: example {}, pixel {}: {} is not in [0, 1]", px.where, i / 784, i % 784, p));
    }
    if (!out.float_pixels) {
      const float k = std::round(p * 255.0f);
      if (std::abs(p * 255.0f - k) <= 1e-3f) {
        out.bytes.push_back(static_cast<uint8_t>(k));
        continue;
      }
      // A pixel that is not k/255: every pixel is kept as a float from here on.
      out.float_pixels = true;
      for (size_t j = 0; j < out.bytes.size(); ++j) out.floats.push_back(static_cast<float>(out.bytes[j]) / 255.0f);
      out.bytes = Chunked<uint8_t>();
    }
    out.floats.push_back(p);
  }
  for (int label : labels) {
    out.y.push_back(label);
    out.user.push_back(user);
  }
  out.examples += n;
}

void ReadCifar100(const H5File& file, const std::string& client, int user, bool coarse, SplitData& out) {
  const Field im = file.Open(client, "image");
  if (im.cls != H5T_INTEGER || H5Tget_size(im.type.get()) != 1 || H5Tget_sign(im.type.get()) != H5T_SGN_NONE) {
    throw InputError(im.where + ": not uint8 (CIFAR-100's pixels are bytes)");
  }
  const int64_t n = CheckShape(im, {32, 32, 3}, "32 x 32 RGB pixels per example");
  const std::vector<int> labels =
      ReadLabels(file.Open(client, coarse ? "coarse_label" : "label"), n, coarse ? 20 : 100);
  std::vector<uint8_t> v(static_cast<size_t>(n) * 3072);
  if (n > 0) Read(im, H5T_NATIVE_UINT8, v.data());
  // [height, width, channel] -> the CNNs' [channel, height, width].
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* img = v.data() + i * 3072;
    for (int c = 0; c < 3; ++c) {
      for (int p = 0; p < 1024; ++p) out.bytes.push_back(img[p * 3 + c]);
    }
    out.y.push_back(labels[static_cast<size_t>(i)]);
    out.user.push_back(user);
  }
  out.examples += n;
}

void ReadShakespeare(const H5File& file, const std::string& client, int user, SplitData& out) {
  const std::vector<std::string> snippets = ReadStrings(file.Open(client, "snippets"));
  for (const std::string& s : snippets) AddSnippet(s, user, out);
  out.examples += static_cast<int64_t>(snippets.size());
}

// The number of examples a client holds (the first dimension of its main field,
// whose type and shape are checked).
int64_t Examples(const H5File& file, const std::string& client, Task task) {
  const char* field = task == Task::kShakespeare ? "snippets" : task == Task::kCifar100 ? "image" : "pixels";
  const Field f = file.Open(client, field);
  // The readers check the same; checked here too, so that a wrong field is
  // named before data.num_clients is compared with the count.
  if (task == Task::kShakespeare && f.cls != H5T_STRING) throw InputError(f.where + ": not strings");
  if ((task == Task::kEmnist || task == Task::kEmnistDigits) && f.cls != H5T_FLOAT) {
    throw InputError(f.where + ": not floating point (pixels are floats in [0, 1])");
  }
  if (task == Task::kCifar100 && f.cls != H5T_INTEGER) {
    throw InputError(f.where + ": not uint8 (CIFAR-100's pixels are bytes)");
  }
  switch (task) {
    case Task::kShakespeare: return CheckShape(f, {}, "one string per example");
    case Task::kCifar100: return CheckShape(f, {32, 32, 3}, "32 x 32 RGB pixels per example");
    default: return CheckShape(f, {28, 28}, "28 x 28 pixels per example");
  }
}

void ReadClient(const H5File& file, const std::string& client, int user, Task task, bool coarse, SplitData& out) {
  switch (task) {
    case Task::kEmnist: ReadEmnist(file, client, user, 62, out); break;
    case Task::kEmnistDigits: ReadEmnist(file, client, user, 10, out); break;
    case Task::kShakespeare: ReadShakespeare(file, client, user, out); break;
    case Task::kCifar100: ReadCifar100(file, client, user, coarse, out); break;
  }
}

std::string FilePath(const std::string& dir, const std::string& file, Task task, bool train) {
  const std::string name = file.empty() ? DefaultFile(task, train) : file;
  if (fs::path(name).is_absolute() || dir.empty()) return name;
  return (fs::path(dir) / name).string();
}

Dataset Finish(Task task, SplitData& s) {
  Dataset ds;
  s.y.MoveAppend(ds.y);
  s.user.MoveAppend(ds.user);
  const size_t n = ds.y.size();
  switch (task) {
    case Task::kEmnist:
    case Task::kEmnistDigits:
      ds.shape = {1, 28, 28};
      ds.num_classes = task == Task::kEmnist ? 62 : 10;
      if (s.float_pixels) {
        ds.x.resize(static_cast<Eigen::Index>(n), 784);
        s.floats.MoveInto(ds.x.data());
      } else {
        ds.byte_storage = true;
        s.bytes.MoveAppend(ds.bytes);
        ds.byte_scale = Eigen::RowVectorXf::Constant(784, 1.0f / 255.0f);
        ds.byte_shift = Eigen::RowVectorXf::Zero(784);
      }
      break;
    case Task::kCifar100:
      ds.shape = {3, 32, 32};
      ds.byte_storage = true;
      s.bytes.MoveAppend(ds.bytes);
      ds.byte_scale = Eigen::RowVectorXf::Constant(3072, 1.0f / 255.0f);
      ds.byte_shift = Eigen::RowVectorXf::Zero(3072);
      break;
    case Task::kShakespeare:
      ds.shape = {kSeqLen};
      ds.vocab_size = kShakespeareVocab;
      ds.num_classes = kShakespeareVocab;
      ds.byte_storage = true;
      s.bytes.MoveAppend(ds.bytes);
      ds.byte_scale = Eigen::RowVectorXf::Constant(kSeqLen, 1.0f);
      ds.byte_shift = Eigen::RowVectorXf::Zero(kSeqLen);
      break;
  }
  return ds;
}

#endif  // FEDSIM_HDF5

}  // namespace

FederatedData LoadTffH5(const TffH5Config& cfg, const std::string& dir, const std::string& cifar100_labels,
                        int max_users) {
  const Task task = ParseTask(cfg.task);
#ifndef FEDSIM_HDF5
  (void)dir;
  (void)cifar100_labels;
  (void)max_users;
  throw InputError(fmt::format(
      "data.dataset: \"tff_h5\" (task {}) needs fedsim built with HDF5: install Debian's libhdf5-dev and "
      "rebuild (CMake turns FEDSIM_HDF5 on when it finds the library)",
      TaskName(task)));
#else
  const bool coarse = cifar100_labels == "coarse";
  if (!coarse && cifar100_labels != "fine") {
    throw InputError(fmt::format("data.cifar100.labels: \"{}\" is neither fine nor coarse", cifar100_labels));
  }
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    throw InputError(fmt::format("data.path: \"{}\" is not a directory (data.dataset = \"tff_h5\" needs the folder "
                                 "holding {} and {})",
                                 dir, DefaultFile(task, true), DefaultFile(task, false)));
  }
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // HDF5 prints its error stack unless told not to
  const H5File train(FilePath(dir, cfg.train_file, task, true), "data.tff_h5.train_file");
  const H5File test(FilePath(dir, cfg.test_file, task, false), "data.tff_h5.test_file");

  // Clients: the training file's ids with at least one example, sorted.
  std::vector<std::string> clients;
  for (const std::string& c : train.Clients()) {
    if (Examples(train, c, task) > 0) clients.push_back(c);
  }
  const int num_users = static_cast<int>(clients.size());
  if (num_users == 0) throw InputError(fmt::format("{}: no client has a training example", train.path()));
  if (max_users > num_users) {
    throw InputError(fmt::format("data.num_clients: {} clients but {} has {} clients with training examples (set "
                                 "data.num_clients to {}, or fewer to take the first clients by id)",
                                 max_users, train.path(), num_users, num_users));
  }
  const int kept = max_users > 0 ? max_users : num_users;
  clients.resize(static_cast<size_t>(kept));

  SplitData tr, te;
  for (int c = 0; c < kept; ++c) ReadClient(train, clients[static_cast<size_t>(c)], c, task, coarse, tr);
  // CIFAR-100's test clients are another population (TFF: ids 0-99 against the
  // training file's 0-499, sharing no data), so its test rows are the central
  // test set only; the other tasks split each client's data into both files.
  const bool same_clients = task != Task::kCifar100;
  int test_only = 0;
  for (const std::string& name : test.Clients()) {
    const auto it = std::lower_bound(clients.begin(), clients.end(), name);
    const int user = same_clients && it != clients.end() && *it == name ? static_cast<int>(it - clients.begin()) : -1;
    if (user < 0 && same_clients) {
      ++test_only;
      if (kept != num_users) continue;  // a subset of the clients: only their test rows
    }
    ReadClient(test, name, user, task, coarse, te);
  }
  const int64_t train_examples = tr.examples, test_examples = te.examples, oov = tr.oov + te.oov;

  FederatedData fd;
  fd.train = Finish(task, tr);
  fd.test = Finish(task, te);
  if (task == Task::kCifar100) fd.train.num_classes = fd.test.num_classes = coarse ? 20 : 100;
  fd.num_users = kept;
  fd.description = fmt::format("TFF {}, {} of {} training clients, {} / {} {}", TaskName(task), kept, num_users,
                               train_examples, test_examples, task == Task::kShakespeare ? "snippets" : "examples");
  if (task == Task::kShakespeare) fd.description += fmt::format(", {} out-of-vocabulary bytes", oov);
  if (!same_clients) {
    fd.description += ", test clients another population (central test set only)";
  } else if (test_only > 0) {
    fd.description += fmt::format(kept == num_users ? ", {} test clients without training examples (no client)"
                                                    : ", {} other test clients left out",
                                  test_only);
  }
  return fd;
#endif
}

}  // namespace fedsim
