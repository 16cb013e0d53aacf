#include "model/cnn.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/fmath.h"
#include "model/fedpara.h"

namespace fedsim {

namespace {

using MatMap = Eigen::Map<Eigen::MatrixXf>;
using ConstMatMap = Eigen::Map<const Eigen::MatrixXf>;
using VecMap = Eigen::Map<Eigen::VectorXf>;
using ConstVecMap = Eigen::Map<const Eigen::VectorXf>;
using ArrMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrMap = Eigen::Map<const Eigen::ArrayXf>;

// Upper bound on the floats of one im2col chunk (4 MiB, so a chunk stays in
// cache between im2col and its GEMMs). cnn_mcmahan's second convolution needs
// 156,800 per sample, so its chunks hold 6 samples; on a batch of 64 that ran
// about 30% faster than one GEMM over the whole batch (a 40 MB column
// matrix), and chunks of 3 to 8 samples measured alike.
constexpr int64_t kColBudgetFloats = int64_t{1} << 20;

}  // namespace

double Cnn::Op::Macs() const {
  switch (type) {
    case CnnLayer::Type::kConv:
      return static_cast<double>(out_c) * geom.col_rows() * geom.col_cols();
    case CnnLayer::Type::kDense:
      return static_cast<double>(out_c) * geom.in_size();
    default:
      return 0.0;
  }
}

// Buffers for one thread, sized for max_batch samples.
class Cnn::Ws : public Workspace {
 public:
  int max_batch = 0;
  Eigen::VectorXf input;                     // HWC copy of the batch (channels > 1 only)
  std::vector<Eigen::VectorXf> act;          // act[i]: output of op i, max_batch x out_size
  std::vector<std::vector<int32_t>> argmax;  // argmax[i]: winners of pooling op i
  Eigen::VectorXf cols;                      // im2col matrix of one chunk, then its gradient
  Eigen::VectorXf grad_a, grad_b;            // ping-pong gradients w.r.t. op outputs / inputs
  // FedPara, per op (empty for plain ops): the formed factors W1, W2 and
  // W = W1 o W2; for convolutions X1 T1 and X2 T2 (FedParaConvForm's z).
  std::vector<Eigen::VectorXf> w1, w2, w, z1, z2;
  Eigen::VectorXf dw, g, h;  // dL/dW of the current op, dW o W2 (then o W1), FedParaConvGrad's scratch
};

Cnn::Cnn(int channels, int height, int width, std::vector<CnnLayer> layers, double init_scale,
         std::string kind, int conv_chunk, std::optional<double> fedpara_gamma)
    : channels_(channels),
      height_(height),
      width_(width),
      layers_(std::move(layers)),
      init_scale_(init_scale),
      kind_(std::move(kind)),
      fedpara_gamma_(fedpara_gamma) {
  if (channels < 1 || height < 1 || width < 1) {
    throw InputError(fmt::format("{}: input shape {}x{}x{} must be positive", kind_, channels, height, width));
  }
  if (layers_.empty() || layers_.back().type != CnnLayer::Type::kDense) {
    throw InputError(kind_ + ": the last layer must be Dense (the logits)");
  }
  int c = channels, h = height, w = width;
  bool has_params = false;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const CnnLayer& spec = layers_[l];
    const std::string where = fmt::format("{}: layer {}", kind_, l);
    if (spec.type == CnnLayer::Type::kRelu) {
      if (ops_.empty()) throw InputError(where + ": ReLU must follow another layer");
      ops_.back().relu = true;
      continue;
    }
    Op op;
    op.type = spec.type;
    op.layer = static_cast<int>(l);
    op.geom.channels = c;
    op.geom.height = h;
    op.geom.width = w;
    op.needs_input_grad = has_params;
    if (spec.type == CnnLayer::Type::kDense) {
      if (spec.out < 1) throw InputError(where + ": Dense needs out >= 1");
      op.out_c = spec.out;
    } else {
      const bool conv = spec.type == CnnLayer::Type::kConv;
      if (spec.kernel < 1 || spec.stride < 1 || spec.padding < 0 || (conv && spec.out < 1)) {
        throw InputError(where + ": kernel, stride and out must be >= 1 and padding >= 0");
      }
      op.geom.kernel = spec.kernel;
      op.geom.stride = spec.stride;
      op.geom.padding = conv ? spec.padding : 0;
      if (h + 2 * op.geom.padding < spec.kernel || w + 2 * op.geom.padding < spec.kernel) {
        throw InputError(fmt::format("{}: {}x{} window does not fit the {}x{} input", where, spec.kernel,
                                     spec.kernel, h, w));
      }
      op.out_c = conv ? spec.out : c;
      op.out_h = op.geom.out_height();
      op.out_w = op.geom.out_width();
    }
    if (op.in_size() > std::numeric_limits<int32_t>::max()) throw InputError(where + ": input too large");
    if (op.type != CnnLayer::Type::kMaxPool) {
      if (fedpara_gamma_) {
        const bool conv = op.type == CnnLayer::Type::kConv;
        const int64_t in = op.w_in(), out = op.out_c;
        op.rank = conv ? FedParaConvRank(static_cast<int>(in), static_cast<int>(out), op.geom.kernel, *fedpara_gamma_)
                       : FedParaRank(static_cast<int>(in), static_cast<int>(out), *fedpara_gamma_);
        const int64_t r = op.rank, core = conv ? r * r * op.positions() : 0;
        op.t1 = num_params_;
        op.x1 = op.t1 + core;
        op.y1 = op.x1 + out * r;
        op.t2 = op.y1 + in * r;
        op.x2 = op.t2 + core;
        op.y2 = op.x2 + out * r;
        num_params_ = op.y2 + in * r;
      } else {
        op.w_offset = num_params_;
        num_params_ += op.fan_in() * op.out_c;
      }
      op.b_offset = num_params_;
      num_params_ += op.out_c;
      has_params = true;
    }
    c = op.out_c;
    h = op.out_h;
    w = op.out_w;
    ops_.push_back(op);
  }
  int64_t widest_cols = 1;
  for (const Op& op : ops_) {
    if (op.type == CnnLayer::Type::kConv) widest_cols = std::max(widest_cols, op.geom.col_rows() * op.geom.col_cols());
  }
  conv_chunk_ = conv_chunk > 0 ? conv_chunk
                               : static_cast<int>(std::clamp<int64_t>(kColBudgetFloats / widest_cols, 1, 1 << 20));
}

