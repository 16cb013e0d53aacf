#include "model/fedpara.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/fmath.h"
#include "model/dense_ops.h"

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

// Buffers for one thread, all sized once for max_batch. Activations are viewed
// as contiguous b x width column-major matrices for a batch of b.
class FedParaMlp::Ws : public Workspace {
 public:
  Ws(const std::vector<int>& sizes, const std::vector<int>& ranks, int max_batch) : max_batch(max_batch) {
    const size_t layers = sizes.size() - 1;
    int widest = 0;
    Eigen::Index largest_w = 0;
    w1.resize(layers);
    w2.resize(layers);
    w.resize(layers);
    for (size_t l = 0; l < layers; ++l) {
      act.emplace_back(static_cast<Eigen::Index>(max_batch) * sizes[l + 1]);
      widest = std::max(widest, sizes[l + 1]);
      if (ranks[l] > 0) {
        const Eigen::Index mn = static_cast<Eigen::Index>(sizes[l]) * sizes[l + 1];
        w1[l].resize(mn);
        w2[l].resize(mn);
        w[l].resize(mn);
        largest_w = std::max(largest_w, mn);
      }
    }
    grad_a.resize(static_cast<Eigen::Index>(max_batch) * widest);
    grad_b.resize(static_cast<Eigen::Index>(max_batch) * widest);
    dw.resize(largest_w);
    g.resize(largest_w);
  }
  int max_batch;
  std::vector<Eigen::VectorXf> act;        // act[l]: output of layer l (ReLU applied for hidden layers)
  std::vector<Eigen::VectorXf> w1, w2, w;  // formed X1 Y1^T, X2 Y2^T and their Hadamard product (empty if dense)
  Eigen::VectorXf grad_a, grad_b;          // ping-pong buffers for dLoss/dZ
  Eigen::VectorXf dw, g;                   // dLoss/dW and dW o W2 (then dW o W1) of the current layer
};

FedParaMlp::FedParaMlp(std::vector<int> sizes, double gamma, double init_scale, bool dense_last_layer)
    : sizes_(std::move(sizes)), gamma_(gamma), init_scale_(init_scale) {
  if (sizes_.size() < 2) throw InputError("FedPara: a model needs at least an input and an output size");
  for (int s : sizes_) {
    if (s < 1) throw InputError(fmt::format("FedPara: layer size {} must be positive", s));
  }
  const size_t layers = sizes_.size() - 1;
  for (size_t l = 0; l < layers; ++l) {
    const int64_t m = sizes_[l], n = sizes_[l + 1];
    const bool dense = dense_last_layer && l + 1 == layers;
    const int r = dense ? 0 : FedParaRank(static_cast<int>(m), static_cast<int>(n), gamma_);
    Layout lay;
    if (dense) {
      lay.w = num_params_;
      num_params_ += m * n;
    } else {
      lay.x1 = num_params_;
      lay.y1 = lay.x1 + m * r;
      lay.x2 = lay.y1 + n * r;
      lay.y2 = lay.x2 + m * r;
      num_params_ = lay.y2 + n * r;
    }
    lay.b = num_params_;
    num_params_ += n;
    ranks_.push_back(r);
    layout_.push_back(lay);
  }
}

std::string FedParaMlp::Describe() const {
  std::string s, r;
  for (size_t i = 0; i < sizes_.size(); ++i) s += (i ? "-" : "") + std::to_string(sizes_[i]);
  for (size_t l = 0; l < ranks_.size(); ++l) {
    r += (l ? "/" : "") + (ranks_[l] > 0 ? std::to_string(ranks_[l]) : std::string("dense"));
  }
  return fmt::format("fedpara {} gamma={} ranks {} ({} parameters)", s, gamma_, r, num_params_);
}

double FedParaMlp::TrainFlopsPerSample() const {
  double macs = 0.0;
  for (size_t l = 1; l < sizes_.size(); ++l) {
    const double io = static_cast<double>(sizes_[l - 1]) * sizes_[l];
    macs += 2.0 * io;       // forward and weight gradient
    if (l > 1) macs += io;  // gradient with respect to the layer input
  }
  return 2.0 * macs;
}

double FedParaMlp::WeightConstructionFlops() const {
  double macs = 0.0;
  for (size_t l = 0; l < ranks_.size(); ++l) {
    if (ranks_[l] == 0) continue;
    const double mn = static_cast<double>(sizes_[l]) * sizes_[l + 1];
    // Forward: W1 and W2 (R each per entry) and their product; backward: the
    // two masked copies of dW and four factor GEMMs (R each per entry).
    macs += mn * (2.0 * ranks_[l] + 1.0) + mn * (4.0 * ranks_[l] + 2.0);
  }
  return 2.0 * macs;
}

