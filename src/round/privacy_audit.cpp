#include "round/privacy_audit.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/fmath.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "model/model.h"
#include "round/cohort_sampler.h"
#include "round/reconstruction_score.h"

namespace fedsim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr uint64_t kDirectionStream = ~uint64_t{0};
constexpr uint64_t kMembershipStream = ~uint64_t{0} - 1;

// P(a < X < b) for X ~ N(m, s^2), from the tail nearer to the interval so
// that small probabilities keep their digits.
double IntervalProb(double m, double s, double a, double b) {
  const double k = 1.0 / (s * std::sqrt(2.0));
  auto lower = [&](double x) { return x == -kInf ? 0.0 : x == kInf ? 1.0 : 0.5 * fm::Erfc(-(x - m) * k); };
  auto upper = [&](double x) { return x == kInf ? 0.0 : x == -kInf ? 1.0 : 0.5 * fm::Erfc((x - m) * k); };
  if (a >= b) return 0.0;
  if (a > m) return upper(a) - upper(b);
  return lower(b) - lower(a);
}

// H_{e^eps}(P || Q) = P(S) - e^eps Q(S), S = {x : log p(x) - log q(x) > eps},
// for P = N(m1, s1^2), Q = N(m0, s0^2). The log ratio minus eps is
// A x^2 + B x + C.
double HockeyStick(double m1, double s1, double m0, double s0, double eps) {
  const double A = -0.5 / (s1 * s1) + 0.5 / (s0 * s0);
  const double B = m1 / (s1 * s1) - m0 / (s0 * s0);
  const double C = -0.5 * m1 * m1 / (s1 * s1) + 0.5 * m0 * m0 / (s0 * s0) - fm::Log(s1) + fm::Log(s0) - eps;
  std::vector<std::pair<double, double>> set;
  // A relative test: variances equal up to rounding make the set linear.
  if (std::abs(A) <= 1e-12 * (0.5 / (s1 * s1) + 0.5 / (s0 * s0))) {
    if (B > 0) {
      set.push_back({-C / B, kInf});
    } else if (B < 0) {
      set.push_back({-kInf, -C / B});
    } else if (C > 0) {
      set.push_back({-kInf, kInf});
    }
  } else {
    const double disc = B * B - 4.0 * A * C;
    if (disc <= 0.0) {
      if (A > 0) set.push_back({-kInf, kInf});  // positive everywhere (but a point)
    } else {
      const double r = std::sqrt(disc);
      const double x1 = (-B - r) / (2.0 * A), x2 = (-B + r) / (2.0 * A);
      const double lo = std::min(x1, x2), hi = std::max(x1, x2);
      if (A > 0) {
        set.push_back({-kInf, lo});
        set.push_back({hi, kInf});
      } else {
        set.push_back({lo, hi});
      }
    }
  }
  double p = 0.0, q = 0.0;
  for (const auto& [a, b] : set) {
    p += IntervalProb(m1, s1, a, b);
    q += IntervalProb(m0, s0, a, b);
  }
  return std::max(0.0, p - fm::Exp(eps) * q);
}

}  // namespace

double EpsilonOfGaussians(double mu0, double s0, double mu1, double s1, double delta) {
  auto meets = [&](double eps) {
    return HockeyStick(mu1, s1, mu0, s0, eps) <= delta && HockeyStick(mu0, s0, mu1, s1, eps) <= delta;
  };
  if (meets(0.0)) return 0.0;
  double lo = 0.0, hi = 1.0;
  while (!meets(hi)) {
    lo = hi;
    hi *= 2.0;
    if (hi > 1e3) return 1e3;
  }
  for (int it = 0; it < 100 && hi - lo > 1e-10 * hi; ++it) {
    const double mid = 0.5 * (lo + hi);
    (meets(mid) ? hi : lo) = mid;
  }
  return hi;
}

