#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "privacy/mechanisms.h"
#include "privacy/rdp_accountant.h"

using fedsim::InputError;
using fedsim::Rng;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Moments {
  double mean, variance;
};

Moments SampleMoments(const std::vector<float>& v) {
  double sum = 0.0;
  for (float x : v) sum += x;
  const double mean = sum / v.size();
  double ss = 0.0;
  for (float x : v) ss += (x - mean) * (x - mean);
  return {mean, ss / (v.size() - 1)};
}

// Standard normal CDF, straight from the definition via erfc (no log space).
double Phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

}  // namespace

TEST_CASE("mechanisms: ClipL2 bounds the norm", "[privacy][mechanisms]") {
  std::vector<float> v = {3.0f, 4.0f, 0.0f};
  CHECK(fedsim::ClipL2(v.data(), 3, 1.0) == 5.0);
  CHECK(v[0] == Approx(0.6).epsilon(1e-6));
  CHECK(v[1] == Approx(0.8).epsilon(1e-6));
  CHECK(v[2] == 0.0f);
  CHECK(fedsim::L2Norm(v.data(), 3) <= 1.0);

  // -2, 2, -2, 2, 1: norm sqrt(17); clip to 2.
  std::vector<float> w = {-2.0f, 2.0f, -2.0f, 2.0f, 1.0f};
  CHECK(fedsim::ClipL2(w.data(), 5, 2.0) == Approx(std::sqrt(17.0)).epsilon(1e-15));
  CHECK(w[0] == Approx(-4.0 / std::sqrt(17.0)).epsilon(1e-6));
  CHECK(w[4] == Approx(2.0 / std::sqrt(17.0)).epsilon(1e-6));
  CHECK(fedsim::L2Norm(w.data(), 5) <= 2.0);
  CHECK(fedsim::L2Norm(w.data(), 5) == Approx(2.0).epsilon(1e-6));

  // Many random vectors: the bound holds exactly, never just up to rounding.
  Rng rng(7);
  for (int t = 0; t < 200; ++t) {
    std::vector<float> u(1 + rng.UniformInt(300));
    for (float& x : u) x = static_cast<float>(rng.Normal(0.0, 3.0));
    const double clip = rng.Uniform(0.01, 2.0);
    fedsim::ClipL2(u.data(), static_cast<int64_t>(u.size()), clip);
    const double after = fedsim::L2Norm(u.data(), static_cast<int64_t>(u.size()));
    CHECK(after <= clip);
    CHECK(after >= clip * (1.0 - 1e-6));
  }
}

TEST_CASE("mechanisms: ClipL2 leaves short vectors bit-identical", "[privacy][mechanisms]") {
  const std::vector<float> original = {0.1f, -0.2f, 0.3f};
  std::vector<float> v = original;
  CHECK(fedsim::ClipL2(v.data(), 3, 1.0) == Approx(std::sqrt(0.14)).epsilon(1e-6));
  CHECK(std::memcmp(v.data(), original.data(), sizeof(float) * 3) == 0);

  std::vector<float> big = {1e6f, -3e7f};
  const std::vector<float> big_copy = big;
  fedsim::ClipL2(big.data(), 2, kInf);
  CHECK(std::memcmp(big.data(), big_copy.data(), sizeof(float) * 2) == 0);

  // Exactly on the boundary counts as inside.
  std::vector<float> edge = {3.0f, 4.0f};
  fedsim::ClipL2(edge.data(), 2, 5.0);
  CHECK(edge[0] == 3.0f);
  CHECK(edge[1] == 4.0f);

  CHECK(fedsim::ClipL2(nullptr, 0, 1.0) == 0.0);
  CHECK_THROWS_AS(fedsim::ClipL2(v.data(), 3, 0.0), InputError);
  CHECK_THROWS_WITH(fedsim::ClipL2(v.data(), 3, -1.0), Catch::Contains("clip_norm"));
  std::vector<float> bad = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_AS(fedsim::ClipL2(bad.data(), 2, 1.0), InputError);
}

TEST_CASE("mechanisms: Gaussian noise has the configured moments", "[privacy][mechanisms]") {
  const int n = 1000000;
  const double stddev = 2.5;
  std::vector<float> v(n, 0.0f);
  Rng rng(20240601);
  fedsim::AddGaussianNoise(v.data(), n, stddev, rng);
  const Moments m = SampleMoments(v);
  CHECK(std::sqrt(m.variance) == Approx(stddev).epsilon(0.005));
  CHECK(std::fabs(m.mean) < 4.0 * stddev / std::sqrt(static_cast<double>(n)));

  // Deterministic given the seed.
  std::vector<float> again(n, 0.0f);
  Rng rng2(20240601);
  fedsim::AddGaussianNoise(again.data(), n, stddev, rng2);
  CHECK(again == v);

  std::vector<float> same(4, 1.5f);
  Rng r3(1);
  fedsim::AddGaussianNoise(same.data(), 4, 0.0, r3);
  CHECK(same == std::vector<float>(4, 1.5f));
  CHECK_THROWS_AS(fedsim::AddGaussianNoise(same.data(), 4, -1.0, r3), InputError);
  CHECK_THROWS_WITH(fedsim::AddGaussianNoise(same.data(), 4, kInf, r3), Catch::Contains("stddev"));
}

