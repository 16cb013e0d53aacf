#include "round/imprint.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "model/model.h"
#include "round/reconstruction_score.h"

namespace fedsim {
namespace {

// The imprint attack's draws in Stream::kAudit (the canaries use ~0 and ~0 - 1).
constexpr uint64_t kImprintStream = ~uint64_t{0} - 2;

// Phi^-1(p) for 0 < p < 1, by bisection on the normal CDF (to 1e-12).
double NormalQuantile(double p) {
  double lo = -40.0, hi = 40.0;
  for (int it = 0; it < 200 && hi - lo > 1e-12; ++it) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

}  // namespace

ImprintLayout ImprintLayoutOf(const Model& model, int bins, int input_dim) {
  const std::vector<ParamRange> r = model.ParamRanges();
  // An mlp: layers.l.weight (fan_in x fan_out, column-major), layers.l.bias,
  // ReLU after every hidden layer.
  if (model.kind() != "mlp" || r.size() < 4 || r[1].size <= 0 || r[0].size % r[1].size != 0 || r[3].size <= 0 ||
      r[2].size != r[1].size * r[3].size) {
    throw InputError("audit.imprint.bins: the model has no dense first layer with bias and a ReLU followed by "
                     "another dense layer (model.kind=mlp with model.hidden)");
  }
  ImprintLayout l;
  l.w0 = r[0].offset;
  l.b0 = r[1].offset;
  l.w1 = r[2].offset;
  l.hidden = static_cast<int>(r[1].size);
  l.in = static_cast<int>(r[0].size / r[1].size);
  l.next = static_cast<int>(r[3].size);
  if (l.in != input_dim) throw InputError("audit.imprint.bins: the first layer does not read the input");
  if (bins < 2 || bins > l.hidden) {
    throw InputError("audit.imprint.bins: " + std::to_string(bins) + " bins need 2 to " + std::to_string(l.hidden) +
                     " units (the first hidden layer's width)");
  }
  return l;
}

ImprintAttack::ImprintAttack(const ImprintLayout& layout, Eigen::VectorXf m, std::vector<double> cuts,
                             Eigen::VectorXf v, int every)
    : layout_(layout), m_(std::move(m)), v_(std::move(v)), cuts_(std::move(cuts)), every_(std::max(1, every)) {
  if (m_.size() != layout_.in || v_.size() != layout_.next || cuts_.size() < 2 ||
      static_cast<int>(cuts_.size()) > layout_.hidden || !std::is_sorted(cuts_.begin(), cuts_.end())) {
    throw InputError("audit.imprint: inconsistent imprint layer (measurement, cut points or next-layer weights)");
  }
}

ImprintAttack::ImprintAttack(const ImprintConfig& cfg, const Model& model, const Dataset& public_data, uint64_t seed)
    : every_(cfg.every), measurement_(cfg.measurement) {
  layout_ = ImprintLayoutOf(model, cfg.bins, public_data.dim());
  const int d = layout_.in, k = cfg.bins;
  if (cfg.measurement == "brightness") {
    m_ = Eigen::VectorXf::Constant(d, 1.0f / static_cast<float>(d));
  } else {
    Rng rng = DeriveStream(seed, Stream::kAudit, kImprintStream, 0);
    m_.resize(d);
    for (int j = 0; j < d; ++j) m_[j] = static_cast<float>(rng.Normal());
    m_ /= m_.norm();
  }
  // The server's prior on m.x: a Gaussian fitted over the public rows.
  fit_rows_ = public_data.size();
  if (fit_rows_ < 2) throw InputError("audit.imprint.bins: the test set (the server's public data) has < 2 rows");
  std::vector<float> x(static_cast<size_t>(d));
  double s = 0.0, ss = 0.0;
  for (int i = 0; i < fit_rows_; ++i) {
    public_data.Rows(&i, 1, x.data());
    const double t = m_.dot(Eigen::Map<const Eigen::VectorXf>(x.data(), d));
    s += t;
    ss += t * t;
  }
  fit_mean_ = s / fit_rows_;
  fit_std_ = std::sqrt(std::max(0.0, (ss - s * fit_mean_) / (fit_rows_ - 1)));
  if (!(fit_std_ > 0.0)) {
    throw InputError("audit.imprint.measurement: " + cfg.measurement +
                     " is constant over the test set; the bins cannot separate samples");
  }
  cuts_.assign(static_cast<size_t>(k), 0.0);
  cuts_[0] = fit_mean_ - 10.0 * fit_std_;
  for (int b = 1; b < k; ++b) cuts_[static_cast<size_t>(b)] = fit_mean_ + fit_std_ * NormalQuantile(double(b) / k);
  // The next layer reads every bin through the same weights v: of order
  // 1 / (K std), so that the K bins together move its pre-activations by
  // O(1) (the ReLU outputs are O(std) each).
  Rng rng = DeriveStream(seed, Stream::kAudit, kImprintStream, 1);
  v_.resize(layout_.next);
  for (int j = 0; j < layout_.next; ++j) v_[j] = static_cast<float>(rng.Normal() / (k * fit_std_));
}

void ImprintAttack::Craft(const Eigen::VectorXf& global, Eigen::VectorXf& crafted) const {
  crafted = global;
  const ImprintLayout& l = layout_;
  for (int b = 0; b < bins(); ++b) {
    crafted.segment(l.w0 + static_cast<int64_t>(b) * l.in, l.in) = m_;
    crafted[l.b0 + b] = static_cast<float>(-cuts_[static_cast<size_t>(b)]);
  }
  for (int j = 0; j < l.next; ++j) crafted.segment(l.w1 + static_cast<int64_t>(j) * l.hidden, bins()).setConstant(v_[j]);
}

std::vector<ImprintAttack::Candidate> ImprintAttack::Invert(const float* upload) const {
  const ImprintLayout& l = layout_;
  const int k = bins();
  double largest = 0.0;
  for (int b = 0; b < k; ++b) largest = std::max(largest, std::abs(static_cast<double>(upload[l.b0 + b])));
  std::vector<Candidate> out;
  if (!(largest > 0.0) || !std::isfinite(largest)) return out;
  for (int b = 0; b < k; ++b) {
    // Unit b's sum minus unit b+1's: the samples with c_b < m.x <= c_{b+1}.
    const bool last = b + 1 == k;
    const double db = static_cast<double>(upload[l.b0 + b]) - (last ? 0.0 : static_cast<double>(upload[l.b0 + b + 1]));
    if (!(std::abs(db) > 1e-5 * largest)) continue;
    Candidate c;
    c.bin = b;
    c.x.resize(l.in);
    const float* w = upload + l.w0 + static_cast<int64_t>(b) * l.in;
    for (int i = 0; i < l.in; ++i) {
      const double dw = static_cast<double>(w[i]) - (last ? 0.0 : static_cast<double>(w[i + l.in]));
      c.x[i] = static_cast<float>(dw / db);
    }
    out.push_back(std::move(c));
  }
  return out;
}

nlohmann::json ImprintAttack::Describe() const {
  nlohmann::json j = {{"bins", bins()}, {"measurement", measurement_}, {"every", every_}};
  if (fit_rows_ > 0) {
    j["cuts_from"] = {{"data", "test set"}, {"rows", fit_rows_}, {"mean", fit_mean_}, {"std", fit_std_}};
  }
  return j;
}

ImprintTap::ImprintTap(std::unique_ptr<Aggregator> inner, const ImprintAttack& attack, const Dataset& train,
                       const std::vector<std::vector<int>>& partition, bool sum_view)
    : inner_(std::move(inner)), attack_(attack), train_(train), partition_(partition), sum_view_(sum_view) {}

void ImprintTap::Begin(int round, int cohort) {
  inner_->Begin(round, cohort);
  active_ = attack_.Attacks(round);
  views_ = samples_ = candidates_ = recovered_ = within_30db_ = 0;
  psnr_sum_ = 0.0;
  shown_.clear();
}

void ImprintTap::Score(const float* upload, const std::vector<int>& rows) {
  const int d = attack_.layout().in;
  const int n = static_cast<int>(std::min<size_t>(rows.size(), 5000));
  ++views_;
  samples_ += n;
  if (n == 0) return;
  Eigen::MatrixXf x(d, n);
  train_.Rows(rows.data(), n, x.data());
  std::set<int> exact_rows, close_rows;
  for (const ImprintAttack::Candidate& c : attack_.Invert(upload)) {
    ++candidates_;
    int best = 0;
    const double mse = static_cast<double>((x.colwise() - c.x).colwise().squaredNorm().minCoeff(&best)) / d;
    const auto col = x.col(best);
    const RowMatch m = MatchRow(mse, c.x, col);
    psnr_sum_ += m.psnr;
    if (m.exact) exact_rows.insert(best);
    if (m.psnr >= 30.0) close_rows.insert(best);
    if (shown_.size() < 32) {
      shown_.push_back(c.x);
      shown_.push_back(col);
    }
  }
  recovered_ += static_cast<int64_t>(exact_rows.size());
  within_30db_ += static_cast<int64_t>(close_rows.size());
}

void ImprintTap::AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb, const std::vector<ClientReport>& reports,
                          const std::vector<char>& keep) {
  if (active_ && !sum_view_) {
    for (int i = 0; i < nb; ++i) {
      const size_t at = static_cast<size_t>(b0 + i);
      if (keep[at]) Score(uploads.col(i).data(), partition_[static_cast<size_t>(reports[at].client)]);
    }
  }
  inner_->AddBlock(uploads, b0, nb, reports, keep);
}

AggregateResult ImprintTap::Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) {
  AggregateResult res = inner_->Finish(reports, keep);
  if (active_ && sum_view_ && res.sum && res.denominator > 0.0 && !res.failed) {
    // The server's view: the sum of the clients the protocol kept, scored
    // against all of their rows.
    const Eigen::VectorXf sum = res.sum->cast<float>();
    std::vector<int> rows;
    for (size_t i = 0; i < reports.size(); ++i) {
      if (!keep[i]) continue;
      const auto& r = partition_[static_cast<size_t>(reports[i].client)];
      rows.insert(rows.end(), r.begin(), r.end());
    }
    Score(sum.data(), rows);
  }
  if (active_ && views_ > 0) {
    ++rounds_;
    total_views_ += views_;
    total_samples_ += samples_;
    total_candidates_ += candidates_;
    total_recovered_ += recovered_;
    total_within_30db_ += within_30db_;
    total_psnr_ += psnr_sum_;
    last_shown_ = shown_;
  }
  return res;
}