RocSummary Roc(std::vector<double> positives, std::vector<double> negatives, const std::vector<double>& fprs) {
  RocSummary r;
  const double np = static_cast<double>(positives.size()), nn = static_cast<double>(negatives.size());
  std::sort(positives.begin(), positives.end());
  std::sort(negatives.begin(), negatives.end());
  // AUC = P(score_pos > score_neg) + P(equal) / 2, by a merge of the sorted lists.
  double wins = 0.0;
  size_t lo = 0, hi = 0;  // negatives below, and at or below, the current positive
  for (double s : positives) {
    while (lo < negatives.size() && negatives[lo] < s) ++lo;
    while (hi < negatives.size() && negatives[hi] <= s) ++hi;
    wins += static_cast<double>(lo) + 0.5 * static_cast<double>(hi - lo);
  }
  r.auc = np > 0 && nn > 0 ? wins / (np * nn) : std::nan("");
  for (double f : fprs) {
    // Threshold: the (floor(f n) + 1)-th largest negative; positive above it.
    const size_t allowed = static_cast<size_t>(std::floor(f * nn));
    if (negatives.empty() || positives.empty()) {
      r.tpr_at.push_back(std::nan(""));
      continue;
    }
    const double tau = negatives[negatives.size() - 1 - std::min(allowed, negatives.size() - 1)];
    const auto above = positives.end() - std::upper_bound(positives.begin(), positives.end(), tau);
    r.tpr_at.push_back(static_cast<double>(above) / np);
  }
  return r;
}

PrivacyAudit::PrivacyAudit(const Config& cfg, int64_t dim, double sampling_rate)
    : canaries_(cfg.audit.canaries),
      unobserved_(cfg.audit.unobserved < 0 ? cfg.audit.canaries : cfg.audit.unobserved),
      membership_(cfg.audit.membership),
      membership_samples_(cfg.audit.membership_samples),
      dim_(dim),
      q_(sampling_rate),
      clip_(cfg.privacy.clip_norm),
      delta_(cfg.privacy.delta),
      seed_(cfg.experiment.seed) {}

void PrivacyAudit::Direction(int i, Eigen::VectorXd& out) const {
  Rng rng = DeriveStream(seed_, Stream::kAudit, kDirectionStream, static_cast<uint64_t>(i));
  out.resize(dim_);
  for (int64_t j = 0; j < dim_; ++j) out[j] = rng.Normal();
  out /= out.norm();
}

int PrivacyAudit::Insert(int round, Eigen::VectorXd& sum) const {
  int inserted = 0;
  Eigen::VectorXd c;
  for (int i = 0; i < canaries_; ++i) {
    Rng rng = DeriveStream(seed_, Stream::kAudit, static_cast<uint64_t>(round), static_cast<uint64_t>(i));
    if (rng.Uniform() >= q_) continue;
    Direction(i, c);
    sum += clip_ * c;
    ++inserted;
  }
  return inserted;
}

AggregateResult CanaryTap::Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) {
  AggregateResult res = inner_->Finish(reports, keep);
  if (res.sum && !res.failed) inserted_ = audit_.Insert(round_, *res.sum);
  return res;
}

namespace {

void MeanStd(const std::vector<double>& v, double& mean, double& sd) {
  double s = 0.0;
  for (double x : v) s += x;
  mean = s / static_cast<double>(v.size());
  double ss = 0.0;
  for (double x : v) ss += (x - mean) * (x - mean);
  sd = std::sqrt(ss / static_cast<double>(v.size() > 1 ? v.size() - 1 : 1));
}

}  // namespace

