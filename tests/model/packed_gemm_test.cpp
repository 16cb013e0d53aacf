// PackedLhs (model/packed_gemm.h) against Eigen's own product: A packed
// once, given plainly or as a transpose, must give `c.noalias() += a * b` bit
// for bit, for shapes with one block and with several row, depth and column
// blocks.
#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <cstring>
#include <stdexcept>

#include "core/rng.h"
#include "model/packed_gemm.h"

using fedsim::Rng;
using fedsim::seq::PackedLhs;

namespace {

Eigen::MatrixXf Random(int64_t rows, int64_t cols, Rng& rng) {
  Eigen::MatrixXf m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(rng.Normal());
  return m;
}

bool SameBits(const Eigen::MatrixXf& a, const Eigen::MatrixXf& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.size())) == 0;
}

}  // namespace

TEST_CASE("packed gemm: a packed left-hand side gives Eigen's product bit for bit", "[model][packed_gemm]") {
  // {rows, depth, cols}: thin products (6 or 16 rows, as in the small
  // CNNs), the LSTM's recurrent step (1024 x 256 by 10 columns), and shapes
  // large enough for several blocks of every kind under the portable
  // build's cache sizes.
  const int64_t shapes[][3] = {{6, 75, 4704}, {16, 150, 600}, {6, 4704, 75}, {1024, 256, 10},
                               {9, 7, 5},     {300, 1500, 700}, {700, 300, 1501}, {37, 2049, 13}};
  Rng rng(7);
  for (const auto& s : shapes) {
    const int64_t rows = s[0], depth = s[1], cols = s[2];
    INFO(rows << " x " << depth << " by " << depth << " x " << cols);
    REQUIRE(PackedLhs::Usable(rows, depth, cols));
    const Eigen::MatrixXf a = Random(rows, depth, rng), b = Random(depth, cols, rng);
    const Eigen::MatrixXf c0 = Random(rows, cols, rng);
    Eigen::MatrixXf want = c0;
    want.noalias() += a * b;

    PackedLhs packed;
    packed.Pack(a.data(), rows, false, rows, depth, cols);
    Eigen::MatrixXf plain = c0;
    packed.AddProduct(b.data(), depth, plain.data(), rows);
    CHECK(SameBits(plain, want));

    // The transposed form of Pack: A given as the transpose of a depth x rows matrix.
    const Eigen::MatrixXf at = a.transpose();
    PackedLhs packed_t;
    packed_t.Pack(at.data(), depth, true, rows, depth, cols);
    Eigen::MatrixXf from_t = c0;
    packed_t.AddProduct(b.data(), depth, from_t.data(), rows);
    CHECK(SameBits(from_t, want));
  }
}

TEST_CASE("packed gemm: products Eigen does not run as GEMM are refused", "[model][packed_gemm]") {
  CHECK_FALSE(PackedLhs::Usable(1, 100, 100));  // a row: Eigen's GEMV
  CHECK_FALSE(PackedLhs::Usable(100, 100, 1));  // a column: Eigen's GEMV
  CHECK_FALSE(PackedLhs::Usable(4, 4, 4));      // below the coefficient-product threshold
  CHECK(PackedLhs::Usable(2, 16, 2));
  PackedLhs p;
  const float a[4] = {1, 2, 3, 4};
  CHECK_THROWS_AS(p.Pack(a, 1, false, 1, 4, 1), std::logic_error);
}
