// Local differential privacy: each client adds noise to its clipped update
// before it leaves the device, Gaussian with standard deviation z C or
// Laplace with scale z C per coordinate (z = noise_multiplier, C = clip_norm;
// docs/privacy.md). The noise of client k in round t comes from the stream
// (seed, kPrivacy, t, k).
#include "core/rng.h"
#include "privacy/mechanisms.h"
#include "round/upload_transform.h"

namespace fedsim {
namespace {

class LocalNoiseTransform : public UploadTransform {
 public:
  LocalNoiseTransform(double scale, bool laplace, uint64_t seed) : scale_(scale), laplace_(laplace), seed_(seed) {}
  std::string name() const override { return "local_noise"; }

  void Apply(ClientUpload& u) const override {
    Rng noise = DeriveStream(seed_, Stream::kPrivacy, static_cast<uint64_t>(u.round), static_cast<uint64_t>(u.client));
    if (laplace_) {
      AddLaplaceNoise(u.values, u.size, scale_, noise);
    } else {
      AddGaussianNoise(u.values, u.size, scale_, noise);
    }
  }

  nlohmann::json RoundMetrics(const std::vector<ClientReport>&) const override {
    return {{"mechanism", laplace_ ? "laplace" : "gaussian"}, {"scale", scale_}};
  }

 private:
  double scale_;
  bool laplace_;
  uint64_t seed_;
};

}  // namespace

std::unique_ptr<UploadTransform> MakeLocalNoiseTransform(const PrivacyConfig& pc, double noise_multiplier,
                                                         uint64_t seed) {
  return std::make_unique<LocalNoiseTransform>(noise_multiplier * pc.clip_norm, pc.mechanism == "laplace", seed);
}

}  // namespace fedsim
