#include "model/gan.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/fmath.h"
#include "data/dataset.h"
#include "model/dense_ops.h"

namespace fedsim {
namespace {

using MatMap = Eigen::Map<Eigen::MatrixXf>;
using ConstMatMap = Eigen::Map<const Eigen::MatrixXf>;

// log(1 + e^x) without overflow.
double Softplus(double x) { return std::max(x, 0.0) + fm::Log1p(fm::Exp(-std::abs(x))); }
// 1 / (1 + e^-x).
double Sigmoid(double x) { return x >= 0 ? 1.0 / (1.0 + fm::Exp(-x)) : fm::Exp(x) / (1.0 + fm::Exp(x)); }

}  // namespace

DenseNet::DenseNet(std::vector<int> sizes, float leaky_slope, Output output)
    : sizes_(std::move(sizes)), slope_(leaky_slope), output_(output) {
  for (size_t l = 1; l < sizes_.size(); ++l) {
    w_offset_.push_back(num_params_);
    num_params_ += static_cast<int64_t>(sizes_[l - 1]) * sizes_[l];
    b_offset_.push_back(num_params_);
    num_params_ += sizes_[l];
  }
}

DenseNet::Workspace DenseNet::NewWorkspace(int max_batch) const {
  Workspace ws;
  ws.max_batch = max_batch;
  int widest = 0;
  for (size_t l = 1; l < sizes_.size(); ++l) {
    ws.act.emplace_back(static_cast<Eigen::Index>(max_batch) * sizes_[l]);
    widest = std::max(widest, sizes_[l]);
  }
  ws.grad_a.resize(static_cast<Eigen::Index>(max_batch) * widest);
  ws.grad_b.resize(static_cast<Eigen::Index>(max_batch) * widest);
  return ws;
}

std::string DenseNet::Describe() const {
  std::string s;
  for (size_t i = 0; i < sizes_.size(); ++i) s += (i ? "-" : "") + std::to_string(sizes_[i]);
  return fmt::format("{} {} ({} parameters)", output_ == Output::kTanh ? "tanh" : "logit", s, num_params_);
}

double DenseNet::ForwardMacs() const {
  double macs = 0.0;
  for (size_t l = 1; l < sizes_.size(); ++l) macs += static_cast<double>(sizes_[l - 1]) * sizes_[l];
  return macs;
}

void DenseNet::Init(float* params, Rng& rng) const {
  for (size_t l = 1; l < sizes_.size(); ++l) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(sizes_[l - 1]));
    const int64_t n = static_cast<int64_t>(sizes_[l - 1]) * sizes_[l] + sizes_[l];
    float* p = params + w_offset_[l - 1];
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(rng.Uniform(-bound, bound));
  }
}

const float* DenseNet::Forward(const float* params, const float* x, bool x_row_major, int b, Workspace& ws) const {
  const int layers = static_cast<int>(sizes_.size()) - 1;
  for (int l = 0; l < layers; ++l) {
    const float* a = l == 0 ? x : ws.act[static_cast<size_t>(l - 1)].data();
    float* z = ws.act[static_cast<size_t>(l)].data();
    DenseForward(a, l == 0 && x_row_major, params + w_offset_[static_cast<size_t>(l)],
                 params + b_offset_[static_cast<size_t>(l)], b, sizes_[static_cast<size_t>(l)],
                 sizes_[static_cast<size_t>(l) + 1], /*relu=*/false, z);
    MatMap zm(z, b, sizes_[static_cast<size_t>(l) + 1]);
    if (l + 1 < layers) {
      zm = zm.cwiseMax(slope_ * zm);  // LeakyReLU for 0 <= slope < 1
    } else if (output_ == Output::kTanh) {
      fm::TanhSpan(z, zm.size());
    }
  }
  return ws.act.back().data();
}

void DenseNet::Backward(const float* params, const float* x, bool x_row_major, int b, const float* g_out,
                        float* grad_params, float* grad_x, Workspace& ws) const {
  const int layers = static_cast<int>(sizes_.size()) - 1;
  const int out = sizes_.back();
  float* g_cur = ws.grad_a.data();
  float* g_next = ws.grad_b.data();
  {
    MatMap g(g_cur, b, out);
    g = ConstMatMap(g_out, b, out);
    if (output_ == Output::kTanh) {
      // d tanh(u)/du = 1 - tanh(u)^2, from the stored output.
      g.array() *= 1.0f - MatMap(ws.act.back().data(), b, out).array().square();
    }
  }
  for (int l = layers - 1; l >= 0; --l) {
    const size_t ul = static_cast<size_t>(l);
    const int in = sizes_[ul], width = sizes_[ul + 1];
    const float* a = l == 0 ? x : ws.act[ul - 1].data();
    const bool rm = l == 0 && x_row_major;
    if (grad_params) DenseParamGrad(a, rm, g_cur, b, in, width, grad_params + w_offset_[ul], grad_params + b_offset_[ul]);
    if (l > 0 || grad_x) {
      float* dst = l > 0 ? g_next : grad_x;
      MatMap gp(dst, b, in);
      gp.noalias() = ConstMatMap(g_cur, b, width) * ConstMatMap(params + w_offset_[ul], in, width).transpose();
      if (l > 0) {
        // LeakyReLU' from the stored activation: 1 where it is positive, else the slope.
        gp = (ConstMatMap(a, b, in).array() > 0.0f).select(gp, slope_ * gp);
        std::swap(g_cur, g_next);
      }
    }
  }
}

