#include "model/layers.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "core/config.h"
#include "core/error.h"
#include "core/fmath.h"
#include "model/conv_ops.h"
#include "model/dense_ops.h"
#include "model/fedpara.h"

namespace fedsim::seq {

namespace {

using nlohmann::json;
using MatMap = Eigen::Map<Eigen::MatrixXf>;
using ConstMatMap = Eigen::Map<const Eigen::MatrixXf>;
using VecMap = Eigen::Map<Eigen::VectorXf>;
using ConstVecMap = Eigen::Map<const Eigen::VectorXf>;
using ArrMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrMap = Eigen::Map<const Eigen::ArrayXf>;
using StridedMap = Eigen::Map<Eigen::MatrixXf, 0, Eigen::OuterStride<>>;
using ConstStridedMap = Eigen::Map<const Eigen::MatrixXf, 0, Eigen::OuterStride<>>;

void Uniform(float* p, int64_t n, double bound, Rng& rng) {
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(rng.Uniform(-bound, bound));
}

// ---------------------------------------------------------------- spec fields

// The fields of one layer object: typed reads with ranges, and a check that
// no field was left unread. Paths are "<where>[i].field".
class Fields {
 public:
  Fields(const json& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

  std::string Path(const std::string& f) const { return path_ + "." + f; }
  [[noreturn]] void Fail(const std::string& f, const std::string& what) const {
    throw InputError(Path(f) + ": " + what);
  }
  const json* Find(const char* f) {
    auto it = obj_.find(f);
    return it == obj_.end() ? nullptr : &*it;
  }
  bool Has(const char* f) { return Find(f) != nullptr; }
  int Int(const char* f, int def, int lo, int hi) {
    const json* v = Find(f);
    if (!v) return def;
    if (!v->is_number_integer() || v->get<int64_t>() < lo || v->get<int64_t>() > hi) {
      Fail(f, fmt::format("expected an integer in [{}, {}], got {}", lo, hi, v->dump()));
    }
    return v->get<int>();
  }
  int RequiredInt(const char* f, int lo, int hi) {
    if (!Has(f)) Fail(f, fmt::format("required (an integer in [{}, {}])", lo, hi));
    return Int(f, 0, lo, hi);
  }
  double Real(const char* f, double def, double lo, double hi, bool hi_open = false) {
    const json* v = Find(f);
    if (!v) return def;
    if (!v->is_number() || !(v->get<double>() >= lo) || v->get<double>() > hi ||
        (hi_open && v->get<double>() == hi)) {
      Fail(f, fmt::format("expected a number in [{}, {}{}, got {}", lo, hi, hi_open ? ")" : "]", v->dump()));
    }
    return v->get<double>();
  }
  bool Bool(const char* f, bool def) {
    const json* v = Find(f);
    if (!v) return def;
    if (!v->is_boolean()) Fail(f, "expected true or false, got " + v->dump());
    return v->get<bool>();
  }
  std::string Str(const char* f, const std::string& def) {
    const json* v = Find(f);
    if (!v) return def;
    if (!v->is_string()) Fail(f, "expected a string, got " + v->dump());
    return v->get<std::string>();
  }
  // Fails on the first field not in `known` (besides type and name),
  // suggesting the closest one.
  void CheckFields(const std::string& type, const std::vector<std::string>& fields) const {
    std::vector<std::string> all = fields;
    all.push_back("name");
    all.push_back("type");
    all.push_back("local");
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (std::find(all.begin(), all.end(), it.key()) != all.end()) continue;
      std::string best, known;
      int best_d = 1 << 30;
      for (const auto& u : all) {
        known += (known.empty() ? "" : ", ") + u;
        const int d = EditDistance(u, it.key());
        if (d < best_d) best_d = d, best = u;
      }
      const std::string hint = best_d <= std::max<int>(2, static_cast<int>(it.key().size()) / 3)
                                   ? fmt::format(" (did you mean '{}'?)", best)
                                   : "";
      Fail(it.key(), fmt::format("unknown field of a {} layer{}; its fields: {}", type, hint, known));
    }
  }

 private:
  const json& obj_;
  std::string path_;
};

// ---------------------------------------------------------------- activations

void ApplyAct(Act a, float* y, int64_t n) {
  ArrMap v(y, n);
  switch (a) {
    case Act::kRelu: v = v.max(0.0f); break;
    case Act::kTanh: fm::TanhSpan(y, n); break;
    case Act::kSigmoid: fm::SigmoidSpan(y, n); break;
    default: break;
  }
}

// g *= act'(pre-activation), written with the activation's output y.
void ActGrad(Act a, const float* y, float* g, int64_t n) {
  ArrMap gv(g, n);
  ConstArrMap yv(y, n);
  switch (a) {
    case Act::kRelu: gv = (yv > 0.0f).select(gv, 0.0f); break;
    case Act::kTanh: gv *= 1.0f - yv.square(); break;
    case Act::kSigmoid: gv *= yv * (1.0f - yv); break;
    default: break;
  }
}

const char* ActName(Act a) {
  switch (a) {
    case Act::kRelu: return "relu";
    case Act::kTanh: return "tanh";
    case Act::kSigmoid: return "sigmoid";
    default: return "";
  }
}

// ---------------------------------------------------------------- dense

// y = W x + b on the feature axis: a flat input, an image flattened in HWC
// order (as Cnn), or every step of a sequence. W is units x fan_in,
// column-major, then b.
class Dense : public Layer {
 public:
  Dense(Shape input, int units, bool bias) : units_(units), bias_(bias) {
    in = input;
    per_step_ = in.kind == Shape::Kind::kSeq;
    fan_in_ = per_step_ ? in.c : in.size();
    out = per_step_ ? Shape::Seq(units, in.t) : Shape::Flat(units);
    count = fan_in_ * units + (bias ? units : 0);
  }
  int64_t Cols(int b) const { return per_step_ ? static_cast<int64_t>(b) * in.t : b; }
  void Init(float* p, Rng& rng, double scale) const override {
    const double bound = scale / std::sqrt(static_cast<double>(fan_in_));
    Uniform(p + offset, fan_in_ * units_, bound, rng);
    if (bias_) Uniform(p + offset + fan_in_ * units_, units_, bound, rng);
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass&) const override {
    const int64_t n = Cols(b);
    MatMap z(buf.out.data(), units_, n);
    z.noalias() = ConstMatMap(p + offset, units_, fan_in_) * ConstMatMap(x, fan_in_, n);
    if (bias_) z.colwise() += ConstVecMap(p + offset + fan_in_ * units_, units_);
  }
  void Backward(const float* p, const float* x, int b, Buffers&, float* gy, float* gx, float* grad,
                const Pass&) const override {
    const int64_t n = Cols(b);
    ConstMatMap gz(gy, units_, n);
    MatMap(grad + offset, units_, fan_in_).noalias() = gz * ConstMatMap(x, fan_in_, n).transpose();
    if (bias_) VecMap(grad + offset + fan_in_ * units_, units_) = gz.rowwise().sum();
    if (gx) MatMap(gx, fan_in_, n).noalias() = ConstMatMap(p + offset, units_, fan_in_).transpose() * gz;
  }
  double Macs() const override { return static_cast<double>(fan_in_) * units_ * (per_step_ ? in.t : 1); }
  void Ranges(std::vector<ParamRange>& r) const override {
    r.push_back({name + ".weight", offset, fan_in_ * units_});
    if (bias_) r.push_back({name + ".bias", offset + fan_in_ * units_, units_});
  }
  bool Fusable() const override { return true; }

 private:
  int units_;
  bool bias_;
  bool per_step_ = false;
  int64_t fan_in_ = 0;
};

// ---------------------------------------------------------------- dense, one row per sample

// The dense layers of the softmax and mlp presets (Sequential's rows
// layout): activations are b x width column-major, one row per sample, and W
// is fan_in x units column-major, then b, as in fedsim's original dense
// models; dense_ops.h's kernels compute them, so those presets keep their
// results bit for bit. The first layer reads the data's rows as given
// (row-major b x fan_in).
class DenseRows : public Layer {
 public:
  DenseRows(Shape input, int units, bool first) : units_(units), first_(first) {
    in = input;
    fan_in_ = static_cast<int>(in.size());
    out = Shape::Flat(units);
    count = static_cast<int64_t>(fan_in_) * units + units;
  }
  void Init(float* p, Rng& rng, double scale) const override {
    Uniform(p + offset, count, scale / std::sqrt(static_cast<double>(fan_in_)), rng);  // W, then b
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass&) const override {
    DenseForward(x, first_, p + offset, p + bias(), b, fan_in_, units_, false, buf.out.data());
  }
  void Backward(const float* p, const float* x, int b, Buffers&, float* gy, float* gx, float* grad,
                const Pass&) const override {
    DenseParamGrad(x, first_, gy, b, fan_in_, units_, grad + offset, grad + bias());
    if (gx) DenseInputProduct(gy, p + offset, b, fan_in_, units_, gx);
  }
  double Macs() const override { return static_cast<double>(fan_in_) * units_; }
  void Ranges(std::vector<ParamRange>& r) const override {
    r.push_back({name + ".weight", offset, bias() - offset});
    r.push_back({name + ".bias", bias(), units_});
  }
  bool Fusable() const override { return true; }
  std::string Describe() const override { return "dense"; }

