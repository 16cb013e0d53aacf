// Stage 4b: the privacy spent so far, per round (docs/privacy.md).
//
//   central  DP-FedAvg: one subsampled Gaussian mechanism per released round
//            at the cohort sampling rate q and noise multiplier z (RDP
//            accountant, Mironov 2017 / Mironov et al. 2019);
//   sample   DP-SGD inside local training: each client's steps composed at
//            q_c = B / n_c; the run reports the worst client;
//   local    every upload a Gaussian or Laplace mechanism; basic composition
//            over the rounds the most frequent client took part in.
// The ledger owns the accountant and the per-client counts and saves both in
// checkpoints.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "fl/algorithm.h"
#include "privacy/rdp_accountant.h"

namespace fedsim {

class PrivacyLedger {
 public:
  // sampling_rate: the cohort sampler's q. client_sizes[c]: client c's
  // training samples (sample mode's q_c).
  PrivacyLedger(const Config& cfg, double sampling_rate, std::vector<int64_t> client_sizes);

  // The noise multiplier the run uses: privacy.noise_multiplier, or the one
  // solved for privacy.target_epsilon over the run's rounds (central mode).
  double noise_multiplier() const { return noise_multiplier_; }
  // The run's "privacy" object of metrics.json.
  nlohmann::json Describe(const nlohmann::json& input_perturbation) const;

  // Accounts round `round`: `released` says whether the server released a
  // noisy aggregate (central mode); cohort/reports: the members that trained
  // and their reports, in cohort order. Root process only.
  void Step(bool released, const std::vector<int>& cohort, const std::vector<ClientReport>& reports);

  bool active() const { return mode_ != "none"; }
  double epsilon() const { return epsilon_; }
  double delta() const { return delta_; }
  // The ε the last Step added to the run's guarantee (for stages.privacy).
  double round_epsilon() const { return round_epsilon_; }

  // ε and δ spent are in the run's totals (flat keys "epsilon", "delta").
  void SaveTotals(nlohmann::json& totals) const;
  void LoadTotals(const nlohmann::json& totals);
  void Save(class CheckpointWriter& w) const;
  // Restores the accountant and counts. With privacy.target_epsilon (central
  // mode) it refuses (InputError) a checkpoint after which the run's z would
  // miss the target: a branch that adds rounds, or lowers the target, on top
  // of the ε its parent spent.
  void Load(const class CheckpointReader& r);

 private:
  std::string mode_;
  const PrivacyConfig& pc_;
  int batch_size_;
  int64_t rounds_;
  double sampling_rate_;
  double noise_multiplier_;
  Conversion conversion_;
  std::vector<int64_t> client_sizes_;
  RdpAccountant accountant_;
  std::vector<double> orders_;
  std::vector<int64_t> count_;                        // sample: DP-SGD steps; local: rounds, per client
  std::map<double, std::vector<double>> rdp_per_step_;  // sample mode: RDP of one step by q_c
  double local_eps_round_ = 0.0;
  double epsilon_ = 0.0, delta_ = 0.0, round_epsilon_ = 0.0;
};

}  // namespace fedsim
