#include "fl/checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include <unistd.h>

#include "core/error.h"
#include "core/half.h"
#include "core/json_text.h"
#include "metrics/writer.h"

namespace fedsim {
namespace {

constexpr char kMagic[8] = {'F', 'E', 'D', 'S', 'I', 'M', 'C', 'K'};

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;

uint64_t Fnv1aUpdate(uint64_t h, const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t Fnv1a(const char* data, size_t n) { return Fnv1aUpdate(kFnvOffset, data, n); }

size_t ElementSize(uint8_t type) { return type == 1 ? 4 : type == 4 ? 2 : 8; }

}  // namespace

CheckpointWriter::CheckpointWriter(const nlohmann::json& header) : hash_(kFnvOffset) { Start(header); }

CheckpointWriter::CheckpointWriter(const nlohmann::json& header, const std::string& path)
    : path_(path), streaming_(true), hash_(kFnvOffset) {
  if (!path.empty()) {
    const std::string tmp = path + ".tmp";
    file_ = std::fopen(tmp.c_str(), "wb");
    if (!file_) throw RunError(fmt::format("{}: cannot write: {}", tmp, std::strerror(errno)));
  }
  Start(header);
}

void CheckpointWriter::Start(const nlohmann::json& header) {
  const std::string h = header.dump();
  Emit(kMagic, sizeof(kMagic));
  const uint32_t version = kCheckpointVersion;
  Emit(&version, 4);
  const uint64_t len = h.size();
  Emit(&len, 8);
  Emit(h.data(), h.size());
}

CheckpointWriter::~CheckpointWriter() {
  if (file_) {  // not committed: leave no half-written temporary file
    std::fclose(file_);
    std::remove((path_ + ".tmp").c_str());
  }
}

void CheckpointWriter::Emit(const void* data, size_t n) {
  if (n == 0) return;
  if (streaming_ && !file_) return;  // discarding
  hash_ = Fnv1aUpdate(hash_, static_cast<const char*>(data), n);
  if (file_) {
    if (std::fwrite(data, 1, n, file_) != n) {
      throw RunError(fmt::format("{}.tmp: write failed: {}", path_, std::strerror(errno)));
    }
  } else {
    buffer_.append(static_cast<const char*>(data), n);
  }
}

void CheckpointWriter::Begin(const std::string& name, uint8_t type, int64_t count) {
  if (streaming_ && !file_) return;  // discarding: nothing to check either
  if (pending_ != 0) throw RunError("checkpoint: record started before the previous one was complete");
  const uint32_t name_len = static_cast<uint32_t>(name.size());
  Emit(&name_len, 4);
  Emit(name.data(), name.size());
  Emit(&type, 1);
  const uint64_t n = static_cast<uint64_t>(count);
  Emit(&n, 8);
  pending_ = count;
  pending_elem_ = ElementSize(type);
}

void CheckpointWriter::Append(const void* values, int64_t n) {
  if (streaming_ && !file_) return;
  if (n > pending_) throw RunError("checkpoint: more values than the record announced");
  Emit(values, static_cast<size_t>(n) * pending_elem_);
  pending_ -= n;
}

void CheckpointWriter::Record(const std::string& name, uint8_t type, const void* data, int64_t count) {
  Begin(name, type, count);
  Append(data, count);
}

void CheckpointWriter::F32(const std::string& name, const float* data, int64_t n) { Record(name, 1, data, n); }
void CheckpointWriter::F64(const std::string& name, const double* data, int64_t n) { Record(name, 2, data, n); }
void CheckpointWriter::I64(const std::string& name, const std::vector<int64_t>& v) {
  Record(name, 3, v.data(), static_cast<int64_t>(v.size()));
}

void CheckpointWriter::Write(const std::string& path) {
  if (streaming_) throw RunError("checkpoint: Write is for in-memory checkpoints; use Commit");
  if (pending_ != 0) throw RunError("checkpoint: a record is incomplete");
  std::string out = buffer_;
  out.append(reinterpret_cast<const char*>(&hash_), 8);
  WriteFileAtomically(path, out);
}

void CheckpointWriter::Commit() {
  if (!streaming_) throw RunError("checkpoint: Commit is for streamed checkpoints; use Write");
  if (pending_ != 0) throw RunError("checkpoint: a record is incomplete");
  if (!file_) return;
  const uint64_t h = hash_;
  const std::string tmp = path_ + ".tmp";
  const bool ok = std::fwrite(&h, 1, 8, file_) == 8 && std::fflush(file_) == 0 && ::fsync(fileno(file_)) == 0;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!ok || !closed) throw RunError(fmt::format("{}: write failed: {}", tmp, std::strerror(errno)));
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    throw RunError(fmt::format("{}: cannot rename to {}: {}", tmp, path_, std::strerror(errno)));
  }
}

