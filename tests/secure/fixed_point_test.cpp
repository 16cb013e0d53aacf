#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "secure/fixed_point.h"

using fedsim::FixedPointCodec;
using fedsim::InputError;
using fedsim::Rng;

TEST_CASE("fixed point: round trip error is at most half a step", "[secure][fixed_point]") {
  const FixedPointCodec codec(32, 2.0, 1000);  // 10 headroom bits, 22 value bits
  CHECK(codec.value_bits() == 22);
  CHECK(codec.offset() == (1u << 21) - 1);
  CHECK(codec.Encode(0.0) == codec.offset());
  CHECK(codec.Encode(2.0) == codec.max_code());
  CHECK(codec.Encode(-2.0) == 0u);
  CHECK(codec.Encode(1e30) == codec.max_code());  // clipped
  CHECK(codec.Encode(-INFINITY) == 0u);
  Rng rng(7);
  std::vector<float> x(20000);
  for (auto& v : x) v = static_cast<float>(rng.Uniform(-2.0, 2.0));
  std::vector<uint32_t> q(x.size());
  codec.Encode(x.data(), static_cast<int64_t>(x.size()), q.data());
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    CHECK(q[i] <= codec.max_code());
    worst = std::max(worst, std::fabs(codec.Decode(q[i]) - x[i]));
  }
  CHECK(worst <= codec.step() / 2 * (1 + 1e-9));
}

TEST_CASE("fixed point: decoding a sum is exact for representable values", "[secure][fixed_point]") {
  // 8 value bits, step 1: the integers -127..127 are exactly representable.
  const FixedPointCodec codec(12, 127.0, 16);
  REQUIRE(codec.value_bits() == 8);
  REQUIRE(codec.step() == 1.0);
  const int clients = 16, dim = 300;
  Rng rng(3);
  std::vector<uint32_t> sum(dim, 0);
  std::vector<double> expect(dim, 0.0);
  std::vector<uint32_t> q(dim);
  for (int c = 0; c < clients; ++c) {
    std::vector<float> x(dim);
    for (auto& v : x) v = static_cast<float>(static_cast<int>(rng.UniformInt(255)) - 127);
    codec.Encode(x.data(), dim, q.data());
    for (int i = 0; i < dim; ++i) {
      sum[i] = (sum[i] + q[i]) & codec.modulus_mask();
      expect[i] += x[i];
    }
  }
  std::vector<float> out(dim);
  codec.DecodeSum(sum.data(), dim, clients, out.data());
  for (int i = 0; i < dim; ++i) CHECK(out[i] == static_cast<float>(expect[i]));
  // The largest possible sum does not wrap mod 2^12.
  CHECK(codec.DecodeSum(clients * codec.max_code(), clients) == 127.0 * clients);
}

TEST_CASE("fixed point: stochastic rounding is unbiased", "[secure][fixed_point]") {
  const FixedPointCodec codec(16, 1.0, 1);
  const float x = static_cast<float>(0.3 * codec.step() + 10 * codec.step());
  Rng rng(11);
  const int n = 40000;
  std::vector<float> xs(n, x);
  std::vector<uint32_t> q(n);
  codec.EncodeStochastic(xs.data(), n, q.data(), rng);
  double mean = 0;
  for (uint32_t v : q) {
    const double d = codec.Decode(v);
    CHECK(std::fabs(d - x) < codec.step());
    mean += d / n;
  }
  CHECK(mean == Approx(x).margin(0.02 * codec.step()));
}

TEST_CASE("fixed point: bad parameters and NaN are rejected", "[secure][fixed_point]") {
  CHECK_THROWS_AS(FixedPointCodec(33, 1.0, 1), InputError);
  CHECK_THROWS_AS(FixedPointCodec(16, 0.0, 1), InputError);
  CHECK_THROWS_AS(FixedPointCodec(16, 1.0, 0), InputError);
  CHECK_THROWS_WITH(FixedPointCodec(16, 1.0, 1 << 15), Catch::Contains("headroom"));
  const FixedPointCodec codec(16, 1.0, 4);
  const float bad[2] = {0.0f, NAN};
  uint32_t out[2];
  CHECK_THROWS_WITH(codec.Encode(bad, 2, out), Catch::Contains("x[1]"));
  const uint32_t s = 0;
  float f;
  CHECK_THROWS_AS(codec.DecodeSum(&s, 1, 5, &f), InputError);
}
