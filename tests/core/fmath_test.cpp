// fedsim's own elementary functions (src/core/fmath.h) against closed forms,
// identities and the C library's values on their ranges.
#include "core/fmath.h"

#include <Eigen/Core>
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

namespace fm = fedsim::fm;

namespace {

double RelErr(double got, double want) {
  if (want == 0.0) return std::fabs(got);
  return std::fabs(got - want) / std::fabs(want);
}

// A fixed grid over [lo, hi] with n points (irregular spacing, so the points
// do not sit on round numbers).
std::vector<double> Grid(double lo, double hi, int n) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(lo + (hi - lo) * (i + 0.318309886) / n);
  return v;
}

}  // namespace

TEST_CASE("fm::Exp and fm::Log match closed forms and the C library", "[fmath]") {
  CHECK(fm::Exp(0.0) == 1.0);
  CHECK(fm::Log(1.0) == 0.0);
  CHECK(fm::Exp(1.0) == Approx(2.718281828459045).epsilon(1e-15));
  CHECK(fm::Log(2.0) == Approx(0.6931471805599453).epsilon(1e-15));
  CHECK(fm::Exp(-746.0) == 0.0);
  CHECK(std::isinf(fm::Exp(710.0)));
  CHECK(std::isinf(fm::Log(0.0)));
  CHECK(std::isnan(fm::Log(-1.0)));
  // Subnormal results and arguments.
  CHECK(RelErr(fm::Exp(-740.0), std::exp(-740.0)) < 1e-6);
  CHECK(RelErr(fm::Log(4.9406564584124654e-324), -744.4400719213812) < 1e-15);
  double worst_exp = 0.0, worst_log = 0.0;
  for (double x : Grid(-700.0, 700.0, 20001)) worst_exp = std::max(worst_exp, RelErr(fm::Exp(x), std::exp(x)));
  for (double x : Grid(1e-300, 10.0, 5001)) worst_log = std::max(worst_log, RelErr(fm::Log(x), std::log(x)));
  for (double x : Grid(0.5, 2.0, 20001)) worst_log = std::max(worst_log, RelErr(fm::Log(x), std::log(x)));
  for (double x : Grid(1.0, 1e300, 5001)) worst_log = std::max(worst_log, RelErr(fm::Log(x), std::log(x)));
  CHECK(worst_exp < 4e-15);
  CHECK(worst_log < 4e-15);
  // exp(log(x)) returns x to a few ulp.
  for (double x : {1e-200, 0.001, 0.5, 3.0, 1e10, 1e200}) CHECK(RelErr(fm::Exp(fm::Log(x)), x) < 1e-12);
}

TEST_CASE("fm::Expm1, fm::Log1p, fm::Pow", "[fmath]") {
  double worst = 0.0;
  for (double x : Grid(-1e-3, 1e-3, 2001)) {
    worst = std::max(worst, RelErr(fm::Expm1(x), std::expm1(x)));
    worst = std::max(worst, RelErr(fm::Log1p(x), std::log1p(x)));
  }
  for (double x : Grid(-30.0, 30.0, 2001)) worst = std::max(worst, RelErr(fm::Expm1(x), std::expm1(x)));
  for (double x : Grid(-0.999, 100.0, 2001)) worst = std::max(worst, RelErr(fm::Log1p(x), std::log1p(x)));
  CHECK(worst < 4e-15);
  CHECK(fm::Log1p(1e-300) == 1e-300);
  CHECK(fm::Expm1(-50.0) == -1.0);
  CHECK(fm::Pow(2.0, 10.0) == Approx(1024.0).epsilon(1e-15));
  CHECK(fm::Pow(0.0, 2.0) == 0.0);
  CHECK(std::isinf(fm::Pow(0.0, -1.0)));
  CHECK(fm::Pow(5.0, 0.0) == 1.0);
  CHECK(fm::Pow(-2.0, 3.0) == Approx(-8.0).epsilon(1e-15));
  CHECK(std::isnan(fm::Pow(-2.0, 0.5)));
  // lr decay over 1,000 rounds and FedBuff's staleness weight.
  CHECK(RelErr(fm::Pow(0.99, 1000.0), std::pow(0.99, 1000.0)) < 1e-13);
  CHECK(RelErr(fm::Pow(11.0, -0.5), 1.0 / std::sqrt(11.0)) < 1e-15);
}