 private:
  int64_t bias() const { return offset + static_cast<int64_t>(fan_in_) * units_; }
  int units_;
  bool first_;
  int fan_in_ = 0;
};

// FedPara's factorised dense layer in the rows layout (Hyeon-Woo, Ye-Bin,
// Oh, ICLR 2022): W = (X1 Y1^T) o (X2 Y2^T), W fan_in x units, X fan_in x R,
// Y units x R; parameters X1, Y1, X2, Y2, then b. Inner buffers: [0].out W,
// .saved W1, .saved2 W2, .tmp dL/dW; [1].out dL/dW o W2 (then o W1).
class FedParaDenseRows : public Layer {
 public:
  FedParaDenseRows(Shape input, int units, bool first, double gamma) : units_(units), first_(first) {
    in = input;
    fan_in_ = static_cast<int>(in.size());
    out = Shape::Flat(units);
    rank_ = FedParaRank(fan_in_, units, gamma);
    y1_ = static_cast<int64_t>(fan_in_) * rank_;
    x2_ = y1_ + static_cast<int64_t>(units) * rank_;
    y2_ = x2_ + y1_;
    b_ = y2_ + static_cast<int64_t>(units) * rank_;
    count = b_ + units;
  }
  void Allocate(Buffers& buf, int rows) const override {
    Layer::Allocate(buf, rows);
    const int64_t w = static_cast<int64_t>(fan_in_) * units_;
    buf.inner.resize(2);
    buf.inner[0].out.resize(w);
    buf.inner[0].saved.resize(w);
    buf.inner[0].saved2.resize(w);
    buf.inner[0].tmp.resize(w);
    buf.inner[1].out.resize(w);
  }
  // Factors uniform(+-sqrt(3) s) with s^2 = (bound^2 / (3 R^2))^(1/4), so
  // that W has the variance of the dense layer's uniform(+-bound) (derived at
  // FedParaFactorBound); the bias uniform(+-bound). Written out rather than
  // calling FedParaFactorBound: its (bound^2 / 3) / R^2 rounds differently
  // from the old FedParaMlp's bound^2 / (3 R^2), and the init must keep its bits.
  void Init(float* p, Rng& rng, double scale) const override {
    const double bound = scale / std::sqrt(static_cast<double>(fan_in_));
    const double r = rank_;
    const double factor_bound = std::sqrt(3.0 * fm::Pow(bound * bound / (3.0 * r * r), 0.25));
    Uniform(p + offset, b_, factor_bound, rng);
    Uniform(p + offset + b_, units_, bound, rng);
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass&) const override {
    const float* q = p + offset;
    Buffers& f = buf.inner[0];
    MatMap w1(f.saved.data(), fan_in_, units_), w2(f.saved2.data(), fan_in_, units_);
    w1.noalias() = ConstMatMap(q, fan_in_, rank_) * ConstMatMap(q + y1_, units_, rank_).transpose();
    w2.noalias() = ConstMatMap(q + x2_, fan_in_, rank_) * ConstMatMap(q + y2_, units_, rank_).transpose();
    MatMap(f.out.data(), fan_in_, units_) = w1.cwiseProduct(w2);
    DenseForward(x, first_, f.out.data(), q + b_, b, fan_in_, units_, false, buf.out.data());
  }
  void Backward(const float* p, const float* x, int b, Buffers& buf, float* gy, float* gx, float* grad,
                const Pass&) const override {
    const float* q = p + offset;
    float* g = grad + offset;
    Buffers& f = buf.inner[0];
    DenseParamGrad(x, first_, gy, b, fan_in_, units_, f.tmp.data(), g + b_);
    // dL/dW1 = dW o W2 and dL/dW2 = dW o W1; for W1 = X1 Y1^T, dL/dX1 =
    // (dL/dW1) Y1 and dL/dY1 = (dL/dW1)^T X1 (likewise for W2).
    const ConstMatMap dw(f.tmp.data(), fan_in_, units_);
    MatMap gw(buf.inner[1].out.data(), fan_in_, units_);
    gw = dw.cwiseProduct(ConstMatMap(f.saved2.data(), fan_in_, units_));
    MatMap(g, fan_in_, rank_).noalias() = gw * ConstMatMap(q + y1_, units_, rank_);
    MatMap(g + y1_, units_, rank_).noalias() = gw.transpose() * ConstMatMap(q, fan_in_, rank_);
    gw = dw.cwiseProduct(ConstMatMap(f.saved.data(), fan_in_, units_));
    MatMap(g + x2_, fan_in_, rank_).noalias() = gw * ConstMatMap(q + y2_, units_, rank_);
    MatMap(g + y2_, units_, rank_).noalias() = gw.transpose() * ConstMatMap(q + x2_, fan_in_, rank_);
    if (gx) DenseInputProduct(gy, f.out.data(), b, fan_in_, units_, gx);
  }
  double Macs() const override { return static_cast<double>(fan_in_) * units_; }
  double PassMacs() const override { return FedParaPassMacs(false, units_, fan_in_, 1, rank_); }
  void Ranges(std::vector<ParamRange>& r) const override {
    r.push_back({name + ".weight", offset, b_});
    r.push_back({name + ".bias", offset + b_, units_});
  }
  bool Fusable() const override { return true; }
  // The rank (Sequential's rows-layout Describe lists them).
  std::string Describe() const override { return std::to_string(rank_); }

 private:
  int units_;
  bool first_;
  int fan_in_ = 0, rank_ = 0;
  int64_t y1_ = 0, x2_ = 0, y2_ = 0, b_ = 0;  // offsets within the layer (X1 at 0)
};

// ---------------------------------------------------------------- conv2d

// im2col of the channels [c0, c0 + cg) of `count` HWC images: rows (kh * k +
// kw) * cg + c, as Im2Col with channels = cg.
void Im2ColGroup(const WindowGeometry& g, const float* in, int count, int c0, int cg, float* cols) {
  const int k = g.kernel, oh_n = g.out_height(), ow_n = g.out_width(), c = g.channels;
  float* col = cols;
  for (int n = 0; n < count; ++n) {
    const float* img = in + n * g.in_size();
    for (int oh = 0; oh < oh_n; ++oh) {
      for (int ow = 0; ow < ow_n; ++ow) {
        for (int kh = 0; kh < k; ++kh) {
          const int h = oh * g.stride - g.padding + kh;
          for (int kw = 0; kw < k; ++kw, col += cg) {
            const int w = ow * g.stride - g.padding + kw;
            if (h < 0 || h >= g.height || w < 0 || w >= g.width) {
              std::fill(col, col + cg, 0.0f);
            } else {
              std::memcpy(col, img + (static_cast<int64_t>(h) * g.width + w) * c + c0, cg * sizeof(float));
            }
          }
        }
      }
    }
  }
}

// The adjoint of Im2ColGroup, added into in_grad.
void Col2ImGroupAdd(const WindowGeometry& g, const float* cols, int count, int c0, int cg, float* in_grad) {
  const int k = g.kernel, oh_n = g.out_height(), ow_n = g.out_width(), c = g.channels;
  const float* col = cols;
  for (int n = 0; n < count; ++n) {
    float* img = in_grad + n * g.in_size();
    for (int oh = 0; oh < oh_n; ++oh) {
      for (int ow = 0; ow < ow_n; ++ow) {
        for (int kh = 0; kh < k; ++kh) {
          const int h = oh * g.stride - g.padding + kh;
          for (int kw = 0; kw < k; ++kw, col += cg) {
            const int w = ow * g.stride - g.padding + kw;
            if (h < 0 || h >= g.height || w < 0 || w >= g.width) continue;
            float* dst = img + (static_cast<int64_t>(h) * g.width + w) * c + c0;
            for (int i = 0; i < cg; ++i) dst[i] += col[i];
          }
        }
      }
    }
  }
}

// A k x k convolution with `groups` groups: per group, W_g (filters/groups x
// k*k*channels/groups, column (kh * k + kw) * cg + c) times the group's
// im2col matrix, over chunks of Shared::conv_chunk samples. With one group
// the layout and the operations are Cnn's. W is the groups' blocks one after
// the other, then b.
class Conv2d : public Layer {
 public:
  Conv2d(Shape input, int filters, int kernel, int stride, int padding, int groups, bool bias)
      : filters_(filters), groups_(groups), bias_(bias) {
    in = input;
    geom_.channels = in.c;
    geom_.height = in.h;
    geom_.width = in.w;
    geom_.kernel = kernel;
    geom_.stride = stride;
    geom_.padding = padding;
    out = Shape::Image(filters, geom_.out_height(), geom_.out_width());
    cg_ = in.c / groups;
    og_ = filters / groups;
    w_size_ = static_cast<int64_t>(filters) * kernel * kernel * cg_;
    count = w_size_ + (bias ? filters : 0);
  }
  int64_t GroupRows() const { return static_cast<int64_t>(geom_.kernel) * geom_.kernel * cg_; }
  int64_t ColsPerSample() const override { return GroupRows() * geom_.col_cols(); }
  void Init(float* p, Rng& rng, double scale) const override {
    const double bound = scale / std::sqrt(static_cast<double>(GroupRows()));
    Uniform(p + offset, w_size_, bound, rng);
    if (bias_) Uniform(p + offset + w_size_, filters_, bound, rng);
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass& pass) const override {
    const int64_t rows = GroupRows(), per = geom_.col_cols(), isz = in.size(), osz = out.size();
    const int chunk = pass.shared->conv_chunk;
    float* cols = pass.shared->cols.data();
    for (int n0 = 0; n0 < b; n0 += chunk) {
      const int nc = std::min(chunk, b - n0);
      float* y = buf.out.data() + n0 * osz;
      if (groups_ == 1) {
        Im2Col(geom_, x + n0 * isz, nc, cols);
        MatMap(y, filters_, nc * per).noalias() = ConstMatMap(p + offset, filters_, rows) * ConstMatMap(cols, rows, nc * per);
      } else {
        for (int g = 0; g < groups_; ++g) {
          Im2ColGroup(geom_, x + n0 * isz, nc, g * cg_, cg_, cols);
          StridedMap yg(y + g * og_, og_, nc * per, Eigen::OuterStride<>(filters_));
          yg.noalias() = ConstMatMap(p + offset + g * og_ * rows, og_, rows) * ConstMatMap(cols, rows, nc * per);
        }
      }
      if (bias_) MatMap(y, filters_, nc * per).colwise() += ConstVecMap(p + offset + w_size_, filters_);
    }
  }
  void Backward(const float* p, const float* x, int b, Buffers&, float* gy, float* gx, float* grad,
                const Pass& pass) const override {
    const int64_t rows = GroupRows(), per = geom_.col_cols(), isz = in.size(), osz = out.size();
    const int chunk = pass.shared->conv_chunk;
    float* cols = pass.shared->cols.data();
    for (int n0 = 0; n0 < b; n0 += chunk) {
      const int nc = std::min(chunk, b - n0);
      const float* gyc = gy + n0 * osz;
      if (groups_ == 1) {
        ConstMatMap g(gyc, filters_, nc * per);
        MatMap c(cols, rows, nc * per);
        MatMap dw(grad + offset, filters_, rows);
        Im2Col(geom_, x + n0 * isz, nc, cols);
        if (n0 == 0) {
          dw.noalias() = g * c.transpose();
        } else {
          dw.noalias() += g * c.transpose();
        }
        if (gx) {
          c.noalias() = ConstMatMap(p + offset, filters_, rows).transpose() * g;
          Col2Im(geom_, cols, nc, gx + n0 * isz);
        }
        continue;
      }
      if (gx) std::fill(gx + n0 * isz, gx + (n0 + nc) * isz, 0.0f);
      for (int gi = 0; gi < groups_; ++gi) {
        ConstStridedMap g(gyc + gi * og_, og_, nc * per, Eigen::OuterStride<>(filters_));
        MatMap c(cols, rows, nc * per);
        MatMap dw(grad + offset + gi * og_ * rows, og_, rows);
        Im2ColGroup(geom_, x + n0 * isz, nc, gi * cg_, cg_, cols);
        if (n0 == 0) {
          dw.noalias() = g * c.transpose();
        } else {
          dw.noalias() += g * c.transpose();
        }
        if (gx) {
          c.noalias() = ConstMatMap(p + offset + gi * og_ * rows, og_, rows).transpose() * g;
          Col2ImGroupAdd(geom_, cols, nc, gi * cg_, cg_, gx + n0 * isz);
        }
      }
    }
    if (bias_) VecMap(grad + offset + w_size_, filters_) = ConstMatMap(gy, filters_, b * per).rowwise().sum();
  }
  double Macs() const override { return static_cast<double>(filters_) * GroupRows() * geom_.col_cols(); }
  void Ranges(std::vector<ParamRange>& r) const override {
    r.push_back({name + ".weight", offset, w_size_});
    if (bias_) r.push_back({name + ".bias", offset + w_size_, filters_});
  }
  std::string Describe() const override {
    return fmt::format("conv{}x{}{}{} s{} p{} {}", geom_.kernel, geom_.kernel, groups_ > 1 ? " g" : "",
                       groups_ > 1 ? std::to_string(groups_) : "", geom_.stride, geom_.padding, Layer::Describe());
  }
  int Stride() const override { return geom_.stride; }
  bool Fusable() const override { return true; }

 private:
  WindowGeometry geom_;
  int filters_, groups_;
  bool bias_;
  int cg_ = 1, og_ = 1;
  int64_t w_size_ = 0;
};

// ---------------------------------------------------------------- pooling

class MaxPool2d : public Layer {
 public:
  MaxPool2d(Shape input, int kernel, int stride) {
    in = input;
    geom_.channels = in.c;
    geom_.height = in.h;
    geom_.width = in.w;
    geom_.kernel = kernel;
    geom_.stride = stride;
    out = Shape::Image(in.c, geom_.out_height(), geom_.out_width());
  }
  void Allocate(Buffers& buf, int rows) const override {
    Layer::Allocate(buf, rows);
    buf.idx.resize(static_cast<size_t>(rows * out.size()));
  }
  void Forward(const float*, const float* x, int b, Buffers& buf, const Pass&) const override {
    MaxPoolForward(geom_, x, b, buf.out.data(), buf.idx.data());
  }
  void Backward(const float*, const float*, int b, Buffers& buf, float* gy, float* gx, float*,
                const Pass&) const override {
    if (gx) MaxPoolBackward(geom_, gy, buf.idx.data(), b, gx);
  }
  std::string Describe() const override {
    return fmt::format("maxpool{}x{} s{} {}", geom_.kernel, geom_.kernel, geom_.stride, Layer::Describe());
  }
  int Stride() const override { return geom_.stride; }

