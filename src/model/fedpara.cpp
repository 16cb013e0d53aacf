#include "model/fedpara.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/fmath.h"

namespace fedsim {

using MatMap = Eigen::Map<Eigen::MatrixXf>;
using ConstMatMap = Eigen::Map<const Eigen::MatrixXf>;
using ConstRowMap = Eigen::Map<const RowMatrix>;
using VecMap = Eigen::Map<Eigen::VectorXf>;
using ConstVecMap = Eigen::Map<const Eigen::VectorXf>;

int FedParaRank(int m, int n, double gamma) {
  if (m < 1 || n < 1) throw InputError(fmt::format("FedPara: layer size {}x{} must be positive", m, n));
  if (!(gamma >= 0.0 && gamma <= 1.0)) throw InputError(fmt::format("FedPara: gamma {} is not in [0, 1]", gamma));
  const int64_t mn = static_cast<int64_t>(m) * n;
  const int64_t small = std::min(m, n);
  int64_t r_min = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(small))));
  while (r_min * r_min < small) ++r_min;  // guard against sqrt rounding
  while (r_min > 1 && (r_min - 1) * (r_min - 1) >= small) --r_min;
  const int64_t r_max = std::max(r_min, mn / (2 * (static_cast<int64_t>(m) + n)));
  const double r = (1.0 - gamma) * static_cast<double>(r_min) + gamma * static_cast<double>(r_max);
  // The tolerance keeps an exact integer (gamma = 0 or 1) from rounding up.
  const int64_t rank = static_cast<int64_t>(std::ceil(r - 1e-9));
  return static_cast<int>(std::clamp(rank, r_min, r_max));
}

int FedParaConvRank(int in, int out, int kernel, double gamma) {
  if (in < 1 || out < 1 || kernel < 1) {
    throw InputError(fmt::format("FedPara: convolution {}->{} with a {}x{} kernel must have positive sizes", in, out,
                                 kernel, kernel));
  }
  if (!(gamma >= 0.0 && gamma <= 1.0)) throw InputError(fmt::format("FedPara: gamma {} is not in [0, 1]", gamma));
  const int64_t small = std::min(in, out);
  int64_t r_min = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(small))));
  while (r_min * r_min < small) ++r_min;
  while (r_min > 1 && (r_min - 1) * (r_min - 1) >= small) --r_min;
  const int64_t kk = static_cast<int64_t>(kernel) * kernel, io = static_cast<int64_t>(in) + out;
  const int64_t dense = static_cast<int64_t>(in) * out * kk;
  auto fits = [&](int64_t r) { return 2 * (kk * r * r + io * r) <= dense; };
  int64_t r_max = 0;
  while (fits(r_max + 1)) ++r_max;
  r_max = std::max(r_min, r_max);
  const double r = (1.0 - gamma) * static_cast<double>(r_min) + gamma * static_cast<double>(r_max);
  const int64_t rank = static_cast<int64_t>(std::ceil(r - 1e-9));
  return static_cast<int>(std::clamp(rank, r_min, r_max));
}

double FedParaFactorBound(bool conv, int rank, double bound) {
  const double r = rank, target = bound * bound / 3.0;
  const double s2 = conv ? fm::Pow(target / (r * r * r * r), 1.0 / 6.0) : fm::Pow(target / (r * r), 0.25);
  return std::sqrt(3.0 * s2);
}

double FedParaPassMacs(bool conv, int out, int in, int positions, int rank) {
  const double r = rank, w = static_cast<double>(out) * in * positions;
  double macs;
  if (conv) {
    // Per factor: z = X T (out R^2 k^2) and W_p = z_p Y^T (out in R k^2);
    // backward: h and dY (2 out in R k^2), dX and dT (2 out R^2 k^2).
    const double core = static_cast<double>(out) * r * r * positions;
    macs = 2.0 * (core + w * r) + 2.0 * (2.0 * w * r + 2.0 * core);
  } else {
    // Per factor: X Y^T (out in R); backward: dX and dY (2 out in R).
    macs = 2.0 * w * r + 2.0 * 2.0 * w * r;
  }
  return macs + w + 2.0 * w;  // W1 o W2, then dW o W2 and dW o W1
}

void FedParaDenseForm(int out, int in, int rank, const float* x, const float* y, float* w) {
  MatMap(w, out, in).noalias() = ConstMatMap(x, out, rank) * ConstMatMap(y, in, rank).transpose();
}

void FedParaDenseGrad(int out, int in, int rank, const float* g, const float* x, const float* y, float* dx,
                      float* dy) {
  const ConstMatMap gm(g, out, in);
  MatMap(dx, out, rank).noalias() = gm * ConstMatMap(y, in, rank);
  MatMap(dy, in, rank).noalias() = gm.transpose() * ConstMatMap(x, out, rank);
}

void FedParaConvForm(int out, int in, int positions, int rank, const float* t, const float* x, const float* y,
                     float* z, float* w) {
  const Eigen::Index rk = static_cast<Eigen::Index>(rank) * positions;
  MatMap zm(z, out, rk);
  zm.noalias() = ConstMatMap(x, out, rank) * ConstMatMap(t, rank, rk);
  ConstMatMap ym(y, in, rank);
  for (int p = 0; p < positions; ++p) {
    MatMap(w + static_cast<int64_t>(p) * out * in, out, in).noalias() =
        ConstMatMap(z + static_cast<int64_t>(p) * out * rank, out, rank) * ym.transpose();
  }
}

void FedParaConvGrad(int out, int in, int positions, int rank, const float* g, const float* t, const float* x,
                     const float* y, const float* z, float* h, float* dt, float* dx, float* dy) {
  const Eigen::Index rk = static_cast<Eigen::Index>(rank) * positions;
  ConstMatMap ym(y, in, rank);
  MatMap dym(dy, in, rank);
  dym.setZero();
  for (int p = 0; p < positions; ++p) {
    ConstMatMap gp(g + static_cast<int64_t>(p) * out * in, out, in);
    // h_p = g_p Y; dY += g_p^T (X T_p), where X T_p is the p-th block of z.
    MatMap(h + static_cast<int64_t>(p) * out * rank, out, rank).noalias() = gp * ym;
    dym.noalias() += gp.transpose() * ConstMatMap(z + static_cast<int64_t>(p) * out * rank, out, rank);
  }
  ConstMatMap hm(h, out, rk);
  // dX = sum_p h_p T_p^T = h [T_0 ... ]^T;  dT = X^T h.
  MatMap(dx, out, rank).noalias() = hm * ConstMatMap(t, rank, rk).transpose();
  MatMap(dt, rank, rk).noalias() = ConstMatMap(x, out, rank).transpose() * hm;
}

}  // namespace fedsim
