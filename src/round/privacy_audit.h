// Privacy measured by attacks on the run (audit.*, docs/privacy.md "Audits"):
//
// * the one-shot empirical epsilon estimate of Andrew et al. (ICLR 2024,
//   "One-shot Empirical Privacy Estimation for Federated Learning") for
//   central DP: audit.canaries canary clients c_i, unit vectors drawn
//   isotropically from (seed, kAudit, ~0, i), each take part in a round with
//   the real clients' sampling rate q (a Bernoulli draw from (seed, kAudit,
//   t, i)) and add clip_norm x c_i to the sum of clipped updates before the
//   server's noise. After the run, the cosines of the final model change
//   rho = w_T - w_0 with the inserted canaries are fitted by a Gaussian, and
//   the estimate is the epsilon (at privacy.delta) of telling it apart from
//   the null N(0, 1/d), the cosine of a direction independent of rho
//   (EpsilonOfGaussians); audit.unobserved canaries that never took part
//   sample that null, and the estimate with their fitted Gaussian is
//   reported beside as a check;
// * loss-threshold membership inference (Yeom et al., CSF 2018) on the final
//   global model: the per-sample losses of training clients' samples
//   (members) against test samples (non-members); the ROC's AUC and the TPR
//   at 1% and 0.1% FPR.
//
// Canaries are not clients: they are in no cohort, no count, no byte figure
// and no training loss; they change the model only through their vectors in
// the sum (k q clip_norm-long random directions a round, beside noise of
// norm about z clip_norm sqrt(d)). Root process only.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"

namespace fedsim {

class Dataset;
class Model;

// The smallest epsilon >= 0 for which P = N(mu1, s1^2) and Q = N(mu0, s0^2)
// are (epsilon, delta)-indistinguishable in both directions: the hockey-stick
// divergences H_{e^eps}(P||Q) and H_{e^eps}(Q||P) are at most delta
// (computed exactly from the normal CDF over the set where one density
// exceeds e^eps times the other). Equal variances give the analytic Gaussian
// mechanism's epsilon for sensitivity |mu1 - mu0| and noise s.
// REQUIRES: s0, s1 > 0, 0 < delta < 1. Returns at most 1e3 (bisection cap).
double EpsilonOfGaussians(double mu0, double s0, double mu1, double s1, double delta);

// The ROC of scores of positives against negatives (higher = positive): the
// AUC (ties count half) and the TPR at the largest threshold whose FPR is
// at most `fpr` for each given fpr.
struct RocSummary {
  double auc = 0.0;
  std::vector<double> tpr_at;  // one per requested FPR
};
RocSummary Roc(std::vector<double> positives, std::vector<double> negatives, const std::vector<double>& fprs);

class PrivacyAudit {
 public:
  // dim: the model's parameter count; sampling_rate: the real clients' q.
  PrivacyAudit(const Config& cfg, int64_t dim, double sampling_rate);

  bool canaries() const { return canaries_ > 0; }
  bool membership() const { return membership_; }

  // Round `round`: adds clip_norm x c_i of every canary taking part to
  // `sum`; returns how many did.
  int Insert(int round, Eigen::VectorXd& sum) const;

  // The canary audit after the run: rho = final - initial. accountant_eps:
  // the run's epsilon, reported beside.
  nlohmann::json FinishCanaries(const Eigen::VectorXf& initial, const Eigen::VectorXf& final_model,
                                double accountant_eps, int threads) const;

  // Membership inference on `params`: up to membership_samples rows of
  // `train` drawn from `member_rows` (the training clients' rows) against
  // as many rows of `test`.
  nlohmann::json FinishMembership(const Model& model, const float* params, const Dataset& train,
                                  const std::vector<int>& member_rows, const Dataset& test, int threads) const;

 private:
  // Canary i's unit direction.
  void Direction(int i, Eigen::VectorXd& out) const;

  int canaries_, unobserved_;
  bool membership_;
  int membership_samples_;
  int64_t dim_;
  double q_, clip_, delta_;
  uint64_t seed_;
};

}  // namespace fedsim