 private:
  WindowGeometry geom_;
};

class AvgPool2d : public Layer {
 public:
  AvgPool2d(Shape input, int kernel, int stride) {
    in = input;
    geom_.channels = in.c;
    geom_.height = in.h;
    geom_.width = in.w;
    geom_.kernel = kernel;
    geom_.stride = stride;
    out = Shape::Image(in.c, geom_.out_height(), geom_.out_width());
  }
  void Forward(const float*, const float* x, int b, Buffers& buf, const Pass&) const override {
    const int c = in.c, k = geom_.kernel, s = geom_.stride;
    const float inv = 1.0f / static_cast<float>(k * k);
    float* y = buf.out.data();
    for (int n = 0; n < b; ++n) {
      const float* img = x + n * in.size();
      for (int oh = 0; oh < out.h; ++oh) {
        for (int ow = 0; ow < out.w; ++ow, y += c) {
          std::fill(y, y + c, 0.0f);
          for (int kh = 0; kh < k; ++kh) {
            for (int kw = 0; kw < k; ++kw) {
              const float* src = img + ((static_cast<int64_t>(oh) * s + kh) * in.w + ow * s + kw) * c;
              for (int ch = 0; ch < c; ++ch) y[ch] += src[ch];
            }
          }
          for (int ch = 0; ch < c; ++ch) y[ch] *= inv;
        }
      }
    }
  }
  void Backward(const float*, const float*, int b, Buffers&, float* gy, float* gx, float*,
                const Pass&) const override {
    if (!gx) return;
    const int c = in.c, k = geom_.kernel, s = geom_.stride;
    const float inv = 1.0f / static_cast<float>(k * k);
    std::fill(gx, gx + b * in.size(), 0.0f);
    const float* g = gy;
    for (int n = 0; n < b; ++n) {
      float* img = gx + n * in.size();
      for (int oh = 0; oh < out.h; ++oh) {
        for (int ow = 0; ow < out.w; ++ow, g += c) {
          for (int kh = 0; kh < k; ++kh) {
            for (int kw = 0; kw < k; ++kw) {
              float* dst = img + ((static_cast<int64_t>(oh) * s + kh) * in.w + ow * s + kw) * c;
              for (int ch = 0; ch < c; ++ch) dst[ch] += g[ch] * inv;
            }
          }
        }
      }
    }
  }
  std::string Describe() const override {
    return fmt::format("avgpool{}x{} s{} {}", geom_.kernel, geom_.kernel, geom_.stride, Layer::Describe());
  }
  int Stride() const override { return geom_.stride; }

 private:
  WindowGeometry geom_;
};

class GlobalAvgPool : public Layer {
 public:
  explicit GlobalAvgPool(Shape input) {
    in = input;
    out = Shape::Flat(in.c);
  }
  void Forward(const float*, const float* x, int b, Buffers& buf, const Pass&) const override {
    const int64_t pos = in.columns();
    const float inv = 1.0f / static_cast<float>(pos);
    for (int n = 0; n < b; ++n) {
      VecMap(buf.out.data() + n * in.c, in.c) = ConstMatMap(x + n * in.size(), in.c, pos).rowwise().sum() * inv;
    }
  }
  void Backward(const float*, const float*, int b, Buffers&, float* gy, float* gx, float*,
                const Pass&) const override {
    if (!gx) return;
    const int64_t pos = in.columns();
    const float inv = 1.0f / static_cast<float>(pos);
    for (int n = 0; n < b; ++n) {
      MatMap(gx + n * in.size(), in.c, pos).colwise() = ConstVecMap(gy + n * in.c, in.c) * inv;
    }
  }
  int Stride() const override { return 0; }
};

// ---------------------------------------------------------------- shape-only layers

// flatten (image -> flat, the HWC order), or a standalone activation (same
// shape, the activation applied by the driver): a copy.
class Copy : public Layer {
 public:
  Copy(Shape input, Shape output) {
    in = input;
    out = output;
  }
  void Forward(const float*, const float* x, int b, Buffers& buf, const Pass&) const override {
    std::copy(x, x + b * in.size(), buf.out.data());
  }
  void Backward(const float*, const float*, int b, Buffers&, float* gy, float* gx, float*,
                const Pass&) const override {
    if (gx) std::copy(gy, gy + b * in.size(), gx);
  }
  // A standalone activation applies in place on its own copy.
  bool Fusable() const override { return type != "flatten"; }
};

// The last step of a sequence: F x (T b) -> F x b.
class LastStep : public Layer {
 public:
  explicit LastStep(Shape input) {
    in = input;
    out = Shape::Flat(in.c);
  }
  void Forward(const float*, const float* x, int b, Buffers& buf, const Pass&) const override {
    const int64_t n = static_cast<int64_t>(in.c) * b;
    std::copy(x + (in.t - 1) * n, x + in.t * n, buf.out.data());
  }
  void Backward(const float*, const float*, int b, Buffers&, float* gy, float* gx, float*,
                const Pass&) const override {
    if (!gx) return;
    const int64_t n = static_cast<int64_t>(in.c) * b;
    std::fill(gx, gx + (in.t - 1) * n, 0.0f);
    std::copy(gy, gy + n, gx + (in.t - 1) * n);
  }
};

// ---------------------------------------------------------------- dropout

// Inverted dropout: in training each value is kept with probability 1 - rate
// and scaled by 1 / (1 - rate). The keep decision of value j of sample i is a
// hash of (Pass::seed, layer id, first_sample + i, j), so it does not depend
// on the batch split or the thread.
inline uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class Dropout : public Layer {
 public:
  Dropout(Shape input, double rate) : rate_(rate) {
    in = input;
    out = input;
  }
  void Allocate(Buffers& buf, int rows) const override {
    Layer::Allocate(buf, rows);
    buf.saved.resize(rows * in.size());
  }
  void Forward(const float*, const float* x, int b, Buffers& buf, const Pass& pass) const override {
    const int64_t n = b * in.size();
    if (!pass.training || rate_ == 0.0) {
      std::copy(x, x + n, buf.out.data());
      return;
    }
    const float scale = static_cast<float>(1.0 / (1.0 - rate_));
    // keep iff the top 24 bits, as a fraction of 2^24, are >= rate.
    const uint64_t threshold = static_cast<uint64_t>(std::ceil(rate_ * 16777216.0));
    const uint64_t layer_key = Mix(pass.seed ^ (0x9E3779B97F4A7C15ULL * (static_cast<uint64_t>(id) + 1)));
    float* mask = buf.saved.data();
    const int64_t cols = in.columns(), c = in.c;
    for (int i = 0; i < b; ++i) {
      const uint64_t sample_key = Mix(layer_key ^ Mix(static_cast<uint64_t>(pass.first_sample + i) + 1));
      for (int64_t col = 0; col < cols; ++col) {
        // Sequences are time-major: step t of sample i is column t * b + i.
        const int64_t at = in.kind == Shape::Kind::kSeq ? (col * b + i) * c : (i * cols + col) * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const uint64_t j = static_cast<uint64_t>(col * c + ch);
          const bool keep = (Mix(sample_key + 0x632BE59BD9B4E019ULL * (j + 1)) >> 40) >= threshold;
          mask[at + ch] = keep ? scale : 0.0f;
        }
      }
    }
    ArrMap(buf.out.data(), n) = ConstArrMap(x, n) * ConstArrMap(mask, n);
  }
  void Backward(const float*, const float*, int b, Buffers& buf, float* gy, float* gx, float*,
                const Pass& pass) const override {
    if (!gx) return;
    const int64_t n = b * in.size();
    if (!pass.training || rate_ == 0.0) {
      std::copy(gy, gy + n, gx);
    } else {
      ArrMap(gx, n) = ConstArrMap(gy, n) * ConstArrMap(buf.saved.data(), n);
    }
  }
  std::string Describe() const override { return fmt::format("dropout {}", rate_); }

 private:
  double rate_;
};

// ---------------------------------------------------------------- normalisation

// GroupNorm (Wu & He 2018): per sample, the channels are split into `groups`
// groups of consecutive channels; each group is normalised over its channels
// and positions (biased variance), then y = gamma_c xhat + beta_c. saved
// holds xhat, saved2 1/sqrt(var + eps) per (sample, group).
class GroupNorm : public Layer {
 public:
  GroupNorm(Shape input, int groups, double eps) : groups_(groups), eps_(eps) {
    in = input;
    out = input;
    count = 2 * static_cast<int64_t>(in.c);
  }
  void Allocate(Buffers& buf, int rows) const override {
    Layer::Allocate(buf, rows);
    buf.saved.resize(rows * in.size());
    buf.saved2.resize(static_cast<int64_t>(rows) * groups_);
  }
  void Init(float* p, Rng&, double) const override {
    std::fill(p + offset, p + offset + in.c, 1.0f);
    std::fill(p + offset + in.c, p + offset + 2 * in.c, 0.0f);
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass&) const override {
    const int c = in.c, cg = c / groups_;
    const int64_t pos = in.columns();
    ConstVecMap gamma(p + offset, c), beta(p + offset + c, c);
    const double count_inv = 1.0 / (static_cast<double>(cg) * pos);
    for (int n = 0; n < b; ++n) {
      ConstMatMap xs(x + n * in.size(), c, pos);
      MatMap xh(buf.saved.data() + n * in.size(), c, pos);
      MatMap ys(buf.out.data() + n * in.size(), c, pos);
      for (int g = 0; g < groups_; ++g) {
        const auto blk = xs.middleRows(g * cg, cg);
        const double mean = blk.cast<double>().sum() * count_inv;
        const double var = (blk.cast<double>().array() - mean).square().sum() * count_inv;
        const float rstd = static_cast<float>(1.0 / std::sqrt(var + eps_));
        buf.saved2[static_cast<int64_t>(n) * groups_ + g] = rstd;
        xh.middleRows(g * cg, cg).array() = (blk.array() - static_cast<float>(mean)) * rstd;
      }
      ys.array() = (xh.array().colwise() * gamma.array()).colwise() + beta.array();
    }
  }
  void Backward(const float* p, const float*, int b, Buffers& buf, float* gy, float* gx, float* grad,
                const Pass&) const override {
    const int c = in.c, cg = c / groups_;
    const int64_t pos = in.columns();
    ConstVecMap gamma(p + offset, c);
    VecMap dgamma(grad + offset, c), dbeta(grad + offset + c, c);
    dgamma.setZero();
    dbeta.setZero();
    const float count_inv = 1.0f / static_cast<float>(static_cast<int64_t>(cg) * pos);
    for (int n = 0; n < b; ++n) {
      MatMap g(gy + n * in.size(), c, pos);
      ConstMatMap xh(buf.saved.data() + n * in.size(), c, pos);
      dgamma += g.cwiseProduct(xh).rowwise().sum();
      dbeta += g.rowwise().sum();
      if (!gx) continue;
      MatMap dx(gx + n * in.size(), c, pos);
      g.array() = g.array().colwise() * gamma.array();  // dL/dxhat, in place
      for (int gi = 0; gi < groups_; ++gi) {
        const auto dxh = g.middleRows(gi * cg, cg);
        const auto xhg = xh.middleRows(gi * cg, cg);
        const float m1 = dxh.sum() * count_inv;
        const float m2 = dxh.cwiseProduct(xhg).sum() * count_inv;
        const float rstd = buf.saved2[static_cast<int64_t>(n) * groups_ + gi];
        dx.middleRows(gi * cg, cg).array() = rstd * (dxh.array() - m1 - xhg.array() * m2);
      }
    }
  }
  void Ranges(std::vector<ParamRange>& r) const override {
    r.push_back({name + ".gamma", offset, in.c});
    r.push_back({name + ".beta", offset + in.c, in.c});
  }
  std::string Describe() const override { return fmt::format("groupnorm g{} {}", groups_, Layer::Describe()); }
  bool Fusable() const override { return true; }

