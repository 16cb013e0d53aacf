#include <catch2/catch.hpp>

#include <Eigen/Core>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/half.h"
#include "core/rng.h"

using fedsim::FloatToHalf;
using fedsim::HalfToFloat;

namespace {
float Bits(uint32_t x) {
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
uint16_t EigenHalf(float f) { return Eigen::numext::bit_cast<uint16_t>(Eigen::half(f)); }
}  // namespace

TEST_CASE("half: hand-computed encodings", "[core][half]") {
  CHECK(FloatToHalf(0.0f) == 0x0000);
  CHECK(FloatToHalf(-0.0f) == 0x8000);
  CHECK(FloatToHalf(1.0f) == 0x3c00);
  CHECK(FloatToHalf(-2.0f) == 0xc000);
  CHECK(FloatToHalf(0.5f) == 0x3800);
  CHECK(FloatToHalf(65504.0f) == 0x7bff);  // largest finite half
  // 0.1 = 1.6 * 2^-4: mantissa 0.6 * 1024 = 614.4 -> 614 = 0x266, exponent 11.
  CHECK(FloatToHalf(0.1f) == 0x2e66);
  // 1/3 = 1.333.. * 2^-2: 0.333.. * 1024 = 341.33 -> 341 = 0x155, exponent 13.
  CHECK(FloatToHalf(1.0f / 3.0f) == 0x3555);
  // Ties go to the even mantissa: 1 + 2^-11 lies halfway between 1 (0x3c00)
  // and 1 + 2^-10 (0x3c01); 1 + 3 * 2^-11 halfway between 0x3c01 and 0x3c02.
  CHECK(FloatToHalf(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);
  CHECK(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  // Just above the tie rounds up.
  CHECK(FloatToHalf(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)) == 0x3c01);
}

TEST_CASE("half: subnormals and underflow", "[core][half]") {
  CHECK(FloatToHalf(std::ldexp(1.0f, -14)) == 0x0400);  // smallest normal
  CHECK(FloatToHalf(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
  CHECK(FloatToHalf(1023 * std::ldexp(1.0f, -24)) == 0x03ff);  // largest subnormal
  CHECK(FloatToHalf(std::ldexp(1.0f, -25)) == 0x0000);  // exactly half the smallest: tie to even 0
  CHECK(FloatToHalf(-std::ldexp(1.0f, -25)) == 0x8000);
  CHECK(FloatToHalf(1.5f * std::ldexp(1.0f, -25)) == 0x0001);  // above the tie
  CHECK(FloatToHalf(3 * std::ldexp(1.0f, -25)) == 0x0002);  // 1.5 units: tie, to even 2
  CHECK(FloatToHalf(5 * std::ldexp(1.0f, -25)) == 0x0002);  // 2.5 units: tie, to even 2
  CHECK(FloatToHalf(1e-10f) == 0x0000);
  // Rounding up out of the subnormals gives the smallest normal.
  CHECK(FloatToHalf(std::nextafter(std::ldexp(1.0f, -14), 0.0f)) == 0x0400);
  CHECK(HalfToFloat(0x0001) == std::ldexp(1.0f, -24));
  CHECK(HalfToFloat(0x03ff) == 1023 * std::ldexp(1.0f, -24));
  CHECK(HalfToFloat(0x8200) == -512 * std::ldexp(1.0f, -24));
}

TEST_CASE("half: overflow saturates, infinities and NaN are kept", "[core][half]") {
  CHECK(FloatToHalf(65519.0f) == 0x7bff);  // below 65504 + half an ulp: rounds down anyway
  CHECK(FloatToHalf(65520.0f) == 0x7bff);  // IEEE would give Inf here; we saturate
  CHECK(FloatToHalf(1e6f) == 0x7bff);
  CHECK(FloatToHalf(-3.4e38f) == 0xfbff);
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(FloatToHalf(inf) == 0x7c00);
  CHECK(FloatToHalf(-inf) == 0xfc00);
  CHECK(HalfToFloat(0x7c00) == inf);
  const uint16_t nan = FloatToHalf(std::numeric_limits<float>::quiet_NaN());
  CHECK((nan & 0x7c00) == 0x7c00);
  CHECK((nan & 0x03ff) != 0);
  CHECK(std::isnan(HalfToFloat(nan)));
  CHECK(std::isnan(HalfToFloat(FloatToHalf(Bits(0x7f800001u)))));  // a signalling NaN stays a NaN
}

TEST_CASE("half: every half survives the round trip through float", "[core][half]") {
  int checked = 0;
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    REQUIRE(FloatToHalf(f) == h);
    // Eigen's conversion (another implementation) decodes the same value.
    REQUIRE(static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(static_cast<uint16_t>(h))) == f);
    ++checked;
  }
  CHECK(checked == 65536 - 2 * 1023);  // all but the NaNs
}

TEST_CASE("half: agrees with Eigen::half rounding inside the finite range", "[core][half]") {
  fedsim::Rng rng = fedsim::DeriveStream(7, fedsim::Stream::kDataGen);
  int compared = 0;
  for (int i = 0; i < 200000; ++i) {
    // Random bit patterns cover every exponent, including subnormal halves.
    const float f = Bits(static_cast<uint32_t>(rng.NextU64()));
    if (!std::isfinite(f) || std::fabs(f) >= 65520.0f) continue;
    REQUIRE(FloatToHalf(f) == EigenHalf(f));
    ++compared;
  }
  CHECK(compared > 50000);
  // Relative error of normal halves is at most 2^-11.
  for (float x = 6.2e-5f; x < 60000.0f; x *= 1.37f) {
    CHECK(std::fabs(HalfToFloat(FloatToHalf(x)) - x) <= x * std::ldexp(1.0f, -11));
  }
}