std::vector<ParamRange> Cnn::ParamRanges() const {
  std::vector<ParamRange> r;
  for (const Op& op : ops_) {
    if (op.type == CnnLayer::Type::kMaxPool) continue;
    const std::string layer = "layers." + std::to_string(op.layer);
    const int64_t begin = op.rank > 0 ? op.t1 : op.w_offset;
    r.push_back({layer + ".weight", begin, op.b_offset - begin});
    r.push_back({layer + ".bias", op.b_offset, op.out_c});
  }
  return r;
}

std::string Cnn::Describe() const {
  std::string s = fmt::format("{} {}x{}x{}", kind_, channels_, height_, width_);
  for (const Op& op : ops_) {
    switch (op.type) {
      case CnnLayer::Type::kConv:
        s += fmt::format(" -> conv{}x{} s{} p{}", op.geom.kernel, op.geom.kernel, op.geom.stride, op.geom.padding);
        break;
      case CnnLayer::Type::kMaxPool:
        s += fmt::format(" -> maxpool{}x{} s{}", op.geom.kernel, op.geom.kernel, op.geom.stride);
        break;
      default:
        s += " -> dense";
        break;
    }
    if (op.type == CnnLayer::Type::kDense) {
      s += fmt::format(" {}", op.out_c);
    } else {
      s += fmt::format(" {}x{}x{}", op.out_c, op.out_h, op.out_w);
    }
    if (op.relu) s += " relu";
  }
  if (fedpara_gamma_) {
    std::string r;
    for (int rank : fedpara_ranks()) r += (r.empty() ? "" : "/") + std::to_string(rank);
    s += fmt::format(" fedpara gamma={} ranks {}", *fedpara_gamma_, r);
  }
  return s + fmt::format(" ({} parameters)", num_params_);
}

std::vector<int> Cnn::fedpara_ranks() const {
  std::vector<int> r;
  for (const Op& op : ops_) {
    if (op.rank > 0) r.push_back(op.rank);
  }
  return r;
}

double Cnn::TrainFlopsPerBatch() const {
  double macs = 0.0;
  for (const Op& op : ops_) {
    if (op.rank == 0) continue;
    macs += FedParaPassMacs(op.type == CnnLayer::Type::kConv, op.out_c, op.w_in(), op.positions(),
                            op.rank);
  }
  return 2.0 * macs;
}

double Cnn::TrainFlopsPerSample() const {
  double macs = 0.0;
  for (const Op& op : ops_) macs += op.Macs() * (op.needs_input_grad ? 3.0 : 2.0);
  return 2.0 * macs;
}