 private:
  int groups_;
  double eps_;
};

// BatchNorm (Ioffe & Szegedy 2015): each channel of an image (each feature of
// flat data) is normalised over the whole batch, samples and positions
// together: with the batch's mean and biased variance in training, with the
// running statistics in evaluation; y = gamma xhat + beta. Parameters, in
// order: gamma, beta (trained), running mean, running variance (model state:
// gradient 0, moved by UpdateState after each local step to (1 - momentum)
// r + momentum x the step's batch statistic, the variance unbiased by
// N / (N - 1), PyTorch's convention; from the values the step's forward pass
// read, so whatever an optimizer did to those entries is overwritten). A
// running variance below 0 (server-side noise, lossy compression) counts as
// 0. saved holds xhat; saved2 [rstd | mean | variance | running mean read |
// running variance read] per channel, then N; tmp 3 C floats of scratch.
class BatchNorm : public Layer {
 public:
  BatchNorm(Shape input, double momentum, double eps) : momentum_(static_cast<float>(momentum)), eps_(eps) {
    in = input;
    out = input;
    count = 4 * static_cast<int64_t>(in.c);
  }
  void Allocate(Buffers& buf, int rows) const override {
    Layer::Allocate(buf, rows);
    buf.saved.resize(rows * in.size());
    buf.saved2.resize(5 * static_cast<int64_t>(in.c) + 1);
    buf.tmp.resize(3 * static_cast<int64_t>(in.c));
  }
  void Init(float* p, Rng&, double) const override {
    const int c = in.c;
    std::fill(p + offset, p + offset + c, 1.0f);              // gamma
    std::fill(p + offset + c, p + offset + 3 * c, 0.0f);      // beta, running mean
    std::fill(p + offset + 3 * c, p + offset + 4 * c, 1.0f);  // running variance
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass& pass) const override {
    const int c = in.c;
    const int64_t n = b * in.columns();
    ConstMatMap xs(x, c, n);
    MatMap ys(buf.out.data(), c, n);
    ConstVecMap gamma(p + offset, c), beta(p + offset + c, c), rmean(p + offset + 2 * c, c),
        rvar(p + offset + 3 * c, c);
    if (!pass.training) {
      VecMap a(buf.tmp.data(), c), shift(buf.tmp.data() + c, c);
      for (int k = 0; k < c; ++k) {
        a[k] = static_cast<float>(gamma[k] / std::sqrt(std::max(0.0, static_cast<double>(rvar[k])) + eps_));
        shift[k] = beta[k] - rmean[k] * a[k];
      }
      ys = (xs.array().colwise() * a.array()).colwise() + shift.array();
      return;
    }
    float* st = buf.saved2.data();
    VecMap rstd(st, c), mean(st + c, c), var(st + 2 * c, c);
    MatMap xh(buf.saved.data(), c, n);
    const float inv_n = 1.0f / static_cast<float>(n);
    mean = xs.rowwise().sum() * inv_n;
    xh = xs.colwise() - mean;
    var = xh.array().square().matrix().rowwise().sum() * inv_n;
    for (int k = 0; k < c; ++k) rstd[k] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var[k]) + eps_));
    VecMap(st + 3 * c, c) = rmean;
    VecMap(st + 4 * c, c) = rvar;
    st[5 * c] = static_cast<float>(n);
    xh = xh.array().colwise() * rstd.array();
    ys = (xh.array().colwise() * gamma.array()).colwise() + beta.array();
  }
  void Backward(const float* p, const float*, int b, Buffers& buf, float* gy, float* gx, float* grad,
                const Pass&) const override {
    const int c = in.c;
    const int64_t n = b * in.columns();
    MatMap g(gy, c, n);
    ConstMatMap xh(buf.saved.data(), c, n);
    VecMap dgamma(grad + offset, c), dbeta(grad + offset + c, c);
    dgamma = g.cwiseProduct(xh).rowwise().sum();
    dbeta = g.rowwise().sum();
    VecMap(grad + offset + 2 * c, 2 * static_cast<int64_t>(c)).setZero();  // the state's
    if (!gx) return;
    // dx = gamma rstd (g - mean(g) - xhat mean(g xhat)), per channel.
    const float inv_n = 1.0f / static_cast<float>(n);
    VecMap a(buf.tmp.data(), c), m1(buf.tmp.data() + c, c), m2(buf.tmp.data() + 2 * c, c);
    a = ConstVecMap(p + offset, c).cwiseProduct(ConstVecMap(buf.saved2.data(), c));
    m1 = dbeta * inv_n;
    m2 = dgamma * inv_n;
    MatMap dx(gx, c, n);
    dx = (((g.colwise() - m1).array() - xh.array().colwise() * m2.array()).colwise() * a.array()).matrix();
  }
  void Ranges(std::vector<ParamRange>& r) const override {
    const int64_t c = in.c;
    r.push_back({name + ".gamma", offset, c});
    r.push_back({name + ".beta", offset + c, c});
    r.push_back({name + ".running_mean", offset + 2 * c, c, false, true});
    r.push_back({name + ".running_var", offset + 3 * c, c, false, true});
  }
  std::string Describe() const override { return fmt::format("batchnorm {}", Layer::Describe()); }
  bool Fusable() const override { return true; }
  bool HasState() const override { return true; }
  void UpdateState(float* p, const Buffers& buf) const override {
    const int c = in.c;
    const float* st = buf.saved2.data();
    const double n = st[5 * c];
    if (n <= 1.0) {
      // One value per channel (flat features, a batch of one: a client's
      // last partial batch) has no variance to estimate; moving towards 0
      // would shrink the running variance. The statistics stay as the
      // forward pass read them. (PyTorch refuses such a batch in training.)
      std::copy(st + 3 * c, st + 5 * c, p + offset + 2 * c);
      return;
    }
    const float unbias = static_cast<float>(n / (n - 1.0));
    const float keep = 1.0f - momentum_;
    for (int k = 0; k < c; ++k) {
      p[offset + 2 * c + k] = keep * st[3 * c + k] + momentum_ * st[c + k];
      p[offset + 3 * c + k] = keep * st[4 * c + k] + momentum_ * (st[2 * c + k] * unbias);
    }
  }

 private:
  float momentum_;
  double eps_;
};

// LayerNorm (Ba et al. 2016) over the feature axis of every column: a flat
// sample's features, an image position's channels, a sequence step's
// features (Keras' default axis -1); gamma and beta per feature.
class LayerNorm : public Layer {
 public:
  LayerNorm(Shape input, double eps) : eps_(eps) {
    in = input;
    out = input;
    count = 2 * static_cast<int64_t>(in.c);
  }
  void Allocate(Buffers& buf, int rows) const override {
    Layer::Allocate(buf, rows);
    buf.saved.resize(rows * in.size());
    buf.saved2.resize(rows * in.columns());
  }
  void Init(float* p, Rng&, double) const override {
    std::fill(p + offset, p + offset + in.c, 1.0f);
    std::fill(p + offset + in.c, p + offset + 2 * in.c, 0.0f);
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass&) const override {
    const int c = in.c;
    const int64_t cols = b * in.columns();
    ConstMatMap xs(x, c, cols);
    MatMap xh(buf.saved.data(), c, cols);
    ConstVecMap gamma(p + offset, c), beta(p + offset + c, c);
    for (int64_t j = 0; j < cols; ++j) {
      const double mean = xs.col(j).cast<double>().sum() / c;
      const double var = (xs.col(j).cast<double>().array() - mean).square().sum() / c;
      const float rstd = static_cast<float>(1.0 / std::sqrt(var + eps_));
      buf.saved2[j] = rstd;
      xh.col(j).array() = (xs.col(j).array() - static_cast<float>(mean)) * rstd;
    }
    MatMap(buf.out.data(), c, cols).array() = (xh.array().colwise() * gamma.array()).colwise() + beta.array();
  }
  void Backward(const float* p, const float*, int b, Buffers& buf, float* gy, float* gx, float* grad,
                const Pass&) const override {
    const int c = in.c;
    const int64_t cols = b * in.columns();
    MatMap g(gy, c, cols);
    ConstMatMap xh(buf.saved.data(), c, cols);
    VecMap(grad + offset, c) = g.cwiseProduct(xh).rowwise().sum();
    VecMap(grad + offset + c, c) = g.rowwise().sum();
    if (!gx) return;
    g.array() = g.array().colwise() * ConstVecMap(p + offset, c).array();
    MatMap dx(gx, c, cols);
    const float inv = 1.0f / static_cast<float>(c);
    for (int64_t j = 0; j < cols; ++j) {
      const float m1 = g.col(j).sum() * inv;
      const float m2 = g.col(j).dot(xh.col(j)) * inv;
      dx.col(j).array() = buf.saved2[j] * (g.col(j).array() - m1 - xh.col(j).array() * m2);
    }
  }
  void Ranges(std::vector<ParamRange>& r) const override {
    r.push_back({name + ".gamma", offset, in.c});
    r.push_back({name + ".beta", offset + in.c, in.c});
  }
  bool Fusable() const override { return true; }

 private:
  double eps_;
};

// ---------------------------------------------------------------- embedding

// Token ids (the data's features, exact floats) -> vectors: E is dim x vocab,
// column-major, so id i's vector is the dim floats at offset + i * dim.
class Embedding : public Layer {
 public:
  Embedding(Shape input, int vocab, int dim, std::string path) : vocab_(vocab), dim_(dim), path_(std::move(path)) {
    in = input;
    out = Shape::Seq(dim, in.t);
    count = static_cast<int64_t>(vocab) * dim;
  }
  void Allocate(Buffers& buf, int rows) const override {
    Layer::Allocate(buf, rows);
    buf.idx.resize(static_cast<size_t>(rows) * in.t);
  }
  void Init(float* p, Rng& rng, double scale) const override { Uniform(p + offset, count, 0.05 * scale, rng); }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass&) const override {
    const int t_n = in.t;
    for (int n = 0; n < b; ++n) {
      for (int t = 0; t < t_n; ++t) {
        const float v = x[static_cast<int64_t>(n) * t_n + t];
        const int id = static_cast<int>(v);
        if (!(v >= 0.0f) || v >= static_cast<float>(vocab_) || static_cast<float>(id) != v) {
          throw InputError(fmt::format("{}: token {} at step {} of a sample is not an id in [0, {}) (the "
                                       "embedding's vocab, from data.vocab_size)",
                                       path_, v, t, vocab_));
        }
        const int64_t col = static_cast<int64_t>(t) * b + n;
        buf.idx[static_cast<size_t>(col)] = id;
        std::memcpy(buf.out.data() + col * dim_, p + offset + static_cast<int64_t>(id) * dim_, dim_ * sizeof(float));
      }
    }
  }
  void Backward(const float*, const float*, int b, Buffers& buf, float* gy, float*, float* grad,
                const Pass&) const override {
    float* e = grad + offset;
    std::fill(e, e + count, 0.0f);
    const int64_t cols = static_cast<int64_t>(b) * in.t;
    for (int64_t col = 0; col < cols; ++col) {
      float* dst = e + static_cast<int64_t>(buf.idx[static_cast<size_t>(col)]) * dim_;
      const float* src = gy + col * dim_;
      for (int i = 0; i < dim_; ++i) dst[i] += src[i];
    }
  }
  void Ranges(std::vector<ParamRange>& r) const override { r.push_back({name + ".weight", offset, count}); }
  std::string Describe() const override { return fmt::format("embedding {}x{} {}", vocab_, dim_, Layer::Describe()); }

 private:
  int vocab_, dim_;
  std::string path_;
};

