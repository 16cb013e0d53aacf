// Log-space arithmetic and Gaussian tails shared by the privacy code. A value
// x is carried as log(x); 0 is -infinity. Internal to src/privacy/.
#pragma once

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/fmath.h"

namespace fedsim {
namespace log_math {

// The threshold of a monotone predicate (false below it, true above), to
// relative tolerance rel_tol: doubles an upper bracket from 1, then bisects;
// returns the smallest bracket end that meets it. Returns +infinity when no
// x <= max_x meets it. Callers handle x = 0 themselves.
template <class Pred>
double SolveThreshold(Pred meets, double rel_tol, double max_x) {
  double lo = 0.0, hi = 1.0;
  while (!meets(hi)) {
    lo = hi;
    hi *= 2.0;
    if (!std::isfinite(hi) || hi > max_x) return std::numeric_limits<double>::infinity();
  }
  while (hi - lo > rel_tol * hi) {
    const double mid = 0.5 * (lo + hi);
    if (meets(mid))
      hi = mid;
    else
      lo = mid;
  }
  return hi;
}

// log(exp(log_x) + exp(log_y)).
inline double LogAdd(double log_x, double log_y) {
  const double a = std::fmin(log_x, log_y);
  const double b = std::fmax(log_x, log_y);
  if (a == -std::numeric_limits<double>::infinity()) return b;
  return fm::Log1p(fm::Exp(a - b)) + b;
}

// log(exp(log_x) - exp(log_y)). REQUIRES: log_x >= log_y (RunError otherwise:
// a series that should stay positive has gone negative).
inline double LogSub(double log_x, double log_y) {
  if (log_x < log_y) throw RunError("privacy: log-space subtraction would go negative");
  if (log_y == -std::numeric_limits<double>::infinity()) return log_x;
  if (log_x == log_y) return -std::numeric_limits<double>::infinity();
  const double d = log_x - log_y;
  // For large d, expm1(d) overflows while the result is log_x to within rounding.
  if (d > 700.0) return log_x;
  return fm::Log(fm::Expm1(d)) + log_y;
}

// log(erfc(x)), accurate in the far right tail where erfc underflows.
inline double LogErfc(double x) {
  if (x < 25.0) return fm::Log(fm::Erfc(x));
  // Asymptotic (Laurent) series of log(erfc(x)) + x^2 + log(x sqrt(pi)) at
  // infinity; at x >= 25 the first omitted term, -4881/(160 x^10), is below 4e-13.
  const double r = 1.0 / (x * x);
  constexpr double kLogSqrtPi = 0.57236494292470008707;  // log(sqrt(pi))
  return -kLogSqrtPi - fm::Log(x) - x * x +
         r * (-0.5 + r * (0.625 + r * (-37.0 / 24.0 + r * (353.0 / 64.0))));
}

// log(Phi(x)) for the standard normal CDF Phi, accurate in both tails.
inline double LogNormalCdf(double x) {
  if (x > 0.0) return fm::Log1p(-0.5 * fm::Erfc(x / std::sqrt(2.0)));
  return fm::Log(0.5) + LogErfc(-x / std::sqrt(2.0));
}

}  // namespace log_math
}  // namespace fedsim