nlohmann::json PrivacyAudit::FinishCanaries(const Eigen::VectorXf& initial, const Eigen::VectorXf& final_model,
                                            double accountant_eps, int threads) const {
  const Eigen::VectorXd rho = (final_model.cast<double>() - initial.cast<double>());
  const double norm = rho.norm();
  const int total = canaries_ + unobserved_;
  std::vector<double> cosine(static_cast<size_t>(total), 0.0);
  ParallelFor(total, threads, [&](int64_t i, int) {
    Eigen::VectorXd c;
    Direction(static_cast<int>(i), c);
    cosine[static_cast<size_t>(i)] = norm > 0.0 ? c.dot(rho) / norm : 0.0;
  });
  const std::vector<double> in(cosine.begin(), cosine.begin() + canaries_), out(cosine.begin() + canaries_,
                                                                                 cosine.end());
  double m1, s1, m0, s0;
  MeanStd(in, m1, s1);
  MeanStd(out, m0, s0);
  nlohmann::json j = {{"canaries", canaries_},
                      {"unobserved", unobserved_},
                      {"inserted_cosine", {{"mean", m1}, {"std", s1}}},
                      {"unobserved_cosine", {{"mean", m0}, {"std", s0}}},
                      {"null_std", 1.0 / std::sqrt(static_cast<double>(dim_))},
                      {"delta", delta_},
                      {"accountant_epsilon", std::isfinite(accountant_eps) ? nlohmann::json(accountant_eps)
                                                                            : nlohmann::json(nullptr)}};
  // The estimate takes the null in closed form: the cosine of a random unit
  // direction independent of rho is N(0, 1/d) in high dimension, exactly
  // what the unobserved canaries sample (their fit is reported as a check).
  const double null_std = 1.0 / std::sqrt(static_cast<double>(dim_));
  j["epsilon_estimate"] =
      canaries_ > 1 && s1 > 0 ? nlohmann::json(EpsilonOfGaussians(0.0, null_std, m1, s1, delta_)) : nlohmann::json(nullptr);
  // The estimate's spread from fitting k cosines: the estimate again with
  // the inserted mean moved by two standard errors each way.
  if (canaries_ > 1 && s1 > 0) {
    const double se = 2.0 * s1 / std::sqrt(static_cast<double>(canaries_));
    j["epsilon_estimate_range"] = {EpsilonOfGaussians(0.0, null_std, std::max(0.0, m1 - se), s1, delta_),
                                   EpsilonOfGaussians(0.0, null_std, m1 + se, s1, delta_)};
  }
  j["epsilon_estimate_empirical_null"] = unobserved_ > 1 && canaries_ > 1 && s0 > 0 && s1 > 0
                                             ? nlohmann::json(EpsilonOfGaussians(m0, s0, m1, s1, delta_))
                                             : nlohmann::json(nullptr);
  return j;
}

nlohmann::json PrivacyAudit::FinishMembership(const Model& model, const float* params, const Dataset& train,
                                              const std::vector<int>& member_rows, const Dataset& test,
                                              int threads) const {
  Rng rng = DeriveStream(seed_, Stream::kAudit, kMembershipStream, 0);
  const int n_in = std::min<int>(membership_samples_, static_cast<int>(member_rows.size()));
  const int n_out = std::min<int>(membership_samples_, test.size());
  std::vector<int> members, nonmembers;
  if (n_in > 0) {
    for (int k : SampleCohort(static_cast<int>(member_rows.size()), n_in, rng)) members.push_back(member_rows[k]);
  }
  if (n_out > 0) nonmembers = SampleCohort(test.size(), n_out, rng);
  auto losses = [&](const Dataset& d, const std::vector<int>& rows) {
    std::vector<double> out(rows.size());
    std::vector<std::unique_ptr<Workspace>> ws(static_cast<size_t>(threads));
    for (auto& w : ws) w = model.NewWorkspace(1);
    std::vector<std::vector<float>> x(static_cast<size_t>(threads), std::vector<float>(static_cast<size_t>(d.dim())));
    ParallelFor(static_cast<int64_t>(rows.size()), threads, [&](int64_t i, int t) {
      const int row = rows[static_cast<size_t>(i)];
      d.Rows(&row, 1, x[static_cast<size_t>(t)].data());
      const int y = d.y[static_cast<size_t>(row)];
      // Higher score = more likely a member: the negated loss.
      out[static_cast<size_t>(i)] = -model.Evaluate(params, x[static_cast<size_t>(t)].data(), &y, 1,
                                                     *ws[static_cast<size_t>(t)]).loss_sum;
    });
    return out;
  };
  const std::vector<double> in = losses(train, members), out = losses(test, nonmembers);
  const RocSummary roc = Roc(in, out, {0.01, 0.001});
  double mean_in = 0.0, mean_out = 0.0;
  for (double v : in) mean_in -= v;
  for (double v : out) mean_out -= v;
  return {{"members", n_in},
          {"nonmembers", n_out},
          {"auc", roc.auc},
          {"tpr_at_fpr_0.01", roc.tpr_at[0]},
          {"tpr_at_fpr_0.001", roc.tpr_at[1]},
          {"member_loss", n_in ? mean_in / n_in : 0.0},
          {"nonmember_loss", n_out ? mean_out / n_out : 0.0}};
}

}  // namespace fedsim

