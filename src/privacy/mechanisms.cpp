#include "privacy/mechanisms.h"

#include <cmath>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "core/error.h"
#include "core/fmath.h"
#include "privacy/log_math.h"

namespace fedsim {
namespace {

// Shortest round-trip form of a number, for error messages.
std::string Num(double x) { return fmt::format("{}", x); }

constexpr double kInf = std::numeric_limits<double>::infinity();
// Relative tolerance of the analytic-Gaussian solvers.
constexpr double kSolveRelTol = 1e-12;

void CheckBuffer(const char* fn, const float* v, int64_t n) {
  if (n < 0) throw InputError(std::string(fn) + ": n must be >= 0, got " + Num(n));
  if (n > 0 && v == nullptr) throw InputError(std::string(fn) + ": v is null but n = " + Num(n));
}

void CheckFiniteNonNegative(const char* fn, const char* name, double x) {
  if (!(x >= 0.0 && std::isfinite(x)))
    throw InputError(std::string(fn) + ": " + name + " must be finite and >= 0, got " + Num(x));
}

void CheckNonNegative(const char* fn, const char* name, double x) {
  if (!(x >= 0.0)) throw InputError(std::string(fn) + ": " + name + " must be >= 0, got " + Num(x));
}

void CheckDelta(const char* fn, double delta) {
  if (!(delta > 0.0 && delta < 1.0))
    throw InputError(std::string(fn) + ": delta must be in (0, 1), got " + Num(delta));
}

// log of the smallest delta for which noise multiplier s (sigma / sensitivity)
// is (eps, delta)-DP: log(Phi(1/(2s) - eps s) - e^eps Phi(-1/(2s) - eps s))
// (Balle & Wang 2018, Thm. 8); -infinity when the difference rounds to <= 0.
double AnalyticGaussianLogDelta(double s, double eps) {
  const double half_inv = 0.5 / s;
  const double x = log_math::LogNormalCdf(half_inv - eps * s);
  const double y = eps + log_math::LogNormalCdf(-half_inv - eps * s);
  if (!(y < x)) return -kInf;
  return x + fm::Log1p(-fm::Exp(y - x));
}

// Laplace(0, scale) by inverting its CDF; 2u and 2(1 - u) are formed without
// cancellation.
double LaplaceDraw(double scale, Rng& rng) {
  double u = rng.Uniform();
  while (u == 0.0) u = rng.Uniform();
  return u < 0.5 ? scale * fm::Log(2.0 * u) : -scale * fm::Log(2.0 * (1.0 - u));
}

}  // namespace

double L2Norm(const float* v, int64_t n) {
  CheckBuffer("L2Norm", v, n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = v[i];
    sum += x * x;
  }
  return std::sqrt(sum);
}

double ClipL2(float* v, int64_t n, double clip_norm) {
  CheckBuffer("ClipL2", v, n);
  if (!(clip_norm > 0.0)) throw InputError("ClipL2: clip_norm must be > 0, got " + Num(clip_norm));
  const double norm = L2Norm(v, n);
  if (!std::isfinite(norm))
    throw InputError("ClipL2: v has a non-finite entry (norm " + Num(norm) + ")");
  if (norm <= clip_norm) return norm;

  const double scale = clip_norm / norm;
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] * scale);
  // Rounding to float moves each entry by at most 2^-24 relative, so the norm
  // can land a few ulps above clip_norm. Shrinking by 2^-23 lowers every
  // nonzero normal entry by at least one ulp; one pass almost always suffices.
  for (int pass = 0; L2Norm(v, n) > clip_norm; ++pass) {
    if (pass == 64) throw RunError("ClipL2: could not bring the norm under clip_norm");
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] * (1.0 - 0x1.0p-23));
  }
  return norm;
}

void AddGaussianNoise(float* v, int64_t n, double stddev, Rng& rng) {
  CheckBuffer("AddGaussianNoise", v, n);
  CheckFiniteNonNegative("AddGaussianNoise", "stddev", stddev);
  if (stddev == 0.0) return;
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] + stddev * rng.Normal());
}

double SampleLaplace(double scale, Rng& rng) {
  CheckFiniteNonNegative("SampleLaplace", "scale", scale);
  return LaplaceDraw(scale, rng);
}

