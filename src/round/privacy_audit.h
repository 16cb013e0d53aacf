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
#include "round/aggregator.h"

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

// The honest-but-curious server's input reconstruction (audit.reconstruction):
// wraps the round's aggregator and, before passing each block on, inverts the
// first dense layer of every upload it sees. For one sample's gradient the
// weight gradient's column j is g_j x and the bias gradient g_j, so
// x = dW[:, j] / db[j] exactly (j = the largest |db_j|); a gradient or update
// over several samples or steps gives a mixture of them. Each reconstruction
// is scored against the client's own training rows (the best match's PSNR
// over that sample's range; exact when every value is within 1e-3 of the
// range); under secure aggregation or encryption (ServerSeesOnlySum) the
// server holds only the sum, which is inverted and scored against every row
// of the round's clients.
class ReconstructionTap : public Aggregator {
 public:
  ReconstructionTap(std::unique_ptr<Aggregator> inner, const Model& model, const Dataset& train,
                    const std::vector<std::vector<int>>& partition, bool secure);
  std::string name() const override { return inner_->name(); }
  void Begin(int round, int cohort) override;
  void AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb, const std::vector<ClientReport>& reports,
                const std::vector<char>& keep) override;
  AggregateResult Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) override;
  // The inner aggregator's state and the run's totals (audit/reconstruction/*).
  void Save(CheckpointWriter& w) const override;
  void Load(const CheckpointReader& r) override;

  // The last round's figures (stages.audit.reconstruction) and the run's.
  nlohmann::json RoundRecord() const;
  nlohmann::json Summary() const;
  // Up to 16 reconstructions of the last attacked round above their best
  // matches, as a PGM grid (image data only; false otherwise).
  bool WriteGrid(const std::string& path) const;

 private:
  struct Score {
    double psnr = 0.0;
    bool exact = false;
    int best_row = -1;
  };
  // Inverts `u` and scores it against `rows`; fills x_hat.
  Score Attack(const float* u, const std::vector<int>& rows, Eigen::VectorXf& x_hat) const;

  std::unique_ptr<Aggregator> inner_;
  const Dataset& train_;
  const std::vector<std::vector<int>>& partition_;
  bool secure_;
  int64_t w_offset_ = 0, b_offset_ = 0;
  int in_ = 0, out_ = 0;
  // This round.
  std::vector<int> round_clients_;
  int64_t attacked_ = 0, exact_ = 0;
  double psnr_sum_ = 0.0, psnr_max_ = -1e300;
  nlohmann::json sum_score_ = nullptr;
  std::vector<Eigen::VectorXf> shown_;  // pairs (reconstruction, best match) of the round
  // The run.
  int64_t total_attacked_ = 0, total_exact_ = 0, rounds_ = 0;
  double total_psnr_ = 0.0;
  std::vector<Eigen::VectorXf> last_shown_;
  mutable std::vector<float> row_;  // Attack's row buffer (root, one thread)
};

class PrivacyAudit;

// The canary audit's place in the round: wraps the round's aggregator and
// adds the round's canaries (PrivacyAudit::Insert) to the sum it returns,
// before the server's noise. Root process only.
class CanaryTap : public Aggregator {
 public:
  CanaryTap(std::unique_ptr<Aggregator> inner, const PrivacyAudit& audit) : inner_(std::move(inner)), audit_(audit) {}
  std::string name() const override { return inner_->name(); }
  void Begin(int round, int cohort) override {
    round_ = round;
    inserted_ = 0;
    inner_->Begin(round, cohort);
  }
  void AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb, const std::vector<ClientReport>& reports,
                const std::vector<char>& keep) override {
    inner_->AddBlock(uploads, b0, nb, reports, keep);
  }
  AggregateResult Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) override;
  void Save(CheckpointWriter& w) const override { inner_->Save(w); }
  void Load(const CheckpointReader& r) override { inner_->Load(r); }
  // Canaries added in the last round (stages.audit.canaries_inserted).
  int inserted() const { return inserted_; }

 private:
  std::unique_ptr<Aggregator> inner_;
  const PrivacyAudit& audit_;
  int round_ = 0, inserted_ = 0;
};

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
