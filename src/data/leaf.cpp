// LEAF's JSON files (Caldas et al., "LEAF: A Benchmark for Federated
// Settings", 2018; github.com/TalwalkarLab/leaf). Each file is one object
//   {"users": [...], "num_samples": [...], "hierarchies": [...] (optional),
//    "user_data": {"<user>": {"x": [...], "y": [...]}, ...}}
// and a task's data/ folder holds train/*.json and test/*.json. Files are read
// with nlohmann's SAX parser, one value at a time, straight into the final
// compact storage (chunked, so growing never copies): a file is never held as
// a document. Only user_data is read; num_samples is not trusted (LEAF's
// Shakespeare test files overstate it), a user's sample count is len(y).
//
// x and y of each task follow LEAF's reference models (models/<task>/ and
// models/utils/language_utils.py):
//   femnist      784 floats k/255 per sample, stored as the bytes k; y in [0, 62)
//   shakespeare  a string of characters of LEAF's 80-letter alphabet, each
//                stored as its index (token data); y one character
//   sent140      a six-field row whose x[4] is the tweet, split into words as
//                LEAF's split_line does, the first seq_len words as word ids,
//                padded with the unknown id; y 0 or 1
//   synthetic    a float vector; y a class index
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/chunked.h"
#include "data/dataset.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// LEAF's ALL_LETTERS (models/utils/language_utils.py): a character's token id
// is its index here.
constexpr char kLeafLetters[] =
    "\n !\"&'(),-.0123456789:;>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz}";
constexpr int kNumLetters = sizeof(kLeafLetters) - 1;  // 80
static_assert(kNumLetters == 80, "LEAF's alphabet has 80 characters");

constexpr int kFemnistPixels = 28 * 28;
constexpr int kFemnistClasses = 62;
constexpr int kMaxClasses = 100000;  // as for CSV labels
// Provisional word ids are stored as floats until the vocabulary is known.
constexpr int64_t kMaxWords = int64_t{1} << 24;

enum class Task { kFemnist, kShakespeare, kSent140, kSynthetic };

Task ParseTask(const std::string& task) {
  if (task == "femnist") return Task::kFemnist;
  if (task == "shakespeare") return Task::kShakespeare;
  if (task == "sent140") return Task::kSent140;
  if (task == "synthetic") return Task::kSynthetic;
  if (task == "celeba") {
    throw InputError(
        "data.leaf.task: \"celeba\" is not supported: its samples are image file names and fedsim does not decode "
        "JPEG images; use femnist, shakespeare, sent140 or synthetic");
  }
  throw InputError(fmt::format("data.leaf.task: unknown LEAF task \"{}\"", task));
}

const char* TaskName(Task t) {
  switch (t) {
    case Task::kFemnist: return "femnist";
    case Task::kShakespeare: return "shakespeare";
    case Task::kSent140: return "sent140";
    case Task::kSynthetic: return "synthetic";
  }
  return "?";
}

// Python's \w for characters up to U+00FF: ASCII letters, digits and '_', and
// the Latin-1 letters and digits (str.isalnum()). LEAF reads Sent140's CSV as
// ISO-8859-1, so its tweets hold no other characters; a code point above
// U+00FF counts as a word character.
bool IsWordChar(uint32_t cp) {
  if (cp < 0x80) return std::isalnum(static_cast<int>(cp)) || cp == '_';
  if (cp > 0xFF) return true;
  return cp == 0xAA || cp == 0xB2 || cp == 0xB3 || cp == 0xB5 || cp == 0xB9 || cp == 0xBA ||
         (cp >= 0xBC && cp <= 0xBE) || (cp >= 0xC0 && cp != 0xD7 && cp != 0xF7);
}