// FedPara init: every factor entry uniform(+-FedParaFactorBound), so that W
// has the plain init's variance (fedpara.h).
void Cnn::Init(float* params, Rng& rng) const {
  for (const Op& op : ops_) {
    if (op.type == CnnLayer::Type::kMaxPool) continue;
    const double bound = init_scale_ / std::sqrt(static_cast<double>(op.fan_in()));
    int64_t begin = op.w_offset, factor_end = op.b_offset;
    double factor_bound = bound;
    if (op.rank > 0) {
      begin = op.t1;
      factor_bound = FedParaFactorBound(op.type == CnnLayer::Type::kConv, op.rank, bound);
    }
    for (int64_t i = begin; i < factor_end; ++i) {
      params[i] = static_cast<float>(rng.Uniform(-factor_bound, factor_bound));
    }
    for (int64_t i = op.b_offset; i < op.b_offset + op.out_c; ++i) {
      params[i] = static_cast<float>(rng.Uniform(-bound, bound));
    }
  }
}

std::unique_ptr<Workspace> Cnn::NewWorkspace(int max_batch) const {
  auto ws = std::make_unique<Ws>();
  const int64_t mb = std::max(1, max_batch);
  ws->max_batch = max_batch;
  if (channels_ > 1) ws->input.resize(mb * channels_ * height_ * width_);
  int64_t widest = 0, cols = 0;
  const int64_t chunk = std::min<int64_t>(conv_chunk_, mb);
  for (const Op& op : ops_) {
    ws->act.emplace_back(mb * op.out_size());
    ws->argmax.emplace_back(op.type == CnnLayer::Type::kMaxPool ? static_cast<size_t>(mb * op.out_size()) : 0);
    if (op.type == CnnLayer::Type::kConv) cols = std::max(cols, chunk * op.geom.col_rows() * op.geom.col_cols());
    widest = std::max({widest, op.in_size(), op.out_size()});
  }
  ws->cols.resize(cols);
  ws->grad_a.resize(mb * widest);
  ws->grad_b.resize(mb * widest);
  if (fedpara_gamma_) {
    int64_t largest_w = 0, largest_z = 0;
    for (const Op& op : ops_) {
      const int64_t w = op.rank > 0 ? op.out_c * op.fan_in() : 0;
      const int64_t z = op.rank > 0 && op.type == CnnLayer::Type::kConv
                            ? static_cast<int64_t>(op.out_c) * op.rank * op.positions()
                            : 0;
      ws->w1.emplace_back(w);
      ws->w2.emplace_back(w);
      ws->w.emplace_back(w);
      ws->z1.emplace_back(z);
      ws->z2.emplace_back(z);
      largest_w = std::max(largest_w, w);
      largest_z = std::max(largest_z, z);
    }
    ws->dw.resize(largest_w);
    ws->g.resize(largest_w);
    ws->h.resize(largest_z);
  }
  return ws;
}

void Cnn::Forward(const float* params, const float* x, int b, Ws& ws) const {
  if (b > ws.max_batch) {
    throw RunError(fmt::format("{}: batch of {} exceeds the workspace's {}", kind_, b, ws.max_batch));
  }
  const float* in = x;
  if (channels_ > 1) {
    ChwToHwc(channels_, height_, width_, x, b, ws.input.data());
    in = ws.input.data();
  }
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    if (op.rank == 0) continue;
    const int out = op.out_c, cin = op.w_in(), r = op.rank;
    if (op.type == CnnLayer::Type::kConv) {
      FedParaConvForm(out, cin, op.positions(), r, params + op.t1, params + op.x1, params + op.y1, ws.z1[i].data(),
                      ws.w1[i].data());
      FedParaConvForm(out, cin, op.positions(), r, params + op.t2, params + op.x2, params + op.y2, ws.z2[i].data(),
                      ws.w2[i].data());
    } else {
      FedParaDenseForm(out, cin, r, params + op.x1, params + op.y1, ws.w1[i].data());
      FedParaDenseForm(out, cin, r, params + op.x2, params + op.y2, ws.w2[i].data());
    }
    ws.w[i] = ws.w1[i].cwiseProduct(ws.w2[i]);
  }
  for (size_t i = 0; i < ops_.size(); ++i) {
    const Op& op = ops_[i];
    float* out = ws.act[i].data();
    ConstVecMap bias(params + op.b_offset, op.out_c);
    const float* w_data = op.rank > 0 ? ws.w[i].data() : params + op.w_offset;
    switch (op.type) {
      case CnnLayer::Type::kConv: {
        const int64_t rows = op.geom.col_rows(), per = op.geom.col_cols();
        ConstMatMap w(w_data, op.out_c, rows);
        for (int n0 = 0; n0 < b; n0 += conv_chunk_) {
          const int nc = std::min(conv_chunk_, b - n0);
          Im2Col(op.geom, in + n0 * op.in_size(), nc, ws.cols.data());
          MatMap y(out + n0 * op.out_size(), op.out_c, nc * per);
          y.noalias() = w * ConstMatMap(ws.cols.data(), rows, nc * per);
          y.colwise() += bias;
        }
        break;
      }
      case CnnLayer::Type::kMaxPool:
        MaxPoolForward(op.geom, in, b, out, ws.argmax[i].data());
        break;
      case CnnLayer::Type::kDense: {
        MatMap z(out, op.out_c, b);
        z.noalias() = ConstMatMap(w_data, op.out_c, op.in_size()) * ConstMatMap(in, op.in_size(), b);
        z.colwise() += bias;
        break;
      }
      default:
        break;
    }
    if (op.relu) {
      ArrMap a(out, b * op.out_size());
      a = a.max(0.0f);
    }
    in = out;
  }
}

