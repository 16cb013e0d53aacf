// The Krum family's distances from the Gram matrix against direct sums: the
// error bound holds, the bits do not depend on the thread count, and the
// selections are the ones the direct distances give, also where
// cancellation ruins the Gram values (near-duplicate updates) and where
// attackers send one vector between them (exact duplicates).
#include <catch2/catch.hpp>

#include <chrono>
#include <random>

#include "round/krum_selection.h"

namespace {

using fedsim::KrumSelect;
using fedsim::UploadDistances;

Eigen::MatrixXf Normal(int64_t p, int n, uint32_t seed, float mean = 0.0f, float sd = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> z(mean, sd);
  Eigen::MatrixXf u(p, n);
  for (int k = 0; k < n; ++k) {
    for (int64_t c = 0; c < p; ++c) u(c, k) = z(gen);
  }
  return u;
}

std::vector<int> Iota(int n) {
  std::vector<int> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

// Every rule's selection with the Gram distances and with the direct ones;
// returns the pairs the Gram path had to recompute for Krum.
int64_t CheckSameSelections(const Eigen::MatrixXf& u, int f) {
  const int n = static_cast<int>(u.cols());
  int64_t krum_direct_pairs = -1;
  const std::vector<std::pair<std::string, int>> rules{{"krum", 0}, {"multikrum", 0}, {"multikrum", 3}, {"bulyan", 0}};
  for (const auto& [rule, selected] : rules) {
    if (rule == "bulyan" && n < 4 * f + 3) continue;
    UploadDistances gram(u, Iota(n), 2, UploadDistances::Method::kGram);
    UploadDistances direct(u, Iota(n), 2, UploadDistances::Method::kDirect);
    INFO(rule << " selected=" << selected);
    CHECK(KrumSelect(gram, rule, f, selected) == KrumSelect(direct, rule, f, selected));
    if (rule == "krum") krum_direct_pairs = gram.direct_pairs();
  }
  return krum_direct_pairs;
}

}  // namespace

TEST_CASE("krum distances: the Gram path is within its bound of the direct sums, the same bits for any thread count",
          "[round][robust]") {
  // 30,000 coordinates: 8 blocks of the Gram product, so several partial sums.
  const Eigen::MatrixXf u = Normal(30000, 9, 7);
  const UploadDistances direct(u, Iota(9), 2, UploadDistances::Method::kDirect);
  const UploadDistances g1(u, Iota(9), 1, UploadDistances::Method::kGram);
  for (int threads : {2, 3}) {
    const UploadDistances gt(u, Iota(9), threads, UploadDistances::Method::kGram);
    for (int a = 0; a < 9; ++a) {
      for (int b = 0; b < 9; ++b) CHECK(gt(a, b) == g1(a, b));
    }
  }
  for (int a = 0; a < 9; ++a) {
    CHECK(g1(a, a) == 0.0);
    for (int b = 0; b < 9; ++b) {
      if (a == b) continue;
      CHECK(std::abs(g1(a, b) - direct(a, b)) <= g1.error(a, b));
      // Well-separated updates (distance about 60,000): the bound is tiny.
      CHECK(g1.error(a, b) < 1e-6 * direct(a, b));
      CHECK(direct.error(a, b) == 0.0);
    }
  }
  CHECK(g1.direct_pairs() == 0);
  CHECK(direct.direct_pairs() == 36);
  // A column subset is indexed by position.
  const UploadDistances sub(u, {4, 1}, 1, UploadDistances::Method::kDirect);
  CHECK(sub(0, 1) == direct(4, 1));
}

TEST_CASE("krum selections: the Gram path selects what the direct distances select", "[round][robust]") {
  SECTION("independent updates: no distance needs a direct sum") {
    for (uint32_t seed : {1u, 2u, 3u}) {
      const Eigen::MatrixXf u = Normal(5000, 23, seed);
      CHECK(CheckSameSelections(u, 5) == 0);
    }
  }
  SECTION("near-duplicate updates: cancellation, resolved by direct sums") {
    for (uint32_t seed : {4u, 5u, 6u}) {
      // 16 updates within a few float steps of one far-from-zero vector
      // (norm^2 about 2.5e7, squared distances about 1e-5), 7 farther ones.
      const int64_t p = 10000;
      const Eigen::MatrixXf base = Normal(p, 1, seed, 50.0f, 1.0f);
      const Eigen::MatrixXf noise = Normal(p, 23, seed + 100);
      Eigen::MatrixXf u(p, 23);
      for (int k = 0; k < 23; ++k) u.col(k) = base.col(0) + (k < 16 ? 2e-5f : 0.3f) * noise.col(k);
      // The raw Gram values are far off here (the test would not test the
      // fallback otherwise).
      const UploadDistances gram(u, Iota(23), 2, UploadDistances::Method::kGram);
      const UploadDistances direct(u, Iota(23), 2, UploadDistances::Method::kDirect);
      double worst = 0.0;
      for (int a = 0; a < 16; ++a) {
        for (int b = 0; b < a; ++b) worst = std::max(worst, std::abs(gram(a, b) - direct(a, b)) / direct(a, b));
      }
      CHECK(worst > 1e-3);
      CHECK(CheckSameSelections(u, 5) > 0);
    }
  }
  SECTION("attackers sending one vector (ALIE, IPM): exact duplicates share their distances") {
    for (uint32_t seed : {8u, 9u}) {
      Eigen::MatrixXf u = Normal(5000, 23, seed);
      for (int k = 1; k < 6; ++k) u.col(k) = u.col(0);
      const UploadDistances gram(u, Iota(23), 2, UploadDistances::Method::kGram);
      CHECK(gram(3, 1) == 0.0);
      CHECK(gram.error(3, 1) == 0.0);
      CHECK(gram(3, 9) == gram(0, 9));
      CHECK(gram.groups()[5] == 0);
      CHECK(gram.groups()[6] == 6);
      // Krum picks one of the six (they are each other's nearest): the
      // first, with at most one row of direct sums for the whole group.
      const int64_t pairs = CheckSameSelections(u, 5);
      CHECK(pairs <= 22);
      UploadDistances d(u, Iota(23), 2, UploadDistances::Method::kGram);
      CHECK(KrumSelect(d, "krum", 5, 0) == std::vector<int>{0});
    }
  }
}

// Not run by default (fedsim_tests "[measure]"): the Gram path's error and
// time against the direct sums at the size of docs/performance.md's
// benchmark, 100 updates of the 2NN (199,210 coordinates), here random
// updates around a common direction with pairwise cosine about 0.9 (closer
// than a round's updates, so more cancellation).
TEST_CASE("krum distances: error and time of the Gram path at the 2NN's size", "[.][measure]") {
  const int64_t p = 199210;
  const int n = 100;
  const Eigen::MatrixXf common = Normal(p, 1, 11);
  Eigen::MatrixXf u = Normal(p, n, 12, 0.0f, 0.33f);
  u.colwise() += common.col(0);
  for (int threads : {1, 2}) {
    const auto t0 = std::chrono::steady_clock::now();
    const UploadDistances gram(u, Iota(n), threads, UploadDistances::Method::kGram);
    const auto t1 = std::chrono::steady_clock::now();
    const UploadDistances direct(u, Iota(n), threads, UploadDistances::Method::kDirect);
    const auto t2 = std::chrono::steady_clock::now();
    double worst_rel = 0.0, worst_of_bound = 0.0, widest_bound = 0.0;
    for (int a = 0; a < n; ++a) {
      for (int b = 0; b < a; ++b) {
        const double err = std::abs(gram(a, b) - direct(a, b));
        CHECK(err <= gram.error(a, b));
        worst_rel = std::max(worst_rel, err / direct(a, b));
        worst_of_bound = std::max(worst_of_bound, err / gram.error(a, b));
        widest_bound = std::max(widest_bound, gram.error(a, b) / direct(a, b));
      }
    }
    WARN(threads << " thread(s): Gram " << std::chrono::duration<double>(t1 - t0).count() << " s, direct "
                 << std::chrono::duration<double>(t2 - t1).count() << " s; largest relative error " << worst_rel
                 << ", largest error / bound " << worst_of_bound << ", widest bound / distance " << widest_bound);
  }
}