// Decodes the UTF-8 character at s[i] (advancing i); an invalid byte is taken
// as the code point of its value.
uint32_t NextCodePoint(const std::string& s, size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
  if (i + static_cast<size_t>(len) > s.size()) len = 1;
  uint32_t cp = len == 1 ? b : b & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((c >> 6) != 0x2) {
      ++i;
      return b;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  i += static_cast<size_t>(len);
  return cp;
}

// LEAF's split_line: re.findall(r"[\w']+|[.,!?;]", line).
template <class F>
void SplitLine(const std::string& line, F&& word) {
  size_t i = 0;
  std::string w;
  while (i < line.size()) {
    const size_t start = i;
    const uint32_t cp = NextCodePoint(line, i);
    if (IsWordChar(cp) || cp == '\'') {
      size_t end = i;
      while (end < line.size()) {
        size_t next = end;
        const uint32_t c = NextCodePoint(line, next);
        if (!IsWordChar(c) && c != '\'') break;
        end = next;
      }
      w.assign(line, start, end - start);
      word(w);
      i = end;
    } else if (cp == '.' || cp == ',' || cp == '!' || cp == '?' || cp == ';') {
      w.assign(1, static_cast<char>(cp));
      word(w);
    }
  }
}

// A character for a message: printable ASCII as itself, else its code.
std::string ShowChar(unsigned char c) {
  if (c >= 0x20 && c < 0x7F) return fmt::format("'{}'", static_cast<char>(c));
  return fmt::format("byte 0x{:02x}", c);
}

// One split (train or test) as it is read: rows in file order.
struct SplitData {
  Chunked<uint8_t> bytes;  // femnist pixels, shakespeare letters
  Chunked<float> floats;   // synthetic features, sent140 provisional word ids
  Chunked<int> y;
  Chunked<int> user;       // index into names
  std::vector<std::string> names;             // users in order of first appearance
  std::unordered_map<std::string, int> index;  // name -> position in names
  std::vector<std::string> files;             // the file each user came from
  int dim = 0;                                 // features per sample (0 until the first sample)
};

// What the whole dataset shares while it is read: the words seen so far (sent140).
struct Words {
  std::unordered_map<std::string, int> id;  // provisional ids, in order of first sight
  std::vector<std::string> text;
  std::vector<int64_t> train_count;         // occurrences in training tweets

  int Intern(const std::string& w) {
    auto [it, fresh] = id.try_emplace(w, static_cast<int>(text.size()));
    if (fresh) {
      if (static_cast<int64_t>(text.size()) >= kMaxWords) {
        throw InputError(fmt::format("sent140: more than {} distinct words", kMaxWords));
      }
      text.push_back(w);
      train_count.push_back(0);
    }
    return it->second;
  }
};

// The SAX handler for one file. It knows where in the document it is (a
// small state machine over the nesting) and appends samples to `out`.
class LeafHandler : public json::json_sax_t {
 public:
  LeafHandler(Task task, const std::string& file, bool train, int seq_len, SplitData& out, Words& words)
      : task_(task), file_(file), train_(train), seq_len_(seq_len), out_(out), words_(words) {}

  bool saw_user_data() const { return saw_user_data_; }

  bool null() override { return Scalar("null"); }
  bool boolean(bool) override { return Scalar("a boolean"); }
  bool number_integer(number_integer_t v) override { return Number(static_cast<double>(v), "an integer"); }
  bool number_unsigned(number_unsigned_t v) override { return Number(static_cast<double>(v), "an integer"); }
  bool number_float(number_float_t v, const string_t&) override { return Number(v, "a number"); }
  bool binary(binary_t&) override { return Scalar("binary data"); }
  bool string(string_t& s) override {
    if (skip_ > 0) return true;
    switch (state_) {
      case State::kXArray:
        if (task_ == Task::kShakespeare) {
          AddLetters(s);
          ++nx_;
          return true;
        }
        break;
      case State::kSent140Row:
        if (field_ == 4) AddTweet(s);
        ++field_;
        return true;
      case State::kYArray:
        if (task_ == Task::kShakespeare) {
          if (s.size() != 1 || Letter(static_cast<unsigned char>(s[0])) < 0) {
            Fail(fmt::format("y[{}] is \"{}\", not one character of LEAF's 80-letter alphabet", ny_, s));
          }
          PushLabel(Letter(static_cast<unsigned char>(s[0])));
          return true;
        }
        break;
      default:
        break;
    }
    return Scalar("a string");
  }

  bool start_object(std::size_t) override {
    if (skip_ > 0) return ++skip_, true;
    switch (state_) {
      case State::kStart: state_ = State::kTop; return true;
      case State::kUserData: state_ = State::kUsers; return true;
      case State::kUserValue: state_ = State::kUser; nx_ = ny_ = 0; saw_x_ = saw_y_ = false; return true;
      case State::kTopValue: skip_ = 1; state_ = State::kTop; return true;
      case State::kUserKeyValue: skip_ = 1; state_ = State::kUser; return true;
      case State::kSent140Row:  // a field that is an object: not the tweet
        if (field_ == 4) Fail(fmt::format("x[{}][4] (the tweet) is an object, not a string", nx_));
        ++field_;
        skip_ = 1;
        return true;
      default: return Unexpected("an object");
    }
  }
  bool end_object() override {
    if (skip_ > 0) return --skip_, true;
    switch (state_) {
      case State::kUser:
        if (!saw_x_ || !saw_y_) Fail(fmt::format("no \"{}\" array", saw_x_ ? "y" : "x"));
        if (nx_ != ny_) Fail(fmt::format("x has {} samples but y has {}", nx_, ny_));
        state_ = State::kUsers;
        return true;
      case State::kUsers: state_ = State::kTop; return true;
      case State::kTop: state_ = State::kDone; return true;
      default: return Unexpected("the end of an object");
    }
  }
  bool start_array(std::size_t) override {
    if (skip_ > 0) return ++skip_, true;
    switch (state_) {
      case State::kTopValue: skip_ = 1; state_ = State::kTop; return true;
      case State::kUserKeyValue: skip_ = 1; state_ = State::kUser; return true;
      case State::kXValue: state_ = State::kXArray; saw_x_ = true; return true;
      case State::kYValue: state_ = State::kYArray; saw_y_ = true; return true;
      case State::kXArray:
        if (task_ == Task::kFemnist || task_ == Task::kSynthetic) {
          state_ = State::kFeatures;
          features_ = 0;
          return true;
        }
        if (task_ == Task::kSent140) {
          state_ = State::kSent140Row;
          field_ = 0;
          return true;
        }
        return Unexpected("an array");
      case State::kSent140Row:  // a field that is a list: not the tweet
        if (field_ == 4) Fail(fmt::format("x[{}][4] (the tweet) is an array, not a string", nx_));
        ++field_;
        skip_ = 1;
        return true;
      default: return Unexpected("an array");
    }
  }
  bool end_array() override {
    if (skip_ > 0) return --skip_, true;
    switch (state_) {
      case State::kXArray: state_ = State::kUser; return true;
      case State::kYArray: state_ = State::kUser; return true;
      case State::kFeatures:
        if (task_ == Task::kSynthetic && out_.dim == 0) {
          if (features_ == 0) Fail(fmt::format("x[{}] has no features", nx_));
          out_.dim = features_;  // the split's first sample sets the dimension
        }
        if (features_ != Dim()) {
          Fail(fmt::format("x[{}] has {} features, expected {}{}", nx_, features_, Dim(),
                           task_ == Task::kFemnist ? " (28 x 28 pixels)" : " as in the first sample"));
        }
        ++nx_;
        state_ = State::kXArray;
        return true;
      case State::kSent140Row:
        if (field_ < 5) Fail(fmt::format("x[{}] has {} fields; LEAF's rows have 6, x[4] the tweet", nx_, field_));
        ++nx_;
        state_ = State::kXArray;
        return true;
      default: return Unexpected("the end of an array");
    }
  }
  bool key(string_t& k) override {
    if (skip_ > 0) return true;
    switch (state_) {
      case State::kTop:
        if (k == "user_data") {
          if (saw_user_data_) throw InputError(fmt::format("{}: a second \"user_data\" object", file_));
          saw_user_data_ = true;
          state_ = State::kUserData;
        } else {
          state_ = State::kTopValue;  // users, num_samples, hierarchies, anything else: not read
        }
        return true;
      case State::kUsers: {
        auto [it, fresh] = out_.index.try_emplace(k, static_cast<int>(out_.names.size()));
        if (!fresh) {
          throw InputError(fmt::format("{}: user \"{}\" appears twice in this split (also in {})", file_, k,
                                       out_.files[static_cast<size_t>(it->second)]));
        }
        out_.names.push_back(k);
        out_.files.push_back(file_);
        user_ = it->second;
        state_ = State::kUserValue;
        return true;
      }
      case State::kUser:
        if (k == "x") {
          if (saw_x_) Fail("a second \"x\" array");
          state_ = State::kXValue;
        } else if (k == "y") {
          if (saw_y_) Fail("a second \"y\" array");
          state_ = State::kYValue;
        } else {
          state_ = State::kUserKeyValue;
        }
        return true;
      default: return Unexpected("a key");
    }
  }

  bool parse_error(std::size_t position, const std::string&, const json::exception& e) override {
    std::string what = e.what();
    const size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    throw InputError(fmt::format("{}: malformed JSON (byte {}): {}", file_, position, what));
  }

 private:
  enum class State {
    kStart, kTop, kTopValue, kUserData, kUsers, kUserValue, kUser, kUserKeyValue,
    kXValue, kXArray, kFeatures, kSent140Row, kYValue, kYArray, kDone
  };

  // Names the user being read; before the first user, the file alone.
  [[noreturn]] void Fail(const std::string& what) const {
    if (user_ < 0) throw InputError(fmt::format("{}: {}", file_, what));
    throw InputError(fmt::format("{}: user \"{}\": {}", file_, out_.names[static_cast<size_t>(user_)], what));
  }

  bool Unexpected(const char* what) {
    switch (state_) {
      case State::kStart:
        throw InputError(fmt::format("{}: expected a LEAF object {{\"users\", \"user_data\"}} at the top, found {}",
                                     file_, what));
      case State::kUserData:
      case State::kUsers:
        throw InputError(fmt::format("{}: \"user_data\" must be an object of users, found {}", file_, what));
      case State::kUserValue:
        throw InputError(fmt::format("{}: user \"{}\": expected an object {{\"x\", \"y\"}}, found {}", file_,
                                     out_.names[static_cast<size_t>(user_)], what));
      case State::kXValue: Fail(fmt::format("\"x\" must be an array, found {}", what));
      case State::kYValue: Fail(fmt::format("\"y\" must be an array, found {}", what));
      case State::kXArray: Fail(fmt::format("x[{}] is {}; {} expects {}", nx_, what, TaskName(task_), Expected()));
      case State::kFeatures: Fail(fmt::format("x[{}][{}] is {}, not a number", nx_, features_, what));
      case State::kYArray: Fail(fmt::format("y[{}] is {}; {} expects {}", ny_, what, TaskName(task_), ExpectedY()));
      default: throw InputError(fmt::format("{}: unexpected {} in a LEAF file", file_, what));
    }
    return false;
  }

  const char* Expected() const {
    switch (task_) {
      case Task::kFemnist: return "784 pixel values per sample";
      case Task::kShakespeare: return "a string per sample";
      case Task::kSent140: return "a six-field row per sample";
      case Task::kSynthetic: return "a feature vector per sample";
    }
    return "";
  }
  const char* ExpectedY() const {
    switch (task_) {
      case Task::kFemnist: return "a class index in [0, 62)";
      case Task::kShakespeare: return "one character";
      case Task::kSent140: return "0 or 1";
      case Task::kSynthetic: return "a class index";
    }
    return "";
  }

  bool Scalar(const char* what) {
    if (skip_ > 0) return true;
    switch (state_) {
      case State::kTopValue: state_ = State::kTop; return true;
      case State::kUserKeyValue: state_ = State::kUser; return true;
      case State::kSent140Row:
        if (field_ == 4) Fail(fmt::format("x[{}][4] (the tweet) is {}, not a string", nx_, what));
        ++field_;
        return true;
      default: return Unexpected(what);
    }
  }

  bool Number(double v, const char* what) {
    if (skip_ > 0) return true;
    switch (state_) {
      case State::kFeatures:
        AddFeature(v);
        return true;
      case State::kYArray:
        if (task_ != Task::kShakespeare) {
          AddLabel(v);
          return true;
        }
        break;
      default:
        break;
    }
    return Scalar(what);
  }

  int Dim() const { return task_ == Task::kFemnist ? kFemnistPixels : out_.dim; }

  void AddFeature(double v) {
    if (task_ == Task::kFemnist) {
      if (features_ >= kFemnistPixels) {
        Fail(fmt::format("x[{}] has more than {} features (28 x 28 pixels)", nx_, kFemnistPixels));
      }
      const double k = std::round(v * 255.0);
      if (!(k >= 0.0 && k <= 255.0 && std::abs(v * 255.0 - k) <= 0.02)) {
        Fail(fmt::format("x[{}][{}] = {} is not a pixel value k/255 (k = 0..255)", nx_, features_, v));
      }
      out_.bytes.push_back(static_cast<uint8_t>(k));
    } else {
      if (out_.dim > 0 && features_ >= out_.dim) {
        Fail(fmt::format("x[{}] has more than {} features, as in the first sample", nx_, out_.dim));
      }
      const auto f = static_cast<float>(v);
      if (!std::isfinite(f)) Fail(fmt::format("x[{}][{}] = {} does not fit in a float", nx_, features_, v));
      out_.floats.push_back(f);
    }
    ++features_;
  }

  void AddLabel(double v) {
    const double hi = task_ == Task::kFemnist ? kFemnistClasses : task_ == Task::kSent140 ? 2 : kMaxClasses;
    if (!(v >= 0.0 && v < hi && v == std::floor(v))) {
      Fail(fmt::format("y[{}] = {} is not {}", ny_, v, ExpectedY()));
    }
    PushLabel(static_cast<int>(v));
  }

  void PushLabel(int label) {
    out_.y.push_back(label);
    out_.user.push_back(user_);
    ++ny_;
  }

  static int Letter(unsigned char c) {
    static const auto table = [] {
      std::array<int, 256> t{};
      t.fill(-1);
      for (int i = 0; i < kNumLetters; ++i) t[static_cast<unsigned char>(kLeafLetters[i])] = i;
      return t;
    }();
    return table[c];
  }

  void AddLetters(const std::string& s) {
    if (out_.dim == 0) out_.dim = static_cast<int>(s.size());
    if (s.empty() || static_cast<int>(s.size()) != out_.dim) {
      Fail(fmt::format("x[{}] has {} characters, expected {} as in the first sample", nx_, s.size(), out_.dim));
    }
    for (size_t i = 0; i < s.size(); ++i) {
      const int id = Letter(static_cast<unsigned char>(s[i]));
      if (id < 0) {
        Fail(fmt::format("x[{}], character {}: {} is not in LEAF's 80-letter alphabet", nx_, i,
                         ShowChar(static_cast<unsigned char>(s[i]))));
      }
      out_.bytes.push_back(static_cast<uint8_t>(id));
    }
  }

  void AddTweet(const std::string& s) {
    int n = 0;
    SplitLine(s, [&](const std::string& w) {
      const int id = words_.Intern(w);
      if (train_) ++words_.train_count[static_cast<size_t>(id)];
      if (n < seq_len_) {
        out_.floats.push_back(static_cast<float>(id));
        ++n;
      }
    });
    for (; n < seq_len_; ++n) out_.floats.push_back(-1.0f);  // padding: the unknown id, set later
  }

  Task task_;
  const std::string& file_;
  bool train_;
  int seq_len_;
  SplitData& out_;
  Words& words_;
  State state_ = State::kStart;
  int skip_ = 0;      // > 0: inside a value that is not read, this deep
  int user_ = -1;
  int64_t nx_ = 0, ny_ = 0;
  int features_ = 0;  // values of the current sample so far
  int field_ = 0;     // sent140: fields of the current row so far
  bool saw_x_ = false, saw_y_ = false, saw_user_data_ = false;
};

std::vector<std::string> JsonFiles(const std::string& dir, const char* split) {
  const fs::path folder = fs::path(dir) / split;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw InputError(fmt::format("{}: no such directory (data.path must be a LEAF task's data/ folder holding "
                                 "train/ and test/ as LEAF's preprocess.sh writes them)",
                                 folder.string()));
  }
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    if (e.path().extension() == ".json" && e.is_regular_file(ec)) files.push_back(e.path().string());
  }
  if (ec) throw InputError(fmt::format("{}: cannot list: {}", folder.string(), ec.message()));
  if (files.empty()) throw InputError(fmt::format("{}: no .json files", folder.string()));
  std::sort(files.begin(), files.end());
  return files;
}