namespace fedsim {

ReconstructionTap::ReconstructionTap(std::unique_ptr<Aggregator> inner, const Model& model, const Dataset& train,
                                     const std::vector<std::vector<int>>& partition, bool secure)
    : inner_(std::move(inner)), train_(train), partition_(partition), secure_(secure) {
  const std::vector<ParamRange> r = model.ParamRanges();
  // softmax / mlp (the rows layout): layers.0.weight (in x out, column-major), layers.0.bias.
  if (r.size() < 2 || r[1].size <= 0 || r[0].size % r[1].size != 0) {
    throw InputError("audit.reconstruction: the model's first layer is not a dense layer with bias");
  }
  w_offset_ = r[0].offset;
  b_offset_ = r[1].offset;
  out_ = static_cast<int>(r[1].size);
  in_ = static_cast<int>(r[0].size / r[1].size);
  if (in_ != train.dim()) throw InputError("audit.reconstruction: the first layer does not read the input");
}

void ReconstructionTap::Begin(int round, int cohort) {
  inner_->Begin(round, cohort);
  round_clients_.clear();
  attacked_ = exact_ = 0;
  psnr_sum_ = 0.0;
  psnr_max_ = -1e300;
  sum_score_ = nullptr;
  shown_.clear();
}

ReconstructionTap::Score ReconstructionTap::Attack(const float* u, const std::vector<int>& rows,
                                                   Eigen::VectorXf& x_hat) const {
  Score s;
  Eigen::Map<const Eigen::VectorXf> db(u + b_offset_, out_);
  int j = 0;
  db.cwiseAbs().maxCoeff(&j);
  x_hat.setZero(in_);
  if (!(std::abs(db[j]) > 0.0f) || rows.empty()) return s;
  x_hat = Eigen::Map<const Eigen::VectorXf>(u + w_offset_ + static_cast<int64_t>(j) * in_, in_) / db[j];
  std::vector<float>& x = row_;
  x.resize(static_cast<size_t>(in_));
  double best = std::numeric_limits<double>::infinity();
  const size_t cap = std::min<size_t>(rows.size(), 2000);
  for (size_t k = 0; k < cap; ++k) {
    train_.Rows(&rows[k], 1, x.data());
    Eigen::Map<const Eigen::VectorXf> xv(x.data(), in_);
    const double mse = (x_hat - xv).squaredNorm() / in_;
    if (mse < best) {
      best = mse;
      s.best_row = rows[k];
      const RowMatch m = MatchRow(mse, x_hat, xv);
      s.psnr = m.psnr;
      s.exact = m.exact;
    }
  }
  return s;
}

void ReconstructionTap::AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb,
                                 const std::vector<ClientReport>& reports, const std::vector<char>& keep) {
  for (int i = 0; i < nb; ++i) {
    const size_t at = static_cast<size_t>(b0 + i);
    if (!keep[at]) continue;
    const int client = reports[at].client;
    round_clients_.push_back(client);
    if (secure_) continue;  // the server never sees this upload
    Eigen::VectorXf x_hat;
    const Score s = Attack(uploads.col(i).data(), partition_[static_cast<size_t>(client)], x_hat);
    ++attacked_;
    exact_ += s.exact;
    psnr_sum_ += s.psnr;
    psnr_max_ = std::max(psnr_max_, s.psnr);
    if (shown_.size() < 32 && s.best_row >= 0) {
      shown_.push_back(x_hat);
      Eigen::VectorXf x(in_);
      train_.Rows(&s.best_row, 1, x.data());
      shown_.push_back(x);
    }
  }
  inner_->AddBlock(uploads, b0, nb, reports, keep);
}