CheckpointReader::CheckpointReader(const std::string& path) : path_(path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open checkpoint", path));
  std::stringstream ss;
  ss << in.rdbuf();
  bytes_ = ss.str();
  Parse();
}

CheckpointReader::CheckpointReader(const std::string& path, std::string bytes) : path_(path), bytes_(std::move(bytes)) {
  Parse();
}

void CheckpointReader::Parse() {
  auto fail = [&](const std::string& what) { throw InputError(fmt::format("{}: {}", path_, what)); };
  const size_t min_size = sizeof(kMagic) + 4 + 8 + 8;
  if (bytes_.size() < min_size) fail(fmt::format("not a fedsim checkpoint: only {} bytes", bytes_.size()));
  if (std::memcmp(bytes_.data(), kMagic, sizeof(kMagic)) != 0) fail("not a fedsim checkpoint (wrong magic)");
  uint32_t version;
  std::memcpy(&version, bytes_.data() + 8, 4);
  if (version != kCheckpointVersion) {
    fail(fmt::format("checkpoint format version {}, this fedsim reads version {}{}", version, kCheckpointVersion,
                     version < kCheckpointVersion ? " (written by an older fedsim: start the run again instead of "
                                                    "resuming it)"
                                                  : ""));
  }
  const size_t end = bytes_.size() - 8;
  uint64_t stored_hash;
  std::memcpy(&stored_hash, bytes_.data() + end, 8);
  if (Fnv1a(bytes_.data(), end) != stored_hash) fail("checkpoint is truncated or corrupt (checksum mismatch)");
  size_t pos = 12;
  auto need = [&](size_t n) {
    if (n > end - pos) fail("checkpoint is truncated or corrupt (record runs past the end)");
  };
  need(8);
  uint64_t header_len;
  std::memcpy(&header_len, bytes_.data() + pos, 8);
  pos += 8;
  need(header_len);
  if (LineNestedDeeperThan(std::string_view(bytes_.data() + pos, header_len), 64) != 0) {
    fail("checkpoint header is nested too deeply");
  }
  header_ = nlohmann::json::parse(bytes_.begin() + static_cast<long>(pos),
                                  bytes_.begin() + static_cast<long>(pos + header_len), nullptr, false);
  if (header_.is_discarded() || !header_.is_object()) fail("checkpoint header is not a JSON object");
  pos += header_len;
  while (pos < end) {
    need(4);
    uint32_t name_len;
    std::memcpy(&name_len, bytes_.data() + pos, 4);
    pos += 4;
    need(name_len);
    std::string name = bytes_.substr(pos, name_len);
    pos += name_len;
    need(9);
    const uint8_t type = static_cast<uint8_t>(bytes_[pos]);
    uint64_t count;
    std::memcpy(&count, bytes_.data() + pos + 1, 8);
    pos += 9;
    if (type < 1 || type > 4) fail(fmt::format("record '{}' has unknown type {}", name, type));
    const size_t elem = ElementSize(type);
    if (count > (end - pos) / elem) fail("checkpoint is truncated or corrupt (record runs past the end)");
    records_[name] = {type, static_cast<int64_t>(count), pos};
    pos += count * elem;
  }
}

const CheckpointReader::Record& CheckpointReader::Find(const std::string& name, uint8_t type, int64_t expected) const {
  auto it = records_.find(name);
  if (it == records_.end()) throw InputError(fmt::format("{}: checkpoint has no '{}'", path_, name));
  if (it->second.type != type) throw InputError(fmt::format("{}: checkpoint record '{}' has the wrong type", path_, name));
  if (expected >= 0 && it->second.count != expected) {
    throw InputError(fmt::format("{}: checkpoint record '{}' holds {} values, expected {} (a different config?)", path_,
                                 name, it->second.count, expected));
  }
  return it->second;
}