TEST_CASE("fm::Erfc and fm::Cos", "[fmath]") {
  CHECK(fm::Erfc(0.0) == 1.0);
  double worst = 0.0;
  for (double x : Grid(-6.0, 6.0, 4001)) worst = std::max(worst, RelErr(fm::Erfc(x), std::erfc(x)));
  CHECK(worst < 3e-14);
  // Far tail, where the accountant uses log(erfc(x)).
  for (double x : {8.0, 15.0, 24.9}) CHECK(RelErr(fm::Erfc(x), std::erfc(x)) < 1e-13);
  CHECK(fm::Erfc(30.0) == 0.0);
  CHECK(fm::Erfc(-30.0) == 2.0);
  double worst_cos = 0.0;
  for (double x : Grid(-20.0, 20.0, 4001)) worst_cos = std::max(worst_cos, std::fabs(fm::Cos(x) - std::cos(x)));
  CHECK(worst_cos < 1e-15);
  CHECK(fm::Cos(0.0) == 1.0);
}

TEST_CASE("float spans: exp, sigmoid, tanh", "[fmath]") {
  std::vector<float> x;
  for (int i = 0; i < 20001; ++i) x.push_back(-30.0f + 60.0f * static_cast<float>(i) / 20000.0f);
  x.push_back(0.0f);
  x.push_back(1e-6f);
  x.push_back(-1e-6f);
  std::vector<float> e = x, s = x, t = x;
  fm::ExpSpan(e.data(), static_cast<int64_t>(e.size()));
  fm::SigmoidSpan(s.data(), static_cast<int64_t>(s.size()));
  fm::TanhSpan(t.data(), static_cast<int64_t>(t.size()));
  const double ulp = std::numeric_limits<float>::epsilon();
  double we = 0.0, ws = 0.0, wt = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double xi = x[i];
    we = std::max(we, RelErr(e[i], std::exp(xi)));
    ws = std::max(ws, RelErr(s[i], 1.0 / (1.0 + std::exp(-xi))));
    wt = std::max(wt, RelErr(t[i], std::tanh(xi)));
  }
  CHECK(we < 3 * ulp);
  CHECK(ws < 4 * ulp);
  CHECK(wt < 4 * ulp);
  CHECK(fm::ExpF(0.0f) == 1.0f);
  // Clamped: finite, normal, never NaN from a finite input.
  CHECK(fm::ExpF(-1000.0f) == fm::ExpF(-87.0f));
  CHECK(std::isnormal(fm::ExpF(-1000.0f)));
  CHECK(std::isfinite(fm::ExpF(1000.0f)));
  float big[3] = {1000.0f, -1000.0f, 0.0f};
  fm::TanhSpan(big, 3);
  CHECK(big[0] == 1.0f);
  CHECK(big[1] == -1.0f);
  CHECK(big[2] == 0.0f);
}

TEST_CASE("float spans do not depend on the array's alignment or length", "[fmath]") {
  // The same values at every offset into a buffer (so the vectorised body and
  // the scalar remainder see each value) give the same bits.
  std::vector<float> base(67);
  for (size_t i = 0; i < base.size(); ++i) base[i] = -9.0f + 0.2791f * static_cast<float>(i);
  std::vector<float> ref = base;
  fm::TanhSpan(ref.data(), static_cast<int64_t>(ref.size()));
  std::vector<float> ref_s = base;
  fm::SigmoidSpan(ref_s.data(), static_cast<int64_t>(ref_s.size()));
  for (int off = 0; off < 9; ++off) {
    std::vector<float> buf(base.size() + 16, 0.0f);
    std::copy(base.begin(), base.end(), buf.begin() + off);
    std::vector<float> buf_s = buf;
    fm::TanhSpan(buf.data() + off, static_cast<int64_t>(base.size()));
    fm::SigmoidSpan(buf_s.data() + off, static_cast<int64_t>(base.size()));
    for (size_t i = 0; i < base.size(); ++i) {
      REQUIRE(buf[off + i] == ref[i]);
      REQUIRE(buf_s[off + i] == ref_s[i]);
    }
  }
  for (size_t i = 0; i < base.size(); ++i) {
    float one = base[i];
    fm::TanhSpan(&one, 1);
    REQUIRE(one == ref[i]);
  }
}

TEST_CASE("softmax helpers sum in index order", "[fmath]") {
  float v[6] = {1.0f, 9.0f, 2.0f, 8.0f, 3.0f, 7.0f};  // stride 2: 1, 2, 3
  Eigen::Map<Eigen::VectorXf, 0, Eigen::InnerStride<2>> every_other(v, 3);
  const float want = fm::ExpF(1.0f - 3.0f) + fm::ExpF(2.0f - 3.0f) + fm::ExpF(0.0f);
  CHECK(fm::SumExpShifted(every_other, 3.0f) == want);
  CHECK(fm::ExpShiftedInPlace(every_other, 3.0f) == want);
  CHECK(v[1] == 9.0f);
  CHECK(v[4] == 1.0f);
  CHECK(v[0] == fm::ExpF(-2.0f));
}