void AddLaplaceNoise(float* v, int64_t n, double scale, Rng& rng) {
  CheckBuffer("AddLaplaceNoise", v, n);
  CheckFiniteNonNegative("AddLaplaceNoise", "scale", scale);
  if (scale == 0.0) return;
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] + LaplaceDraw(scale, rng));
}

double GaussianMechanismEpsilon(double l2_sensitivity, double sigma_abs, double delta) {
  CheckNonNegative("GaussianMechanismEpsilon", "l2_sensitivity", l2_sensitivity);
  CheckNonNegative("GaussianMechanismEpsilon", "sigma_abs", sigma_abs);
  CheckDelta("GaussianMechanismEpsilon", delta);
  if (l2_sensitivity == 0.0 || std::isinf(sigma_abs)) return 0.0;
  if (sigma_abs == 0.0 || std::isinf(l2_sensitivity)) return kInf;
  const double s = sigma_abs / l2_sensitivity;
  const double log_delta = fm::Log(delta);
  auto meets = [&](double eps) { return AnalyticGaussianLogDelta(s, eps) <= log_delta; };

  if (meets(0.0)) return 0.0;
  return log_math::SolveThreshold(meets, kSolveRelTol, kInf);
}

double GaussianMechanismSigma(double l2_sensitivity, double epsilon, double delta) {
  CheckNonNegative("GaussianMechanismSigma", "l2_sensitivity", l2_sensitivity);
  CheckNonNegative("GaussianMechanismSigma", "epsilon", epsilon);
  CheckDelta("GaussianMechanismSigma", delta);
  if (l2_sensitivity == 0.0 || std::isinf(epsilon)) return 0.0;
  if (std::isinf(l2_sensitivity)) return kInf;
  const double log_delta = fm::Log(delta);
  // delta(s) falls as the noise multiplier s grows, from 1 at s -> 0.
  auto meets = [&](double s) { return AnalyticGaussianLogDelta(s, epsilon) <= log_delta; };

  const double s = log_math::SolveThreshold(meets, kSolveRelTol, kInf);
  return std::isinf(s) ? kInf : s * l2_sensitivity;
}

double LaplaceMechanismEpsilon(double l1_sensitivity, double scale) {
  CheckNonNegative("LaplaceMechanismEpsilon", "l1_sensitivity", l1_sensitivity);
  CheckNonNegative("LaplaceMechanismEpsilon", "scale", scale);
  if (l1_sensitivity == 0.0) return 0.0;
  return l1_sensitivity / scale;
}

double LaplaceMechanismScale(double l1_sensitivity, double epsilon) {
  CheckNonNegative("LaplaceMechanismScale", "l1_sensitivity", l1_sensitivity);
  if (!(epsilon > 0.0))
    throw InputError("LaplaceMechanismScale: epsilon must be > 0, got " + Num(epsilon));
  return l1_sensitivity / epsilon;
}

double RandomizedResponseKeepProbability(int num_classes, double epsilon) {
  if (num_classes < 2)
    throw InputError("RandomizedResponse: num_classes must be >= 2, got " + Num(num_classes));
  CheckNonNegative("RandomizedResponse", "epsilon", epsilon);
  // e^eps / (e^eps + C - 1), written so that large epsilon does not overflow.
  return 1.0 / (1.0 + (num_classes - 1) * fm::Exp(-epsilon));
}

int RandomizedResponse(int label, int num_classes, double epsilon, Rng& rng) {
  const double keep = RandomizedResponseKeepProbability(num_classes, epsilon);
  if (label < 0 || label >= num_classes)
    throw InputError("RandomizedResponse: label must be in [0, " + Num(num_classes) + "), got " +
                     Num(label));
  if (rng.Uniform() < keep) return label;
  const int other = static_cast<int>(rng.UniformInt(static_cast<uint64_t>(num_classes - 1)));
  return other < label ? other : other + 1;
}

double RandomizedResponseEpsilon(int num_classes, double keep_probability) {
  if (num_classes < 2)
    throw InputError("RandomizedResponseEpsilon: num_classes must be >= 2, got " +
                     Num(num_classes));
  if (!(keep_probability > 0.0 && keep_probability <= 1.0))
    throw InputError("RandomizedResponseEpsilon: keep_probability must be in (0, 1], got " +
                     Num(keep_probability));
  if (keep_probability == 1.0) return kInf;
  return std::fabs(fm::Log(keep_probability * (num_classes - 1) / (1.0 - keep_probability)));
}

}  // namespace fedsim
