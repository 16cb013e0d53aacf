// Poisoning attacks (docs/robustness.md): a fixed set of malicious clients,
// chosen once from (seed, kAttack), acting from attack.start_round on.
//
//   data poisoning   label_flip, backdoor: the attackers train honestly on
//                    poisoned copies of their own samples (PoisonTraining);
//   model poisoning  sign_flip, gaussian, scaling (and attack.boost on any
//                    kind): the attack upload transform rewrites a malicious
//                    client's upload after its local training;
//   omniscient       alie, ipm: the attackers see the round's benign updates
//                    and replace their own (ApplyOmniscientAttack, run by the
//                    aggregator, which holds the whole cohort).
#pragma once

#include <Eigen/Core>

#include <memory>
#include <vector>

#include "core/config.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "fl/algorithm.h"
#include "round/upload_transform.h"

namespace fedsim {

class AttackPlan {
 public:
  // Chooses the malicious clients (none when attack.kind = none) among the
  // clients that train: `pool` (sorted client ids; empty = all num_clients).
  // Held-out clients never train, so they are never attackers. Throws
  // InputError naming attack.count / attack.fraction when they do not fit
  // that population.
  AttackPlan(const AttackConfig& cfg, int num_clients, uint64_t seed, const std::vector<int>& pool = {});

  bool active() const { return !malicious_.empty(); }
  // Whether the attackers act in round `round` (0-based).
  bool acting(int round) const { return active() && round + 1 >= cfg_.start_round; }
  bool malicious(int client) const { return flag_[static_cast<size_t>(client)] != 0; }
  const std::vector<int>& clients() const { return malicious_; }
  const AttackConfig& config() const { return cfg_; }
  bool poisons_data() const { return cfg_.kind == "label_flip" || cfg_.kind == "backdoor"; }
  bool omniscient() const { return cfg_.kind == "alie" || cfg_.kind == "ipm"; }

 private:
  AttackConfig cfg_;
  std::vector<int> malicious_;  // sorted
  std::vector<char> flag_;
};

// Refuses attack and robust-aggregation settings that cannot work together
// with the rest of the config (InputError naming both keys): a secure sum or
// encryption (the server would need the individual uploads), central DP with
// a robust rule, an upload that is not a model delta or gradient.
void CheckAttackAndRobust(const Config& cfg, UploadKind kind, bool server_reads_reports);

// The training data the attackers learn from: a copy of `train` with, for
// each malicious client, poisoned copies of its rows appended, and the
// partition that points the malicious clients at them (same sizes).
// label_flip: every row, relabelled; backdoor: attack.poison_ratio of the
// rows (chosen from (seed, kAttack, 0, client)) triggered and labelled
// attack.target, the rest as they were.
struct PoisonedTraining {
  Dataset train;
  Partition partition;
};
// With `perturbation` (privacy.input_perturbation, not "none"), `train` is
// the clean data and the copy is then perturbed as PerturbTrainingData
// perturbs each client's rows: an attacker poisons its own rows before its
// device perturbs them, so a backdoor trigger is stamped on the clean image
// (as on the triggered test set) and clipped and noised with its row, and the
// benign clients' rows come out as in the perturbed data.train.
PoisonedTraining PoisonTraining(const Dataset& train, const Partition& partition, const AttackPlan& plan,
                                uint64_t seed, const InputPerturbationConfig* perturbation = nullptr,
                                double delta = 0.0);

// Stamps the backdoor trigger on row `row` of `ds` (in place): the
// trigger_size x trigger_size square in the bottom-right corner of every
// channel set to the largest pixel value. REQUIRES: ds.shape = {C, H, W}.
void StampTrigger(Dataset& ds, int row, int trigger_size);

// The backdoor test set: the test rows whose label is not the target, with
// the trigger, all labelled attack.target (its accuracy is the attack's
// success rate).
Dataset TriggeredTestSet(const Dataset& test, const AttackConfig& cfg);

// The attack upload transform (model poisoning; runs after clipping and
// local noise, before compression): a malicious client's upload becomes
// -u (sign_flip), N(0, sigma^2) per coordinate (gaussian), and is multiplied
// by attack.boost. Records each upload's L2 norm after the attack.
std::unique_ptr<UploadTransform> MakeAttackTransform(const AttackPlan& plan, uint64_t seed);

// alie / ipm: replaces the uploads (columns of `uploads`) of the members
// flagged in `malicious` from the benign members' mean and standard
// deviation; `kept` marks usable members. Returns the z ALIE used (0 for ipm).
double ApplyOmniscientAttack(const AttackConfig& cfg, Eigen::MatrixXf& uploads, const std::vector<char>& malicious,
                             const std::vector<char>& kept, int threads);

// Baruch et al. 2019's z_max for n members of which m are malicious:
// Phi^{-1}((n - s) / n) with s = floor(n / 2 + 1) - m.
double AlieZMax(int n, int m);

}  // namespace fedsim
