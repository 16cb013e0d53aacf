// Building blocks of differentially private updates: L2 clipping, Gaussian and
// Laplace noise, label randomised response, and the (epsilon, delta) of one
// release of each mechanism.
//
// Randomness comes only from the Rng passed in, so a caller that derives one
// stream per (seed, purpose, round, client) gets results that do not depend on
// threads. Noise is drawn in double precision and rounded once into the float
// vector; like any floating-point sampler it is a simulation of the
// mechanism, not a side-channel-hardened implementation.
//
// Thread-safety: the functions share no state; give each thread its own Rng
// and its own vector.
#pragma once

#include <cstdint>

#include "core/rng.h"

namespace fedsim {

// L2 norm of v[0..n), accumulated in double in index order.
// REQUIRES: n >= 0; v may be null only when n == 0.
double L2Norm(const float* v, int64_t n);

// Scales v[0..n) in place so that its L2 norm (as L2Norm computes it) is at
// most clip_norm, and returns the norm before clipping. A vector already
// within clip_norm, or clip_norm = +infinity, is left bit-identical. After
// scaling by clip_norm / norm, float rounding can leave the norm a few ulps
// above clip_norm; v is then shrunk by about one float ulp until it is not, so
// the sensitivity bound holds exactly, not just up to rounding.
// REQUIRES: clip_norm > 0 (may be +infinity); every v[i] finite (InputError
// naming clip_norm or v otherwise).
double ClipL2(float* v, int64_t n, double clip_norm);

// v[i] += N(0, stddev^2) for i in [0, n), drawn in index order from rng.
// stddev = 0 leaves v unchanged and draws nothing.
// REQUIRES: stddev >= 0 and finite (InputError otherwise).
void AddGaussianNoise(float* v, int64_t n, double stddev, Rng& rng);

// One draw from Laplace(0, scale) (density exp(-|x|/scale) / (2 scale)) by
// inversion of its CDF from one Rng::Uniform() (a zero is redrawn).
// REQUIRES: scale >= 0 and finite (InputError otherwise).
double SampleLaplace(double scale, Rng& rng);

// v[i] += Laplace(0, scale) for i in [0, n), drawn in index order from rng.
// scale = 0 leaves v unchanged and draws nothing.
// REQUIRES: scale >= 0 and finite (InputError otherwise).
void AddLaplaceNoise(float* v, int64_t n, double scale, Rng& rng);

// The smallest epsilon for which adding N(0, sigma_abs^2 I) to a function of L2
// sensitivity l2_sensitivity is (epsilon, delta)-DP, by the analytic Gaussian
// mechanism of Balle & Wang (ICML 2018, Thm. 8): with s = sigma_abs /
// l2_sensitivity, (epsilon, delta)-DP holds iff
//   Phi(1/(2s) - epsilon s) - e^epsilon Phi(-1/(2s) - epsilon s) <= delta.
// The left side falls with epsilon; it is evaluated in log space and solved by
// bracketing and bisection to a relative tolerance of 1e-12, rounding up.
// Returns 0 when (0, delta) already holds, +infinity when sigma_abs = 0 < l2_sensitivity.
// REQUIRES: l2_sensitivity >= 0, sigma_abs >= 0, 0 < delta < 1.
double GaussianMechanismEpsilon(double l2_sensitivity, double sigma_abs, double delta);

// The inverse: the smallest absolute noise standard deviation for which the
// Gaussian mechanism is (epsilon, delta)-DP (Balle & Wang's calibration),
// to a relative tolerance of 1e-12, rounding up.
// REQUIRES: l2_sensitivity >= 0, epsilon >= 0, 0 < delta < 1.
double GaussianMechanismSigma(double l2_sensitivity, double epsilon, double delta);

// Epsilon of adding Laplace(0, scale) noise to each coordinate of a function of
// L1 sensitivity l1_sensitivity: l1_sensitivity / scale (pure DP, delta = 0).
// REQUIRES: l1_sensitivity >= 0, scale >= 0 (scale 0 gives +infinity unless
// the sensitivity is 0).
double LaplaceMechanismEpsilon(double l1_sensitivity, double scale);

// The Laplace scale that gives epsilon: l1_sensitivity / epsilon.
// REQUIRES: l1_sensitivity >= 0, epsilon > 0.
double LaplaceMechanismScale(double l1_sensitivity, double epsilon);

// k-ary randomised response on a label: keeps `label` with probability
// e^epsilon / (e^epsilon + num_classes - 1), otherwise returns one of the
// other num_classes - 1 labels uniformly. epsilon = +infinity always keeps.
// Draws one Rng::Uniform() and, when the label is replaced, one UniformInt.
// REQUIRES: num_classes >= 2, 0 <= label < num_classes, epsilon >= 0.
int RandomizedResponse(int label, int num_classes, double epsilon, Rng& rng);

// The keep probability RandomizedResponse uses for (num_classes, epsilon).
double RandomizedResponseKeepProbability(int num_classes, double epsilon);

// Epsilon (pure DP) of k-ary randomised response that keeps the label with
// probability keep_probability: |log(keep_probability (num_classes - 1) /
// (1 - keep_probability))|; the inverse of RandomizedResponseKeepProbability.
// REQUIRES: num_classes >= 2, 0 < keep_probability <= 1.
double RandomizedResponseEpsilon(int num_classes, double keep_probability);

}  // namespace fedsim
