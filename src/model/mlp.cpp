#include "model/mlp.h"

#include <fmt/format.h>

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

// Activation buffers for one thread; each holds max_batch x width floats and is
// viewed as a contiguous b x width column-major matrix for a batch of b.
class Mlp::Ws : public Workspace {
 public:
  Ws(const std::vector<int>& sizes, int max_batch) : max_batch(max_batch) {
    for (size_t l = 1; l < sizes.size(); ++l) {
      act.emplace_back(static_cast<Eigen::Index>(max_batch) * sizes[l]);
    }
    int widest = 0;
    for (size_t l = 1; l < sizes.size(); ++l) widest = std::max(widest, sizes[l]);
    grad_a.resize(static_cast<Eigen::Index>(max_batch) * widest);
    grad_b.resize(static_cast<Eigen::Index>(max_batch) * widest);
  }
  int max_batch;
  std::vector<Eigen::VectorXf> act;  // act[l]: output of layer l (ReLU applied for hidden layers)
  Eigen::VectorXf grad_a, grad_b;    // ping-pong buffers for dLoss/dZ
};

Mlp::Mlp(std::vector<int> sizes, double init_scale, std::string kind)
    : sizes_(std::move(sizes)), init_scale_(init_scale), kind_(std::move(kind)) {
  for (size_t l = 1; l < sizes_.size(); ++l) {
    w_offset_.push_back(num_params_);
    num_params_ += static_cast<int64_t>(sizes_[l - 1]) * sizes_[l];
    b_offset_.push_back(num_params_);
    num_params_ += sizes_[l];
  }
}

std::vector<ParamRange> Mlp::ParamRanges() const {
  std::vector<ParamRange> r;
  for (size_t l = 0; l + 1 < sizes_.size(); ++l) {
    const std::string layer = "layers." + std::to_string(l);
    r.push_back({layer + ".weight", w_offset_[l], b_offset_[l] - w_offset_[l]});
    r.push_back({layer + ".bias", b_offset_[l], sizes_[l + 1]});
  }
  return r;
}

std::string Mlp::Describe() const {
  std::string s;
  for (size_t i = 0; i < sizes_.size(); ++i) s += (i ? "-" : "") + std::to_string(sizes_[i]);
  return fmt::format("{} {} ({} parameters)", kind_, s, num_params_);
}

double Mlp::TrainFlopsPerSample() const {
  double macs = 0.0;
  for (size_t l = 1; l < sizes_.size(); ++l) {
    const double io = static_cast<double>(sizes_[l - 1]) * sizes_[l];
    macs += 2.0 * io;           // forward and weight gradient
    if (l > 1) macs += io;      // gradient with respect to the layer input
  }
  return 2.0 * macs;
}

void Mlp::Init(float* params, Rng& rng) const {
  for (size_t l = 1; l < sizes_.size(); ++l) {
    const double bound = init_scale_ / std::sqrt(static_cast<double>(sizes_[l - 1]));
    const int64_t n = static_cast<int64_t>(sizes_[l - 1]) * sizes_[l] + sizes_[l];
    float* p = params + w_offset_[l - 1];
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(rng.Uniform(-bound, bound));
  }
}

std::unique_ptr<Workspace> Mlp::NewWorkspace(int max_batch) const {
  return std::make_unique<Ws>(sizes_, max_batch);
}

void Mlp::Forward(const float* params, const float* x, int b, Ws& ws) const {
  const int layers = static_cast<int>(sizes_.size()) - 1;
  for (int l = 0; l < layers; ++l) {
    DenseForward(l == 0 ? x : ws.act[l - 1].data(), l == 0, params + w_offset_[l], params + b_offset_[l], b, sizes_[l],
                 sizes_[l + 1], l + 1 < layers, ws.act[l].data());
  }
}

const float* Mlp::Logits(const float* params, const float* x, int b, Workspace& base) const {
  auto& ws = static_cast<Ws&>(base);
  Forward(params, x, b, ws);
  return ws.act.back().data();
}

double Mlp::LossAndGradient(const float* params, const float* x, const int* y, int b, float* grad,
                            Workspace& base) const {
  auto& ws = static_cast<Ws&>(base);
  const int layers = static_cast<int>(sizes_.size()) - 1;
  const int classes = sizes_.back();
  Forward(params, x, b, ws);

  // dLoss/dlogits = (softmax - onehot) / b, computed in place of the logits.
  MatMap g(ws.grad_a.data(), b, classes);
  g = MatMap(ws.act[layers - 1].data(), b, classes);
  const double loss = SoftmaxCrossEntropyGrad(g, y);

  float* g_cur = ws.grad_a.data();
  float* g_next = ws.grad_b.data();
  for (int l = layers - 1; l >= 0; --l) {
    const int in = sizes_[l], out = sizes_[l + 1];
    const float* a = l == 0 ? x : ws.act[l - 1].data();
    DenseParamGrad(a, l == 0, g_cur, b, in, out, grad + w_offset_[l], grad + b_offset_[l]);
    if (l > 0) {
      DenseInputGrad(g_cur, params + w_offset_[l], a, b, in, out, g_next);
      std::swap(g_cur, g_next);
    }
  }
  return loss;
}

EvalSums Mlp::Evaluate(const float* params, const float* x, const int* y, int b, Workspace& base) const {
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