// ---------------------------------------------------------------- lstm

// What the LSTM and the GRU share: G gates of H units over F inputs, laid out
// as kernel W (G H x F), recurrent U (G H x H), bias b (G H); buffers for the
// gates of every step (saved), one H x T b buffer (saved2), and tmp for h of
// every step (unless return_sequences writes them to the output) then 3 H x b
// of scratch; the parameter ranges, MACs and description.
class GatedRecurrent : public Layer {
 public:
  GatedRecurrent(const char* kind, int gates, Shape input, int units, bool return_sequences)
      : kind_(kind), g_(gates), h_(units), seqs_(return_sequences) {
    in = input;
    out = seqs_ ? Shape::Seq(units, in.t) : Shape::Flat(units);
    count = static_cast<int64_t>(g_) * h_ * (in.c + h_ + 1);
  }
  int64_t kernel() const { return offset; }
  int64_t recurrent() const { return offset + static_cast<int64_t>(g_) * h_ * in.c; }
  int64_t bias() const { return recurrent() + static_cast<int64_t>(g_) * h_ * h_; }
  void Allocate(Buffers& buf, int rows) const override {
    Layer::Allocate(buf, rows);
    const int64_t cols = static_cast<int64_t>(rows) * in.t;
    buf.saved.resize(static_cast<size_t>(g_) * h_ * cols);
    buf.saved2.resize(h_ * cols);
    buf.tmp.resize((seqs_ ? 0 : h_ * cols) + 3LL * h_ * rows);
  }
  float* Hs(Buffers& buf) const { return seqs_ ? buf.out.data() : buf.tmp.data(); }
  double Macs() const override { return static_cast<double>(in.t) * g_ * h_ * (in.c + h_); }
  void Ranges(std::vector<ParamRange>& r) const override {
    r.push_back({name + ".kernel", kernel(), static_cast<int64_t>(g_) * h_ * in.c});
    r.push_back({name + ".recurrent", recurrent(), static_cast<int64_t>(g_) * h_ * h_});
    r.push_back({name + ".bias", bias(), static_cast<int64_t>(g_) * h_});
  }
  std::string Describe() const override {
    return fmt::format("{} {}{} {}", kind_, h_, seqs_ ? " seq" : "", Layer::Describe());
  }

 protected:
  const char* kind_;
  int g_, h_;
  bool seqs_;
};

// LSTM (Hochreiter & Schmidhuber 1997, with a forget gate) in Keras' layout:
// kernel W (4H x F), recurrent U (4H x H), one bias b (4H), the gates'
// rows in the order i, f, c (the candidate g), o:
//   z_t = W x_t + U h_{t-1} + b;  i, f, o = sigmoid(z_i, z_f, z_o);
//   g = tanh(z_c);  c_t = f c_{t-1} + i g;  h_t = o tanh(c_t);  h_{-1} = c_{-1} = 0.
// The input projection of all steps is one GEMM (W X over T b columns), each
// step one GEMM for all four gates over the batch (U h_{t-1}); backward the
// same: per step dh_{t-1} = U^T dz_t, then dW, dU and dX one GEMM each.
// saved: the activated gates (4H x T b), overwritten by dz in backward;
// saved2: c_t (H x T b); with return_sequences = false, tmp also keeps h_t.
class Lstm : public GatedRecurrent {
 public:
  Lstm(Shape input, int units, bool return_sequences) : GatedRecurrent("lstm", 4, input, units, return_sequences) {}
  void Init(float* p, Rng& rng, double scale) const override {
    const double bound = scale / std::sqrt(static_cast<double>(h_));
    Uniform(p + offset, count, bound, rng);
    for (int j = 0; j < h_; ++j) p[bias() + h_ + j] += 1.0f;  // forget gate
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass&) const override {
    const int H = h_, T = in.t;
    const int64_t cols = static_cast<int64_t>(b) * T;
    MatMap z(buf.saved.data(), 4 * H, cols);
    z.noalias() = ConstMatMap(p + kernel(), 4 * H, in.c) * ConstMatMap(x, in.c, cols);
    z.colwise() += ConstVecMap(p + bias(), 4 * H);
    ConstMatMap u(p + recurrent(), 4 * H, H);
    float* hs = Hs(buf);
    const bool packed = T > 1 && PackedLhs::Usable(4 * H, H, b);
    if (packed) buf.pack[0].Pack(p + recurrent(), 4 * H, false, 4 * H, H, b);
    for (int t = 0; t < T; ++t) {
      auto zt = z.middleCols(static_cast<int64_t>(t) * b, b);
      const float* h_prev = hs + static_cast<int64_t>(t - 1) * b * H;
      if (t > 0 && packed) {
        buf.pack[0].AddProduct(h_prev, H, zt.data(), 4 * H);
      } else if (t > 0) {
        zt.noalias() += u * ConstMatMap(h_prev, H, b);
      }
      auto i = zt.topRows(H).array();
      auto f = zt.middleRows(H, H).array();
      auto g = zt.middleRows(2 * H, H).array();
      auto o = zt.bottomRows(H).array();
      fm::ForEachColumn(zt.topRows(2 * H), fm::SigmoidSpan);  // i, f
      fm::ForEachColumn(zt.middleRows(2 * H, H), fm::TanhSpan);  // g
      fm::ForEachColumn(zt.bottomRows(H), fm::SigmoidSpan);  // o
      MatMap c(buf.saved2.data() + static_cast<int64_t>(t) * b * H, H, b);
      if (t == 0) {
        c = (i * g).matrix();
      } else {
        c = (f * ConstMatMap(buf.saved2.data() + static_cast<int64_t>(t - 1) * b * H, H, b).array() + i * g).matrix();
      }
      MatMap ht(hs + static_cast<int64_t>(t) * b * H, H, b);
      ht = c;
      fm::TanhSpan(ht.data(), static_cast<int64_t>(H) * b);
      ht.array() *= o;
    }
    if (!seqs_) std::copy(hs + static_cast<int64_t>(T - 1) * b * H, hs + cols * H, buf.out.data());
  }
  void Backward(const float* p, const float* x, int b, Buffers& buf, float* gy, float* gx, float* grad,
                const Pass&) const override {
    const int H = h_, T = in.t;
    const int64_t cols = static_cast<int64_t>(b) * T, hb = static_cast<int64_t>(H) * b;
    MatMap z(buf.saved.data(), 4 * H, cols);  // gates in, dz out
    ConstMatMap u(p + recurrent(), 4 * H, H);
    float* scratch = buf.tmp.data() + (seqs_ ? 0 : H * cols);
    ArrMap dh(scratch, hb), dc(scratch + hb, hb), tmp(scratch + 2 * hb, hb);
    dc.setZero();
    const bool packed = T > 1 && PackedLhs::Usable(H, 4 * H, b);
    if (packed) buf.pack[0].Pack(p + recurrent(), 4 * H, true, H, 4 * H, b);
    for (int t = T - 1; t >= 0; --t) {
      if (t == T - 1) {
        dh = ConstArrMap(seqs_ ? gy + static_cast<int64_t>(t) * hb : gy, hb);
      } else if (seqs_) {
        dh += ConstArrMap(gy + static_cast<int64_t>(t) * hb, hb);
      }
      auto zt = z.middleCols(static_cast<int64_t>(t) * b, b);
      Eigen::Map<Eigen::ArrayXXf> dhm(dh.data(), H, b), dcm(dc.data(), H, b), tm(tmp.data(), H, b);
      auto i = zt.topRows(H).array();
      auto f = zt.middleRows(H, H).array();
      auto g = zt.middleRows(2 * H, H).array();
      auto o = zt.bottomRows(H).array();
      const ConstMatMap c(buf.saved2.data() + static_cast<int64_t>(t) * hb, H, b);
      tm = c.array();
      fm::TanhSpan(tm.data(), hb);
      dcm += dhm * o * (1.0f - tm.square());
      o = dhm * tm * o * (1.0f - o);  // dz_o
      tm = i;
      i = dcm * g * i * (1.0f - i);          // dz_i
      g = dcm * tm * (1.0f - g.square());    // dz_c
      tm = f;
      if (t > 0) {
        f = dcm * ConstMatMap(buf.saved2.data() + static_cast<int64_t>(t - 1) * hb, H, b).array() * f * (1.0f - f);
      } else {
        f = 0.0f;
      }
      dcm *= tm;  // dc_{t-1}
      if (t > 0 && packed) {
        dh.setZero();
        buf.pack[0].AddProduct(zt.data(), 4 * H, dh.data(), H);
      } else if (t > 0) {
        MatMap(dh.data(), H, b).noalias() = u.transpose() * zt;
      }
    }
    MatMap(grad + kernel(), 4 * H, in.c).noalias() = z * ConstMatMap(x, in.c, cols).transpose();
    MatMap du(grad + recurrent(), 4 * H, H);
    if (T > 1) {
      du.noalias() = z.rightCols(cols - b) * ConstMatMap(Hs(buf), H, cols - b).transpose();
    } else {
      du.setZero();
    }
    VecMap(grad + bias(), 4 * H) = z.rowwise().sum();
    if (gx) MatMap(gx, in.c, cols).noalias() = ConstMatMap(p + kernel(), 4 * H, in.c).transpose() * z;
  }
};

