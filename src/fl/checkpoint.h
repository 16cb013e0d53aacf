// Checkpoint files: everything a run needs to continue exactly where it
// stopped. Layout (little-endian):
//   8 bytes  magic "FEDSIMCK"
//   u32      format version (kCheckpointVersion)
//   u64      length of the JSON header, then the header (run metadata: the
//            resolved config, the round to continue from, the metrics so far,
//            cumulative counters)
//   records  until end of file: u32 name length, name, u8 type (1 = f32,
//            2 = f64, 3 = i64, 4 = f16: IEEE halves, core/half.h), u64 count,
//            count values
//   u64      FNV-1a hash of everything before it
// Written to OUT/checkpoint.bin.tmp, flushed, fsynced and renamed, so a crash
// leaves either the old checkpoint or the new one. The round loop streams the
// file as records are added (memory does not grow with the client state);
// tests may build one in memory.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fedsim {

// Bumped whenever the layout or the header's fields change meaning, so that
// an older checkpoint is refused by its version instead of failing on
// whichever field it lacks. 1: before the simulated system (no sim clock or
// fault counts in the totals). 2: since.
constexpr uint32_t kCheckpointVersion = 2;

class CheckpointWriter {
 public:
  // Builds the checkpoint in memory; Write(path) writes it.
  explicit CheckpointWriter(const nlohmann::json& header);
  // Streams the checkpoint to `path`.tmp as records are added; Commit()
  // renames it to `path`. An empty path writes nothing (the processes other
  // than rank 0 of a distributed run). Throws RunError on I/O errors.
  CheckpointWriter(const nlohmann::json& header, const std::string& path);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  void F32(const std::string& name, const float* data, int64_t n);
  void F32(const std::string& name, const Eigen::VectorXf& v) { F32(name, v.data(), v.size()); }
  void F64(const std::string& name, const double* data, int64_t n);
  void I64(const std::string& name, const std::vector<int64_t>& v);
  // A record written in pieces: Begin names it and gives its type (1 = f32,
  // 4 = f16) and length; Append adds values until all `count` are there.
  void Begin(const std::string& name, uint8_t type, int64_t count);
  void Append(const void* values, int64_t n);
  // In-memory mode: writes the file atomically (temporary file + rename).
  void Write(const std::string& path);
  // Streaming mode: the checksum, fsync and rename.
  void Commit();

 private:
  void Start(const nlohmann::json& header);
  void Emit(const void* data, size_t n);
  void Record(const std::string& name, uint8_t type, const void* data, int64_t count);
  std::string buffer_;     // in-memory mode
  std::FILE* file_ = nullptr;
  std::string path_;       // streaming mode: the final path
  bool streaming_ = false;
  uint64_t hash_;
  size_t pending_elem_ = 0;   // element size of the record being appended
  int64_t pending_ = 0;       // values it still needs
};

class CheckpointReader {
 public:
  // Reads and validates a checkpoint; throws InputError naming the path for a
  // missing file, wrong magic, unsupported version, truncation or a bad hash.
  explicit CheckpointReader(const std::string& path);
  // Parses a checkpoint held in memory (`path` names it in errors).
  CheckpointReader(const std::string& path, std::string bytes);

  const nlohmann::json& header() const { return header_; }
  // The whole file as read (to hand it to other processes).
  const std::string& bytes() const { return bytes_; }
  bool Has(const std::string& name) const { return records_.count(name) > 0; }
  // The named array; throws InputError if it is absent, of another type, or
  // (when expected >= 0) of another length.
  Eigen::VectorXf F32(const std::string& name, int64_t expected = -1) const;
  std::vector<double> F64(const std::string& name, int64_t expected = -1) const;
  std::vector<int64_t> I64(const std::string& name, int64_t expected = -1) const;
  // Client-state data records, read in slices: the type (1 = f32, 4 = f16;
  // throws if absent or another type), the length, and values
  // [offset, offset + n) converted to float32.
  uint8_t FloatType(const std::string& name) const;
  int64_t Count(const std::string& name) const;
  void ReadFloats(const std::string& name, int64_t offset, int64_t n, float* out) const;
  // The same slice as halves (f16 records: the stored bits; f32: rounded).
  void ReadHalves(const std::string& name, int64_t offset, int64_t n, uint16_t* out) const;

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

// Resuming: an InputError naming `path` unless the checkpoint header's
// config equals `config` (the resolved config about to run).
void CheckResumeConfig(const nlohmann::json& header, const nlohmann::json& config, const std::string& path);

// Resuming: the header's saved round records, checked to be `next_round`
// objects numbered 1..next_round with 0 <= next_round <= rounds; an
// InputError naming `path` otherwise.
nlohmann::json SavedRounds(const nlohmann::json& header, int next_round, int rounds, const std::string& path);

}  // namespace fedsim