double Cnn::LossAndGradient(const float* params, const float* x, const int* y, int b, float* grad,
                            Workspace& base) const {
  auto& ws = static_cast<Ws&>(base);
  Forward(params, x, b, ws);

  // dLoss/dlogits = (softmax - onehot) / b, one column per sample.
  const int classes = ops_.back().out_c;
  MatMap g(ws.grad_a.data(), classes, b);
  g = ConstMatMap(ws.act.back().data(), classes, b);
  double loss = 0.0;
  const float inv_b = 1.0f / static_cast<float>(b);
  for (int i = 0; i < b; ++i) {
    auto col = g.col(i);
    const float m = col.maxCoeff();
    const float zy = col(y[i]);
    const float sum = fm::ExpShiftedInPlace(col, m);
    loss += fm::Log(static_cast<double>(sum)) + m - zy;
    col *= inv_b / sum;
    col(y[i]) -= inv_b;
  }

  float* g_out = ws.grad_a.data();
  float* g_in = ws.grad_b.data();
  for (int i = static_cast<int>(ops_.size()) - 1; i >= 0; --i) {
    const Op& op = ops_[static_cast<size_t>(i)];
    const float* out = ws.act[static_cast<size_t>(i)].data();
    const float* in = i > 0 ? ws.act[static_cast<size_t>(i) - 1].data() : (channels_ > 1 ? ws.input.data() : x);
    if (op.relu) {
      ArrMap ga(g_out, b * op.out_size());
      ga = (ConstArrMap(out, b * op.out_size()) > 0.0f).select(ga, 0.0f);
    }
    const float* w_data = op.rank > 0 ? ws.w[static_cast<size_t>(i)].data() : params + op.w_offset;
    float* dw_data = op.rank > 0 ? ws.dw.data() : grad + op.w_offset;
    switch (op.type) {
      case CnnLayer::Type::kConv: {
        const int64_t rows = op.geom.col_rows(), per = op.geom.col_cols();
        ConstMatMap w(w_data, op.out_c, rows);
        MatMap dw(dw_data, op.out_c, rows);
        for (int n0 = 0; n0 < b; n0 += conv_chunk_) {
          const int nc = std::min(conv_chunk_, b - n0);
          ConstMatMap gy(g_out + n0 * op.out_size(), op.out_c, nc * per);
          MatMap cols(ws.cols.data(), rows, nc * per);
          Im2Col(op.geom, in + n0 * op.in_size(), nc, cols.data());
          if (n0 == 0) {
            dw.noalias() = gy * cols.transpose();
          } else {
            dw.noalias() += gy * cols.transpose();
          }
          if (op.needs_input_grad) {
            cols.noalias() = w.transpose() * gy;
            Col2Im(op.geom, cols.data(), nc, g_in + n0 * op.in_size());
          }
        }
        VecMap(grad + op.b_offset, op.out_c) = ConstMatMap(g_out, op.out_c, b * per).rowwise().sum();
        break;
      }
      case CnnLayer::Type::kMaxPool:
        if (op.needs_input_grad) MaxPoolBackward(op.geom, g_out, ws.argmax[static_cast<size_t>(i)].data(), b, g_in);
        break;
      case CnnLayer::Type::kDense: {
        ConstMatMap gz(g_out, op.out_c, b);
        ConstMatMap a(in, op.in_size(), b);
        MatMap(dw_data, op.out_c, op.in_size()).noalias() = gz * a.transpose();
        VecMap(grad + op.b_offset, op.out_c) = gz.rowwise().sum();
        if (op.needs_input_grad) {
          MatMap(g_in, op.in_size(), b).noalias() = ConstMatMap(w_data, op.out_c, op.in_size()).transpose() * gz;
        }
        break;
      }
      default:
        break;
    }
    if (op.rank > 0) FactorGrad(op, static_cast<size_t>(i), params, grad, ws);
    if (!op.needs_input_grad) break;
    std::swap(g_out, g_in);
  }
  return loss / b;
}

