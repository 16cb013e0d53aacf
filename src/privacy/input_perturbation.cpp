#include "privacy/input_perturbation.h"

#include <cmath>

#include "core/rng.h"
#include "privacy/mechanisms.h"

namespace fedsim {

nlohmann::json PerturbTrainingData(Dataset& train, const Partition& partition, const InputPerturbationConfig& cfg,
                                   double delta, uint64_t seed) {
  const bool features = cfg.features != "none";
  const bool labels = cfg.label_epsilon.has_value();
  nlohmann::json g = {{"feature_epsilon", 0.0}, {"label_epsilon", 0.0}, {"epsilon", 0.0}, {"delta", 0.0}};
  if (!features && !labels) return g;
  if (features && train.byte_storage) {
    train.x = train.Dense();
    train.bytes.clear();
    train.bytes.shrink_to_fit();
    train.byte_storage = false;
  }
  const int d = train.dim();
  const double c = cfg.feature_clip;
  for (size_t k = 0; k < partition.size(); ++k) {
    // A round id no training round uses, so this noise is independent of the
    // per-round DP noise of the same client.
    Rng rng = DeriveStream(seed, Stream::kPrivacy, ~uint64_t{0} - 1, k);
    for (int row : partition[k]) {
      if (features) {
        float* x = train.x.data() + static_cast<int64_t>(row) * d;
        Eigen::Map<Eigen::VectorXf> v(x, d);
        if (cfg.features == "gaussian") {
          const double norm = v.cast<double>().norm();
          if (norm > c) v *= static_cast<float>(c / norm);
          while (v.cast<double>().norm() > c) v *= 1.0f - 1e-7f;  // float rounding
          AddGaussianNoise(x, d, cfg.feature_noise, rng);
        } else {
          const double norm = v.cast<double>().lpNorm<1>();
          if (norm > c) v *= static_cast<float>(c / norm);
          while (v.cast<double>().lpNorm<1>() > c) v *= 1.0f - 1e-7f;  // float rounding
          AddLaplaceNoise(x, d, cfg.feature_noise, rng);
        }
      }
      if (labels) {
        int& y = train.y[static_cast<size_t>(row)];
        y = RandomizedResponse(y, train.num_classes, *cfg.label_epsilon, rng);
      }
    }
  }
  double eps_f = 0.0, delta_f = 0.0;
  if (features) {
    if (cfg.feature_noise <= 0.0) {
      eps_f = INFINITY;
    } else if (cfg.features == "gaussian") {
      eps_f = GaussianMechanismEpsilon(2.0 * c, cfg.feature_noise, delta);
      delta_f = delta;
    } else {
      eps_f = LaplaceMechanismEpsilon(2.0 * c, cfg.feature_noise);
    }
  }
  const double eps_l = labels ? *cfg.label_epsilon : 0.0;
  g["feature_epsilon"] = std::isfinite(eps_f) ? nlohmann::json(eps_f) : nlohmann::json(nullptr);
  g["label_epsilon"] = eps_l;
  g["epsilon"] = std::isfinite(eps_f) ? nlohmann::json(eps_f + eps_l) : nlohmann::json(nullptr);
  g["delta"] = delta_f;
  return g;
}

}  // namespace fedsim
