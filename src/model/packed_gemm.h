// A left-hand matrix packed once for Eigen's GEMM kernel, then multiplied by
// many right-hand sides: the recurrent products of the LSTM and GRU, where
// every time step multiplies the same U (G H x H) by the batch's h_{t-1}
// (H x b). Eigen's product repacks its left-hand side at every call, which
// for a 1024 x 256 U and b = 10 columns cost a third of the LSTM's time
// (docs/performance.md). PackedLhs runs the steps of Eigen 3.4's sequential
// general_matrix_matrix_product — the same blocking sizes, packing routines
// and panel kernel, in the same order — with the left-hand packing taken out
// of the loop, so its results are bit for bit those of
// `c.noalias() += a * b`. Where Eigen would not take its GEMM path (a single
// column or row, or rows + depth + cols below its coefficient-product
// threshold), Usable() is false and the caller keeps Eigen's expression.
#pragma once

#include <Eigen/Core>

#include <cstdint>

namespace fedsim::seq {

class PackedLhs {
 public:
  // Whether a rows x depth by depth x cols product takes Eigen's GEMM path.
  static bool Usable(int64_t rows, int64_t depth, int64_t cols);

  // Packs A (rows x depth) for products with `cols` columns: A is
  // column-major with leading dimension lda, or, when transposed, A is the
  // transpose of the column-major depth x rows matrix at a (leading
  // dimension lda). Requires Usable(rows, depth, cols).
  void Pack(const float* a, int64_t lda, bool transposed, int64_t rows, int64_t depth, int64_t cols);

  // c += A b, b: depth x cols (leading dimension ldb), c: rows x cols
  // (leading dimension ldc), with the rows, depth and cols given to Pack.
  void AddProduct(const float* b, int64_t ldb, float* c, int64_t ldc);

 private:
  // Offset in packed_ of the lhs block starting at row i2 and depth k2.
  int64_t BlockOffset(int64_t i2, int64_t k2) const;

  int64_t rows_ = 0, depth_ = 0, cols_ = 0;
  int64_t kc_ = 0, mc_ = 0, nc_ = 0;
  Eigen::VectorXf packed_;  // the lhs blocks, each at a 64-byte boundary
  Eigen::VectorXf rhs_;     // one packed rhs block
};

}  // namespace fedsim::seq
