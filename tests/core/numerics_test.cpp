// The process's numeric environment (src/core/numerics.h): what the portable
// build fixes, and why it has to.
#include "core/numerics.h"

#include <Eigen/Core>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

namespace {

Eigen::MatrixXf Filled(int rows, int cols, uint32_t seed) {
  Eigen::MatrixXf m(rows, cols);
  uint32_t s = seed;
  for (int j = 0; j < cols; ++j) {
    for (int i = 0; i < rows; ++i) {
      s = s * 1664525u + 1013904223u;
      m(i, j) = static_cast<float>(s >> 8) / 16777216.0f - 0.5f;
    }
  }
  return m;
}

bool SameBits(const Eigen::MatrixXf& a, const Eigen::MatrixXf& b) {
  return a.size() == b.size() && std::equal(a.data(), a.data() + a.size(), b.data());
}

}  // namespace

TEST_CASE("a matrix product's bits follow the cache sizes Eigen is told; InitNumerics fixes them",
          "[numerics]") {
  std::ptrdiff_t l1, l2, l3;
  Eigen::internal::manage_caching_sizes(Eigen::GetAction, &l1, &l2, &l3);
  const Eigen::MatrixXf a = Filled(48, 3000, 1), b = Filled(3000, 40, 2);
  // Small caches: Eigen cuts the 3,000-long inner dimension into shorter
  // blocks, whose partial sums are added in another grouping.
  Eigen::setCpuCacheSizes(4 * 1024, 64 * 1024, 1024 * 1024);
  const Eigen::MatrixXf small = a * b;
  fedsim::InitNumerics();
  const Eigen::MatrixXf fixed = a * b;
  CHECK_FALSE(SameBits(small, fixed));
  CHECK((small - fixed).cwiseAbs().maxCoeff() < 1e-3f);  // the same product, rounded differently
  Eigen::setCpuCacheSizes(l1, l2, l3);
  const Eigen::MatrixXf again = a * b;
#ifdef FEDSIM_PORTABLE
  // The portable build's fixed sizes, whatever this machine's caches are.
  fedsim::InitNumerics();
  CHECK(Eigen::l1CacheSize() == 32 * 1024);
  CHECK(Eigen::l2CacheSize() == 1024 * 1024);
  CHECK(Eigen::l3CacheSize() == 32 * 1024 * 1024);
  CHECK(SameBits(a * b, fixed));
  CHECK(SameBits(again, fixed));  // the test binary's main ran InitNumerics before this test
#endif
  Eigen::setCpuCacheSizes(l1, l2, l3);
}

// The same condition as the replacement in src/core/numerics.cpp: under the
// sanitizers their own operator new stays (16-byte aligned).
#if defined(FEDSIM_PORTABLE) && !defined(FEDSIM_SANITIZE_BUILD)
TEST_CASE("the portable build's operator new returns 64-byte aligned memory", "[numerics]") {
  for (size_t n : {1, 3, 17, 100, 4097, 1 << 20}) {
    std::vector<float> v(n);
    CHECK(reinterpret_cast<uintptr_t>(v.data()) % 64 == 0);
    std::unique_ptr<double[]> d(new double[n]);
    CHECK(reinterpret_cast<uintptr_t>(d.get()) % 64 == 0);
  }
}
#endif

TEST_CASE("Eigen's vectorised float sqrt is the exact IEEE square root", "[numerics]") {
  // With EIGEN_FAST_MATH=1 Eigen computes it from the CPU's rsqrt estimate
  // (which differs between CPU vendors) and a Newton step, a few ulp off.
  Eigen::ArrayXf v(4099);
  for (Eigen::Index i = 0; i < v.size(); ++i) v[i] = 1e-3f + 0.7351f * static_cast<float>(i);
  const Eigen::ArrayXf r = v.sqrt();
  int inexact = 0;
  for (Eigen::Index i = 0; i < v.size(); ++i) inexact += r[i] != std::sqrt(v[i]);
  CHECK(inexact == 0);
}
