#include "round/reconstruction_score.h"

#include <algorithm>
#include <cmath>

#include "data/dataset.h"
#include "metrics/image.h"

namespace fedsim {

RowMatch MatchRow(double mse, const Eigen::Ref<const Eigen::VectorXf>& x_hat,
                  const Eigen::Ref<const Eigen::VectorXf>& row) {
  RowMatch m;
  if (!std::isfinite(mse)) return m;
  const double range = std::max(1e-12, static_cast<double>(row.maxCoeff() - row.minCoeff()));
  m.psnr = mse > 0.0 ? std::min(200.0, 10.0 * std::log10(range * range / mse)) : 200.0;
  m.exact = (x_hat - row).cwiseAbs().maxCoeff() <= 1e-3 * range;
  return m;
}

bool WriteReconstructionGrid(const Dataset& train, const std::vector<Eigen::VectorXf>& shown,
                             const std::string& path) {
  if (train.shape.size() != 3 || train.shape[0] != 1 || shown.empty()) return false;
  const int h = train.shape[1], w = train.shape[2];
  if (static_cast<int64_t>(h) * w != shown[0].size()) return false;
  const int pairs = static_cast<int>(std::min<size_t>(shown.size() / 2, 16));
  std::vector<float> cells(static_cast<size_t>(2 * pairs) * h * w);
  for (int r = 0; r < 2; ++r) {
    for (int p = 0; p < pairs; ++p) {
      const Eigen::VectorXf& v = shown[static_cast<size_t>(2 * p + r)];
      const float lo = v.minCoeff(), span = std::max(1e-12f, v.maxCoeff() - lo);
      float* dst = cells.data() + (static_cast<size_t>(r) * pairs + p) * h * w;
      for (int k = 0; k < h * w; ++k) dst[k] = std::isfinite(v[k]) ? (v[k] - lo) / span : 0.0f;
    }
  }
  WritePgm(path, TileImages(cells.data(), 2 * pairs, h, w, pairs, 2));
  return true;
}

}  // namespace fedsim
