#include "model/packed_gemm.h"

#include <algorithm>
#include <stdexcept>

namespace fedsim::seq {
namespace {

namespace ei = Eigen::internal;
using Index = Eigen::Index;
using Traits = ei::gebp_traits<float, float>;
using ResMapper = ei::blas_data_mapper<float, Index, Eigen::ColMajor, Eigen::Unaligned, 1>;

// Packed blocks start at 64-byte boundaries (Eigen's kernel loads the packed
// lhs with aligned loads).
constexpr Index kAlign = 16;
Index RoundUp(Index n) { return (n + kAlign - 1) / kAlign * kAlign; }

template <int Order>
void PackLhsBlock(float* dst, const float* a, Index lda, Index i2, Index k2, Index kc, Index mc) {
  using Mapper = ei::const_blas_data_mapper<float, Index, Order>;
  ei::gemm_pack_lhs<float, Index, Mapper, Traits::mr, Traits::LhsProgress, typename Traits::LhsPacket4Packing, Order>
      pack;
  pack(dst, Mapper(a, lda).getSubMapper(i2, k2), kc, mc);
}

}  // namespace

bool PackedLhs::Usable(int64_t rows, int64_t depth, int64_t cols) {
  // Eigen 3.4 (GeneralProduct.h, generic_product_impl<..., GemmProduct>):
  // products below EIGEN_GEMM_TO_COEFFBASED_THRESHOLD go coefficient by
  // coefficient, and a single column or row goes to GEMV.
  return rows > 1 && cols > 1 && depth > 0 && rows + depth + cols >= EIGEN_GEMM_TO_COEFFBASED_THRESHOLD;
}

int64_t PackedLhs::BlockOffset(int64_t i2, int64_t k2) const {
  // Blocks are stored row block by row block, each mc x kc except the last
  // ones; all but the last have a size that is a multiple of kAlign after
  // rounding.
  const Index nk = (depth_ + kc_ - 1) / kc_;
  const Index full = RoundUp(mc_ * kc_);
  const Index row_block = i2 / mc_, k_block = k2 / kc_;
  const Index mc = std::min<Index>(mc_, rows_ - i2);
  return row_block * nk * full + k_block * RoundUp(mc * kc_);
}

void PackedLhs::Pack(const float* a, int64_t lda, bool transposed, int64_t rows, int64_t depth, int64_t cols) {
  if (!Usable(rows, depth, cols)) throw std::logic_error("PackedLhs::Pack: a product Eigen does not run as GEMM");
  rows_ = rows;
  depth_ = depth;
  cols_ = cols;
  // The blocking of Eigen's gemm_blocking_space for a column-major result
  // with one thread (l3_blocking = true), as general_matrix_matrix_product
  // then clips it.
  Index kc = depth, mc = rows, nc = cols;
  ei::computeProductBlockingSizes<float, float, 1, Index>(kc, mc, nc, Index(1));
  kc_ = kc;
  mc_ = std::min<Index>(rows, mc);
  nc_ = std::min<Index>(cols, nc);
  const Index nk = (depth_ + kc_ - 1) / kc_, ni = (rows_ + mc_ - 1) / mc_;
  const Index size = ni * nk * RoundUp(mc_ * kc_);
  if (packed_.size() < size) packed_.resize(size);
  for (Index i2 = 0; i2 < rows_; i2 += mc_) {
    const Index mc_i = std::min<Index>(i2 + mc_, rows_) - i2;
    for (Index k2 = 0; k2 < depth_; k2 += kc_) {
      const Index kc_k = std::min<Index>(k2 + kc_, depth_) - k2;
      float* dst = packed_.data() + BlockOffset(i2, k2);
      if (transposed) {
        PackLhsBlock<Eigen::RowMajor>(dst, a, lda, i2, k2, kc_k, mc_i);
      } else {
        PackLhsBlock<Eigen::ColMajor>(dst, a, lda, i2, k2, kc_k, mc_i);
      }
    }
  }
}

void PackedLhs::AddProduct(const float* b, int64_t ldb, float* c, int64_t ldc) {
  using RhsMapper = ei::const_blas_data_mapper<float, Index, Eigen::ColMajor>;
  ei::gemm_pack_rhs<float, Index, RhsMapper, Traits::nr, Eigen::ColMajor> pack_rhs;
  ei::gebp_kernel<float, float, Index, ResMapper, Traits::mr, Traits::nr, false, false> gebp;
  const RhsMapper rhs(b, ldb);
  const ResMapper res(c, ldc);
  // Every kc x nc block of the right-hand side, packed once per call.
  const Index nk = (depth_ + kc_ - 1) / kc_, nj = (cols_ + nc_ - 1) / nc_;
  const Index rhs_block = RoundUp(kc_ * nc_);
  if (rhs_.size() < nk * nj * rhs_block) rhs_.resize(nk * nj * rhs_block);
  for (Index k2 = 0, kb = 0; k2 < depth_; k2 += kc_, ++kb) {
    const Index kc_k = std::min<Index>(k2 + kc_, depth_) - k2;
    for (Index j2 = 0, jb = 0; j2 < cols_; j2 += nc_, ++jb) {
      const Index nc_j = std::min<Index>(j2 + nc_, cols_) - j2;
      pack_rhs(rhs_.data() + (kb * nj + jb) * rhs_block, rhs.getSubMapper(k2, j2), kc_k, nc_j);
    }
  }
  // Eigen's loop order: row blocks, then depth blocks, then column blocks,
  // so every element of c receives its depth blocks in increasing order.
  for (Index i2 = 0; i2 < rows_; i2 += mc_) {
    const Index mc_i = std::min<Index>(i2 + mc_, rows_) - i2;
    for (Index k2 = 0, kb = 0; k2 < depth_; k2 += kc_, ++kb) {
      const Index kc_k = std::min<Index>(k2 + kc_, depth_) - k2;
      const float* block_a = packed_.data() + BlockOffset(i2, k2);
      for (Index j2 = 0, jb = 0; j2 < cols_; j2 += nc_, ++jb) {
        const Index nc_j = std::min<Index>(j2 + nc_, cols_) - j2;
        gebp(res.getSubMapper(i2, j2), block_a, rhs_.data() + (kb * nj + jb) * rhs_block, mc_i, kc_k, nc_j, 1.0f);
      }
    }
  }
}

}  // namespace fedsim::seq