// Init. Give every factor entry an iid zero-mean distribution of variance s^2.
// An entry of W1 = X1 Y1^T is A = sum_r x_r y_r, a sum of R uncorrelated
// products of independent zero-mean variables, so Var(A) = R s^4; likewise
// W2's entry B, independent of A. For independent zero-mean A and B,
// Var(A B) = Var(A) Var(B), hence Var(W_ij) = R^2 s^8. Mlp's init
// uniform(+-c/sqrt(m)), c = init_scale, has variance c^2 / (3m); matching it
// gives s^2 = (c^2 / (3m R^2))^(1/4). The entries are drawn uniform(+-sqrt(3) s)
// (variance s^2), in the uniform spirit of Mlp. W is not uniform (it is a
// product of sums), only its variance matches. Biases are drawn as in Mlp.
void FedParaMlp::Init(float* params, Rng& rng) const {
  for (size_t l = 0; l < layout_.size(); ++l) {
    const int64_t m = sizes_[l], n = sizes_[l + 1];
    const double bound = init_scale_ / std::sqrt(static_cast<double>(m));
    const Layout& lay = layout_[l];
    if (ranks_[l] == 0) {
      for (int64_t i = lay.w; i < lay.b; ++i) params[i] = static_cast<float>(rng.Uniform(-bound, bound));
    } else {
      const double r = ranks_[l];
      const double s2 = fm::Pow(bound * bound / (3.0 * r * r), 0.25);
      const double factor_bound = std::sqrt(3.0 * s2);
      for (int64_t i = lay.x1; i < lay.b; ++i) {
        params[i] = static_cast<float>(rng.Uniform(-factor_bound, factor_bound));
      }
    }
    for (int64_t i = lay.b; i < lay.b + n; ++i) params[i] = static_cast<float>(rng.Uniform(-bound, bound));
  }
}

std::unique_ptr<Workspace> FedParaMlp::NewWorkspace(int max_batch) const {
  return std::make_unique<Ws>(sizes_, ranks_, max_batch);
}

void FedParaMlp::Forward(const float* params, const float* x, int b, Ws& ws) const {
  const int layers = static_cast<int>(sizes_.size()) - 1;
  for (int l = 0; l < layers; ++l) {
    const int in = sizes_[l], out = sizes_[l + 1], r = ranks_[l];
    const Layout& lay = layout_[l];
    const float* w_data = params + lay.w;
    if (r > 0) {
      MatMap w1(ws.w1[l].data(), in, out), w2(ws.w2[l].data(), in, out), w(ws.w[l].data(), in, out);
      w1.noalias() = ConstMatMap(params + lay.x1, in, r) * ConstMatMap(params + lay.y1, out, r).transpose();
      w2.noalias() = ConstMatMap(params + lay.x2, in, r) * ConstMatMap(params + lay.y2, out, r).transpose();
      w = w1.cwiseProduct(w2);
      w_data = ws.w[l].data();
    }
    DenseForward(l == 0 ? x : ws.act[l - 1].data(), l == 0, w_data, params + lay.b, b, in, out, l + 1 < layers,
                 ws.act[l].data());
  }
}

double FedParaMlp::LossAndGradient(const float* params, const float* x, const int* y, int b, float* grad,
                                   Workspace& base) const {
  auto& ws = static_cast<Ws&>(base);
  const int layers = static_cast<int>(sizes_.size()) - 1;
  const int classes = sizes_.back();
  Forward(params, x, b, ws);

  // dLoss/dlogits = (softmax - onehot) / b.
  MatMap g(ws.grad_a.data(), b, classes);
  g = MatMap(ws.act[layers - 1].data(), b, classes);
  const double loss = SoftmaxCrossEntropyGrad(g, y);

  float* g_cur = ws.grad_a.data();
  float* g_next = ws.grad_b.data();
  for (int l = layers - 1; l >= 0; --l) {
    const int in = sizes_[l], out = sizes_[l + 1], r = ranks_[l];
    const Layout& lay = layout_[l];
    const float* a = l == 0 ? x : ws.act[l - 1].data();
    DenseParamGrad(a, l == 0, g_cur, b, in, out, r > 0 ? ws.dw.data() : grad + lay.w, grad + lay.b);
    MatMap dw(r > 0 ? ws.dw.data() : grad + lay.w, in, out);
    if (r > 0) {
      // W = W1 o W2: dL/dW1 = dW o W2, dL/dW2 = dW o W1, and for W1 = X1 Y1^T,
      // dL/dX1 = (dL/dW1) Y1, dL/dY1 = (dL/dW1)^T X1 (likewise for W2).
      MatMap gw(ws.g.data(), in, out);
      gw = dw.cwiseProduct(ConstMatMap(ws.w2[l].data(), in, out));
      MatMap(grad + lay.x1, in, r).noalias() = gw * ConstMatMap(params + lay.y1, out, r);
      MatMap(grad + lay.y1, out, r).noalias() = gw.transpose() * ConstMatMap(params + lay.x1, in, r);
      gw = dw.cwiseProduct(ConstMatMap(ws.w1[l].data(), in, out));
      MatMap(grad + lay.x2, in, r).noalias() = gw * ConstMatMap(params + lay.y2, out, r);
      MatMap(grad + lay.y2, out, r).noalias() = gw.transpose() * ConstMatMap(params + lay.x2, in, r);
    }
    if (l > 0) {
      DenseInputGrad(g_cur, r > 0 ? ws.w[l].data() : params + lay.w, a, b, in, out, g_next);
      std::swap(g_cur, g_next);
    }
  }
  return loss;
}

EvalSums FedParaMlp::Evaluate(const float* params, const float* x, const int* y, int b, Workspace& base) const {
  auto& ws = static_cast<Ws&>(base);
  EvalSums s;
  if (b <= 0) return s;
  const int layers = static_cast<int>(sizes_.size()) - 1;
  Forward(params, x, b, ws);
  ConstMatMap z(ws.act[layers - 1].data(), b, sizes_.back());
  for (int i = 0; i < b; ++i) {
    Eigen::Index arg;
    const float m = z.row(i).maxCoeff(&arg);
    const double lse = fm::Log(static_cast<double>(fm::SumExpShifted(z.row(i), m))) + m;
    const int yi = y[i];
    s.loss_sum += lse - z(i, yi);
    s.correct += (arg == yi);
  }
  s.count = b;
  return s;
}

}  // namespace fedsim