Eigen::VectorXf CheckpointReader::F32(const std::string& name, int64_t expected) const {
  const Record& r = Find(name, 1, expected);
  Eigen::VectorXf v(r.count);
  if (r.count > 0) std::memcpy(v.data(), bytes_.data() + r.offset, static_cast<size_t>(r.count) * 4);
  return v;
}

std::vector<double> CheckpointReader::F64(const std::string& name, int64_t expected) const {
  const Record& r = Find(name, 2, expected);
  std::vector<double> v(static_cast<size_t>(r.count));
  if (r.count > 0) std::memcpy(v.data(), bytes_.data() + r.offset, static_cast<size_t>(r.count) * 8);
  return v;
}

std::vector<int64_t> CheckpointReader::I64(const std::string& name, int64_t expected) const {
  const Record& r = Find(name, 3, expected);
  std::vector<int64_t> v(static_cast<size_t>(r.count));
  if (r.count > 0) std::memcpy(v.data(), bytes_.data() + r.offset, static_cast<size_t>(r.count) * 8);
  return v;
}

uint8_t CheckpointReader::FloatType(const std::string& name) const {
  auto it = records_.find(name);
  if (it == records_.end()) throw InputError(fmt::format("{}: checkpoint has no '{}'", path_, name));
  if (it->second.type != 1 && it->second.type != 4) {
    throw InputError(fmt::format("{}: checkpoint record '{}' has the wrong type", path_, name));
  }
  return it->second.type;
}

int64_t CheckpointReader::Count(const std::string& name) const { return Find(name, FloatType(name), -1).count; }

void CheckpointReader::ReadFloats(const std::string& name, int64_t offset, int64_t n, float* out) const {
  const Record& r = Find(name, FloatType(name), -1);
  if (offset < 0 || n < 0 || offset + n > r.count) {
    throw InputError(fmt::format("{}: checkpoint record '{}' is shorter than its index says", path_, name));
  }
  const char* p = bytes_.data() + r.offset;
  if (r.type == 1) {
    std::memcpy(out, p + static_cast<size_t>(offset) * 4, static_cast<size_t>(n) * 4);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + static_cast<size_t>(offset + i) * 2, 2);
      out[i] = HalfToFloat(h);
    }
  }
}

void CheckpointReader::ReadHalves(const std::string& name, int64_t offset, int64_t n, uint16_t* out) const {
  const Record& r = Find(name, FloatType(name), -1);
  if (offset < 0 || n < 0 || offset + n > r.count) {
    throw InputError(fmt::format("{}: checkpoint record '{}' is shorter than its index says", path_, name));
  }
  const char* p = bytes_.data() + r.offset;
  if (r.type == 4) {
    std::memcpy(out, p + static_cast<size_t>(offset) * 2, static_cast<size_t>(n) * 2);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      float f;
      std::memcpy(&f, p + static_cast<size_t>(offset + i) * 4, 4);
      out[i] = FloatToHalf(f);
    }
  }
}

void CheckResumeConfig(const nlohmann::json& header, const nlohmann::json& config, const std::string& path) {
  if (header.value("config", nlohmann::json()) != config) {
    throw InputError(path + ": the checkpoint was written by a different config");
  }
}

nlohmann::json SavedRounds(const nlohmann::json& header, int next_round, int rounds, const std::string& path) {
  const nlohmann::json& saved = header.value("rounds", nlohmann::json());
  if (next_round < 0 || next_round > rounds || !saved.is_array() || static_cast<int>(saved.size()) != next_round) {
    throw InputError(fmt::format("{}: checkpoint is inconsistent (next round {}, {} saved round records)", path,
                                 next_round, saved.is_array() ? static_cast<int>(saved.size()) : -1));
  }
  for (size_t i = 0; i < saved.size(); ++i) {
    if (!saved[i].is_object() || saved[i].value("round", nlohmann::json()) != nlohmann::json(static_cast<int>(i) + 1)) {
      throw InputError(fmt::format("{}: checkpoint round record {} is damaged", path, i + 1));
    }
  }
  return saved;
}

}  // namespace fedsim