void ReadSplit(Task task, const std::string& dir, const char* split, int seq_len, SplitData& out, Words& words) {
  for (const std::string& file : JsonFiles(dir, split)) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw InputError(fmt::format("{}: cannot open", file));
    LeafHandler h(task, file, std::string(split) == "train", seq_len, out, words);
    json::sax_parse(in, &h);
    if (in.bad()) throw InputError(fmt::format("{}: read error", file));
    if (!h.saw_user_data()) throw InputError(fmt::format("{}: no \"user_data\" object", file));
  }
}

// The vocabulary file: LEAF's embs.json ({"vocab": [words], "emba": ...}) or
// text, the first whitespace-separated token of each non-blank line.
std::vector<std::string> ReadVocab(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw InputError(fmt::format("data.leaf.vocab: {}: no such file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("data.leaf.vocab: {}: cannot open", path));
  std::vector<std::string> words;
  if (fs::path(path).extension() == ".json") {
    struct VocabSax : json::json_sax_t {
      std::vector<std::string>& words;
      const std::string& path;
      int depth = 0;
      bool in_vocab = false, next_is_vocab = false, found = false;
      VocabSax(std::vector<std::string>& w, const std::string& p) : words(w), path(p) {}
      bool Value() { next_is_vocab = false; return true; }
      bool null() override { return Value(); }
      bool boolean(bool) override { return Value(); }
      bool number_integer(number_integer_t) override { return Value(); }
      bool number_unsigned(number_unsigned_t) override { return Value(); }
      bool number_float(number_float_t, const string_t&) override { return Value(); }
      bool binary(binary_t&) override { return Value(); }
      bool string(string_t& s) override {
        if (in_vocab && depth == 2) words.push_back(s);
        return Value();
      }
      bool start_object(std::size_t) override { ++depth; next_is_vocab = false; return true; }
      bool end_object() override { --depth; return true; }
      bool start_array(std::size_t) override {
        ++depth;
        if (next_is_vocab) in_vocab = found = true;
        next_is_vocab = false;
        return true;
      }
      bool end_array() override {
        if (in_vocab && depth == 2) in_vocab = false;
        --depth;
        return true;
      }
      bool key(string_t& k) override {
        next_is_vocab = depth == 1 && k == "vocab";
        return true;
      }
      bool parse_error(std::size_t position, const std::string&, const json::exception& e) override {
        throw InputError(fmt::format("data.leaf.vocab: {}: malformed JSON (byte {}): {}", path, position, e.what()));
      }
    } sax(words, path);
    json::sax_parse(in, &sax);
    if (!sax.found) throw InputError(fmt::format("data.leaf.vocab: {}: no top-level \"vocab\" array", path));
  } else {
    std::string line;
    while (std::getline(in, line)) {
      const size_t b = line.find_first_not_of(" \t\r");
      if (b == std::string::npos) continue;
      const size_t e = line.find_first_of(" \t\r", b);
      words.push_back(line.substr(b, e == std::string::npos ? std::string::npos : e - b));
    }
  }
  if (words.empty()) throw InputError(fmt::format("data.leaf.vocab: {}: no words", path));
  return words;
}

// Final word ids for the provisional ones: the vocabulary file's order, or the
// training words by frequency (then by the word), the first vocab_size. Returns
// the unknown id (= the number of words) through `unk`.
std::vector<int> FinalWordIds(const Words& words, const LeafConfig& cfg, int& unk) {
  std::unordered_map<std::string, int> vocab;
  if (!cfg.vocab.empty()) {
    const std::vector<std::string> list = ReadVocab(cfg.vocab);
    for (size_t i = 0; i < list.size(); ++i) vocab.try_emplace(list[i], static_cast<int>(i));  // first wins
    unk = static_cast<int>(list.size());
  } else {
    std::vector<int> order;
    for (size_t i = 0; i < words.text.size(); ++i) {
      if (words.train_count[i] > 0) order.push_back(static_cast<int>(i));
    }
    std::sort(order.begin(), order.end(), [&](int a, int b) {
      const int64_t ca = words.train_count[static_cast<size_t>(a)], cb = words.train_count[static_cast<size_t>(b)];
      return ca != cb ? ca > cb : words.text[static_cast<size_t>(a)] < words.text[static_cast<size_t>(b)];
    });
    if (order.size() > static_cast<size_t>(cfg.vocab_size)) order.resize(static_cast<size_t>(cfg.vocab_size));
    for (size_t i = 0; i < order.size(); ++i) vocab.emplace(words.text[static_cast<size_t>(order[i])], static_cast<int>(i));
    unk = static_cast<int>(order.size());
  }
  std::vector<int> final_id(words.text.size());
  for (size_t i = 0; i < words.text.size(); ++i) {
    const auto it = vocab.find(words.text[i]);
    final_id[i] = it == vocab.end() ? unk : it->second;
  }
  return final_id;
}

// Moves a split into a Dataset whose user ids are those of client_of[local
// user] (-1: no client; such rows are dropped when keep_unassigned is false).
Dataset Finish(Task task, SplitData& s, const std::vector<int>& client_of, bool keep_unassigned) {
  Dataset ds;
  const size_t n = s.y.size();
  const int d = task == Task::kFemnist ? kFemnistPixels : s.dim;
  s.y.MoveAppend(ds.y);
  s.user.MoveAppend(ds.user);
  for (int& u : ds.user) u = client_of[static_cast<size_t>(u)];
  if (task == Task::kFemnist || task == Task::kShakespeare) {
    ds.byte_storage = true;
    s.bytes.MoveAppend(ds.bytes);
    const float scale = task == Task::kFemnist ? 1.0f / 255.0f : 1.0f;
    ds.byte_scale = Eigen::RowVectorXf::Constant(d, scale);
    ds.byte_shift = Eigen::RowVectorXf::Zero(d);
  } else {
    ds.x.resize(static_cast<Eigen::Index>(n), d);
    s.floats.MoveInto(ds.x.data());
  }
  // Drop the rows of users that are no client, in place.
  size_t kept = 0;
  for (size_t r = 0; r < n; ++r) {
    if (ds.user[r] < 0 && !keep_unassigned) continue;
    if (kept != r) {
      ds.y[kept] = ds.y[r];
      ds.user[kept] = ds.user[r];
      if (ds.byte_storage) {
        std::copy_n(ds.bytes.begin() + static_cast<int64_t>(r) * d, d, ds.bytes.begin() + static_cast<int64_t>(kept) * d);
      } else {
        ds.x.row(static_cast<Eigen::Index>(kept)) = ds.x.row(static_cast<Eigen::Index>(r));
      }
    }
    ++kept;
  }
  if (kept != n) {
    ds.y.resize(kept);
    ds.user.resize(kept);
    if (ds.byte_storage) {
      ds.bytes.resize(kept * static_cast<size_t>(d));
    } else {
      ds.x.conservativeResize(static_cast<Eigen::Index>(kept), Eigen::NoChange);
    }
  }
  return ds;
}

}  // namespace

FederatedData LoadLeaf(const LeafConfig& cfg, const std::string& dir, int max_users) {
  const Task task = ParseTask(cfg.task);
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) {
    throw InputError(fmt::format("data.path: \"{}\" is not a directory (data.dataset = \"leaf\" needs a LEAF "
                                 "task's data/ folder holding train/ and test/)",
                                 dir));
  }
  SplitData train, test;
  Words words;
  ReadSplit(task, dir, "train", cfg.seq_len, train, words);
  ReadSplit(task, dir, "test", cfg.seq_len, test, words);
  if (train.y.size() == 0) throw InputError(fmt::format("{}/train: no training samples", dir));
  if (test.dim == 0) test.dim = train.dim;  // no test samples
  if (task == Task::kShakespeare || task == Task::kSynthetic) {
    if (test.dim != 0 && test.dim != train.dim) {
      throw InputError(fmt::format("{}: test samples have {} {} but training samples have {}", dir, test.dim,
                                   task == Task::kShakespeare ? "characters" : "features", train.dim));
    }
  }
  if (task == Task::kSent140) train.dim = test.dim = cfg.seq_len;

  // Clients: the users with training samples sorted by name, the first
  // max_users of them.
  std::vector<int64_t> rows_of(train.names.size(), 0);
  for (size_t r = 0; r < train.user.size(); ++r) ++rows_of[static_cast<size_t>(train.user[r])];
  std::vector<int> order;
  for (size_t u = 0; u < train.names.size(); ++u) {
    if (rows_of[u] > 0) order.push_back(static_cast<int>(u));
  }
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return train.names[static_cast<size_t>(a)] < train.names[static_cast<size_t>(b)];
  });
  const int num_users = static_cast<int>(order.size());
  if (max_users > num_users) {
    throw InputError(fmt::format("data.num_clients: {} clients but {} has {} training users (LEAF: set "
                                 "data.num_clients to {}, or fewer to take the first users by name)",
                                 max_users, dir, num_users, num_users));
  }
  const int clients = max_users > 0 ? max_users : num_users;
  std::vector<int> train_client(train.names.size(), -1);
  for (int c = 0; c < clients; ++c) train_client[static_cast<size_t>(order[static_cast<size_t>(c)])] = c;
  std::vector<int> test_client(test.names.size(), -1);
  for (size_t u = 0; u < test.names.size(); ++u) {
    const auto it = train.index.find(test.names[u]);
    if (it != train.index.end()) test_client[u] = train_client[static_cast<size_t>(it->second)];
  }
  int unk = 0;
  std::vector<int> final_id;
  if (task == Task::kSent140) final_id = FinalWordIds(words, cfg, unk);

  FederatedData fd;
  // Users only in test/ keep their test rows (user -1) unless a subset of the
  // clients was asked for.
  fd.train = Finish(task, train, train_client, false);
  fd.test = Finish(task, test, test_client, clients == num_users);
  for (Dataset* ds : {&fd.train, &fd.test}) {
    switch (task) {
      case Task::kFemnist:
        ds->num_classes = kFemnistClasses;
        ds->shape = {1, 28, 28};
        break;
      case Task::kShakespeare:
        ds->num_classes = kNumLetters;
        ds->vocab_size = kNumLetters;
        ds->shape = {train.dim};
        break;
      case Task::kSent140:
        ds->num_classes = 2;
        ds->vocab_size = unk + 1;
        ds->shape = {cfg.seq_len};
        for (Eigen::Index i = 0; i < ds->x.size(); ++i) {
          float& v = ds->x.data()[i];
          v = v < 0.0f ? static_cast<float>(unk) : static_cast<float>(final_id[static_cast<size_t>(v)]);
        }
        break;
      case Task::kSynthetic: break;
    }
  }
  if (task == Task::kSynthetic) {
    int max_label = 0;
    for (const Dataset* ds : {&fd.train, &fd.test}) {
      for (int y : ds->y) max_label = std::max(max_label, y);
    }
    fd.train.num_classes = fd.test.num_classes = max_label + 1;
  }
  int test_only = 0;
  for (size_t u = 0; u < test.names.size(); ++u) {
    const auto it = train.index.find(test.names[u]);
    test_only += it == train.index.end() || rows_of[static_cast<size_t>(it->second)] == 0;
  }
  fd.num_users = clients;
  fd.description = fmt::format("LEAF {}, {} of {} training users", TaskName(task), clients, num_users);
  if (test_only > 0) {
    fd.description += fmt::format(clients == num_users ? ", {} test-only users' test rows kept without a client"
                                                       : ", {} test-only users left out",
                                  test_only);
  }
  if (task == Task::kSent140) {
    fd.description += fmt::format(", vocabulary {} words + unknown ({})", unk,
                                  cfg.vocab.empty() ? "built from the training tweets" : cfg.vocab);
  }
  return fd;
}

}  // namespace fedsim
