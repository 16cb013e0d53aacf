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
// all), framed as [bos, chars..., eos]. data.tff_h5.targets picks what a
// sample predicts:
//   every_step  TFF's own framing: the framed snippet is padded with pad to a
//               multiple of L + 1 ids (L = sequence_length, 80) and cut into
//               rows of L + 1; a model reads ids [0, L) of a row and predicts
//               ids [1, L] (next-token data, Dataset::next_token);
//   last        each token after bos becomes one sample: x = the L tokens
//               before it (left-padded with pad inside the snippet), y = the
//               token (LEAF's convention of 80 characters -> the next); the
//               default for shakespeare (auto).
//
// StackOverflow follows TFF's word_prediction_preprocessing (tff.simulation.
// baselines.stackoverflow): an example's `tokens` string is split at every
// space (as tf.strings.split with sep ' ', so two spaces make an empty word),
// its first L words (L = 20) looked up in the vocabulary (pad = 0, words
// 1..V, oov V + 1, bos V + 2, eos V + 3), framed as [bos, ids..., eos] (eos
// only after fewer than L words, as TFF) and padded with pad to L + 1 ids:
// one next-token row per sentence (every_step only). The vocabulary is the
// first V words of TFF's word-count file (data.tff_h5.vocab), or, without
// one, every word of the training file ranked by the number of clients using
// it (what TFF's file counts), ties in byte order.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
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

enum class Task { kEmnist, kEmnistDigits, kShakespeare, kCifar100, kStackOverflow };

Task ParseTask(const std::string& task) {
  if (task == "emnist") return Task::kEmnist;
  if (task == "emnist_digits") return Task::kEmnistDigits;
  if (task == "shakespeare") return Task::kShakespeare;
  if (task == "cifar100") return Task::kCifar100;
  if (task == "stackoverflow") return Task::kStackOverflow;
  throw InputError(fmt::format("data.tff_h5.task: unknown TFF task \"{}\"", task));
}

const char* TaskName(Task t) {
  switch (t) {
    case Task::kEmnist: return "emnist";
    case Task::kEmnistDigits: return "emnist_digits";
    case Task::kShakespeare: return "shakespeare";
    case Task::kCifar100: return "cifar100";
    case Task::kStackOverflow: return "stackoverflow";
  }
  return "?";
}

constexpr int kShakespeareLen = 80;    // TFF's DEFAULT_SEQUENCE_LENGTH, LEAF's seq_len
constexpr int kStackOverflowLen = 20;  // TFF's word_prediction_preprocessing default

#ifdef FEDSIM_HDF5

