#include "fl/checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "metrics/writer.h"

namespace fedsim {
namespace {

constexpr char kMagic[8] = {'F', 'E', 'D', 'S', 'I', 'M', 'C', 'K'};

uint64_t Fnv1a(const char* data, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Deepest nesting of [ and { in JSON text (outside strings), stopping at
// `limit`: a header is a few levels deep, and a hostile one must not reach the
// recursive JSON copy and dump code.
int JsonDepth(const char* p, size_t n, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escape = false;
  for (size_t i = 0; i < n && deepest <= limit; ++i) {
    const char ch = p[i];
    if (in_string) {
      if (escape) escape = false;
      else if (ch == '\\') escape = true;
      else if (ch == '"') in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '{' || ch == '[') {
      deepest = std::max(deepest, ++depth);
    } else if (ch == '}' || ch == ']') {
      --depth;
    }
  }
  return deepest;
}

template <class T>
void Append(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace

void CheckpointWriter::Record(const std::string& name, uint8_t type, const void* data, int64_t count, size_t elem) {
  Append<uint32_t>(body_, static_cast<uint32_t>(name.size()));
  body_ += name;
  Append<uint8_t>(body_, type);
  Append<uint64_t>(body_, static_cast<uint64_t>(count));
  if (count > 0) body_.append(static_cast<const char*>(data), static_cast<size_t>(count) * elem);
}

void CheckpointWriter::F32(const std::string& name, const float* data, int64_t n) { Record(name, 1, data, n, 4); }
void CheckpointWriter::F64(const std::string& name, const double* data, int64_t n) { Record(name, 2, data, n, 8); }
void CheckpointWriter::I64(const std::string& name, const std::vector<int64_t>& v) {
  Record(name, 3, v.data(), static_cast<int64_t>(v.size()), 8);
}

void CheckpointWriter::Write(const std::string& path) const {
  std::string out(kMagic, sizeof(kMagic));
  Append<uint32_t>(out, kCheckpointVersion);
  const std::string header = header_.dump();
  Append<uint64_t>(out, header.size());
  out += header;
  out += body_;
  Append<uint64_t>(out, Fnv1a(out.data(), out.size()));
  WriteFileAtomically(path, out);
}

CheckpointReader::CheckpointReader(const std::string& path) : path_(path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open checkpoint", path));
  std::stringstream ss;
  ss << in.rdbuf();
  bytes_ = ss.str();
  Parse();
}

CheckpointReader::CheckpointReader(const std::string& path, const std::string& bytes) : path_(path), bytes_(bytes) {
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
    fail(fmt::format("checkpoint format version {}, this fedsim reads version {}", version, kCheckpointVersion));
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
  if (JsonDepth(bytes_.data() + pos, header_len, 64) > 64) fail("checkpoint header is nested too deeply");
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
    const size_t elem = type == 1 ? 4 : 8;
    if (type < 1 || type > 3) fail(fmt::format("record '{}' has unknown type {}", name, type));
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

}  // namespace fedsim