AggregateResult ReconstructionTap::Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) {
  AggregateResult res = inner_->Finish(reports, keep);
  if (secure_ && res.sum && res.denominator > 0.0 && !res.failed) {
    // The server's view: the cohort's sum, inverted like one upload and
    // scored against every row of the round's clients.
    const Eigen::VectorXf sum = res.sum->cast<float>();
    std::vector<int> rows;
    for (int c : round_clients_) {
      const auto& r = partition_[static_cast<size_t>(c)];
      rows.insert(rows.end(), r.begin(), r.end());
    }
    Eigen::VectorXf x_hat;
    const Score s = Attack(sum.data(), rows, x_hat);
    sum_score_ = {{"psnr", s.psnr}, {"exact", s.exact}};
    if (s.best_row >= 0) {
      shown_.push_back(x_hat);
      Eigen::VectorXf x(in_);
      train_.Rows(&s.best_row, 1, x.data());
      shown_.push_back(x);
    }
    ++attacked_;
    exact_ += s.exact;
    psnr_sum_ += s.psnr;
    psnr_max_ = std::max(psnr_max_, s.psnr);
  }
  if (attacked_ > 0) {
    ++rounds_;
    total_attacked_ += attacked_;
    total_exact_ += exact_;
    total_psnr_ += psnr_sum_;
    last_shown_ = shown_;
  }
  return res;
}

void ReconstructionTap::Save(CheckpointWriter& w) const {
  inner_->Save(w);
  SaveAuditTotals(w, "audit/reconstruction", {rounds_, total_attacked_, total_exact_}, total_psnr_, last_shown_);
}

void ReconstructionTap::Load(const CheckpointReader& r) {
  inner_->Load(r);
  std::vector<int64_t> c(3);
  if (LoadAuditTotals(r, "audit/reconstruction", c, total_psnr_, last_shown_)) {
    rounds_ = c[0];
    total_attacked_ = c[1];
    total_exact_ = c[2];
  }
}

nlohmann::json ReconstructionTap::RoundRecord() const {
  nlohmann::json j = {{"attacked", attacked_},
                      {"exact", exact_},
                      {"mean_psnr", attacked_ ? nlohmann::json(psnr_sum_ / attacked_) : nlohmann::json(nullptr)},
                      {"max_psnr", attacked_ ? nlohmann::json(psnr_max_) : nlohmann::json(nullptr)},
                      {"view", secure_ ? "sum" : "each upload"}};
  return j;
}

nlohmann::json ReconstructionTap::Summary() const {
  return {{"view", secure_ ? "the cohort's sum (secure aggregation)" : "each client's upload"},
          {"rounds", rounds_},
          {"attacked", total_attacked_},
          {"exact", total_exact_},
          {"exact_fraction", total_attacked_ ? nlohmann::json(static_cast<double>(total_exact_) / total_attacked_)
                                             : nlohmann::json(nullptr)},
          {"mean_psnr", total_attacked_ ? nlohmann::json(total_psnr_ / total_attacked_) : nlohmann::json(nullptr)}};
}

bool ReconstructionTap::WriteGrid(const std::string& path) const {
  return WriteReconstructionGrid(train_, last_shown_, path);
}

}  // namespace fedsim
