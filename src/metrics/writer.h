// Result files of one run, in one output directory:
//   config.json   the resolved config, written when the run starts;
//   rounds.jsonl  one JSON object per round, appended and flushed as each
//                 round ends (a reader never sees half a line unless the
//                 process is killed mid-write);
//   metrics.json  everything (config, environment, model, partition, rounds,
//                 summary), written once at the end to a temporary file and
//                 renamed, so it exists only for a run that finished.
// Keys are documented in docs/metrics.md.
#pragma once

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

namespace fedsim {

class MetricsWriter {
 public:
  // Creates `dir` if needed and truncates rounds.jsonl; removes a stale
  // metrics.json so that a failed rerun never leaves an older success behind.
  // Throws RunError naming the path on I/O failure.
  explicit MetricsWriter(std::string dir);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void WriteConfig(const nlohmann::json& resolved);
  void AppendRound(const nlohmann::json& round);
  void WriteFinal(const nlohmann::json& metrics);

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int rounds_fd_ = -1;
};

// The "environment" object of metrics.json: version, build, compiler, SIMD,
// threads, host.
// `ranks`: processes of the run (MPI), 1 otherwise.
nlohmann::json RunEnvironment(int threads, int ranks = 1);

// x as JSON, null when it is not finite (NaN or infinite metrics are written
// as null).
inline nlohmann::json NullableNumber(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

// Peak resident set size of this process so far, MiB.
double PeakRssMib();

// Writes `text` to `path` through `path.tmp`, flushed, then renamed.
void WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace fedsim
