// Stage 1b: the simulated system decides who of the sampled clients trains,
// with how much work, and how long the round takes on the simulated clock.
//
// The Scheduler is the seam between the server's rounds and simulated time.
// SyncScheduler is the synchronous round (every kept client reports before
// the server updates; the round lasts until the last report or the
// deadline). An asynchronous scheduler, which orders arrivals by (simulated
// time, client, dispatch sequence), will implement the same interface.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "fl/algorithm.h"
#include "sim/system.h"

namespace fedsim {

// The round as the system plans it.
struct ScheduledRound {
  std::vector<int> cohort;                     // sampled clients that train, in sampled order
  std::vector<size_t> cohort_at;               // cohort member i is sampled client cohort_at[i]
  std::vector<ClientPlan> plans;               // one per sampled client
  SystemRound sys;                             // counts of each fate; seconds after Finish
  int64_t bytes_down = 0;                      // model downloads of the clients that were online

  const ClientPlan& plan(size_t member) const { return plans[cohort_at[member]]; }
};

// What one sampled client needs from the system's point of view.
struct ClientDemand {
  LocalWork work;          // its full local work
  int64_t down_bytes = 0;  // what it downloads
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Plans round `round` for the sampled clients. up_bytes: the upload size
  // plans assume; batch: samples per step; keep: K for over-selection or -1.
  // start_s: the round's start on the simulated clock.
  virtual ScheduledRound Schedule(int round, const std::vector<int>& sampled, const std::vector<ClientDemand>& demand,
                                  int64_t up_bytes, int batch, int keep, double start_s) const = 0;
  // The round's simulated duration once every cohort member has reported:
  // member i did the work of reports[i] (samples, steps) and uploaded
  // up_bytes[i]; round_trips: extra round trips of the aggregation protocol.
  virtual double Finish(const ScheduledRound& round, const std::vector<ClientReport>& reports,
                        const std::vector<int64_t>& up_bytes, int round_trips) const = 0;
};

class SyncScheduler : public Scheduler {
 public:
  // availability: a time-dependent availability model, or null (system.availability).
  // retry_s: with it, a round in which no client reports or leaves lasts
  // this long (the server waits for clients to come online).
  SyncScheduler(const SystemModel& system, const class Availability* availability, double retry_s)
      : system_(system), availability_(availability), retry_s_(retry_s) {}
  ScheduledRound Schedule(int round, const std::vector<int>& sampled, const std::vector<ClientDemand>& demand,
                          int64_t up_bytes, int batch, int keep, double start_s) const override;
  double Finish(const ScheduledRound& round, const std::vector<ClientReport>& reports,
                const std::vector<int64_t>& up_bytes, int round_trips) const override;

 private:
  const SystemModel& system_;
  const class Availability* availability_;
  double retry_s_;
};

// The round's system counts as a record's flat keys (offline_clients, ...).
nlohmann::json SystemRecord(const SystemRound& sys);
// The scheduler's stages entry: cohort, bytes_down, sim_seconds and the counts.
nlohmann::json SchedulerRecord(const ScheduledRound& round);

}  // namespace fedsim
