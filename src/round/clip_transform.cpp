// Clipping: every client's update is scaled so that its norm is at most
// privacy.clip_norm (L2; L1 for local DP with the Laplace mechanism, whose
// sensitivity is an L1 bound), and every client counts the same in the mean
// (weight 1): the sensitivity that central and local DP calibrate their
// noise to (McMahan et al. 2018, DP-FedAvg).
#include <Eigen/Core>

#include "privacy/mechanisms.h"
#include "round/upload_transform.h"

namespace fedsim {
namespace {

// Scales v so its L1 norm is at most bound; returns the norm before.
double ClipL1(float* v, int64_t n, double bound) {
  Eigen::Map<Eigen::VectorXf> m(v, n);
  const double norm = m.cast<double>().lpNorm<1>();
  if (norm > bound) {
    m *= static_cast<float>(bound / norm);
    // Float rounding can leave the norm a few ulps above the bound: shrink
    // until it holds, so the sensitivity the noise assumes is exact.
    while (m.cast<double>().lpNorm<1>() > bound) m *= 1.0f - 1e-7f;
  }
  return norm;
}

class ClipTransform : public UploadTransform {
 public:
  ClipTransform(double clip_norm, bool l1) : clip_norm_(clip_norm), l1_(l1) {}
  std::string name() const override { return "clip"; }

  void Apply(ClientUpload& u) const override {
    u.report->weight = 1.0;
    // A non-finite update is dropped later; its norm means nothing.
    if (!Eigen::Map<const Eigen::VectorXf>(u.values, u.size).allFinite()) return;
    u.report->update_norm = l1_ ? ClipL1(u.values, u.size, clip_norm_) : ClipL2(u.values, u.size, clip_norm_);
  }

  bool uniform_weights() const override { return true; }
  std::vector<std::string> flat_keys() const override { return {"clip_fraction", "mean_update_norm"}; }

  nlohmann::json RoundMetrics(const std::vector<ClientReport>& reports) const override {
    int64_t clipped = 0;
    double norm_sum = 0.0;
    for (const ClientReport& r : reports) {
      clipped += r.update_norm > clip_norm_;
      norm_sum += r.update_norm;
    }
    const double n = static_cast<double>(reports.size());
    return {{"clip_fraction", reports.empty() ? 0.0 : static_cast<double>(clipped) / n},
            {"mean_update_norm", reports.empty() ? 0.0 : norm_sum / n},
            {"norm", l1_ ? "l1" : "l2"},
            {"clip_norm", clip_norm_}};
  }

 private:
  double clip_norm_;
  bool l1_;
};

}  // namespace

std::unique_ptr<UploadTransform> MakeClipTransform(const PrivacyConfig& pc) {
  return std::make_unique<ClipTransform>(pc.clip_norm, pc.mode == "local" && pc.mechanism == "laplace");
}

}  // namespace fedsim
