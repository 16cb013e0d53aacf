// Stage 1a: who is asked to take part in a round.
//
// Fixed-size cohorts (K distinct clients uniformly at random, or a fraction
// of the population), Poisson sampling (each client independently with
// probability q: the sampling DP-FedAvg's accountant assumes) and
// over-selection (ceil((1 + f) K) clients asked, the first K reports kept by
// the scheduler). Draws come from the (seed, kCohort, round) stream, so a
// round's cohort depends on nothing but the seed and the round.
#pragma once

#include <vector>

#include "core/config.h"

namespace fedsim {

class Rng;

// Samples `k` distinct clients out of `n` from rng, returned in increasing
// order. REQUIRES: 1 <= k <= n.
std::vector<int> SampleCohort(int n, int k, Rng& rng);

// The clients data.holdout_clients keeps out of training (increasing order):
// HoldoutCount of them drawn by SampleCohort from (seed, kHoldout).
std::vector<int> HoldoutClients(double holdout_clients, int num_clients, uint64_t seed);

// The clients of [0, num_clients) not in `holdout` (increasing; holdout sorted).
std::vector<int> TrainingClients(const std::vector<int>& holdout, int num_clients);

// Cohort size for the config: client_fraction if set, else clients_per_round.
int CohortSize(const AlgorithmConfig& cfg, int num_clients);

class CohortSampler {
 public:
  // cohort_size: the K the server waits for (the algorithm may have changed
  // the configured one, e.g. FedGiA takes everyone). over_selection: the
  // fraction f of extra clients asked (0 = none). pool: the clients that
  // train, in increasing order (data.holdout_clients keeps the others out);
  // empty = all num_clients. Draws index the pool, so an empty pool and the
  // full one give the same cohorts.
  CohortSampler(const AlgorithmConfig& cfg, int num_clients, int cohort_size, double over_selection, uint64_t seed,
                std::vector<int> pool = {});

  // The clients asked in round `round` (0-based), in increasing order.
  std::vector<int> Sample(int round) const;

  // The K the scheduler keeps with over-selection, else -1.
  int keep() const { return over_select_ ? cohort_size_ : -1; }
  // The largest number of clients one round can have.
  int max_cohort() const { return poisson_ ? num_clients_ : sample_size_; }
  // The probability that a given client is in a round's cohort: q for
  // Poisson sampling, K / N for a fixed cohort (the accountant's q).
  double sampling_rate() const { return sampling_rate_; }
  int cohort_size() const { return cohort_size_; }

 private:
  int num_clients_, cohort_size_, sample_size_;  // num_clients_: the pool's size
  bool poisson_, over_select_;
  double rate_;           // Poisson: q
  double sampling_rate_;  // for the accountant
  uint64_t seed_;
  std::vector<int> pool_;  // empty: the identity
};

}  // namespace fedsim
