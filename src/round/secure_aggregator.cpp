// The secure aggregator: SecAgg / SecAgg+ (pairwise masks) or real Paillier
// sums the cohort's fixed-point uploads (secure/secure_sum.h); the server
// learns only the sum over the clients that made it through the protocol.
//
// Weighting (secure_aggregation.weighting):
//   samples  FedAvg's weighted mean sum_k w_k u_k / sum_k w_k, kept under the
//            secure sum: client k submits (w_k / B) u_k and, as one extra
//            coordinate, (w_k / B) r, where B is a public bound on the
//            weights (the largest client's sample count) and r the
//            fixed-point range; the server decodes both sums and divides.
//            Cost: one more coordinate per client (bits / 8 bytes with SecAgg,
//            a share of a ciphertext slot with Paillier). The result equals
//            the plain weighted mean up to fixed-point rounding when no
//            scaled coordinate exceeds the range; a client's rounding error
//            is one quantisation step of the scaled value, so small clients
//            are represented less finely than large ones.
//            When every weight is 1 (B = 1: SCAFFOLD, FedDyn, FedGiA,
//            clipped DP updates, FedBuff's uniform weighting) the count of
//            included clients is the exact denominator and no weight
//            coordinate is sent.
//   uniform  every included client counts once: the plain mean of the
//            survivors' updates (what the server can compute from the sum
//            alone, and fedsim's only behaviour before this option).
//
// Too few clients left for the threshold (SecAggError): with
// secure_aggregation.on_failure = skip_round nothing half-aggregated reaches
// the model (the result is `failed`), with stop the run ends (RunError).
#include <fmt/format.h>

#include "core/error.h"
#include "core/parallel.h"
#include "round/aggregator.h"
#include "secure/secure_error.h"
#include "secure/secure_sum.h"

namespace fedsim {
namespace {

class SecureAggregator : public Aggregator {
 public:
  SecureAggregator(const Config& cfg, int64_t upload_size, int max_cohort, int threads, double weight_bound)
      : weighted_(cfg.secure_aggregation.weighting == "samples" && weight_bound > 1.0),
        dim_(upload_size + (weighted_ ? 1 : 0)),
        secure_(cfg.secure_aggregation, cfg.encryption, dim_, max_cohort, threads, cfg.experiment.seed),
        acc_(upload_size),
        wide_(weighted_ ? dim_ : 0),
        scaled_(static_cast<size_t>(weighted_ ? threads : 0), Eigen::VectorXf(dim_)),
        weight_bound_(weight_bound),
        range_(cfg.secure_aggregation.enabled ? cfg.secure_aggregation.range : cfg.encryption.range),
        threads_(threads),
        upload_bytes_(upload_size * static_cast<int64_t>(sizeof(float))),
        stop_on_failure_(cfg.secure_aggregation.on_failure == "stop"),
        record_key_(cfg.secure_aggregation.enabled ? "secure_aggregation" : "encryption") {}
  std::string name() const override { return weighted_ ? "secure_weighted" : "secure"; }

  void Begin(int round, int cohort) override {
    round_ = round;
    failed_ = false;
    acc_.setZero();
    if (weighted_) wide_.setZero();
    Guard([&] { secure_.BeginRound(round, cohort); });
  }

  void AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb, const std::vector<ClientReport>& reports,
                const std::vector<char>& keep) override {
    if (failed_) return;
    ParallelFor(nb, threads_, [&](int64_t i, int tid) {
      const size_t at = static_cast<size_t>(b0) + static_cast<size_t>(i);
      if (!keep[at] || !secure_.Wants(static_cast<int>(at))) return;
      if (!weighted_) {
        secure_.Submit(static_cast<int>(at), uploads.col(i).data(), tid);
        return;
      }
      const double w = reports[at].weight;
      if (!(w >= 0.0 && w <= weight_bound_)) {
        throw RunError(fmt::format("secure aggregation: client weight {} outside the public bound [0, {}]", w,
                                   weight_bound_));
      }
      Eigen::VectorXf& x = scaled_[static_cast<size_t>(tid)];
      const float s = static_cast<float>(w / weight_bound_);
      x.head(dim_ - 1) = s * uploads.col(i);
      x[dim_ - 1] = static_cast<float>(w / weight_bound_ * range_);
      secure_.Submit(static_cast<int>(at), x.data(), tid);
    });
  }

  AggregateResult Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) override {
    AggregateResult res;
    res.sum = &acc_;
    res.record_key = record_key_;
    std::vector<int> included;
    if (!failed_) Guard([&] { included = secure_.Finish(weighted_ ? wide_ : acc_); });
    // Only the clients in the protocol's sum count; the others dropped.
    std::vector<char> in(keep.size(), 0);
    if (!failed_) {
      for (int i : included) in[static_cast<size_t>(i)] = 1;
    }
    for (size_t i = 0; i < keep.size(); ++i) keep[i] = keep[i] && in[i];
    if (weighted_) {
      // The decoded sums, sum_k (w_k / B) u_k and sum_k (w_k / B) r, back in
      // the plain aggregator's units: sum_k w_k u_k and sum_k w_k.
      if (!failed_) {
        acc_ = weight_bound_ * wide_.head(dim_ - 1);
        res.denominator = weight_bound_ * wide_[dim_ - 1] / range_;
      }
    } else {
      // The server learns only the sum: every included client counts once.
      for (ClientReport& r : reports) r.weight = 1.0;
      for (size_t i = 0; i < keep.size(); ++i) res.denominator += keep[i] ? 1.0 : 0.0;
    }
    res.round_trips = 3;
    if (failed_) {
      // No protocol result: the uploads count at their plain size.
      res.failed = true;
      res.record = {{"failed", true}};
      for (const ClientReport& r : reports) res.bytes_up += r.bytes_up >= 0 ? r.bytes_up : upload_bytes_;
    } else {
      res.record = secure_.RoundMetrics();
      res.bytes_up = secure_.RoundBytesUp();
      res.bytes_down = secure_.RoundBytesDown();
    }
    // The clock charges each member an equal share of the round's bytes.
    const int64_t share = reports.empty() ? 0 : res.bytes_up / static_cast<int64_t>(reports.size());
    res.member_bytes_up.assign(reports.size(), share);
    return res;
  }

 private:
  template <class F>
  void Guard(F&& f) {
    try {
      f();
    } catch (const SecAggError& e) {
      if (stop_on_failure_) throw RunError(fmt::format("round {}: {}", round_ + 1, e.what()));
      failed_ = true;
    }
  }

  bool weighted_;
  int64_t dim_;  // floats submitted per client: the upload, and the weight when weighted
  SecureSum secure_;
  Eigen::VectorXd acc_;                 // the sum of the uploads (weighted: of the scaled uploads)
  Eigen::VectorXd wide_;                // weighted: the protocol's sum of [scaled upload, scaled weight]
  std::vector<Eigen::VectorXf> scaled_;  // weighted: per thread, the client's scaled input
  double weight_bound_, range_;
  int threads_;
  int64_t upload_bytes_;
  bool stop_on_failure_;
  std::string record_key_;
  int round_ = 0;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<Aggregator> MakeSecureAggregator(const Config& cfg, int64_t upload_size, int max_cohort, int threads,
                                                 double weight_bound) {
  return std::make_unique<SecureAggregator>(cfg, upload_size, max_cohort, threads, weight_bound);
}

}  // namespace fedsim
