// The malicious server's imprint attack (audit.imprint.*, docs/privacy.md
// "Imprint"): Fowl, Geiping, Czaja, Goldblum, Goldstein, "Robbing the Fed:
// Directly Obtaining Private Data in Federated Learning with Modified
// Models", ICLR 2022.
//
// On an attack round the server broadcasts the global model with the first
// dense layer's first K units (the bins) overwritten: every bin's weight
// column is the same measurement direction m, bin k's bias is -c_k for cut
// points c_0 < c_1 < ... < c_{K-1}, and every weight the next dense layer
// gives those units is made equal (unit j of the next layer reads v_j from
// each bin). A sample x then activates exactly the bins with c_k < m.x, and
// since the next layer treats them alike, the loss's derivative at each
// active bin's pre-activation is one number g(x), the same for every bin.
// The first layer's gradient over a batch is therefore cumulative:
//   dW_k = sum_{x: m.x > c_k} g(x) x,   db_k = sum_{x: m.x > c_k} g(x),
// and for consecutive bins (Fowl et al., eq. 2-3)
//   (dW_k - dW_{k+1}) / (db_k - db_{k+1}) = x
// whenever exactly one sample's measurement falls in [c_k, c_{k+1}) (the
// last bin is [c_{K-1}, inf), read from unit K-1 alone). Everything here is
// linear in the gradient, so it holds for an update -lr g, a client-weighted
// mean, a clipped update, and the cohort's sum under secure aggregation; it
// holds only approximately after several local steps (the bins move) and not
// under noise on the upload.
//
// The cut points are quantiles of a Gaussian fitted to m.x over the server's
// public data (the test set): c_0 = mean - 10 std (every sample), c_k =
// mean + std Phi^-1(k / K), so each bin holds about 1/K of the data.
// (Fowl et al. fit a Laplace to the measurement of public data; the shape
// only changes how evenly the bins fill.)
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "round/aggregator.h"

namespace fedsim {

class Dataset;
class Model;

// Where the imprint layer sits in the flat parameter vector: the first dense
// layer (in x hidden weights, column-major: unit k's column at w0 + k in;
// hidden biases at b0) and the next dense layer's weights (hidden x next,
// column-major: unit j's column at w1 + j hidden).
struct ImprintLayout {
  int64_t w0 = 0, b0 = 0, w1 = 0;
  int in = 0, hidden = 0, next = 0;
};

// The layout of an mlp's first two dense layers. Throws InputError naming
// audit.imprint.bins if the model has no dense first layer with bias
// followed by a ReLU and another dense layer, or fewer than `bins` units.
ImprintLayout ImprintLayoutOf(const Model& model, int bins, int input_dim);

class ImprintAttack {
 public:
  // From the config: the measurement, the cut points fitted to m.x over
  // `public_data`'s rows, the next layer's v from (seed, kAudit).
  ImprintAttack(const ImprintConfig& cfg, const Model& model, const Dataset& public_data, uint64_t seed);
  // Explicit parts (tests): m has layout.in values, cuts ascending (one per
  // bin), v has layout.next values.
  ImprintAttack(const ImprintLayout& layout, Eigen::VectorXf m, std::vector<double> cuts, Eigen::VectorXf v,
                int every);

  int bins() const { return static_cast<int>(cuts_.size()); }
  const ImprintLayout& layout() const { return layout_; }
  bool Attacks(int round) const { return round % every_ == 0; }

  // The model the malicious server broadcasts: `global` with the bins written.
  void Craft(const Eigen::VectorXf& global, Eigen::VectorXf& crafted) const;

  // One bin's reconstruction from an upload (gradient or update of the
  // crafted model).
  struct Candidate {
    int bin = 0;
    Eigen::VectorXf x;
  };
  // The bins whose bias difference is not zero (below 1e-5 of the largest
  // |db_k| counts as zero: equal cumulative sums up to rounding).
  std::vector<Candidate> Invert(const float* upload) const;

  nlohmann::json Describe() const;

 private:
  ImprintLayout layout_;
  Eigen::VectorXf m_, v_;
  std::vector<double> cuts_;
  int every_ = 1;
  std::string measurement_ = "explicit";
  double fit_mean_ = 0.0, fit_std_ = 0.0;
  int fit_rows_ = 0;
};

// The attack's place in the round: wraps the round's aggregator; on attack
// rounds it inverts every upload the server sees (or, when the server sees
// only the sum — secure aggregation or encryption — the cohort's sum) and
// scores each bin's reconstruction against the rows in that view: the best
// match's PSNR over that row's range, exact when every value is within 1e-3
// of the range (the criterion of ReconstructionTap). A row counts as
// recovered once, however many bins match it exactly; a bin holding two or
// more samples gives a mixture, which matches no row exactly. Rows whose
// best-matching bin reaches 30 dB PSNR are counted apart (recognisable, not
// exact: e.g. a sum rounded by secure aggregation's fixed point). Root process
// only, in cohort order (so the same for any thread count).
class ImprintTap : public Aggregator {
 public:
  ImprintTap(std::unique_ptr<Aggregator> inner, const ImprintAttack& attack, const Dataset& train,
             const std::vector<std::vector<int>>& partition, bool sum_view);
  std::string name() const override { return inner_->name(); }
  void Begin(int round, int cohort) override;
  void AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb, const std::vector<ClientReport>& reports,
                const std::vector<char>& keep) override;
  AggregateResult Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) override;
  // The inner aggregator's state and the run's totals (audit/imprint/*).
  void Save(CheckpointWriter& w) const override;
  void Load(const CheckpointReader& r) override;

  // The last round's figures (stages.audit.imprint) and the run's.
  nlohmann::json RoundRecord() const;
  nlohmann::json Summary() const;
  // Up to 16 bins' reconstructions of the last attacked round above their
  // best matches, as a PGM grid (image data only; false otherwise).
  bool WriteGrid(const std::string& path) const;

  // Inverts `upload` and scores the bins against `rows` of the training
  // data (at most the first 5,000); adds to the round's figures.
  void Score(const float* upload, const std::vector<int>& rows);

 private:
  std::unique_ptr<Aggregator> inner_;
  const ImprintAttack& attack_;
  const Dataset& train_;
  const std::vector<std::vector<int>>& partition_;
  bool sum_view_;
  bool active_ = false;
  // This round.
  int64_t views_ = 0, samples_ = 0, candidates_ = 0, recovered_ = 0, within_30db_ = 0;
  double psnr_sum_ = 0.0;
  std::vector<Eigen::VectorXf> shown_;  // pairs (reconstruction, best match)
  // The run.
  int64_t rounds_ = 0, total_views_ = 0, total_samples_ = 0, total_candidates_ = 0, total_recovered_ = 0,
          total_within_30db_ = 0;
  double total_psnr_ = 0.0;
  std::vector<Eigen::VectorXf> last_shown_;
};

}  // namespace fedsim