TEST_CASE("mechanisms: Laplace noise has variance 2 b^2", "[privacy][mechanisms]") {
  const int n = 1000000;
  const double b = 0.7;
  std::vector<float> v(n, 0.0f);
  Rng rng(99);
  fedsim::AddLaplaceNoise(v.data(), n, b, rng);
  const Moments m = SampleMoments(v);
  CHECK(m.variance == Approx(2.0 * b * b).epsilon(0.01));
  CHECK(std::fabs(m.mean) < 4.0 * std::sqrt(2.0) * b / std::sqrt(static_cast<double>(n)));
  // P(|X| > b) = e^-1 for Laplace(0, b).
  int beyond = 0;
  for (float x : v) beyond += std::fabs(x) > b;
  const double p = std::exp(-1.0);
  CHECK(std::fabs(beyond - n * p) < 4.0 * std::sqrt(n * p * (1.0 - p)));

  CHECK_THROWS_WITH(fedsim::AddLaplaceNoise(v.data(), n, -0.1, rng), Catch::Contains("scale"));
}

TEST_CASE("mechanisms: randomised response keeps labels at the stated rate",
          "[privacy][mechanisms]") {
  const int n = 200000;
  const int num_classes = 10;
  const double epsilon = 1.0;
  const int label = 3;
  const double keep = std::exp(epsilon) / (std::exp(epsilon) + num_classes - 1);
  CHECK(fedsim::RandomizedResponseKeepProbability(num_classes, epsilon) ==
        Approx(keep).epsilon(1e-15));

  Rng rng(5);
  std::vector<int> counts(num_classes, 0);
  for (int i = 0; i < n; ++i)
    ++counts[fedsim::RandomizedResponse(label, num_classes, epsilon, rng)];
  CHECK(std::fabs(counts[label] - n * keep) < 4.0 * std::sqrt(n * keep * (1.0 - keep)));
  const double other = (1.0 - keep) / (num_classes - 1);
  for (int c = 0; c < num_classes; ++c) {
    if (c == label) continue;
    INFO("class " << c);
    CHECK(std::fabs(counts[c] - n * other) < 4.0 * std::sqrt(n * other * (1.0 - other)));
  }

  // Its epsilon: the likelihood ratio between keeping and any one flip.
  CHECK(fedsim::RandomizedResponseEpsilon(num_classes, keep) == Approx(epsilon).epsilon(1e-12));
  CHECK(fedsim::RandomizedResponseKeepProbability(2, std::log(3.0)) == Approx(0.75).epsilon(1e-15));
  CHECK(fedsim::RandomizedResponseEpsilon(2, 0.75) == Approx(std::log(3.0)).epsilon(1e-15));
  CHECK(fedsim::RandomizedResponseEpsilon(4, 0.25) == 0.0);  // uniform output: no information
  CHECK(fedsim::RandomizedResponse(0, 2, kInf, rng) == 0);
  CHECK_THROWS_AS(fedsim::RandomizedResponse(10, 10, 1.0, rng), InputError);
  CHECK_THROWS_AS(fedsim::RandomizedResponse(0, 1, 1.0, rng), InputError);
  CHECK_THROWS_WITH(fedsim::RandomizedResponse(0, 3, -1.0, rng), Catch::Contains("epsilon"));
}

TEST_CASE("mechanisms: Laplace mechanism epsilon in closed form", "[privacy][mechanisms]") {
  CHECK(fedsim::LaplaceMechanismEpsilon(2.0, 0.5) == 4.0);
  CHECK(fedsim::LaplaceMechanismEpsilon(1.0, 4.0) == 0.25);
  CHECK(fedsim::LaplaceMechanismEpsilon(0.0, 0.0) == 0.0);
  CHECK(fedsim::LaplaceMechanismEpsilon(1.0, 0.0) == kInf);
  CHECK(fedsim::LaplaceMechanismScale(3.0, 1.5) == 2.0);
  CHECK_THROWS_WITH(fedsim::LaplaceMechanismEpsilon(-1.0, 1.0), Catch::Contains("l1_sensitivity"));
  CHECK_THROWS_AS(fedsim::LaplaceMechanismScale(1.0, 0.0), InputError);
}

