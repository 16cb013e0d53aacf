#include "round/reconstruction_score.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/dataset.h"
#include "fl/checkpoint.h"
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

void SaveAuditTotals(CheckpointWriter& w, const std::string& prefix, const std::vector<int64_t>& counters,
                     double psnr_sum, const std::vector<Eigen::VectorXf>& shown) {
  w.I64(prefix + "/counters", counters);
  w.F64(prefix + "/psnr_sum", &psnr_sum, 1);
  std::vector<int64_t> sizes;
  int64_t total = 0;
  for (const auto& v : shown) sizes.push_back(v.size()), total += v.size();
  Eigen::VectorXf all(total);
  int64_t at = 0;
  for (const auto& v : shown) all.segment(at, v.size()) = v, at += v.size();
  w.I64(prefix + "/shown_sizes", sizes);
  w.F32(prefix + "/shown", all);
}

bool LoadAuditTotals(const CheckpointReader& r, const std::string& prefix, std::vector<int64_t>& counters,
                     double& psnr_sum, std::vector<Eigen::VectorXf>& shown) {
  if (!r.Has(prefix + "/counters")) return false;
  counters = r.I64(prefix + "/counters", static_cast<int64_t>(counters.size()));
  psnr_sum = r.F64(prefix + "/psnr_sum", 1)[0];
  const std::vector<int64_t> sizes = r.I64(prefix + "/shown_sizes");
  const Eigen::VectorXf all = r.F32(prefix + "/shown");
  shown.clear();
  int64_t at = 0;
  for (const int64_t n : sizes) {
    if (n < 0 || at + n > all.size()) throw InputError("checkpoint: '" + prefix + "/shown' is damaged");
    shown.emplace_back(all.segment(at, n));
    at += n;
  }
  if (at != all.size()) throw InputError("checkpoint: '" + prefix + "/shown' is damaged");
  return true;
}

}  // namespace fedsim
