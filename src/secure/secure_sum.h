// Summing a round's uploads without showing them to the server: secure
// aggregation (SecAgg or SecAgg+), or real Paillier encryption with packing.
// Cost-model HE schemes (paillier_model, bfv, ckks) leave the sum in the clear
// and only report what encryption would have cost.
//
// Per round: BeginRound (keys, shares; may throw SecAggError), then each
// cohort client that is still online Submits its upload from the training
// loop (concurrently for distinct clients, each caller passing its thread id),
// then Finish decodes the exact sum of the quantised uploads of the clients
// that made it. Updates are clipped to [-range, range] per coordinate and
// quantised to fixed point first, so the sum differs from the float sum by at
// most one quantisation step per client and coordinate.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"

namespace fedsim {

class SecureSum {
 public:
  // threads: the workers that will call Submit. seed: the run seed.
  SecureSum(const SecureAggregationConfig& sa, const EncryptionConfig& he, int64_t dim, int max_cohort, int threads,
            uint64_t seed);
  ~SecureSum();

  // True when uploads go through a protocol (SecAgg/SecAgg+ or real Paillier).
  bool protocol() const;
  // The same, from the config alone (for processes that hold no SecureSum).
  static bool Protocol(const SecureAggregationConfig& sa, const EncryptionConfig& he);
  // True when anything is reported (protocol or cost model).
  bool active() const;

  // Starts round `round` for `cohort` clients (indices 0..cohort-1 below).
  // SecAgg: AdvertiseKeys and ShareKeys; throws SecAggError if too few clients
  // remain for the threshold.
  void BeginRound(int round, int cohort);
  // Whether cohort member `index` is still online to send its input.
  bool Wants(int index) const;
  // Quantises and submits `upload` (dim floats) of cohort member `index`.
  void Submit(int index, const float* upload, int worker);
  // Runs unmasking / decryption and writes the decoded sum to `sum`; returns
  // the cohort indices whose uploads it contains. Throws SecAggError.
  std::vector<int> Finish(Eigen::VectorXd& sum);

  // Per-round figures for rounds.jsonl (bytes, seconds, dropouts) and the
  // bytes a client sent / received in the protocol this round.
  nlohmann::json RoundMetrics() const;
  int64_t RoundBytesUp() const;
  int64_t RoundBytesDown() const;
  // Modelled HE cost for a cohort of `clients` (cost-model schemes).
  nlohmann::json ModelledCost(int clients) const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace fedsim