TEST_CASE("mechanisms: analytic Gaussian mechanism", "[privacy][mechanisms]") {
  // Balle & Wang (2018), Thm. 8: N(0, sigma^2) noise on sensitivity 1 is
  // (eps, delta)-DP iff Phi(1/(2 sigma) - eps sigma) - e^eps Phi(-1/(2 sigma) - eps sigma) <=
  // delta.
  auto exact_delta = [](double sigma, double eps) {
    return Phi(0.5 / sigma - eps * sigma) - std::exp(eps) * Phi(-0.5 / sigma - eps * sigma);
  };

  // sigma for (1, 1e-5) with sensitivity 1: 3.7306316348 (root of the condition
  // above solved with SciPy's norm.logcdf and brentq at xtol 1e-14); the
  // classic sqrt(2 log(1.25/delta)) / eps calibration needs 4.84.
  const double sigma = fedsim::GaussianMechanismSigma(1.0, 1.0, 1e-5);
  CHECK(sigma == Approx(3.730631634815948).epsilon(1e-9));
  CHECK(sigma < std::sqrt(2.0 * std::log(1.25 / 1e-5)));
  CHECK(exact_delta(sigma, 1.0) == Approx(1e-5).epsilon(1e-6));
  CHECK(fedsim::GaussianMechanismEpsilon(1.0, 3.730631634815948, 1e-5) ==
        Approx(1.0).epsilon(1e-9));

  struct Case {
    double sigma, delta, epsilon;  // epsilon from the same SciPy computation
  };
  for (const Case& c : {Case{2.0, 1e-5, 1.9930914044151193}, Case{0.8, 1e-5, 5.679586855097569}}) {
    const double eps = fedsim::GaussianMechanismEpsilon(1.0, c.sigma, c.delta);
    INFO("sigma=" << c.sigma);
    CHECK(eps == Approx(c.epsilon).epsilon(1e-9));
    CHECK(exact_delta(c.sigma, eps) == Approx(c.delta).epsilon(1e-6));
    CHECK(exact_delta(c.sigma, eps * (1.0 - 1e-4)) > c.delta);
  }
  CHECK(fedsim::GaussianMechanismSigma(1.0, 0.5, 1e-6) == Approx(8.057618480725043).epsilon(1e-9));

  // Only the ratio sigma / sensitivity matters.
  CHECK(fedsim::GaussianMechanismEpsilon(3.0, 6.0, 1e-5) ==
        Approx(fedsim::GaussianMechanismEpsilon(1.0, 2.0, 1e-5)).epsilon(1e-12));
  CHECK(fedsim::GaussianMechanismSigma(3.0, 1.0, 1e-5) == Approx(3.0 * sigma).epsilon(1e-12));

  // Tighter than the RDP route for the same single release (2.1657 with
  // Opacus' orders and the improved conversion).
  const std::vector<double> orders = fedsim::DefaultOrders();
  const double rdp_eps = fedsim::GetEpsilon(orders, fedsim::ComputeRdp(1.0, 2.0, 1, orders), 1e-5,
                                            fedsim::Conversion::kImproved)
                             .epsilon;
  CHECK(rdp_eps == Approx(2.1657156590294435).epsilon(1e-10));
  CHECK(fedsim::GaussianMechanismEpsilon(1.0, 2.0, 1e-5) < rdp_eps);

  // Edge cases.
  CHECK(fedsim::GaussianMechanismEpsilon(0.0, 1.0, 1e-5) == 0.0);
  CHECK(fedsim::GaussianMechanismEpsilon(1.0, 0.0, 1e-5) == kInf);
  CHECK(fedsim::GaussianMechanismEpsilon(1.0, kInf, 1e-5) == 0.0);
  // (0, delta) holds once 2 Phi(1/(2 sigma)) - 1 <= delta: about 4e-6 at sigma = 1e5.
  CHECK(fedsim::GaussianMechanismEpsilon(1.0, 1e5, 1e-5) == 0.0);
  CHECK(fedsim::GaussianMechanismEpsilon(1.0, 1e4, 1e-5) > 0.0);
  CHECK(fedsim::GaussianMechanismEpsilon(1.0, 0.05, 1e-5) > 100.0);
  CHECK(std::isfinite(fedsim::GaussianMechanismEpsilon(1.0, 0.05, 1e-5)));
  CHECK_THROWS_WITH(fedsim::GaussianMechanismEpsilon(1.0, 1.0, 0.0), Catch::Contains("delta"));
  CHECK_THROWS_WITH(fedsim::GaussianMechanismEpsilon(1.0, -1.0, 1e-5),
                    Catch::Contains("sigma_abs"));
  CHECK_THROWS_WITH(fedsim::GaussianMechanismSigma(-1.0, 1.0, 1e-5),
                    Catch::Contains("l2_sensitivity"));
}
