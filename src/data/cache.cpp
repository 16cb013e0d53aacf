// The binary cache of a loaded dataset (data.cache, `fedsim data convert`).
//
// File layout (little-endian, as the machine writes it):
//   "FEDSIMDC"  u32 version  u32 0  u64 header length  header (JSON text:
//   fedsim_version, source, description, num_users)
//   train dataset, test dataset, each:
//     i64 rows, i64 dim, u8 byte storage, i32 num_classes, i32 vocab_size,
//     u8 next_token, i32 pad_id, i32 shape length, i32 shape[...],
//     byte storage: f32 scale[dim], f32 shift[dim], u8 features[rows * dim]
//     else:         f32 features[rows * dim]
//     i32 y[rows], u8 has users, i32 user[rows] if so
//   u32 CRC-32 (zlib) of every byte before it.
// "source" is what the data was loaded from: the data keys that change what
// LoadData returns, the data seed, and each source file's path, size and
// modification time. A cache whose source differs from the config's is stale
// and refused; one whose CRC differs is damaged and refused.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/dataset.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kMagic[8] = {'F', 'E', 'D', 'S', 'I', 'M', 'D', 'C'};
constexpr uint32_t kVersion = 2;  // 2: next_token and pad_id

json FileEntry(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  const auto mtime = fs::last_write_time(p, ec);
  return json::array({p.string(), ec ? 0 : static_cast<uint64_t>(size),
                      ec ? 0 : static_cast<int64_t>(mtime.time_since_epoch().count())});
}

// Every source file: data.path (a file, or every regular file in the folder
// and its subfolders), data.csv.test_path, data.leaf.vocab.
json SourceFiles(const DataConfig& cfg) {
  json files = json::array();
  std::string path = cfg.path;
  if (path.empty() && cfg.dataset == "fashion_mnist") path = "/usr/share/datasets/fashion-mnist";
  std::vector<std::string> roots;
  if (!path.empty() && cfg.dataset != "synthetic") roots.push_back(path);
  if (cfg.dataset == "csv" && !cfg.csv.test_path.empty()) roots.push_back(cfg.csv.test_path);
  if (cfg.dataset == "leaf" && !cfg.leaf.vocab.empty()) roots.push_back(cfg.leaf.vocab);
  if (cfg.dataset == "tff_h5") {
    // Files named outside data.path.
    for (const std::string* f : {&cfg.tff_h5.train_file, &cfg.tff_h5.test_file, &cfg.tff_h5.vocab}) {
      if (!f->empty() && (path.empty() || fs::path(*f).is_absolute())) roots.push_back(*f);
    }
  }
  for (const auto& r : roots) {
    std::error_code ec;
    if (fs::is_directory(r, ec)) {
      std::vector<fs::path> found;
      for (const auto& e : fs::recursive_directory_iterator(r, ec)) {
        if (e.is_regular_file(ec)) found.push_back(e.path());
      }
      std::sort(found.begin(), found.end());
      for (const auto& p : found) files.push_back(FileEntry(p));
    } else {
      files.push_back(FileEntry(r));
    }
  }
  return files;
}

class Writer {
 public:
  explicit Writer(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {
    if (f_ == nullptr) throw RunError(fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  }
  ~Writer() {
    if (f_ != nullptr) std::fclose(f_);
  }
  void Put(const void* p, size_t n) {
    if (n == 0) return;
    crc_ = crc32_z(crc_, static_cast<const Bytef*>(p), n);
    if (std::fwrite(p, 1, n, f_) != n) throw RunError(fmt::format("{}: write error", path_));
  }
  template <class T>
  void Put(T v) { Put(&v, sizeof v); }
  void Finish() {
    const auto crc = static_cast<uint32_t>(crc_);
    if (std::fwrite(&crc, 1, sizeof crc, f_) != sizeof crc || std::fclose(f_) != 0) {
      f_ = nullptr;
      throw RunError(fmt::format("{}: write error", path_));
    }
    f_ = nullptr;
  }

 private:
  std::string path_;
  std::FILE* f_;
  uLong crc_ = crc32(0L, Z_NULL, 0);
};

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "rb")) {
    std::error_code ec;
    if (f_ == nullptr || !fs::is_regular_file(path, ec)) {
      if (f_ != nullptr) std::fclose(f_);
      throw InputError(fmt::format("data.cache: {}: no such file (write it with `fedsim data convert CONFIG --out "
                                   "{}`)",
                                   path, path));
    }
    left_ = static_cast<uint64_t>(fs::file_size(path, ec));
  }
  ~Reader() { std::fclose(f_); }
  // Reads n bytes, refusing to read past the CRC at the end.
  void Get(void* p, uint64_t n, const char* what) {
    if (n + sizeof(uint32_t) > left_) {
      throw InputError(fmt::format("data.cache: {}: damaged or truncated: it ends inside the {}", path_, what));
    }
    if (n > 0 && std::fread(p, 1, n, f_) != n) throw InputError(fmt::format("data.cache: {}: read error", path_));
    crc_ = crc32_z(crc_, static_cast<const Bytef*>(p), n);
    left_ -= n;
  }
  template <class T>
  T Get(const char* what) {
    T v{};
    Get(&v, sizeof v, what);
    return v;
  }
  uint64_t left() const { return left_; }
  void Finish() {
    uint32_t stored = 0;
    if (left_ != sizeof stored || std::fread(&stored, 1, sizeof stored, f_) != sizeof stored) {
      throw InputError(fmt::format("data.cache: {}: damaged: {} bytes after the data", path_, left_));
    }
    if (stored != static_cast<uint32_t>(crc_)) {
      throw InputError(fmt::format("data.cache: {}: damaged: its CRC-32 does not match its contents (rewrite it with "
                                   "`fedsim data convert`)",
                                   path_));
    }
  }

 private:
  std::string path_;
  std::FILE* f_;
  uint64_t left_ = 0;
  uLong crc_ = crc32(0L, Z_NULL, 0);
};

