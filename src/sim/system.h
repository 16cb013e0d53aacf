// The simulated system (docs/system.md): what each client's device can do,
// which sampled clients are online, finish in time or drop out, and how long
// a round takes on a simulated clock.
//
// Everything here is a pure function of (config, seed, round, client): a
// client's device is drawn from the stream (seed, kSystem, kStatic, client)
// and its per-round luck from (seed, kSystem, round, client), so a client
// costs nothing until it is sampled and the results do not depend on the
// thread or process count. Nothing sleeps: times are computed, not waited.
#pragma once

#include <cstdint>
#include <vector>

#include "core/config.h"

namespace fedsim {

// One client's device.
struct Device {
  double flops = 0.0;          // compute speed, FLOP/s
  double up_bps = 0.0;         // upload bandwidth, bit/s
  double down_bps = 0.0;       // download bandwidth, bit/s
  double latency_s = 0.0;      // added to every message
  int profile = -1;            // index into system.profiles, or -1
};

// What happens to one sampled client in one round.
enum class Fate {
  kTrain,    // trains and reports (possibly partial work, see max_steps)
  kOffline,  // was not online when sampled: no download, no training
  kDropped,  // downloaded the model, then dropped out before reporting
  kLate,     // could not report before the deadline (and partial work is off or nothing fits)
  kSurplus,  // over-selection: reported after the first K and is not waited for
};

// The local work a client would do this round if nothing stopped it.
struct LocalWork {
  int64_t samples = 0;  // samples processed (forward + backward)
  int64_t steps = 0;    // optimizer steps (batches)
};

struct ClientPlan {
  Device device;             // the client's device (DeviceOf)
  Fate fate = Fate::kTrain;
  int64_t max_steps = 0;     // > 0: partial work, stop after this many steps; 0: full work
  double flops = 0.0;        // this round's compute speed, FLOP/s
  double download_s = 0.0;   // time to receive the model
  double expected_s = 0.0;   // planned report time (full or partial work, planned upload size)
  double leave_s = 0.0;      // time-dependent availability: when a dropped client went offline (0: n/a)
};

// Per-round counts for the metrics.
struct SystemRound {
  int sampled = 0, offline = 0, dropped = 0, late = 0, surplus = 0, partial = 0;
  double seconds = 0.0;  // simulated duration of the round
};

class SystemModel {
 public:
  // flops_per_sample / flops_per_batch: the model's training cost
  // (Model::TrainFlopsPerSample, TrainFlopsPerBatch).
  SystemModel(const SystemConfig& cfg, uint64_t seed, double flops_per_sample, double flops_per_batch);

  Device DeviceOf(int client) const;

  // Seconds to move `bytes` over a link of `bps` bit/s, plus one latency.
  static double TransferSeconds(int64_t bytes, double bps, double latency_s);

  // Seconds of local training for `samples` and `steps` at `flops_per_s`.
  double ComputeSeconds(double flops_per_s, int64_t samples, int64_t steps) const;

  // Decides every sampled client's fate for `round`. work[i], down_bytes[i]:
  // sampled[i]'s full local work and download size; up_bytes: the upload
  // size the plan assumes; batch: samples per step (for partial work);
  // keep: K for over-selection (the first K planned reports are kept), or
  // -1 to keep every client that reports in time.
  // availability, start_s: with a time-dependent availability model
  // (system.availability_model = diurnal | trace), whether a client is online
  // at the round's start time and stays online until its planned report (a
  // client that leaves earlier is dropped); null: system.availability.
  std::vector<ClientPlan> Plan(int round, const std::vector<int>& sampled, const std::vector<LocalWork>& work,
                               const std::vector<int64_t>& down_bytes, int64_t up_bytes, int batch,
                               int keep, const class Availability* availability = nullptr,
                               double start_s = 0.0) const;

  // When a client that trained reports: download + compute (the work it
  // really did) + upload (its real message size) + `round_trips` extra
  // request/response exchanges of two latencies each (secure aggregation).
  double ReportSeconds(const ClientPlan& plan, int64_t samples, int64_t steps, int64_t up_bytes,
                       int round_trips = 0) const;

  // The round's duration: the deadline when the server had to wait for
  // clients that never came (dropped or late), else the last kept report.
  double RoundSeconds(const std::vector<double>& report_s, bool waited_for_missing) const;

  const SystemConfig& config() const { return cfg_; }

 private:
  SystemConfig cfg_;
  uint64_t seed_;
  double flops_per_sample_, flops_per_batch_;
  std::vector<double> cumulative_share_;
};

}  // namespace fedsim