// GRU (Cho et al. 2014) in Keras' layout with reset_after = false (one bias
// per gate, as TensorFlow 1's GRUCell): kernel W (3H x F), recurrent U (3H x
// H), bias b (3H), the gates' rows in the order z (update), r (reset), n
// (candidate):
//   z = sigmoid(W_z x_t + U_z h_{t-1} + b_z);  r = sigmoid(W_r x_t + U_r h_{t-1} + b_r);
//   n = tanh(W_n x_t + U_n (r h_{t-1}) + b_n);  h_t = z h_{t-1} + (1 - z) n;  h_{-1} = 0.
// As the LSTM: W X for all steps in one GEMM; per step one GEMM for z and r
// together and one for the candidate. saved: the gates (3H x T b),
// overwritten by their pre-activation gradients in backward; saved2: r h_{t-1}.
class Gru : public GatedRecurrent {
 public:
  Gru(Shape input, int units, bool return_sequences) : GatedRecurrent("gru", 3, input, units, return_sequences) {}
  void Init(float* p, Rng& rng, double scale) const override {
    Uniform(p + offset, count, scale / std::sqrt(static_cast<double>(h_)), rng);
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass&) const override {
    const int H = h_, T = in.t;
    const int64_t cols = static_cast<int64_t>(b) * T, hb = static_cast<int64_t>(H) * b;
    MatMap a(buf.saved.data(), 3 * H, cols);
    a.noalias() = ConstMatMap(p + kernel(), 3 * H, in.c) * ConstMatMap(x, in.c, cols);
    a.colwise() += ConstVecMap(p + bias(), 3 * H);
    ConstMatMap u(p + recurrent(), 3 * H, H);
    float* hs = Hs(buf);
    // pack[0]: U_z and U_r (2H x H), pack[1]: U_n (H x H), each used T - 1 times.
    const bool packed = T > 1 && PackedLhs::Usable(2 * H, H, b) && PackedLhs::Usable(H, H, b);
    if (packed) {
      buf.pack[0].Pack(p + recurrent(), 3 * H, false, 2 * H, H, b);
      buf.pack[1].Pack(p + recurrent() + 2 * H, 3 * H, false, H, H, b);
    }
    for (int t = 0; t < T; ++t) {
      auto at = a.middleCols(static_cast<int64_t>(t) * b, b);
      MatMap rh(buf.saved2.data() + t * hb, H, b);
      if (t > 0 && packed) {
        buf.pack[0].AddProduct(hs + (t - 1) * hb, H, at.data(), 3 * H);
      } else if (t > 0) {
        at.topRows(2 * H).noalias() += u.topRows(2 * H) * ConstMatMap(hs + (t - 1) * hb, H, b);
      }
      fm::ForEachColumn(at.topRows(2 * H), fm::SigmoidSpan);  // z, r
      if (t > 0) {
        rh = (at.middleRows(H, H).array() * ConstMatMap(hs + (t - 1) * hb, H, b).array()).matrix();
        if (packed) {
          buf.pack[1].AddProduct(rh.data(), H, at.data() + 2 * H, 3 * H);
        } else {
          at.bottomRows(H).noalias() += u.bottomRows(H) * rh;
        }
      } else {
        rh.setZero();
      }
      fm::ForEachColumn(at.bottomRows(H), fm::TanhSpan);
      auto n = at.bottomRows(H).array();
      const auto z = at.topRows(H).array();
      MatMap ht(hs + t * hb, H, b);
      if (t > 0) {
        ht = (z * ConstMatMap(hs + (t - 1) * hb, H, b).array() + (1.0f - z) * n).matrix();
      } else {
        ht = ((1.0f - z) * n).matrix();
      }
    }
    if (!seqs_) std::copy(hs + (T - 1) * hb, hs + T * hb, buf.out.data());
  }
  void Backward(const float* p, const float* x, int b, Buffers& buf, float* gy, float* gx, float* grad,
                const Pass&) const override {
    const int H = h_, T = in.t;
    const int64_t cols = static_cast<int64_t>(b) * T, hb = static_cast<int64_t>(H) * b;
    MatMap a(buf.saved.data(), 3 * H, cols);  // gates in, pre-activation gradients out
    ConstMatMap u(p + recurrent(), 3 * H, H);
    float* hs = Hs(buf);
    float* scratch = buf.tmp.data() + (seqs_ ? 0 : H * cols);
    Eigen::Map<Eigen::ArrayXXf> dh(scratch, H, b), drh(scratch + hb, H, b), tm(scratch + 2 * hb, H, b);
    // pack[1]: U_n^T (H x H), used T times; pack[0]: U_zr^T (H x 2H), T - 1 times.
    const bool packed = T > 1 && PackedLhs::Usable(H, H, b) && PackedLhs::Usable(H, 2 * H, b);
    if (packed) {
      buf.pack[1].Pack(p + recurrent() + 2 * H, 3 * H, true, H, H, b);
      buf.pack[0].Pack(p + recurrent(), 3 * H, true, H, 2 * H, b);
    }
    for (int t = T - 1; t >= 0; --t) {
      if (t == T - 1) {
        dh = Eigen::Map<const Eigen::ArrayXXf>(seqs_ ? gy + t * hb : gy, H, b);
      } else if (seqs_) {
        dh += Eigen::Map<const Eigen::ArrayXXf>(gy + t * hb, H, b);
      }
      auto at = a.middleCols(static_cast<int64_t>(t) * b, b);
      auto z = at.topRows(H).array();
      auto r = at.middleRows(H, H).array();
      auto n = at.bottomRows(H).array();
      if (t > 0) {
        tm = Eigen::Map<const Eigen::ArrayXXf>(hs + (t - 1) * hb, H, b) - n;
      } else {
        tm = -n;
      }
      n = dh * (1.0f - z) * (1.0f - n.square());  // dn_pre
      tm = dh * tm * z * (1.0f - z);              // dz_pre
      dh *= z;                                    // dh_{t-1}, direct part
      z = tm;
      if (packed) {
        drh.setZero();
        buf.pack[1].AddProduct(at.data() + 2 * H, 3 * H, drh.data(), H);
      } else {
        MatMap(drh.data(), H, b).noalias() = u.bottomRows(H).transpose() * at.bottomRows(H);
      }
      dh += drh * r;
      if (t > 0) {
        r = drh * Eigen::Map<const Eigen::ArrayXXf>(hs + (t - 1) * hb, H, b) * r * (1.0f - r);  // dr_pre
        if (packed) {
          buf.pack[0].AddProduct(at.data(), 3 * H, dh.data(), H);
        } else {
          MatMap(dh.data(), H, b).noalias() += u.topRows(2 * H).transpose() * at.topRows(2 * H);
        }
      } else {
        r = 0.0f;
      }
    }
    MatMap(grad + kernel(), 3 * H, in.c).noalias() = a * ConstMatMap(x, in.c, cols).transpose();
    MatMap du(grad + recurrent(), 3 * H, H);
    if (T > 1) {
      du.topRows(2 * H).noalias() = a.topRows(2 * H).rightCols(cols - b) * ConstMatMap(hs, H, cols - b).transpose();
    } else {
      du.topRows(2 * H).setZero();
    }
    du.bottomRows(H).noalias() = a.bottomRows(H) * ConstMatMap(buf.saved2.data(), H, cols).transpose();
    VecMap(grad + bias(), 3 * H) = a.rowwise().sum();
    if (gx) MatMap(gx, in.c, cols).noalias() = ConstMatMap(p + kernel(), 3 * H, in.c).transpose() * a;
  }
};

// ---------------------------------------------------------------- fedpara

// FedPara (Hyeon-Woo, Ye-Bin & Oh, ICLR 2022) on a dense or conv2d layer,
// under algorithm.name = fedpara: the layer's weight W (out x fan_in, the
// inner layer's own layout) is formed at every pass as the Hadamard product
// W = W1 o W2 of two low-rank factors; dense: W_f = X_f Y_f^T (X_f out x R,
// Y_f fan_in x R); conv2d, Proposition 3: per kernel position p,
// W_f,p = X_f T_f,p Y_f^T (FedParaConvForm; X_f out x R, Y_f C x R). Only the
// factors T1 X1 Y1 T2 X2 Y2 (no T for dense) and the inner layer's bias are
// parameters, in that order: Cnn's layout, rank rule and initialisation, so a
// spec of cnn_mcmahan's layers under fedpara starts from
// fedpara_cnn_mcmahan's parameters. The inner layer runs on the formed
// [W; b] at offset 0 and its weight gradient dW is mapped onto the factors:
// dL/dW1 = dW o W2, dL/dW2 = dW o W1, then as Cnn::FactorGrad.
// Buffers: the inner layer's own in buf; buf.inner[0]: out the formed [W; b],
// saved W1, saved2 W2, tmp the inner gradient [dW; db]; buf.inner[1]: out and
// saved the convolution's z1 = X1 T1 and z2 = X2 T2, saved2 dW o W2 (then o
// W1), tmp FedParaConvGrad's scratch.
class FedParaLayer : public Layer {
  static constexpr int kAlignFloats = 16;

 public:
  // conv: w_in is the input channels and kernel the window's side; dense:
  // w_in is fan_in and kernel 1.
  FedParaLayer(std::unique_ptr<Layer> inner, bool conv, int out_c, int w_in, int kernel, double gamma, bool bias)
      : inner_(std::move(inner)), conv_(conv), out_c_(out_c), w_in_(w_in), positions_(kernel * kernel), bias_(bias) {
    in = inner_->in;
    out = inner_->out;
    rank_ = conv ? FedParaConvRank(w_in, out_c, kernel, gamma) : FedParaRank(w_in, out_c, gamma);
    const int64_t r = rank_, core = conv ? r * r * positions_ : 0;
    w_size_ = static_cast<int64_t>(out_c) * w_in * positions_;
    x1_ = core;
    y1_ = x1_ + out_c * r;
    t2_ = y1_ + w_in * r;
    x2_ = t2_ + core;
    y2_ = x2_ + out_c * r;
    factors_ = y2_ + w_in * r;
    count = factors_ + (bias ? out_c : 0);
  }
  void Allocate(Buffers& buf, int rows) const override {
    inner_->Allocate(buf, rows);
    buf.inner.resize(2);
    Buffers& f = buf.inner[0];
    Buffers& z = buf.inner[1];
    f.out.resize(inner_->count);
    f.saved.resize(w_size_);
    f.saved2.resize(w_size_);
    f.tmp.resize(inner_->count + kAlignFloats);
    const int64_t zs = conv_ ? static_cast<int64_t>(out_c_) * rank_ * positions_ : 0;
    z.out.resize(zs);
    z.saved.resize(zs);
    z.saved2.resize(w_size_);
    z.tmp.resize(zs);
  }
  void Init(float* p, Rng& rng, double scale) const override {
    const double bound = scale / std::sqrt(static_cast<double>(w_in_) * positions_);
    Uniform(p + offset, factors_, FedParaFactorBound(conv_, rank_, bound), rng);
    if (bias_) Uniform(p + offset + factors_, out_c_, bound, rng);
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass& pass) const override {
    const float* q = p + offset;
    Buffers& f = buf.inner[0];
    Buffers& z = buf.inner[1];
    if (conv_) {
      FedParaConvForm(out_c_, w_in_, positions_, rank_, q, q + x1_, q + y1_, z.out.data(), f.saved.data());
      FedParaConvForm(out_c_, w_in_, positions_, rank_, q + t2_, q + x2_, q + y2_, z.saved.data(), f.saved2.data());
    } else {
      FedParaDenseForm(out_c_, w_in_, rank_, q + x1_, q + y1_, f.saved.data());
      FedParaDenseForm(out_c_, w_in_, rank_, q + x2_, q + y2_, f.saved2.data());
    }
    VecMap(f.out.data(), w_size_) = f.saved.cwiseProduct(f.saved2);
    if (bias_) std::copy(q + factors_, q + factors_ + out_c_, f.out.data() + w_size_);
    inner_->Forward(f.out.data(), x, b, buf, pass);
  }
  void Backward(const float* p, const float* x, int b, Buffers& buf, float* gy, float* gx, float* grad,
                const Pass& pass) const override {
    Buffers& f = buf.inner[0];
    Buffers& z = buf.inner[1];
    const float* q = p + offset;
    float* g = grad + offset;
    // The inner layer's [dW; db] goes where db has the address of its final
    // place g + factors_ modulo 64 bytes: Eigen's row sums for db peel their
    // first elements by the destination's alignment, so db's bits then equal
    // those of a layer that writes it in place (Cnn's).
    float* dwb = f.tmp.data();
    for (int s = 0; s < kAlignFloats; ++s) {
      if ((reinterpret_cast<uintptr_t>(f.tmp.data() + s + w_size_) - reinterpret_cast<uintptr_t>(g + factors_)) % 64 ==
          0) {
        dwb = f.tmp.data() + s;
        break;
      }
    }
    inner_->Backward(f.out.data(), x, b, buf, gy, gx, dwb, pass);
    const ConstVecMap dw(dwb, w_size_);
    VecMap gw(z.saved2.data(), w_size_);
    for (int k = 0; k < 2; ++k) {
      gw = dw.cwiseProduct(k == 0 ? f.saved2 : f.saved);
      const int64_t t = k == 0 ? 0 : t2_, xo = k == 0 ? x1_ : x2_, yo = k == 0 ? y1_ : y2_;
      if (conv_) {
        FedParaConvGrad(out_c_, w_in_, positions_, rank_, gw.data(), q + t, q + xo, q + yo,
                        (k == 0 ? z.out : z.saved).data(), z.tmp.data(), g + t, g + xo, g + yo);
      } else {
        FedParaDenseGrad(out_c_, w_in_, rank_, gw.data(), q + xo, q + yo, g + xo, g + yo);
      }
    }
    if (bias_) std::copy(dwb + w_size_, dwb + w_size_ + out_c_, g + factors_);
  }
  double Macs() const override { return inner_->Macs(); }
  double PassMacs() const override { return FedParaPassMacs(conv_, out_c_, w_in_, positions_, rank_); }
  void Ranges(std::vector<ParamRange>& r) const override {
    r.push_back({name + ".weight", offset, factors_});
    if (bias_) r.push_back({name + ".bias", offset + factors_, out_c_});
  }
  int64_t ColsPerSample() const override { return inner_->ColsPerSample(); }
  bool Fusable() const override { return inner_->Fusable(); }
  int Stride() const override { return inner_->Stride(); }
  // The inner layer's geometry and output shape, with this layer's type and
  // activation (the inner layer has neither): "conv5x5 s1 p2 conv2d fedpara
  // rank 9 -> 64x28x28 relu", "dense fedpara rank 43 -> 512 relu".
  std::string Describe() const override {
    const std::string s = inner_->Describe();
    const auto arrow = s.find(" -> ");
    std::string head = s.substr(0, arrow);
    while (!head.empty() && head.back() == ' ') head.pop_back();
    return fmt::format("{}{}{} fedpara rank {}{}{}", head, head.empty() ? "" : " ", type, rank_, s.substr(arrow),
                       act != Act::kNone ? std::string(" ") + ActName(act) : std::string());
  }