void PutDataset(Writer& w, const Dataset& ds) {
  const auto n = static_cast<int64_t>(ds.size());
  const auto d = static_cast<int64_t>(ds.dim());
  w.Put(n);
  w.Put(d);
  w.Put(static_cast<uint8_t>(ds.byte_storage));
  w.Put(static_cast<int32_t>(ds.num_classes));
  w.Put(static_cast<int32_t>(ds.vocab_size));
  w.Put(static_cast<uint8_t>(ds.next_token));
  w.Put(static_cast<int32_t>(ds.pad_id));
  w.Put(static_cast<int32_t>(ds.shape.size()));
  for (int s : ds.shape) w.Put(static_cast<int32_t>(s));
  if (ds.byte_storage) {
    w.Put(ds.byte_scale.data(), static_cast<size_t>(d) * sizeof(float));
    w.Put(ds.byte_shift.data(), static_cast<size_t>(d) * sizeof(float));
    w.Put(ds.bytes.data(), ds.bytes.size());
  } else {
    w.Put(ds.x.data(), static_cast<size_t>(ds.x.size()) * sizeof(float));
  }
  w.Put(ds.y.data(), ds.y.size() * sizeof(int));
  w.Put(static_cast<uint8_t>(!ds.user.empty()));
  if (!ds.user.empty()) w.Put(ds.user.data(), ds.user.size() * sizeof(int));
}

Dataset GetDataset(Reader& r, const std::string& path) {
  Dataset ds;
  const auto n = r.Get<int64_t>("dataset header");
  const auto d = r.Get<int64_t>("dataset header");
  ds.byte_storage = r.Get<uint8_t>("dataset header") != 0;
  ds.num_classes = r.Get<int32_t>("dataset header");
  ds.vocab_size = r.Get<int32_t>("dataset header");
  ds.next_token = r.Get<uint8_t>("dataset header") != 0;
  ds.pad_id = r.Get<int32_t>("dataset header");
  const auto shape_len = r.Get<int32_t>("dataset header");
  const uint64_t elem = ds.byte_storage ? 1 : sizeof(float);
  // Checked against what is left of the file before anything is allocated.
  if (n < 0 || d < 0 || n > INT32_MAX || d > INT32_MAX || shape_len < 0 || shape_len > 8 ||
      static_cast<unsigned __int128>(n) * static_cast<uint64_t>(d) * elem > r.left()) {
    throw InputError(fmt::format("data.cache: {}: damaged: a dataset of {} x {} does not fit in the file", path, n, d));
  }
  for (int i = 0; i < shape_len; ++i) ds.shape.push_back(r.Get<int32_t>("shape"));
  const auto cells = static_cast<size_t>(n) * static_cast<size_t>(d);
  if (ds.byte_storage) {
    ds.byte_scale.resize(d);
    ds.byte_shift.resize(d);
    r.Get(ds.byte_scale.data(), static_cast<uint64_t>(d) * sizeof(float), "byte decode");
    r.Get(ds.byte_shift.data(), static_cast<uint64_t>(d) * sizeof(float), "byte decode");
    ds.bytes.resize(cells);
    r.Get(ds.bytes.data(), cells, "features");
  } else {
    ds.x.resize(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(d));
    r.Get(ds.x.data(), cells * sizeof(float), "features");
  }
  ds.y.resize(static_cast<size_t>(n));
  r.Get(ds.y.data(), static_cast<uint64_t>(n) * sizeof(int), "labels");
  if (r.Get<uint8_t>("user flag") != 0) {
    ds.user.resize(static_cast<size_t>(n));
    r.Get(ds.user.data(), static_cast<uint64_t>(n) * sizeof(int), "user ids");
  }
  return ds;
}