// TFF's file names (tff.simulation.datasets, and FedML's copies of them).
std::string DefaultFile(Task t, bool train) {
  const char* split = train ? "train" : "test";
  switch (t) {
    case Task::kEmnist: return fmt::format("fed_emnist_{}.h5", split);
    case Task::kEmnistDigits: return fmt::format("fed_emnist_digitsonly_{}.h5", split);
    case Task::kShakespeare: return fmt::format("shakespeare_{}.h5", split);
    case Task::kCifar100: return fmt::format("fed_cifar100_{}.h5", split);
    case Task::kStackOverflow: return fmt::format("stackoverflow_{}.h5", split);
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

// How token tasks frame their samples (data.tff_h5.targets, sequence_length).
struct Framing {
  bool every_step = false;
  int len = kShakespeareLen;  // L: input tokens per sample
};

// StackOverflow's word ids: pad 0, words 1..V, oov V + 1, bos V + 2, eos V + 3.
struct WordVocab {
  std::unordered_map<std::string, int> id;  // word -> 1..V
  int words = 0;                            // V
  int oov() const { return words + 1; }
  int bos() const { return words + 2; }
  int eos() const { return words + 3; }
  int size() const { return words + 4; }
};

// One split as it is read: rows client by client.
struct SplitData {
  Chunked<uint8_t> bytes;  // pixels k of k/255, CIFAR pixels, Shakespeare token ids
  Chunked<float> floats;   // EMNIST pixels once one of them is not k/255; StackOverflow token ids
  bool float_pixels = false;
  Chunked<int> y;
  Chunked<int> user;
  int64_t oov = 0;         // Shakespeare bytes / StackOverflow words outside the vocabulary
  int64_t words = 0;       // StackOverflow words kept (after the cut at L)
  int64_t examples = 0;    // examples (snippets, images, sentences) read
  std::vector<int> tokens;  // scratch: one snippet's or sentence's ids (reused, not reallocated per example)
  std::string word;         // scratch: a word being looked up

  // EMNIST: keeps every pixel as a float from here on (the bytes read so far
  // become k / 255).
  void UseFloatPixels() {
    if (float_pixels) return;
    float_pixels = true;
    for (size_t j = 0; j < bytes.size(); ++j) floats.push_back(static_cast<float>(bytes[j]) / 255.0f);
    bytes = Chunked<uint8_t>();
  }
};

// Appends the Shakespeare samples of one snippet.
void AddSnippet(const std::string& s, int user, const Framing& f, SplitData& out) {
  std::vector<int>& tokens = out.tokens;
  tokens.clear();
  tokens.push_back(kBos);
  for (unsigned char c : s) {
    const int id = CharId(c);
    out.oov += id == kOov;
    tokens.push_back(id);
  }
  tokens.push_back(kEos);
  if (f.every_step) {
    // Rows of L + 1 ids, the last one padded (TFF's to_tokens_and_pad).
    const size_t row = static_cast<size_t>(f.len) + 1;
    for (size_t begin = 0; begin < tokens.size(); begin += row) {
      for (size_t k = begin; k < begin + row; ++k) {
        out.bytes.push_back(static_cast<uint8_t>(k < tokens.size() ? tokens[k] : kPad));
      }
      // A row's first target: a row starts at a token with one after it, or is bos's.
      out.y.push_back(begin + 1 < tokens.size() ? tokens[begin + 1] : kPad);
      out.user.push_back(user);
    }
    return;
  }
  for (size_t j = 1; j < tokens.size(); ++j) {
    for (int k = static_cast<int>(j) - f.len; k < static_cast<int>(j); ++k) {
      out.bytes.push_back(static_cast<uint8_t>(k < 0 ? kPad : tokens[static_cast<size_t>(k)]));
    }
    out.y.push_back(tokens[j]);
    out.user.push_back(user);
  }
}

// Calls fn(word) for each word of a sentence split at every space (an empty
// sentence has none; two spaces in a row make an empty word).
template <class Fn>
void ForEachWord(const std::string& sentence, Fn&& fn) {
  if (sentence.empty()) return;
  size_t begin = 0;
  for (;;) {
    const size_t end = sentence.find(' ', begin);
    const std::string_view w(sentence.data() + begin, (end == std::string::npos ? sentence.size() : end) - begin);
    if (!fn(w)) return;
    if (end == std::string::npos) return;
    begin = end + 1;
  }
}

// Appends the next-token row of one StackOverflow sentence.
void AddSentence(const std::string& sentence, int user, const Framing& f, const WordVocab& v, SplitData& out) {
  const size_t row = static_cast<size_t>(f.len) + 1;
  std::vector<int>& ids = out.tokens;
  ids.clear();
  ids.push_back(v.bos());
  int kept = 0;
  std::string& key = out.word;
  ForEachWord(sentence, [&](std::string_view w) {
    if (kept == f.len) return false;
    key.assign(w.data(), w.size());
    const auto it = v.id.find(key);
    const int id = it == v.id.end() ? v.oov() : it->second;
    out.oov += id == v.oov();
    ids.push_back(id);
    ++kept;
    return true;
  });
  // TFF appends eos only to a sentence of fewer than L words (so one of exactly
  // L words gets none, as one that was cut).
  if (kept < f.len) ids.push_back(v.eos());
  out.words += kept;
  for (size_t k = 0; k < row; ++k) out.floats.push_back(static_cast<float>(k < ids.size() ? ids[k] : kPad));
  out.y.push_back(ids[1]);
  out.user.push_back(user);
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
      out.UseFloatPixels();  // a pixel that is not k/255
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

// What every client's reader needs besides its file.
struct Reading {
  Task task = Task::kEmnist;
  bool coarse = false;          // CIFAR-100's coarse labels
  Framing framing;              // token tasks
  const WordVocab* vocab = nullptr;  // StackOverflow
};

bool TokenTask(Task t) { return t == Task::kShakespeare || t == Task::kStackOverflow; }
const char* MainField(Task t) {
  switch (t) {
    case Task::kShakespeare: return "snippets";
    case Task::kStackOverflow: return "tokens";
    case Task::kCifar100: return "image";
    default: return "pixels";
  }
}

// The number of examples a client holds (the first dimension of its main field,
// whose type and shape are checked).
int64_t Examples(const H5File& file, const std::string& client, Task task) {
  const Field f = file.Open(client, MainField(task));
  // The readers check the same; checked here too, so that a wrong field is
  // named before data.num_clients is compared with the count.
  if (TokenTask(task) && f.cls != H5T_STRING) throw InputError(f.where + ": not strings");
  if ((task == Task::kEmnist || task == Task::kEmnistDigits) && f.cls != H5T_FLOAT) {
    throw InputError(f.where + ": not floating point (pixels are floats in [0, 1])");
  }
  if (task == Task::kCifar100 && f.cls != H5T_INTEGER) {
    throw InputError(f.where + ": not uint8 (CIFAR-100's pixels are bytes)");
  }
  switch (task) {
    case Task::kShakespeare:
    case Task::kStackOverflow: return CheckShape(f, {}, "one string per example");
    case Task::kCifar100: return CheckShape(f, {32, 32, 3}, "32 x 32 RGB pixels per example");
    default: return CheckShape(f, {28, 28}, "28 x 28 pixels per example");
  }
}

void ReadClient(const H5File& file, const std::string& client, int user, const Reading& how, SplitData& out) {
  switch (how.task) {
    case Task::kEmnist: ReadEmnist(file, client, user, 62, out); break;
    case Task::kEmnistDigits: ReadEmnist(file, client, user, 10, out); break;
    case Task::kCifar100: ReadCifar100(file, client, user, how.coarse, out); break;
    case Task::kShakespeare:
    case Task::kStackOverflow: {
      const std::vector<std::string> text = ReadStrings(file.Open(client, MainField(how.task)));
      for (const std::string& t : text) {
        if (how.task == Task::kShakespeare) {
          AddSnippet(t, user, how.framing, out);
        } else {
          AddSentence(t, user, how.framing, *how.vocab, out);
        }
      }
      out.examples += static_cast<int64_t>(text.size());
      break;
    }
  }
}

std::string FilePath(const std::string& dir, const std::string& file, const std::string& default_name) {
  const std::string name = file.empty() ? default_name : file;
  if (fs::path(name).is_absolute() || dir.empty()) return name;
  return (fs::path(dir) / name).string();
}

// TFF's word-count file: "word count" per line, most frequent first; the
// first `words` of them.
WordVocab ReadWordCounts(const std::string& path, int words) {
  std::ifstream in(path);
  if (!in) throw InputError(fmt::format("data.tff_h5.vocab: {}: cannot open", path));
  WordVocab v;
  std::string line;
  int64_t line_no = 0;
  while (v.words < words && std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t sep = line.find_first_of(" \t");
    const size_t count_at = sep == std::string::npos ? sep : line.find_first_not_of(" \t", sep);
    const bool digits = count_at != std::string::npos &&
                        line.find_first_not_of("0123456789", count_at) == std::string::npos;
    if (sep == 0 || !digits) {
      throw InputError(fmt::format("data.tff_h5.vocab: {}: line {}: expected 'word count', got \"{}\"", path, line_no,
                                   line.substr(0, 80)));
    }
    const std::string word = line.substr(0, sep);
    if (!v.id.emplace(word, v.words + 1).second) {
      throw InputError(fmt::format("data.tff_h5.vocab: {}: line {}: \"{}\" is listed twice", path, line_no, word));
    }
    ++v.words;
  }
  if (v.words < words) {
    throw InputError(fmt::format("data.tff_h5.vocab: {}: {} words, fewer than data.tff_h5.vocab_size = {}", path,
                                 v.words, words));
  }
  return v;
}

// The vocabulary counted from the training file: every word ranked by the
// number of clients using it (TFF's word counts count users), ties in byte
// order; the first `words` of them (all of them when there are fewer).
WordVocab CountWords(const H5File& train, const std::vector<std::string>& clients, int words) {
  std::unordered_map<std::string, int64_t> users;
  std::unordered_set<std::string> seen;
  for (const std::string& c : clients) {
    seen.clear();
    for (const std::string& sentence : ReadStrings(train.Open(c, "tokens"))) {
      ForEachWord(sentence, [&](std::string_view w) {
        seen.emplace(w);
        return true;
      });
    }
    for (const std::string& w : seen) ++users[w];
  }
  std::vector<std::pair<std::string, int64_t>> ranked(users.begin(), users.end());
  std::sort(ranked.begin(), ranked.end(),
            [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  WordVocab v;
  for (const auto& [w, n] : ranked) {
    if (v.words == words) break;
    v.id.emplace(w, ++v.words);
  }
  return v;
}

Dataset Finish(const Reading& how, SplitData& s) {
  Dataset ds;
  s.y.MoveAppend(ds.y);
  s.user.MoveAppend(ds.user);
  const size_t n = ds.y.size();
  const int row = how.framing.len + (how.framing.every_step ? 1 : 0);
  switch (how.task) {
    case Task::kEmnist:
    case Task::kEmnistDigits:
      ds.shape = {1, 28, 28};
      ds.num_classes = how.task == Task::kEmnist ? 62 : 10;
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
      ds.vocab_size = kShakespeareVocab;
      ds.byte_storage = true;
      s.bytes.MoveAppend(ds.bytes);
      ds.byte_scale = Eigen::RowVectorXf::Constant(row, 1.0f);
      ds.byte_shift = Eigen::RowVectorXf::Zero(row);
      break;
    case Task::kStackOverflow:
      ds.vocab_size = how.vocab->size();
      ds.x.resize(static_cast<Eigen::Index>(n), row);
      s.floats.MoveInto(ds.x.data());
      break;
  }
  if (TokenTask(how.task)) {
    ds.shape = {row};
    ds.num_classes = ds.vocab_size;
    ds.next_token = how.framing.every_step;
    ds.pad_id = kPad;
  }
  return ds;
}

#endif  // FEDSIM_HDF5

}  // namespace

FederatedData LoadTffH5(const TffH5Config& cfg, const std::string& dir, const std::string& cifar100_labels,
                        int max_users) {
  const Task task = ParseTask(cfg.task);
  // Checked in every build, HDF5 or not.
  const bool token_task = task == Task::kShakespeare || task == Task::kStackOverflow;
  const bool so = task == Task::kStackOverflow;
  if (so && cfg.targets == "last") {
    throw InputError(
        "data.tff_h5.targets: \"last\" is not a framing of stackoverflow (TFF predicts every word of a sentence); "
        "use every_step (or auto)");
  }
  if (!token_task && (cfg.targets != "auto" || cfg.sequence_length != 0)) {
    throw InputError(fmt::format("data.tff_h5.{}: only the token tasks (shakespeare, stackoverflow) have it, not {}",
                                 cfg.targets != "auto" ? "targets" : "sequence_length", TaskName(task)));
  }
  if (!so && (cfg.vocab_size != TffH5Config().vocab_size || !cfg.vocab.empty())) {
    throw InputError(fmt::format("data.tff_h5.{}: only stackoverflow has a word vocabulary, not {}",
                                 cfg.vocab.empty() ? "vocab_size" : "vocab", TaskName(task)));
  }
  const bool every_step = cfg.targets == "every_step" || (cfg.targets == "auto" && so);
  const int seq_len = cfg.sequence_length > 0 ? cfg.sequence_length : so ? kStackOverflowLen : kShakespeareLen;
#ifndef FEDSIM_HDF5
  (void)dir;
  (void)cifar100_labels;
  (void)max_users;
  throw InputError(fmt::format(
      "data.dataset: \"tff_h5\" (task {}) needs fedsim built with HDF5: install Debian's libhdf5-dev and "
      "rebuild (CMake turns FEDSIM_HDF5 on when it finds the library)",
      TaskName(task)));
#else
  Reading how;
  how.task = task;
  how.framing.every_step = every_step;
  how.framing.len = seq_len;
  how.coarse = cifar100_labels == "coarse";
  if (!how.coarse && cifar100_labels != "fine") {
    throw InputError(fmt::format("data.cifar100.labels: \"{}\" is neither fine nor coarse", cifar100_labels));
  }
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec)) {
    throw InputError(fmt::format("data.path: \"{}\" is not a directory (data.dataset = \"tff_h5\" needs the folder "
                                 "holding {} and {})",
                                 dir, DefaultFile(task, true), DefaultFile(task, false)));
  }
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // HDF5 prints its error stack unless told not to
  const H5File train(FilePath(dir, cfg.train_file, DefaultFile(task, true)), "data.tff_h5.train_file");
  const H5File test(FilePath(dir, cfg.test_file, DefaultFile(task, false)), "data.tff_h5.test_file");

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
  WordVocab vocab;
  if (task == Task::kStackOverflow) {
    // Counted over every training client, whatever data.num_clients keeps, so
    // that a subset sees the ids the full data would give it.
    vocab = cfg.vocab.empty() ? CountWords(train, clients, cfg.vocab_size)
                              : ReadWordCounts(FilePath(dir, cfg.vocab, ""), cfg.vocab_size);
    how.vocab = &vocab;
  }
  const int kept = max_users > 0 ? max_users : num_users;
  clients.resize(static_cast<size_t>(kept));

  SplitData tr, te;
  for (int c = 0; c < kept; ++c) ReadClient(train, clients[static_cast<size_t>(c)], c, how, tr);
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
    ReadClient(test, name, user, how, te);
  }
  const int64_t train_examples = tr.examples, test_examples = te.examples, oov = tr.oov + te.oov;
  const int64_t train_words = tr.words, train_oov = tr.oov;

  FederatedData fd;
  // Both splits in one storage (standardisation and the cache need it): a
  // split with a pixel that is not k/255 makes the other float too.
  if (tr.float_pixels != te.float_pixels) {
    tr.UseFloatPixels();
    te.UseFloatPixels();
  }
  fd.train = Finish(how, tr);
  fd.test = Finish(how, te);
  if (task == Task::kCifar100) fd.train.num_classes = fd.test.num_classes = how.coarse ? 20 : 100;
  fd.num_users = kept;
  const char* unit = task == Task::kShakespeare     ? "snippets"
                     : task == Task::kStackOverflow ? "sentences"
                                                    : "examples";
  fd.description = fmt::format("TFF {}, {} of {} training clients, {} / {} {}", TaskName(task), kept, num_users,
                               train_examples, test_examples, unit);
  if (task == Task::kShakespeare) fd.description += fmt::format(", {} out-of-vocabulary bytes", oov);
  if (task == Task::kStackOverflow) {
    fd.description += fmt::format(
        ", vocabulary of {} words ({}), {:.2f}% of the kept training words out of it", vocab.words,
        cfg.vocab.empty() ? fmt::format("counted over {} clients", num_users) : "from " + cfg.vocab,
        train_words > 0 ? 100.0 * static_cast<double>(train_oov) / static_cast<double>(train_words) : 0.0);
  }
  if (TokenTask(task)) {
    fd.description += how.framing.every_step
                          ? fmt::format(", rows of {} + 1 ids, every step predicted", how.framing.len)
                          : fmt::format(", {} tokens -> the next", how.framing.len);
  }
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