 private:
  std::unique_ptr<Layer> inner_;
  bool conv_;
  int out_c_, w_in_, positions_, rank_ = 0;
  bool bias_;
  int64_t w_size_ = 0, x1_ = 0, y1_ = 0, t2_ = 0, x2_ = 0, y2_ = 0, factors_ = 0;
};

// ---------------------------------------------------------------- residual

// y = inner(x) + shortcut(x): the shortcut is x itself, or with projection a
// 1 x 1 convolution without bias whose stride maps x onto the inner output's
// size (He et al. 2016's option B). Inner buffers: one per inner layer, then
// the projection's; tmp holds two gradient buffers for the inner chain and
// the shortcut's input gradient.
class Residual : public Layer {
 public:
  LayerList inner;
  std::unique_ptr<Layer> projection;

  void Allocate(Buffers& buf, int rows) const override {
    Layer::Allocate(buf, rows);
    buf.inner.resize(inner.size() + (projection ? 1 : 0));
    for (size_t i = 0; i < inner.size(); ++i) inner[i]->Allocate(buf.inner[i], rows);
    if (projection) projection->Allocate(buf.inner.back(), rows);
    buf.tmp.resize(rows * (2 * WidestActivation(inner) + std::max(in.size(), out.size())));
  }
  void Init(float* p, Rng& rng, double scale) const override {
    for (const auto& l : inner) l->Init(p, rng, scale);
    if (projection) projection->Init(p, rng, scale);
  }
  void Forward(const float* p, const float* x, int b, Buffers& buf, const Pass& pass) const override {
    const float* y = ForwardChain(inner, p, x, b, buf.inner, pass);
    const int64_t n = b * out.size();
    const float* s = x;
    if (projection) {
      projection->Forward(p, x, b, buf.inner.back(), pass);
      s = buf.inner.back().out.data();
    }
    ArrMap(buf.out.data(), n) = ConstArrMap(y, n) + ConstArrMap(s, n);
  }
  void Backward(const float* p, const float* x, int b, Buffers& buf, float* gy, float* gx, float* grad,
                const Pass& pass) const override {
    const int64_t wide = b * WidestActivation(inner);
    float* ga = buf.tmp.data();
    float* gb = ga + wide;
    float* gs = gb + wide;  // the shortcut's dL/dx
    if (projection) {
      projection->Backward(p, x, b, buf.inner.back(), gy, gx ? gs : nullptr, grad, pass);
    } else if (gx) {
      std::copy(gy, gy + b * out.size(), gs);
    }
    BackwardChain(inner, p, x, b, buf.inner, gy, ga, gb, gx, grad, pass);
    if (gx) ArrMap(gx, b * in.size()) += ConstArrMap(gs, b * in.size());
  }
  double Macs() const override {
    double m = projection ? projection->Macs() : 0.0;
    for (const auto& l : inner) m += l->Macs();
    return m;
  }
  double PassMacs() const override {
    double m = 0.0;
    for (const auto& l : inner) m += l->PassMacs();
    return m;
  }
  void Ranges(std::vector<ParamRange>& r) const override {
    CollectRanges(inner, r);  // the enclosing CollectRanges marks the block's own "local"
    if (projection) projection->Ranges(r);
  }
  int64_t ColsPerSample() const override {
    int64_t m = projection ? projection->ColsPerSample() : 0;
    for (const auto& l : inner) m = std::max(m, l->ColsPerSample());
    return m;
  }
  int Stride() const override {
    int s = 1;
    for (const auto& l : inner) s *= l->Stride();
    return s;
  }
  std::string Describe() const override {
    std::string s = "residual(";
    for (size_t i = 0; i < inner.size(); ++i) s += (i ? " -> " : "") + inner[i]->Describe();
    return s + (projection ? " + proj1x1" : "") + ") " + Layer::Describe();
  }
  bool Fusable() const override { return true; }
  bool HasState() const override {
    for (const auto& l : inner) {
      if (l->HasState()) return true;
    }
    return false;
  }
  void UpdateState(float* p, const Buffers& buf) const override {
    for (size_t i = 0; i < inner.size(); ++i) inner[i]->UpdateState(p, buf.inner[i]);
  }
};

// ---------------------------------------------------------------- parsing

// Every layer type with its fields (besides type and name).
const std::vector<std::pair<std::string, std::vector<std::string>>>& LayerTypes() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> types = {
      {"dense", {"units", "bias"}},
      {"conv2d", {"filters", "kernel", "stride", "padding", "groups", "bias"}},
      {"maxpool2d", {"kernel", "stride"}},
      {"avgpool2d", {"kernel", "stride"}},
      {"global_avgpool", {}},
      {"flatten", {}},
      {"relu", {}},
      {"tanh", {}},
      {"sigmoid", {}},
      {"dropout", {"rate"}},
      {"groupnorm", {"groups", "epsilon"}},
      {"batchnorm", {"momentum", "epsilon"}},
      {"layernorm", {"epsilon"}},
      {"embedding", {"dim", "vocab"}},
      {"lstm", {"units", "return_sequences"}},
      {"gru", {"units", "return_sequences"}},
      {"last_step", {}},
      {"residual", {"layers", "projection"}},
  };
  return types;
}

}  // namespace

std::string Shape::Str() const {
  switch (kind) {
    case Kind::kImage: return fmt::format("image [{}, {}, {}]", c, h, w);
    case Kind::kSeq: return fmt::format("sequence [{} steps x {}]", t, c);
    case Kind::kTokens: return fmt::format("tokens [{}]", t);
    default: return fmt::format("flat [{}]", c);
  }
}

std::string Layer::Describe() const {
  std::string s = type + " -> ";
  switch (out.kind) {
    case Shape::Kind::kImage: s += fmt::format("{}x{}x{}", out.c, out.h, out.w); break;
    case Shape::Kind::kSeq: s += fmt::format("{}x{}", out.t, out.c); break;
    default: s += std::to_string(out.c); break;
  }
  if (act != Act::kNone) s += std::string(" ") + ActName(act);
  return s;
}

