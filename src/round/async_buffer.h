// The server's side of the event-driven modes (algorithm.mode = fedbuff |
// fedasync): the trained updates that are still in flight, and the
// buffered update each server step applies.
//
// Clients dispatched under one model version are trained together when
// the scheduler's step needs them (round/async_scheduler.h); their uploads
// (after the client-side transforms) wait here, on the root process, until
// their arrival is processed. Memory: one upload per client in flight
// (at most async.concurrency x the upload size, float32), also saved in
// checkpoints so that a resume continues with the same clients in flight.
//
// A server step feeds the round's aggregator with the buffer, in arrival
// order:
//   fedbuff   s(tau_i) Delta_i, weight 1 (async.weighting = uniform) or the
//             algorithm's; the algorithm's ServerUpdate then takes the mean,
//             so with uniform weights w <- w + eta_g (1/K) sum s(tau_i) Delta_i
//             (Nguyen et al. 2022, Algorithm 1);
//   fedasync  alpha s(tau) (w_tau + Delta - w), weight 1, so the plain server
//             step w <- w + mean is w <- (1 - alpha_s) w + alpha_s w_client
//             (Xie et al. 2019). The client's model w_tau + Delta is kept.
#pragma once

#include <Eigen/Core>

#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "round/aggregator.h"
#include "round/async_scheduler.h"

namespace fedsim {

class AsyncUploads : public Aggregator {
 public:
  // fedasync: keep each client's model (the global it trained from plus its
  // upload) instead of the upload.
  AsyncUploads(int64_t upload_size, bool keep_models) : upload_size_(upload_size), keep_models_(keep_models) {}

  // Before a training wave: cohort member i is dispatch seqs[i]; `global`:
  // the model the wave trains from.
  void StartWave(std::vector<int64_t> seqs, const Eigen::VectorXf* global) {
    wave_ = std::move(seqs);
    global_ = global;
  }

  // Whether Apply gives every buffered update weight 1 (FedAsync, and FedBuff
  // under async.weighting = uniform); the secure sum's weight bound follows.
  static bool UniformWeights(const AsyncConfig& cfg, bool fedasync) { return fedasync || cfg.weighting == "uniform"; }

  // Aggregator interface, for CohortTraining: keeps the wave's uploads.
  std::string name() const override { return "async_uploads"; }
  void Begin(int, int) override {}
  void AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb, const std::vector<ClientReport>& reports,
                const std::vector<char>& keep) override;
  AggregateResult Finish(std::vector<ClientReport>&, std::vector<char>&) override { return {}; }

  // Forgets dispatch `seq` (its update was dropped as too stale); returns its
  // upload's wire bytes (0 if it was not held).
  int64_t Discard(int64_t seq);

  // Feeds `aggregator` with the buffer (see above) and finishes it. reports
  // and keep receive the buffer's members, in arrival order; `global`: the
  // current model. Returns the aggregate.
  AggregateResult Apply(const std::vector<AsyncArrival>& buffer, const AsyncConfig& cfg, bool fedasync,
                        const Eigen::VectorXf& global, Aggregator& aggregator, int round,
                        std::vector<ClientReport>& reports, std::vector<char>& keep);

  size_t held() const { return held_.size(); }
  // Buffered updates of the last Apply that were not finite (left out).
  int64_t skipped() const { return skipped_; }
  // Checkpoints (root): the held uploads in one record, their reports in the totals.
  void Save(CheckpointWriter& w) const override;
  void Load(const CheckpointReader& r) override;
  nlohmann::json SaveReports() const;
  void LoadReports(const nlohmann::json& j);

 private:
  struct Held {
    Eigen::VectorXf upload;
    ClientReport report;
    bool keep = false;
  };
  int64_t upload_size_;
  bool keep_models_;
  std::vector<int64_t> wave_;
  const Eigen::VectorXf* global_ = nullptr;
  std::map<int64_t, Held> held_;
  std::vector<int64_t> loaded_order_;
  int64_t skipped_ = 0;  // Load: the seqs of the saved uploads, in record order
};

nlohmann::json ReportToJson(const ClientReport& r);
ClientReport ReportFromJson(const nlohmann::json& j);

}  // namespace fedsim
