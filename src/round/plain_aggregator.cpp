// The plain aggregator: sum_k w_k u_k in float64, member by member in cohort
// order, the coordinates split over threads in spans (each coordinate is
// still summed in cohort order, so the bits do not depend on the threads).
#include <algorithm>

#include "core/parallel.h"
#include "round/aggregator.h"
#include "secure/secure_sum.h"

namespace fedsim {
namespace {

// Coordinates per task when summing uploads in parallel.
constexpr int64_t kReduceSpan = 1 << 14;

class PlainAggregator : public Aggregator {
 public:
  PlainAggregator(const Config& cfg, int64_t upload_size, int max_cohort, int threads)
      : acc_(upload_size), threads_(threads), upload_bytes_(upload_size * static_cast<int64_t>(sizeof(float))) {
    // A cost-model HE scheme sums in the clear and reports what it would cost.
    auto cost = std::make_unique<SecureSum>(cfg.secure_aggregation, cfg.encryption, upload_size, max_cohort, threads,
                                            cfg.experiment.seed);
    if (cost->active()) cost_model_ = std::move(cost);
  }
  std::string name() const override { return "plain"; }

  void Begin(int, int) override { acc_.setZero(); }

  void AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb, const std::vector<ClientReport>& reports,
                const std::vector<char>& keep) override {
    const int64_t n = acc_.size();
    ParallelFor((n + kReduceSpan - 1) / kReduceSpan, threads_, [&](int64_t s, int) {
      const int64_t lo = s * kReduceSpan, len = std::min(kReduceSpan, n - lo);
      auto a = acc_.segment(lo, len);
      for (int i = 0; i < nb; ++i) {
        const size_t at = static_cast<size_t>(b0 + i);
        if (!keep[at]) continue;
        a += reports[at].weight * uploads.col(i).segment(lo, len).cast<double>();
      }
    });
  }

  AggregateResult Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) override {
    AggregateResult res;
    res.sum = &acc_;
    res.member_bytes_up.resize(reports.size());
    for (size_t i = 0; i < reports.size(); ++i) {
      res.member_bytes_up[i] = reports[i].bytes_up >= 0 ? reports[i].bytes_up : upload_bytes_;
      res.bytes_up += res.member_bytes_up[i];
      if (keep[i]) res.denominator += reports[i].weight;
    }
    if (cost_model_) {
      res.record = cost_model_->ModelledCost(static_cast<int>(reports.size()));
      res.record_key = "encryption";
    }
    return res;
  }

 private:
  Eigen::VectorXd acc_;
  int threads_;
  int64_t upload_bytes_;
  std::unique_ptr<SecureSum> cost_model_;
};

}  // namespace

std::unique_ptr<Aggregator> MakePlainAggregator(const Config& cfg, int64_t upload_size, int max_cohort, int threads) {
  return std::make_unique<PlainAggregator>(cfg, upload_size, max_cohort, threads);
}

bool SecureAggregation(const Config& cfg) { return SecureSum::Protocol(cfg.secure_aggregation, cfg.encryption); }
bool ServerSeesOnlySum(const Config& cfg) { return SecureAggregation(cfg) || cfg.encryption.scheme != "none"; }

std::unique_ptr<Aggregator> MakeAggregator(const Config& cfg, int64_t upload_size, int max_cohort, int threads,
                                           double weight_bound) {
  if (SecureAggregation(cfg)) return MakeSecureAggregator(cfg, upload_size, max_cohort, threads, weight_bound);
  return MakePlainAggregator(cfg, upload_size, max_cohort, threads);
}

}  // namespace fedsim
