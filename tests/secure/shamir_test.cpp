#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "secure/secure_error.h"
#include "secure/shamir.h"

using namespace fedsim;

namespace {

ShamirSecret RandomSecret(Rng& rng) {
  ShamirSecret s;
  for (auto& b : s) b = static_cast<uint8_t>(rng.UniformInt(256));
  return s;
}

std::vector<uint64_t> Points(int n) {
  std::vector<uint64_t> xs(n);
  std::iota(xs.begin(), xs.end(), uint64_t{1});
  return xs;
}

std::vector<ShamirShare> Pick(const std::vector<ShamirShare>& all, int count, Rng& rng) {
  std::vector<ShamirShare> s = all;
  rng.Shuffle(s.begin(), s.end());
  s.resize(count);
  return s;
}

}  // namespace

TEST_CASE("shamir: any t shares reconstruct, t-1 do not", "[secure][shamir]") {
  Rng rng(5);
  for (const auto& [n, t] : std::vector<std::pair<int, int>>{{1, 1}, {2, 2}, {5, 3}, {10, 1}, {12, 12}, {30, 16}}) {
    const ShamirSecret secret = RandomSecret(rng);
    Seed32 seed{};
    seed[0] = static_cast<uint8_t>(n);
    const auto shares = ShamirSplit(secret, t, Points(n), seed);
    REQUIRE(shares.size() == static_cast<size_t>(n));
    for (int trial = 0; trial < 5; ++trial) {
      CHECK(ShamirReconstruct(Pick(shares, t, rng), t) == secret);
      CHECK(ShamirReconstruct(Pick(shares, n, rng), t) == secret);  // extra shares are ignored
      if (t > 1) CHECK(ShamirInterpolate(Pick(shares, t - 1, rng)) != ShamirEncodeSecret(secret));
    }
  }
}

TEST_CASE("shamir: 1000 shares, threshold 500", "[secure][shamir]") {
  Rng rng(9);
  const ShamirSecret secret = RandomSecret(rng);
  Seed32 seed{};
  seed[3] = 42;
  const auto shares = ShamirSplit(secret, 500, Points(1000), seed);
  CHECK(ShamirReconstruct(Pick(shares, 500, rng), 500) == secret);
  CHECK(ShamirReconstruct(Pick(shares, 1000, rng), 500) == secret);
  CHECK(ShamirInterpolate(Pick(shares, 499, rng)) != ShamirEncodeSecret(secret));
}

TEST_CASE("shamir: shares are reproducible from the seed and hide the secret", "[secure][shamir]") {
  Rng rng(1);
  const ShamirSecret secret = RandomSecret(rng);
  Seed32 a{}, b{};
  b[31] = 1;
  const auto s1 = ShamirSplit(secret, 3, Points(5), a);
  const auto s2 = ShamirSplit(secret, 3, Points(5), a);
  const auto s3 = ShamirSplit(secret, 3, Points(5), b);
  for (int i = 0; i < 5; ++i) {
    CHECK(s1[i].y == s2[i].y);
    CHECK(s1[i].y != s3[i].y);
    CHECK(s1[i].y != ShamirEncodeSecret(secret));
  }
}

TEST_CASE("shamir: errors", "[secure][shamir]") {
  const ShamirSecret secret{};
  const Seed32 seed{};
  CHECK_THROWS_AS(ShamirSplit(secret, 4, Points(3), seed), InputError);
  CHECK_THROWS_AS(ShamirSplit(secret, 0, Points(3), seed), InputError);
  CHECK_THROWS_AS(ShamirSplit(secret, 2, {1, 2, 2}, seed), InputError);
  CHECK_THROWS_AS(ShamirSplit(secret, 2, {0, 1}, seed), InputError);
  const auto shares = ShamirSplit(secret, 3, Points(4), seed);
  CHECK_THROWS_AS(ShamirReconstruct({shares[0], shares[1]}, 3), InputError);
  // A share off by a large amount interpolates to an invalid encoding.
  auto bad = shares;
  bad[0].y[4] = (bad[0].y[4] + 0x123456789ABCDEFULL) % kShamirPrime;
  CHECK_THROWS_AS(ShamirReconstruct(bad, 3), SecAggError);
}