// The first difference between two source descriptions, for the message.
std::string FirstDifference(const json& was, const json& now) {
  for (const auto& [k, v] : now.items()) {
    if (k == "files") continue;
    if (!was.contains(k) || was[k] != v) {
      return fmt::format("it was written for {} = {}, this config has {}", k == "data_seed" ? "the data seed" : "data." + k,
                         was.contains(k) ? was[k].dump() : "nothing", v.dump());
    }
  }
  const json& wf = was.value("files", json::array());
  const json& nf = now.value("files", json::array());
  for (size_t i = 0; i < std::max(wf.size(), nf.size()); ++i) {
    if (i >= wf.size()) return fmt::format("{} is new since it was written", nf[i][0].get<std::string>());
    if (i >= nf.size() || wf[i][0] != nf[i][0]) {
      return fmt::format("{} is gone since it was written", wf[i][0].get<std::string>());
    }
    if (wf[i] != nf[i]) return fmt::format("{} changed (size or modification time) since it was written", nf[i][0].get<std::string>());
  }
  return "its source description differs";
}

}  // namespace

nlohmann::json DataCacheSource(const DataConfig& cfg, uint64_t seed) {
  Config c;
  c.data = cfg;
  json d = ToJson(c)["data"];
  const bool own_users =
      cfg.dataset == "leaf" || cfg.dataset == "tff_h5" || (cfg.dataset == "csv" && cfg.csv.client_column >= 0);
  // Keys that act after loading, or not at all on what LoadData returns.
  for (const char* k : {"partition", "client_test_fraction", "augment", "cache", "seed"}) d.erase(k);
  if (own_users) {
    d["partition_kind"] = cfg.partition.kind;
  } else {
    d.erase("num_clients");
  }
  // The seed changes only generated data and a random CSV hold-out.
  if (cfg.dataset == "synthetic" || (cfg.dataset == "csv" && cfg.csv.test_path.empty())) d["data_seed"] = seed;
  d["files"] = SourceFiles(cfg);
  return d;
}

void WriteDataCache(const std::string& file, const DataConfig& cfg, uint64_t seed, const FederatedData& fd) {
  const std::string header = json{{"fedsim_version", FEDSIM_VERSION},
                                  {"source", DataCacheSource(cfg, seed)},
                                  {"description", fd.description},
                                  {"num_users", fd.num_users}}
                                 .dump();
  const std::string tmp = file + ".tmp";
  {
    Writer w(tmp);
    w.Put(kMagic, sizeof kMagic);
    w.Put(kVersion);
    w.Put(uint32_t{0});
    w.Put(static_cast<uint64_t>(header.size()));
    w.Put(header.data(), header.size());
    PutDataset(w, fd.train);
    PutDataset(w, fd.test);
    w.Finish();
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) throw RunError(fmt::format("{}: cannot rename {} to it: {}", file, tmp, ec.message()));
}

FederatedData ReadDataCache(const std::string& file, const DataConfig& cfg, uint64_t seed) {
  Reader r(file);
  char magic[sizeof kMagic];
  r.Get(magic, sizeof magic, "file header");
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) {
    throw InputError(fmt::format("data.cache: {}: not a fedsim data cache (no FEDSIMDC header)", file));
  }
  const auto version = r.Get<uint32_t>("file header");
  if (version != kVersion) {
    throw InputError(fmt::format("data.cache: {}: cache format version {}, this fedsim reads version {} (rewrite it "
                                 "with `fedsim data convert`)",
                                 file, version, kVersion));
  }
  r.Get<uint32_t>("file header");
  const auto header_len = r.Get<uint64_t>("file header");
  if (header_len > r.left()) throw InputError(fmt::format("data.cache: {}: damaged: header longer than the file", file));
  std::string header(static_cast<size_t>(header_len), '\0');
  r.Get(header.data(), header_len, "header");
  const json h = json::parse(header, nullptr, false);
  if (h.is_discarded() || !h.is_object() || !h.contains("source")) {
    throw InputError(fmt::format("data.cache: {}: damaged: unreadable header", file));
  }
  const json now = DataCacheSource(cfg, seed);
  if (h["source"] != now) {
    throw InputError(fmt::format("data.cache: {}: stale: {} (rewrite it with `fedsim data convert`)", file,
                                 FirstDifference(h["source"], now)));
  }
  FederatedData fd;
  fd.train = GetDataset(r, file);
  fd.test = GetDataset(r, file);
  r.Finish();
  fd.num_users = h.value("num_users", 0);
  fd.description = h.value("description", std::string()) + " (from the cache " + file + ")";
  return fd;
}

}  // namespace fedsim
