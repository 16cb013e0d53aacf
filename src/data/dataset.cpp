#include "data/dataset.h"

#include <algorithm>

namespace fedsim {

void Dataset::Rows(const int* rows, int count, float* out) const {
  const int d = dim();
  for (int i = 0; i < count; ++i) {
    const int64_t r = rows[i];
    float* dst = out + static_cast<int64_t>(i) * d;
    if (byte_storage) {
      Eigen::Map<Eigen::RowVectorXf>(dst, d) =
          Eigen::Map<const Eigen::Matrix<uint8_t, 1, Eigen::Dynamic>>(bytes.data() + r * d, d)
              .cast<float>()
              .cwiseProduct(byte_scale) +
          byte_shift;
    } else {
      std::copy_n(x.data() + r * d, d, dst);
    }
  }
}

void Dataset::Range(int begin, int count, float* out) const {
  if (!byte_storage) {
    std::copy_n(x.data() + static_cast<int64_t>(begin) * dim(), static_cast<int64_t>(count) * dim(), out);
    return;
  }
  std::vector<int> rows(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) rows[static_cast<size_t>(i)] = begin + i;
  Rows(rows.data(), count, out);
}

RowMatrix Dataset::Dense() const {
  if (!byte_storage) return x;
  RowMatrix m(size(), dim());
  Range(0, size(), m.data());
  return m;
}

}  // namespace fedsim