// W = W1 o W2: dL/dW1 = dW o W2 and dL/dW2 = dW o W1, each then mapped onto
// its factors: FedParaConvGrad for a convolution; for a dense W1 = X1 Y1^T,
// dX1 = (dL/dW1) Y1 and dY1 = (dL/dW1)^T X1.
void Cnn::FactorGrad(const Op& op, size_t i, const float* params, float* grad, Ws& ws) const {
  const int out = op.out_c, cin = op.w_in(), r = op.rank;
  const int64_t n = static_cast<int64_t>(out) * op.fan_in();
  ConstVecMap dw(ws.dw.data(), n);
  VecMap gw(ws.g.data(), n);
  for (int f = 0; f < 2; ++f) {
    gw = dw.cwiseProduct(f == 0 ? ws.w2[i] : ws.w1[i]);
    const int64_t t = f == 0 ? op.t1 : op.t2, x = f == 0 ? op.x1 : op.x2, y = f == 0 ? op.y1 : op.y2;
    if (op.type == CnnLayer::Type::kConv) {
      FedParaConvGrad(out, cin, op.positions(), r, gw.data(), params + t, params + x, params + y,
                      (f == 0 ? ws.z1[i] : ws.z2[i]).data(), ws.h.data(), grad + t, grad + x, grad + y);
    } else {
      FedParaDenseGrad(out, cin, r, gw.data(), params + x, params + y, grad + x, grad + y);
    }
  }
}

EvalSums Cnn::Evaluate(const float* params, const float* x, const int* y, int b, Workspace& base) const {
  auto& ws = static_cast<Ws&>(base);
  EvalSums s;
  if (b <= 0) return s;
  Forward(params, x, b, ws);
  ConstMatMap z(ws.act.back().data(), ops_.back().out_c, b);
  for (int i = 0; i < b; ++i) {
    Eigen::Index arg;
    const float m = z.col(i).maxCoeff(&arg);
    const double lse = fm::Log(static_cast<double>(fm::SumExpShifted(z.col(i), m))) + m;
    s.loss_sum += lse - z(y[i], i);
    s.correct += (arg == y[i]);
  }
  s.count = b;
  return s;
}

const float* Cnn::Activations(const float* params, const float* x, int b, int layer, Workspace& base) const {
  auto& ws = static_cast<Ws&>(base);
  if (layer < 0 || layer >= static_cast<int>(layers_.size())) {
    throw InputError(fmt::format("{}: no layer {}", kind_, layer));
  }
  Forward(params, x, b, ws);
  size_t op = 0;
  while (op + 1 < ops_.size() && ops_[op + 1].layer <= layer) ++op;
  return ws.act[op].data();
}

std::unique_ptr<Cnn> MakeCnnMcMahan(int channels, int height, int width, int classes, double init_scale,
                                    std::optional<double> fedpara_gamma) {
  using L = CnnLayer;
  return std::make_unique<Cnn>(channels, height, width,
                               std::vector<CnnLayer>{L::Conv(32, 5, 1, 2), L::Relu(), L::MaxPool(2, 2),
                                                     L::Conv(64, 5, 1, 2), L::Relu(), L::MaxPool(2, 2),
                                                     L::Dense(512), L::Relu(), L::Dense(classes)},
                               init_scale, fedpara_gamma ? "fedpara_cnn_mcmahan" : "cnn_mcmahan", 0, fedpara_gamma);
}

std::unique_ptr<Cnn> MakeCnnLeNet(int channels, int height, int width, int classes, double init_scale,
                                  std::optional<double> fedpara_gamma) {
  using L = CnnLayer;
  return std::make_unique<Cnn>(channels, height, width,
                               std::vector<CnnLayer>{L::Conv(6, 5), L::Relu(), L::MaxPool(2, 2), L::Conv(16, 5),
                                                     L::Relu(), L::MaxPool(2, 2), L::Dense(120), L::Relu(),
                                                     L::Dense(84), L::Relu(), L::Dense(classes)},
                               init_scale, fedpara_gamma ? "fedpara_cnn_lenet" : "cnn_lenet", 0, fedpara_gamma);
}

}  // namespace fedsim