GanNets::GanNets(const GanConfig& cfg, int data_dim)
    : generator(
          [&] {
            std::vector<int> s{cfg.latent_dim};
            s.insert(s.end(), cfg.generator_hidden.begin(), cfg.generator_hidden.end());
            s.push_back(data_dim);
            return s;
          }(),
          static_cast<float>(cfg.leaky_slope), DenseNet::Output::kTanh),
      discriminator(
          [&] {
            std::vector<int> s{data_dim};
            s.insert(s.end(), cfg.discriminator_hidden.begin(), cfg.discriminator_hidden.end());
            s.push_back(1);
            return s;
          }(),
          static_cast<float>(cfg.leaky_slope), DenseNet::Output::kLinear) {}

GanWorkspace::GanWorkspace(const GanNets& nets, int max_batch)
    : max_batch(max_batch),
      g(nets.generator.NewWorkspace(max_batch)),
      d(nets.discriminator.NewWorkspace(2 * max_batch)),
      d_in(static_cast<Eigen::Index>(2) * max_batch * nets.data_dim()),
      dlogit(2 * max_batch),
      dx(static_cast<Eigen::Index>(max_batch) * nets.data_dim()) {}

const float* GeneratorForward(const GanNets& nets, const float* wg, const float* z, int b, GanWorkspace& ws) {
  return nets.generator.Forward(wg, z, /*x_row_major=*/false, b, ws.g);
}

double DiscriminatorLossAndGradient(const GanNets& nets, const float* wd, const float* real, const float* fake, int b,
                                    float* grad_wd, GanWorkspace& ws) {
  const int dim = nets.data_dim();
  MatMap x(ws.d_in.data(), 2 * b, dim);
  x.topRows(b) = Eigen::Map<const RowMatrix>(real, b, dim);
  x.bottomRows(b) = ConstMatMap(fake, b, dim);
  const float* logit = nets.discriminator.Forward(wd, x.data(), false, 2 * b, ws.d);
  double loss = 0.0;
  const double inv_b = 1.0 / b;
  for (int i = 0; i < 2 * b; ++i) {
    const double l = logit[i];
    if (i < b) {
      loss += Softplus(-l);  // -log sigma(l): real labelled 1
      ws.dlogit[i] = static_cast<float>(-Sigmoid(-l) * inv_b);
    } else {
      loss += Softplus(l);  // -log(1 - sigma(l)): fake labelled 0
      ws.dlogit[i] = static_cast<float>(Sigmoid(l) * inv_b);
    }
  }
  nets.discriminator.Backward(wd, x.data(), false, 2 * b, ws.dlogit.data(), grad_wd, nullptr, ws.d);
  return loss * inv_b;
}

double GeneratorLossAndGradient(const GanNets& nets, const float* wg, const float* wd, const float* z, int b,
                                float* grad_wg, GanWorkspace& ws) {
  const float* fake = ws.g.act.back().data();
  const float* logit = nets.discriminator.Forward(wd, fake, false, b, ws.d);
  double loss = 0.0;
  const double inv_b = 1.0 / b;
  for (int i = 0; i < b; ++i) {
    const double l = logit[i];
    loss += Softplus(-l);  // non-saturating: -log sigma(D(G(z)))
    ws.dlogit[i] = static_cast<float>(-Sigmoid(-l) * inv_b);
  }
  nets.discriminator.Backward(wd, fake, false, b, ws.dlogit.data(), nullptr, ws.dx.data(), ws.d);
  nets.generator.Backward(wg, z, false, b, ws.dx.data(), grad_wg, nullptr, ws.g);
  return loss * inv_b;
}

SampleQualitySums::SampleQualitySums(int classes)
    : histogram(static_cast<size_t>(classes), 0), prob_sum(Eigen::VectorXd::Zero(classes)) {}

void SampleQualitySums::Add(const double* p, double confidence) {
  const int c = static_cast<int>(histogram.size());
  int arg = 0;
  for (int y = 0; y < c; ++y) {
    if (p[y] > p[arg]) arg = y;
    prob_sum[y] += p[y];
    if (p[y] > 0.0) plogp_sum += p[y] * fm::Log(p[y]);
  }
  ++histogram[static_cast<size_t>(arg)];
  confident += p[arg] > confidence;
  ++count;
}

void SampleQualitySums::Merge(const SampleQualitySums& o) {
  for (size_t y = 0; y < histogram.size(); ++y) histogram[y] += o.histogram[y];
  confident += o.confident;
  prob_sum += o.prob_sum;
  plogp_sum += o.plogp_sum;
  count += o.count;
}

double HistogramEntropy(const std::vector<int64_t>& counts) {
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  if (total == 0) return 0.0;
  double h = 0.0;
  for (int64_t c : counts) {
    if (c == 0) continue;
    const double q = static_cast<double>(c) / static_cast<double>(total);
    h -= q * fm::Log(q);
  }
  return h;
}

int ClassesCovered(const std::vector<int64_t>& counts, double share) {
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  int n = 0;
  for (int64_t c : counts) n += total > 0 && static_cast<double>(c) >= share * static_cast<double>(total);
  return n;
}

SampleQuality Summarize(const SampleQualitySums& s, double class_share) {
  SampleQuality q;
  if (s.count == 0) return q;
  const double n = static_cast<double>(s.count);
  q.confident_share = static_cast<double>(s.confident) / n;
  q.class_entropy = HistogramEntropy(s.histogram);
  q.effective_classes = fm::Exp(q.class_entropy);
  q.classes_covered = ClassesCovered(s.histogram, class_share);
  // E_x KL(p(.|x) || p) = (1/n) sum_x sum_y p(y|x) log p(y|x) - sum_y p(y) log p(y).
  double marginal = 0.0;
  for (Eigen::Index y = 0; y < s.prob_sum.size(); ++y) {
    const double py = s.prob_sum[y] / n;
    if (py > 0.0) marginal += py * fm::Log(py);
  }
  q.inception_score = fm::Exp(s.plogp_sum / n - marginal);
  return q;
}

}  // namespace fedsim