void ImprintTap::Save(CheckpointWriter& w) const {
  inner_->Save(w);
  SaveAuditTotals(w, "audit/imprint",
                  {rounds_, total_views_, total_samples_, total_candidates_, total_recovered_, total_within_30db_},
                  total_psnr_, last_shown_);
}

void ImprintTap::Load(const CheckpointReader& r) {
  inner_->Load(r);
  std::vector<int64_t> c(6);
  if (LoadAuditTotals(r, "audit/imprint", c, total_psnr_, last_shown_)) {
    rounds_ = c[0];
    total_views_ = c[1];
    total_samples_ = c[2];
    total_candidates_ = c[3];
    total_recovered_ = c[4];
    total_within_30db_ = c[5];
  }
}

nlohmann::json ImprintTap::RoundRecord() const {
  return {{"attack_round", active_},
          {"views", views_},
          {"samples", samples_},
          {"candidates", candidates_},
          {"recovered", recovered_},
          {"within_30db", within_30db_},
          {"mean_psnr", candidates_ ? nlohmann::json(psnr_sum_ / candidates_) : nlohmann::json(nullptr)}};
}

nlohmann::json ImprintTap::Summary() const {
  nlohmann::json j = attack_.Describe();
  j.update({{"view", sum_view_ ? "the cohort's sum (secure aggregation or encryption)" : "each client's upload"},
            {"rounds", rounds_},
            {"views", total_views_},
            {"samples", total_samples_},
            {"candidates", total_candidates_},
            {"recovered", total_recovered_},
            {"within_30db", total_within_30db_},
            {"recovered_fraction",
             total_samples_ ? nlohmann::json(static_cast<double>(total_recovered_) / total_samples_) : nlohmann::json(nullptr)},
            {"mean_psnr", total_candidates_ ? nlohmann::json(total_psnr_ / total_candidates_) : nlohmann::json(nullptr)}});
  return j;
}

bool ImprintTap::WriteGrid(const std::string& path) const {
  return WriteReconstructionGrid(train_, last_shown_, path);
}

}  // namespace fedsim
