// Checkpoint files: everything a run needs to continue exactly where it
// stopped. Layout (little-endian):
//   8 bytes  magic "FEDSIMCK"
//   u32      format version (kCheckpointVersion)
//   u64      length of the JSON header, then the header (run metadata: the
//            resolved config, the round to continue from, the metrics so far,
//            cumulative counters)
//   records  until end of file: u32 name length, name, u8 type (1 = f32,
//            2 = f64, 3 = i64), u64 count, count values
//   u64      FNV-1a hash of everything before it
// Written to OUT/checkpoint.bin.tmp, flushed, fsynced and renamed, so a crash
// leaves either the old checkpoint or the new one.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fedsim {

constexpr uint32_t kCheckpointVersion = 1;

class CheckpointWriter {
 public:
  explicit CheckpointWriter(nlohmann::json header) : header_(std::move(header)) {}
  void F32(const std::string& name, const float* data, int64_t n);
  void F32(const std::string& name, const Eigen::VectorXf& v) { F32(name, v.data(), v.size()); }
  void F64(const std::string& name, const double* data, int64_t n);
  void I64(const std::string& name, const std::vector<int64_t>& v);
  // Writes the file atomically (temporary file + rename). Throws RunError.
  void Write(const std::string& path) const;

 private:
  void Record(const std::string& name, uint8_t type, const void* data, int64_t count, size_t elem);
  nlohmann::json header_;
  std::string body_;
};

class CheckpointReader {
 public:
  // Reads and validates a checkpoint; throws InputError naming the path for a
  // missing file, wrong magic, unsupported version, truncation or a bad hash.
  explicit CheckpointReader(const std::string& path);
  // Parses a checkpoint held in memory (`path` names it in errors).
  CheckpointReader(const std::string& path, const std::string& bytes);

  const nlohmann::json& header() const { return header_; }
  // The whole file as read (to hand it to other processes).
  const std::string& bytes() const { return bytes_; }
  bool Has(const std::string& name) const { return records_.count(name) > 0; }
  // The named array; throws InputError if it is absent, of another type, or
  // (when expected >= 0) of another length.
  Eigen::VectorXf F32(const std::string& name, int64_t expected = -1) const;
  std::vector<double> F64(const std::string& name, int64_t expected = -1) const;
  std::vector<int64_t> I64(const std::string& name, int64_t expected = -1) const;

 private:
  struct Record {
    uint8_t type;
    int64_t count;
    size_t offset;
  };
  void Parse();
  const Record& Find(const std::string& name, uint8_t type, int64_t expected) const;
  std::string path_;
  std::string bytes_;
  nlohmann::json header_;
  std::map<std::string, Record> records_;
};

}  // namespace fedsim