LayerList ParseLayers(const json& spec, const std::string& where, const std::string& name_prefix, Shape in,
                      int final_units, int64_t& next_offset, int& next_id, double fedpara_gamma, int depth,
                      bool rows_layout) {
  if (!spec.is_array() || spec.empty()) {
    throw InputError(where + ": expected a non-empty array of layer objects, got " + spec.dump().substr(0, 60));
  }
  if (depth > 8) throw InputError(where + ": residual blocks nested too deeply (at most 8)");
  LayerList layers;
  Shape cur = in;
  for (size_t i = 0; i < spec.size(); ++i) {
    const std::string path = fmt::format("{}[{}]", where, i);
    const json& obj = spec[i];
    if (!obj.is_object()) throw InputError(fmt::format("{}: expected a layer object, got {}", path, obj.dump().substr(0, 60)));
    Fields f(obj, path);
    const std::string type = f.Str("type", "");
    std::string all_types;
    const std::vector<std::string>* fields = nullptr;
    for (const auto& [t, fs] : LayerTypes()) {
      all_types += (all_types.empty() ? "" : ", ") + t;
      if (t == type) fields = &fs;
    }
    if (type.empty()) f.Fail("type", "required: one of " + all_types);
    if (!fields) {
      std::string best;
      int best_d = 1 << 30;
      for (const auto& tf : LayerTypes()) {
        const int d = EditDistance(type, tf.first);
        if (d < best_d) best_d = d, best = tf.first;
      }
      f.Fail("type", fmt::format("unknown layer type '{}'{}; one of {}", type,
                                 best_d <= 3 ? fmt::format(" (did you mean '{}'?)", best) : "", all_types));
    }
    f.CheckFields(type, *fields);
    if (rows_layout && ((type != "dense" && type != "relu") || (i == 0 && type != "dense"))) {
      f.Fail("type", fmt::format("the rows layout (the softmax and mlp presets) has dense and relu layers only, "
                                 "a dense first, not {}",
                                 type));
    }
    const bool local = f.Bool("local", false);
    const std::string name = f.Str("name", fmt::format("{}.{}", name_prefix, i));
    const std::string from = i == 0 ? (depth == 0 ? "the data gives" : "the block's input is")
                                    : fmt::format("layers[{}] ({}) outputs", i - 1, spec[i - 1].value("type", "?"));
    auto need = [&](bool ok, const std::string& what) {
      if (!ok) {
        f.Fail("type", fmt::format("{} needs {}, but {} {}{}", type, what, from, cur.Str(),
                                   depth == 0 && i == 0 ? " (data.dataset; image data or model.input_shape gives "
                                                          "images, token data a vocabulary)"
                                                        : ""));
      }
    };
    const bool is_image = cur.kind == Shape::Kind::kImage;
    if (cur.kind == Shape::Kind::kTokens && type != "embedding") {
      need(false, "an image, flat features or a sequence; token ids are read only by an embedding first");
    }
    std::unique_ptr<Layer> layer;
    if (type == "relu" || type == "tanh" || type == "sigmoid") {
      const Act a = type == "relu" ? Act::kRelu : type == "tanh" ? Act::kTanh : Act::kSigmoid;
      if (local) f.Fail("local", fmt::format("a {} layer has no parameters to keep local", type));
      if (!layers.empty() && layers.back()->Fusable() && layers.back()->act == Act::kNone && !obj.contains("name")) {
        layers.back()->act = a;  // applied in place on the previous layer's output
        continue;
      }
      layer = std::make_unique<Copy>(cur, cur);
      layer->act = a;
    } else if (type == "dense") {
      const bool last = depth == 0 && i + 1 == spec.size();
      int units;
      if (!f.Has("units") && last && final_units > 0) {
        units = final_units;
      } else {
        units = f.RequiredInt("units", 1, 100000000);
      }
      const bool bias = f.Bool("bias", true);
      if (rows_layout) {
        if (!bias) f.Fail("bias", "the rows layout's dense layers have a bias");
        if (local) f.Fail("local", "the rows layout's dense layers cannot be kept local");
        const bool first = i == 0;
        if (fedpara_gamma >= 0.0) {
          layer = std::make_unique<FedParaDenseRows>(Shape::Flat(static_cast<int>(cur.size())), units, first,
                                                     fedpara_gamma);
        } else {
          layer = std::make_unique<DenseRows>(Shape::Flat(static_cast<int>(cur.size())), units, first);
        }
      } else {
        layer = std::make_unique<Dense>(cur, units, bias);
      }
      if (fedpara_gamma >= 0.0 && !rows_layout) {
        const int64_t fan_in = cur.kind == Shape::Kind::kSeq ? cur.c : cur.size();
        if (fan_in > std::numeric_limits<int>::max()) f.Fail("type", "input too wide for a FedPara layer");
        layer = std::make_unique<FedParaLayer>(std::move(layer), false, units, static_cast<int>(fan_in), 1,
                                               fedpara_gamma, bias);
      }
    } else if (type == "conv2d") {
      need(is_image, "an image");
      const int filters = f.RequiredInt("filters", 1, 1000000);
      const int k = f.RequiredInt("kernel", 1, 1000);
      const int stride = f.Int("stride", 1, 1, 1000);
      int pad = 0;
      if (const json* pv = f.Find("padding")) {
        if (pv->is_string() && pv->get<std::string>() == "same") {
          if (stride != 1 || k % 2 == 0) {
            f.Fail("padding", fmt::format("\"same\" is supported for stride 1 and odd kernels (padding (k-1)/2); "
                                          "this layer has kernel {} and stride {}: give the padding as a number",
                                          k, stride));
          }
          pad = (k - 1) / 2;
        } else if (pv->is_string() && pv->get<std::string>() == "valid") {
          pad = 0;
        } else {
          pad = f.Int("padding", 0, 0, 1000);
        }
      }
      const int groups = f.Int("groups", 1, 1, 1000000);
      if (cur.c % groups != 0 || filters % groups != 0) {
        f.Fail("groups", fmt::format("{} groups must divide the input channels ({}) and the filters ({})", groups,
                                     cur.c, filters));
      }
      const bool bias = f.Bool("bias", true);
      if (cur.h + 2 * pad < k || cur.w + 2 * pad < k) {
        f.Fail("kernel", fmt::format("a {}x{} window does not fit the {}x{} input with padding {} ({} {})", k, k,
                                     cur.h, cur.w, pad, from, cur.Str()));
      }
      layer = std::make_unique<Conv2d>(cur, filters, k, stride, pad, groups, bias);
      if (fedpara_gamma >= 0.0) {
        if (groups != 1) f.Fail("groups", "algorithm.name=fedpara factorises convolutions with one group only");
        layer = std::make_unique<FedParaLayer>(std::move(layer), true, filters, cur.c, k, fedpara_gamma, bias);
      }
    } else if (type == "maxpool2d" || type == "avgpool2d") {
      need(is_image, "an image");
      const int k = f.RequiredInt("kernel", 1, 1000);
      const int stride = f.Int("stride", k, 1, 1000);
      if (cur.h < k || cur.w < k) {
        f.Fail("kernel", fmt::format("a {}x{} window does not fit the {}x{} input ({} {})", k, k, cur.h, cur.w,
                                     from, cur.Str()));
      }
      if (type == "maxpool2d") {
        layer = std::make_unique<MaxPool2d>(cur, k, stride);
      } else {
        layer = std::make_unique<AvgPool2d>(cur, k, stride);
      }
    } else if (type == "global_avgpool") {
      need(is_image, "an image");
      layer = std::make_unique<GlobalAvgPool>(cur);
    } else if (type == "flatten") {
      need(is_image || cur.kind == Shape::Kind::kFlat, "an image (a sequence ends with last_step or an lstm "
                                                          "without return_sequences)");
      layer = std::make_unique<Copy>(cur, Shape::Flat(static_cast<int>(cur.size())));
    } else if (type == "dropout") {
      const double rate = f.Real("rate", 0.5, 0.0, 1.0, /*hi_open=*/true);
      layer = std::make_unique<Dropout>(cur, rate);
    } else if (type == "groupnorm") {
      need(is_image || cur.kind == Shape::Kind::kFlat, "an image or flat features");
      const int groups = f.RequiredInt("groups", 1, 1000000);
      if (cur.c % groups != 0) {
        f.Fail("groups", fmt::format("{} groups must divide the {} channels", groups, cur.c));
      }
      layer = std::make_unique<GroupNorm>(cur, groups, f.Real("epsilon", 1e-5, 0.0, 1.0));
    } else if (type == "batchnorm") {
      need(is_image || cur.kind == Shape::Kind::kFlat, "an image or flat features");
      const double momentum = f.Real("momentum", 0.1, 0.0, 1.0);
      layer = std::make_unique<BatchNorm>(cur, momentum, f.Real("epsilon", 1e-5, 0.0, 1.0));
    } else if (type == "layernorm") {
      layer = std::make_unique<LayerNorm>(cur, f.Real("epsilon", 1e-5, 0.0, 1.0));
    } else if (type == "embedding") {
      if (cur.kind != Shape::Kind::kTokens) {
        need(false, depth == 0 && i == 0 ? "token data (a data.dataset with a vocabulary, data.vocab_size > 0)"
                                         : "token ids, so it must be the first layer");
      }
      const int dim = f.RequiredInt("dim", 1, 1000000);
      const int vocab = f.Int("vocab", cur.c, 1, 100000000);
      if (vocab < cur.c) {
        f.Fail("vocab", fmt::format("{} ids cannot hold the data's vocabulary of {} (data.vocab_size)", vocab, cur.c));
      }
      layer = std::make_unique<Embedding>(cur, vocab, dim, path);
    } else if (type == "lstm") {
      need(cur.kind == Shape::Kind::kSeq, "a sequence");
      const int units = f.RequiredInt("units", 1, 1000000);
      layer = std::make_unique<Lstm>(cur, units, f.Bool("return_sequences", false));
    } else if (type == "gru") {
      need(cur.kind == Shape::Kind::kSeq, "a sequence");
      const int units = f.RequiredInt("units", 1, 1000000);
      layer = std::make_unique<Gru>(cur, units, f.Bool("return_sequences", false));
    } else if (type == "last_step") {
      need(cur.kind == Shape::Kind::kSeq, "a sequence");
      layer = std::make_unique<LastStep>(cur);
    } else {  // residual
      auto r = std::make_unique<Residual>();
      r->in = cur;
      const json* inner = f.Find("layers");
      if (!inner) f.Fail("layers", "required: the block's list of layers");
      const int64_t first = next_offset;
      r->offset = first;
      r->id = next_id++;
      r->inner =
          ParseLayers(*inner, path + ".layers", name + ".layers", cur, 0, next_offset, next_id, fedpara_gamma, depth + 1);
      r->out = r->inner.back()->out;
      if (f.Bool("projection", false)) {
        if (!is_image || r->out.kind != Shape::Kind::kImage) {
          f.Fail("projection", "a 1x1 projection needs an image in and out of the block");
        }
        // The shortcut samples the input at the positions the block's
        // layers centre their outputs on: its stride is theirs, multiplied.
        int stride = 1;
        for (const auto& l : r->inner) stride *= l->Stride();
        if (stride == 0 || (cur.h - 1) / stride + 1 != r->out.h || (cur.w - 1) / stride + 1 != r->out.w) {
          f.Fail("projection",
                 stride == 0 ? fmt::format("the block maps {}x{} onto {}x{} by global pooling, which no 1x1 "
                                           "convolution's stride follows",
                                           cur.h, cur.w, r->out.h, r->out.w)
                             : fmt::format("the block's layers stride by {} in all, but map {}x{} onto {}x{}, where a "
                                           "stride-{} 1x1 projection gives {}x{}; pad the layers so that the output "
                                           "is the strided input's size",
                                           stride, cur.h, cur.w, r->out.h, r->out.w, stride,
                                           (cur.h - 1) / stride + 1, (cur.w - 1) / stride + 1));
        }
        r->projection = std::make_unique<Conv2d>(cur, r->out.c, 1, stride, 0, 1, false);
        r->projection->type = "conv2d";
        r->projection->name = name + ".projection";
        r->projection->offset = next_offset;
        r->projection->id = next_id++;
        next_offset += r->projection->count;
      } else if (!(r->out == cur)) {
        f.Fail("projection", fmt::format("the block maps {} onto {}; the shortcut needs the same shape, or "
                                         "\"projection\": true for a 1x1 convolution",
                                         cur.Str(), r->out.Str()));
      }
      r->count = next_offset - first;
      r->type = type;
      r->name = name;
      r->local = local;
      if (local && r->count == 0) f.Fail("local", "the block has no parameters to keep local");
      cur = r->out;
      layers.push_back(std::move(r));
      continue;
    }
    layer->type = type;
    layer->name = name;
    layer->local = local;
    if (local && layer->count == 0) {
      f.Fail("local", fmt::format("a {} layer has no parameters to keep local", type));
    }
    layer->id = next_id++;
    layer->offset = next_offset;
    next_offset += layer->count;
    if (layer->out.size() > std::numeric_limits<int32_t>::max() / 4) {
      throw InputError(path + ": output too large (" + layer->out.Str() + ")");
    }
    cur = layer->out;
    layers.push_back(std::move(layer));
  }
  return layers;
}

void CollectRanges(const LayerList& layers, std::vector<ParamRange>& r) {
  for (size_t i = 0; i < layers.size(); ++i) {
    const size_t first = r.size();
    layers[i]->Ranges(r);
    for (size_t k = first; k < r.size(); ++k) {
      r[k].local = r[k].local || layers[i]->local;
      r[k].layer = static_cast<int>(i);  // a block's own call set its inner indices; the outermost call wins
    }
  }
}

const float* ForwardChain(const LayerList& layers, const float* params, const float* x, int b,
                          std::vector<Buffers>& bufs, const Pass& pass) {
  const float* in = x;
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = *layers[i];
    l.Forward(params, in, b, bufs[i], pass);
    if (l.act != Act::kNone) ApplyAct(l.act, bufs[i].out.data(), b * l.out.size());
    in = bufs[i].out.data();
  }
  return in;
}

void BackwardChain(const LayerList& layers, const float* params, const float* x, int b, std::vector<Buffers>& bufs,
                   float* gy, float* ga, float* gb, float* gx, float* grad, const Pass& pass,
                   const std::vector<bool>* need_input) {
  float* g = gy;
  for (int i = static_cast<int>(layers.size()) - 1; i >= 0; --i) {
    const Layer& l = *layers[static_cast<size_t>(i)];
    const bool need = i == 0 ? gx != nullptr : (need_input ? (*need_input)[static_cast<size_t>(i)] : true);
    if (!need && l.count == 0) break;
    if (l.act != Act::kNone) ActGrad(l.act, bufs[static_cast<size_t>(i)].out.data(), g, b * l.out.size());
    float* target = !need ? nullptr : i == 0 ? gx : (g == ga ? gb : ga);
    const float* in = i == 0 ? x : bufs[static_cast<size_t>(i) - 1].out.data();
    l.Backward(params, in, b, bufs[static_cast<size_t>(i)], g, target, grad, pass);
    if (!need) break;
    g = target;
  }
}

int64_t WidestActivation(const LayerList& layers) {
  int64_t w = 1;
  for (const auto& l : layers) w = std::max({w, l->in.size(), l->out.size()});
  return w;
}

}  // namespace fedsim::seq
