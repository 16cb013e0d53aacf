// FedGAN's client side (docs/algorithms.md#fedgan): a client's local steps
// of alternating discriminator and generator updates from the global pair.
// The round itself runs on the federated driver (round/gan_trainer.h,
// round/judge_evaluator.h).
#include "fl/fedgan.h"
#include "core/fmath.h"

#include <algorithm>
#include <cmath>

namespace fedsim {
namespace {

// Adam (Kingma & Ba 2015) on n values: step t >= 1.
void AdamStep(float* w, const float* g, float* m, float* v, int64_t n, int64_t t, float lr, const GanTrainSettings& s) {
  Eigen::Map<Eigen::ArrayXf> wa(w, n), ma(m, n), va(v, n);
  Eigen::Map<const Eigen::ArrayXf> ga(g, n);
  ma = s.beta1 * ma + (1.0f - s.beta1) * ga;
  va = s.beta2 * va + (1.0f - s.beta2) * ga.square();
  const float c1 = static_cast<float>(1.0 - fm::Pow(static_cast<double>(s.beta1), static_cast<double>(t)));
  const float c2 = static_cast<float>(1.0 - fm::Pow(static_cast<double>(s.beta2), static_cast<double>(t)));
  wa -= (lr / c1) * ma / ((va / c2).sqrt() + s.eps);
}

}  // namespace

GanTrainSettings GanTrainSettings::FromConfig(const Config& cfg) {
  GanTrainSettings s;
  s.batch_size = cfg.algorithm.batch_size;
  s.local_steps = cfg.algorithm.local_steps;
  s.local_epochs = cfg.algorithm.local_epochs;
  s.adam = cfg.gan.optimizer == "adam";
  s.beta1 = static_cast<float>(cfg.gan.beta1);
  s.beta2 = static_cast<float>(cfg.gan.beta2);
  return s;
}

GanScratch::GanScratch(const GanNets& nets, int max_batch)
    : ws(nets, max_batch),
      params(nets.num_params()),
      grad(nets.num_params()),
      real(max_batch, nets.data_dim()),
      z(static_cast<Eigen::Index>(max_batch) * nets.latent_dim()) {}

GanClientReport TrainGanClient(const GanNets& nets, const GanTrainSettings& s, const Dataset& train,
                               const std::vector<int>& rows, Rng& rng, float lr_g, float lr_d, float* params,
                               float* adam_m, float* adam_v, int64_t* adam_t, GanScratch& sc,
                               int64_t max_steps) {
  GanClientReport rep;
  const int n = static_cast<int>(rows.size());
  rep.weight = n;
  if (n == 0) return rep;
  const int batch = std::min(s.batch_size, n);
  const int64_t steps_per_epoch = (n + batch - 1) / batch;
  const int64_t planned = s.local_steps > 0 ? s.local_steps : steps_per_epoch * s.local_epochs;
  const int64_t total = max_steps > 0 ? std::min(planned, max_steps) : planned;
  const int64_t pg = nets.generator.num_params(), pd = nets.discriminator.num_params(), off = nets.disc_offset();
  const int latent = nets.latent_dim();
  float* wg = params;
  float* wd = params + off;
  sc.order.assign(rows.begin(), rows.end());
  int pos = n;  // forces a shuffle before the first batch
  for (int64_t step = 0; step < total; ++step) {
    if (pos >= n) {
      rng.Shuffle(sc.order.begin(), sc.order.end());
      pos = 0;
    }
    const int b = std::min(batch, n - pos);
    train.Rows(sc.order.data() + pos, b, sc.real.data());
    auto real = sc.real.topRows(b);
    real.array() = 2.0f * real.array() - 1.0f;
    for (int64_t i = 0; i < static_cast<int64_t>(b) * latent; ++i) sc.z[i] = static_cast<float>(rng.Normal());
    const float* fake = GeneratorForward(nets, wg, sc.z.data(), b, sc.ws);
    const double ld = DiscriminatorLossAndGradient(nets, wd, sc.real.data(), fake, b, sc.grad.data() + off, sc.ws);
    if (s.adam) ++*adam_t;
    if (s.adam) {
      AdamStep(wd, sc.grad.data() + off, adam_m + off, adam_v + off, pd, *adam_t, lr_d, s);
    } else {
      Eigen::Map<Eigen::VectorXf>(wd, pd) -= lr_d * Eigen::Map<const Eigen::VectorXf>(sc.grad.data() + off, pd);
    }
    const double lg = GeneratorLossAndGradient(nets, wg, wd, sc.z.data(), b, sc.grad.data(), sc.ws);
    if (s.adam) {
      AdamStep(wg, sc.grad.data(), adam_m, adam_v, pg, *adam_t, lr_g, s);
    } else {
      Eigen::Map<Eigen::VectorXf>(wg, pg) -= lr_g * Eigen::Map<const Eigen::VectorXf>(sc.grad.data(), pg);
    }
    rep.d_loss_sum += ld * b;
    rep.g_loss_sum += lg * b;
    rep.samples += b;
    pos += b;
  }
  rep.steps = total;
  return rep;
}

}  // namespace fedsim
