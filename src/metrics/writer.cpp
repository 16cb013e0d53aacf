#include "metrics/writer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <Eigen/Core>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/comm.h"
#include "core/error.h"
#include "core/numerics.h"

namespace fedsim {

namespace fs = std::filesystem;

void WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw RunError(fmt::format("{}: cannot write: {}", tmp, std::strerror(errno)));
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0 &&
                  ::fsync(fileno(f)) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) throw RunError(fmt::format("{}: write failed: {}", tmp, std::strerror(errno)));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw RunError(fmt::format("{}: cannot rename to {}: {}", tmp, path, std::strerror(errno)));
  }
}

MetricsWriter::MetricsWriter(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw RunError(fmt::format("{}: cannot create output directory: {}", dir_, ec.message()));
  fs::remove(fs::path(dir_) / "metrics.json", ec);
  const std::string path = (fs::path(dir_) / "rounds.jsonl").string();
  rounds_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (rounds_fd_ < 0) throw RunError(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
}

MetricsWriter::~MetricsWriter() {
  if (rounds_fd_ >= 0) ::close(rounds_fd_);
}

void MetricsWriter::WriteConfig(const nlohmann::json& resolved) {
  WriteFileAtomically((fs::path(dir_) / "config.json").string(), resolved.dump(2) + "\n");
}

void MetricsWriter::AppendRound(const nlohmann::json& round) {
  // One write(2) per line, straight to the kernel: a killed process leaves
  // each line either whole or absent, never half-written.
  const std::string line = round.dump() + "\n";
  const ssize_t n = ::write(rounds_fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) {
    throw RunError(fmt::format("{}/rounds.jsonl: write failed: {}", dir_, n < 0 ? std::strerror(errno) : "short write"));
  }
}

void MetricsWriter::WriteFinal(const nlohmann::json& metrics) {
  WriteFileAtomically((fs::path(dir_) / "metrics.json").string(), metrics.dump(2) + "\n");
}

nlohmann::json RunEnvironment(int threads, int ranks) {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = 0;
  return {
      {"version", FEDSIM_VERSION},
      {"build_type", FEDSIM_BUILD_TYPE},
      {"compiler", fmt::format("g++-compatible {}", __VERSION__)},
      {"eigen", fmt::format("{}.{}.{}", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION)},
      {"simd", Eigen::SimdInstructionSetsInUse()},
      {"portable", PortableBuild()},
      {"isa", InstructionSetBaseline()},
      {"threads", threads},
      {"ranks", ranks},
      {"mpi", HaveMpi()},
      {"hardware_threads", omp_get_num_procs()},
      {"hostname", host},
  };
}

// Peak resident set size of this process so far, MiB (Linux reports KiB).
double PeakRssMib() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}


}  // namespace fedsim
