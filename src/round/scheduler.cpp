#include "round/scheduler.h"

#include <algorithm>

namespace fedsim {

ScheduledRound SyncScheduler::Schedule(int round, const std::vector<int>& sampled,
                                       const std::vector<ClientDemand>& demand, int64_t up_bytes, int batch,
                                       int keep, double start_s) const {
  ScheduledRound s;
  std::vector<LocalWork> work(sampled.size());
  std::vector<int64_t> down(sampled.size());
  for (size_t i = 0; i < sampled.size(); ++i) {
    work[i] = demand[i].work;
    down[i] = demand[i].down_bytes;
  }
  s.plans = system_.Plan(round, sampled, work, down, up_bytes, batch, keep, availability_, start_s);
  s.sys.sampled = static_cast<int>(sampled.size());
  for (size_t i = 0; i < sampled.size(); ++i) {
    const ClientPlan& pl = s.plans[i];
    if (pl.fate != Fate::kOffline) s.bytes_down += down[i];
    s.sys.offline += pl.fate == Fate::kOffline;
    s.sys.dropped += pl.fate == Fate::kDropped;
    s.sys.late += pl.fate == Fate::kLate;
    s.sys.surplus += pl.fate == Fate::kSurplus;
    if (pl.fate == Fate::kTrain) {
      s.cohort.push_back(sampled[i]);
      s.cohort_at.push_back(i);
      s.sys.partial += pl.max_steps > 0;
    }
  }
  return s;
}

double SyncScheduler::Finish(const ScheduledRound& round, const std::vector<ClientReport>& reports,
                             const std::vector<int64_t>& up_bytes, int round_trips) const {
  // Each client reports after its download, the work it really did and its
  // real upload; the round waits for the last report (or the deadline when
  // someone is missing).
  std::vector<double> report_s(round.cohort.size());
  for (size_t i = 0; i < round.cohort.size(); ++i) {
    report_s[i] = system_.ReportSeconds(round.plan(i), reports[i].samples + reports[i].extra_samples,
                                        reports[i].steps + reports[i].extra_steps, up_bytes[i], round_trips);
  }
  double seconds = system_.RoundSeconds(report_s, round.sys.dropped + round.sys.late > 0);
  if (availability_) {
    // The server notices a client leaving when it goes offline; a round with
    // nobody online waits retry_s for clients to come back.
    for (const ClientPlan& p : round.plans) seconds = std::max(seconds, p.leave_s);
    if (seconds == 0.0 && round.cohort.empty()) seconds = retry_s_;
  }
  return seconds;
}

namespace {

nlohmann::json Counts(const SystemRound& sys) {
  return {{"offline_clients", sys.offline}, {"dropped_clients", sys.dropped}, {"late_clients", sys.late},
          {"partial_clients", sys.partial}, {"surplus_clients", sys.surplus}};
}

}  // namespace

nlohmann::json SystemRecord(const SystemRound& sys) {
  nlohmann::json j = Counts(sys);
  j["sim_round_s"] = sys.seconds;
  return j;
}

nlohmann::json SchedulerRecord(const ScheduledRound& round) {
  nlohmann::json j = Counts(round.sys);
  j["cohort"] = static_cast<int64_t>(round.cohort.size());
  j["bytes_down"] = round.bytes_down;
  j["sim_seconds"] = round.sys.seconds;
  return j;
}

}  // namespace fedsim
