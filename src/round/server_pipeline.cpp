#include "round/server_pipeline.h"

#include "core/rng.h"

namespace fedsim {
namespace {

// The server's noise stream id (clients use their own ids).
constexpr uint64_t kServerStream = ~uint64_t{0};

}  // namespace

ServerPipeline::ServerPipeline(const Config& cfg, double noise_multiplier, double sampling_rate, int num_clients)
    : central_(cfg.privacy.mode == "central"),
      noise_std_(noise_multiplier * cfg.privacy.clip_norm),
      denominator_(sampling_rate * num_clients),
      seed_(cfg.experiment.seed) {}

ServerPipeline::Outcome ServerPipeline::Run(int round, AggregateResult* agg, const CohortResult& cohort, bool stop,
                                            ClientTrainer& trainer, CohortExchange& exchange,
                                            Eigen::VectorXf& global) {
  Outcome out;
  // Rank 0 decides; the exchange tells the others.
  if (agg) out.released = central_ ? !agg->failed : agg->denominator > 0.0;
  bool apply = out.released && !stop;
  std::vector<ClientReport> kept;
  if (apply && agg) {
    for (size_t i = 0; i < cohort.reports.size(); ++i) {
      if (cohort.keep[i]) kept.push_back(cohort.reports[i]);
    }
    Eigen::VectorXd& sum = *agg->sum;
    double denominator = agg->denominator;
    if (central_) {
      Rng noise = DeriveStream(seed_, Stream::kPrivacy, static_cast<uint64_t>(round), kServerStream);
      for (int64_t j = 0; j < sum.size(); ++j) sum[j] += noise_std_ * noise.Normal();
      denominator = denominator_;
    }
    mean_ = (sum / denominator).cast<float>();
  }
  exchange.ShareServerInput(apply, mean_, kept);
  if (apply) {
    trainer.ServerUpdate(global, mean_, kept, round);
    out.diverged = !global.allFinite();
  }
  out.applied = apply;
  return out;
}

nlohmann::json ServerPipeline::NoiseRecord() const {
  return {{"noise_std", noise_std_}, {"denominator", denominator_}};
}

}  // namespace fedsim
