// Step 4 of a round: the server turns the aggregate into a new global model.
//
// First central DP (privacy.mode = central; DP-FedAvg, McMahan et al. 2018):
// Gaussian noise of std z C on the sum of clipped updates, divided by the
// expected cohort size q N instead of the realised weights, so one client
// changes neither; the server releases a noisy sum every round, even an
// empty one, unless a secure protocol failed. Then the algorithm's
// ServerUpdate with the mean upload. Rank 0 computes the mean and sends it
// to every process; every process applies the same update.
#pragma once

#include <Eigen/Core>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "fl/cohort_exchange.h"
#include "round/aggregator.h"
#include "round/client_trainer.h"
#include "round/cohort_training.h"

namespace fedsim {

class ServerPipeline {
 public:
  ServerPipeline(const Config& cfg, double noise_multiplier, double sampling_rate, int num_clients);

  struct Outcome {
    bool released = false;  // an aggregate left the server (what the ledger accounts)
    bool applied = false;   // the global model was updated
    bool diverged = false;  // the update made the model non-finite
  };
  // Round `round`: `agg` and `cohort` are complete on rank 0 (other ranks
  // pass agg = null); `stop`: the run already diverged this round.
  Outcome Run(int round, AggregateResult* agg, const CohortResult& cohort, bool stop, ClientTrainer& trainer,
              CohortExchange& exchange, Eigen::VectorXf& global);

  // stages.server_noise (central DP only) for the last round.
  nlohmann::json NoiseRecord() const;
  bool adds_noise() const { return central_; }

 private:
  bool central_;
  double noise_std_;
  double denominator_;  // central DP: q N
  uint64_t seed_;
  Eigen::VectorXf mean_;
};

}  // namespace fedsim
