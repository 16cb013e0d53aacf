#include "core/fmath.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

// Range reductions follow the textbook scheme (Cody and Waite 1980; Muller,
// "Elementary Functions", 3rd ed., ch. 11): x = k ln2 + r with ln2 split into
// a head with trailing zero bits (so k * head is exact) and a tail; then a
// polynomial on the reduced argument. The polynomials are truncated Taylor
// series, evaluated by Horner's rule in one fixed order, with enough terms
// that the truncation error is far below half an ulp on the reduced range.

namespace fedsim::fm {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// ln 2 = kLn2Hi + kLn2Lo; kLn2Hi has its low 32 bits zero (fdlibm's split).
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kLog2e = 1.44269504088896338700e+00;
constexpr double kSqrt2 = 1.41421356237309514547e+00;
constexpr double kInvSqrtPi = 5.64189583547756279280e-01;  // 1 / sqrt(pi)
constexpr double kTwoPi = 6.28318530717958623200e+00;
constexpr double kTwoPiLo = 2.44929359829470635445e-16;  // 2 pi - kTwoPi
constexpr double kInvTwoPi = 1.59154943091895345608e-01;

// Round to the nearest integer (ties to even) with the 1.5 * 2^52 shift:
// exact for |x| < 2^51, and two IEEE additions on every CPU.
inline double RoundNearest(double x) {
  constexpr double kShift = 6755399441055744.0;
  return (x + kShift) - kShift;
}

// 2^k for -1022 <= k <= 1023, built from its bits.
inline double Pow2(int k) {
  const uint64_t bits = static_cast<uint64_t>(k + 1023) << 52;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// p * 2^k for p in [0.5, 2] and -1080 <= k <= 1025: one rounding at most
// (only when the result is subnormal).
inline double Scale(double p, int k) {
  if (k > 1000) return p * Pow2(k - 1000) * Pow2(1000);
  if (k < -1000) return p * Pow2(k + 1000) * Pow2(-1000);
  return p * Pow2(k);
}

// 1 / n! for n = 0..18.
constexpr double kInvFact[] = {1.0,
                               1.0,
                               1.0 / 2.0,
                               1.0 / 6.0,
                               1.0 / 24.0,
                               1.0 / 120.0,
                               1.0 / 720.0,
                               1.0 / 5040.0,
                               1.0 / 40320.0,
                               1.0 / 362880.0,
                               1.0 / 3628800.0,
                               1.0 / 39916800.0,
                               1.0 / 479001600.0,
                               1.0 / 6227020800.0,
                               1.0 / 87178291200.0,
                               1.0 / 1307674368000.0,
                               1.0 / 20922789888000.0,
                               1.0 / 355687428096000.0,
                               1.0 / 6402373705728000.0};

// Float: ln 2 = kLn2HiF + kLn2LoF, kLn2HiF = 355/512 exactly (9 bits, so
// n * kLn2HiF is exact for |n| < 2^15).
constexpr float kLn2HiF = 0.693359375f;
constexpr float kLn2LoF = -2.12194440e-4f;
constexpr float kLog2eF = 1.44269504088896341f;

// exp in float for x already clamped to [-87, 88]: n = round(x / ln2) in
// [-126, 127], r = x - n ln2 in [-0.35, 0.35], exp(r) by Taylor to r^7
// (truncation 5e-9 relative), scaled by 2^n built from its bits. No branch,
// so the span loops vectorise (with -fno-trapping-math, which lets GCC
// if-convert the clamp; CMakeLists.txt), and every lane does the scalar
// operations; -ffp-contract=off keeps the vector body and the scalar
// remainder from fusing differently.
inline float ExpClamped(float x) {
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23
  const float t = x * kLog2eF + kShift;    // n sits in t's low mantissa bits
  const float n = t - kShift;
  const float r = (x - n * kLn2HiF) - n * kLn2LoF;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n from t's bits, in unsigned arithmetic: no float-to-int conversion
  // (undefined for a NaN input, which a diverged model gives) and no
  // signed overflow whatever the input.
  const uint32_t biased = __builtin_bit_cast(uint32_t, t) - __builtin_bit_cast(uint32_t, kShift) + 127u;
  return p * __builtin_bit_cast(float, biased << 23);
}

inline float Clamp(float x) { return std::min(std::max(x, -87.0f), 88.0f); }

inline float ExpOne(float x) { return ExpClamped(Clamp(x)); }

inline float SigmoidOne(float x) { return 1.0f / (1.0f + ExpClamped(Clamp(-x))); }

// tanh: an odd Taylor polynomial to x^9 below |x| = 0.25 (truncation 1e-8
// relative), (1 - e) / (1 + e) with e = exp(-2|x|) above; both computed,
// one selected, so the loop has no branch.
inline float TanhOne(float x) {
  const float a = std::fabs(x);
  const float z = x * x;
  float q = 62.0f / 2835.0f;
  q = q * z - 17.0f / 315.0f;
  q = q * z + 2.0f / 15.0f;
  q = q * z - 1.0f / 3.0f;
  q = q * z + 1.0f;
  const float small = x * q;
  const float e = ExpClamped(Clamp(-2.0f * a));
  const float big = (1.0f - e) / (1.0f + e);
  const float large = std::copysign(big, x);
  return a < 0.25f ? small : large;
}

// erf(x) = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1)), for |x| < 1.23.
double ErfSeries(double x) {
  const double x2 = x * x;
  double term = x, sum = x;
  for (int n = 1; n < 200; ++n) {
    term *= -x2 / n;
    const double add = term / (2 * n + 1);
    sum += add;
    if (std::fabs(add) <= 1e-17 * std::fabs(sum)) break;
  }
  return 2.0 * kInvSqrtPi * sum;
}

}  // namespace

double Exp(double x) {
  if (x != x) return x;
  if (x > 709.782712893383973096) return kInf;
  if (x < -745.13321910194110842) return 0.0;
  const double kd = RoundNearest(x * kLog2e);
  const double r = (x - kd * kLn2Hi) - kd * kLn2Lo;
  double p = kInvFact[13];
  for (int i = 12; i >= 0; --i) p = p * r + kInvFact[i];
  return Scale(p, static_cast<int>(kd));
}

double Expm1(double x) {
  if (x != x) return x;
  if (std::fabs(x) < 0.5) {
    double p = kInvFact[17];
    for (int i = 16; i >= 1; --i) p = p * x + kInvFact[i];
    return p * x;
  }
  if (x < -40.0) return -1.0;
  return Exp(x) - 1.0;
}

double Log(double x) {
  if (x != x || x < 0.0) return kNaN;
  if (x == 0.0) return -kInf;
  if (x == kInf) return kInf;
  int e = 0;
  if (x < 2.2250738585072014e-308) {  // subnormal: make it normal first
    x *= 18014398509481984.0;         // 2^54
    e = -54;
  }
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  e += static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
  double m;
  std::memcpy(&m, &bits, sizeof m);  // x = m 2^e, m in [1, 2)
  if (m > kSqrt2) {
    m *= 0.5;
    ++e;
  }
  // log(1 + f) = 2 atanh(s), s = f / (2 + f), |s| <= 0.1716:
  //   = 2s + s R,  R = sum_{k>=1} 2 s^(2k) / (2k + 1),  and 2s = f - s f,
  // so log(1 + f) = f - s (f - R), f exact (Sterbenz).
  const double f = m - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s;
  double R = 2.0 / 25.0;
  for (int k = 11; k >= 1; --k) R = R * z + 2.0 / (2 * k + 1);
  R *= z;
  const double lm = f - s * (f - R);
  const double de = static_cast<double>(e);
  return de * kLn2Hi + (de * kLn2Lo + lm);
}

double Log1p(double x) {
  if (x != x) return x;
  if (x < -1.0) return kNaN;
  if (x == -1.0) return -kInf;
  if (x == kInf) return kInf;
  const double u = 1.0 + x;
  if (u == 1.0) return x;
  // Goldberg's correction: log(u) (x / (u - 1)) cancels the rounding of 1 + x.
  return Log(u) * (x / (u - 1.0));
}

double Pow(double x, double y) {
  if (y == 0.0 || x == 1.0) return 1.0;
  if (x != x || y != y) return kNaN;
  if (x < 0.0) {
    if (std::floor(y) != y) return kNaN;
    const double r = Pow(-x, y);
    return std::fmod(y, 2.0) != 0.0 ? -r : r;
  }
  if (x == 0.0) return y > 0.0 ? 0.0 : kInf;
  if (x == kInf) return y > 0.0 ? kInf : 0.0;
  return Exp(y * Log(x));
}

double Erfc(double x) {
  if (x != x) return x;
  if (x < 0.0) return 2.0 - Erfc(-x);
  if (x < 1.2247448713915890) return 1.0 - ErfSeries(x);  // x^2 < 3/2
  if (x > 27.3) return 0.0;
  // erfc(x) = Gamma(1/2, x^2) / Gamma(1/2): Legendre's continued fraction for
  // the upper incomplete gamma function, converging fast for x^2 > a + 1,
  // evaluated by the modified Lentz method.
  constexpr double a = 0.5, kTiny = 1e-300;
  const double z = x * x;
  double b = z + 1.0 - a, c = 1.0 / kTiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 500; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1.0) <= 1e-16) break;
  }
  return Exp(-z) * x * kInvSqrtPi * h;
}

double Cos(double x) {
  if (!(std::fabs(x) < kInf)) return kNaN;
  const double k = RoundNearest(x * kInvTwoPi);
  const double y = (x - k * kTwoPi) - k * kTwoPiLo;  // |y| <= pi (plus rounding)
  const double z = y * y;
  // cos y = sum_n (-1)^n z^n / (2n)!, to n = 16 (pi^34 / 34! < 1e-20); the
  // coefficients built once, in a fixed order.
  static const std::array<double, 17> kCoef = [] {
    std::array<double, 17> c{};
    double inv = 1.0;
    for (int n = 0; n <= 16; ++n) {
      if (n > 0) inv /= static_cast<double>((2 * n - 1) * (2 * n));
      c[static_cast<size_t>(n)] = (n % 2 == 0) ? inv : -inv;
    }
    return c;
  }();
  double p = 0.0;
  for (int n = 16; n >= 0; --n) p = p * z + kCoef[static_cast<size_t>(n)];
  return p;
}

float ExpF(float x) { return ExpOne(x); }

void ExpSpan(float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = ExpOne(v[i]);
}

void SigmoidSpan(float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = SigmoidOne(v[i]);
}

void TanhSpan(float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = TanhOne(v[i]);
}

}  // namespace fedsim::fm
