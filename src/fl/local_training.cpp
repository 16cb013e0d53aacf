#include "fl/local_training.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "data/augment.h"
#include "privacy/mechanisms.h"

namespace fedsim {

uint64_t StepNoiseSeed(uint64_t seed, int round, int client, int64_t step) {
  uint64_t h = DeriveStream(seed, Stream::kDropout, static_cast<uint64_t>(round), static_cast<uint64_t>(client))
                   .NextU64() ^ static_cast<uint64_t>(step);
  return SplitMix64(h);
}

double BatchGradient(const TrainContext& ctx, const float* params, const int* rows, int count,
                     ClientScratch& s, uint64_t noise_seed) {
  const Dataset& data = *ctx.train;
  const int64_t p = ctx.model->num_params();
  double loss = 0.0;
  const bool single = count <= ctx.max_chunk;
  if (single) {
    data.Rows(rows, count, s.batch_x.data());
    if (ctx.augment != nullptr) AugmentImages(*ctx.augment, data.shape, s.batch_x.data(), count, s.augment_seed, 0);
    for (int i = 0; i < count; ++i) s.batch_y[static_cast<size_t>(i)] = data.y[static_cast<size_t>(rows[i])];
    s.ws->noise = {noise_seed, 0};
    return ctx.model->LossAndGradient(params, s.batch_x.data(), s.batch_y.data(), count, s.grad_acc.data(), *s.ws);
  }
  // A batch larger than a workspace, in chunks: the batch's mean is the
  // chunks' means weighted by their scored targets (rows, or on next-token
  // data the non-pad targets, which are counted first; only next-token rows
  // need decoding for it).
  std::vector<int64_t> targets;
  int64_t total = 0;
  for (int begin = 0; begin < count; begin += ctx.max_chunk) {
    const int b = std::min(ctx.max_chunk, count - begin);
    if (data.next_token) data.Rows(rows + begin, b, s.batch_x.data());
    targets.push_back(data.next_token ? ctx.model->ScoredTargets(s.batch_x.data(), b) : b);
    total += targets.back();
  }
  s.grad_acc.setZero(p);
  if (total == 0) return 0.0;
  for (int begin = 0, chunk = 0; begin < count; begin += ctx.max_chunk, ++chunk) {
    const int b = std::min(ctx.max_chunk, count - begin);
    data.Rows(rows + begin, b, s.batch_x.data());
    if (ctx.augment != nullptr) AugmentImages(*ctx.augment, data.shape, s.batch_x.data(), b, s.augment_seed, begin);
    for (int i = 0; i < b; ++i) s.batch_y[static_cast<size_t>(i)] = data.y[static_cast<size_t>(rows[begin + i])];
    s.ws->noise = {noise_seed, begin};
    const double chunk_loss =
        ctx.model->LossAndGradient(params, s.batch_x.data(), s.batch_y.data(), b, s.grad.data(), *s.ws);
    const double w = static_cast<double>(targets[static_cast<size_t>(chunk)]) / static_cast<double>(total);
    loss += chunk_loss * w;
    s.grad_acc += static_cast<float>(w) * s.grad;
  }
  return loss;
}

double MeanLoss(const TrainContext& ctx, const float* params, const std::vector<int>& rows, ClientScratch& s) {
  const Dataset& data = *ctx.train;
  const int n = static_cast<int>(rows.size());
  double loss_sum = 0.0;
  int64_t targets = 0;  // rows, or on next-token data the scored targets
  for (int begin = 0; begin < n; begin += ctx.max_chunk) {
    const int b = std::min(ctx.max_chunk, n - begin);
    data.Rows(rows.data() + begin, b, s.batch_x.data());
    for (int i = 0; i < b; ++i) s.batch_y[static_cast<size_t>(i)] = data.y[static_cast<size_t>(rows[static_cast<size_t>(begin + i)])];
    const EvalSums e = ctx.model->Evaluate(params, s.batch_x.data(), s.batch_y.data(), b, *s.ws);
    loss_sum += e.loss_sum;
    targets += e.count;
  }
  return targets > 0 ? loss_sum / static_cast<double>(targets) : 0.0;
}

namespace {

// DP-SGD's noisy clipped gradient of one batch (Abadi et al. 2016, as Opacus
// computes it): each example's gradient g_i is clipped to norm C, and
// (sum_i clip(g_i) + N(0, sigma^2 I)) / b is written to s.grad_acc, sigma =
// ctx.dp_sigma = z C. Per-example gradients come from batches of one.
double DpBatchGradient(const TrainContext& ctx, const float* params, const int* rows, int count, ClientScratch& s,
                       Rng& noise, uint64_t noise_seed) {
  const Dataset& data = *ctx.train;
  const int64_t p = ctx.model->num_params();
  s.dp_sum.setZero(p);
  double loss = 0.0;
  for (int i = 0; i < count; ++i) {
    data.Rows(rows + i, 1, s.batch_x.data());
    if (ctx.augment != nullptr) AugmentImages(*ctx.augment, data.shape, s.batch_x.data(), 1, s.augment_seed, i);
    s.batch_y[0] = data.y[static_cast<size_t>(rows[i])];
    s.ws->noise = {noise_seed, i};
    loss += ctx.model->LossAndGradient(params, s.batch_x.data(), s.batch_y.data(), 1, s.grad.data(), *s.ws);
    if (!s.grad.allFinite()) {
      // Diverged: report it through the loss rather than clipping a NaN.
      s.grad_acc.setConstant(p, NAN);
      return NAN;
    }
    ClipL2(s.grad.data(), p, ctx.dp_clip);
    s.dp_sum += s.grad;
  }
  AddGaussianNoise(s.dp_sum.data(), p, ctx.dp_sigma, noise);
  s.grad_acc = s.dp_sum / static_cast<float>(count);
  return loss / count;
}

}  // namespace

MinibatchStream::MinibatchStream(const TrainContext& ctx, const ClientTask& task, std::vector<int>& order)
    : rng_(DeriveStream(ctx.seed, Stream::kLocalTrain, static_cast<uint64_t>(task.round),
                        static_cast<uint64_t>(task.client))),
      order_(order),
      n_(static_cast<int>(task.indices->size())) {
  order_.assign(task.indices->begin(), task.indices->end());
  batch_ = ctx.cfg->batch_size == 0 ? n_ : std::min(ctx.cfg->batch_size, n_);
  pos_ = n_;  // forces a shuffle before the first batch
  const int64_t planned = PlannedLocalSgdWork(n_, *ctx.cfg).steps;
  steps_ = task.max_steps > 0 ? std::min(planned, task.max_steps) : planned;
}

const int* MinibatchStream::Next(int& size) {
  if (pos_ >= n_) {
    rng_.Shuffle(order_.begin(), order_.end());
    pos_ = 0;
  }
  size = std::min(batch_, n_ - pos_);
  const int* rows = order_.data() + pos_;
  pos_ += size;
  return rows;
}

LocalWork PlannedLocalSgdWork(int n, const AlgorithmConfig& cfg) {
  if (n <= 0) return {};
  const int64_t batch = cfg.batch_size == 0 ? n : std::min(cfg.batch_size, n);
  const int64_t steps_per_epoch = (n + batch - 1) / batch;
  LocalWork w;
  w.steps = cfg.local_steps > 0 ? cfg.local_steps : steps_per_epoch * static_cast<int64_t>(cfg.local_epochs);
  // Whole epochs see every sample; the steps of an unfinished epoch are full batches.
  w.samples = (w.steps / steps_per_epoch) * n + (w.steps % steps_per_epoch) * batch;
  return w;
}

double FedNovaNormA(int64_t steps, double rho) {
  if (rho == 0.0) return static_cast<double>(steps);
  double sum = 0.0, pow = 1.0;
  for (int64_t k = 1; k <= steps; ++k) {
    pow *= rho;
    sum += (1.0 - pow) / (1.0 - rho);
  }
  return sum;
}

ClientReport TrainLocalSgd(const TrainContext& ctx, const ClientTask& task, ClientScratch& s, const LocalHooks* hooks) {
  const AlgorithmConfig& cfg = *ctx.cfg;
  const int n = static_cast<int>(task.indices->size());
  ClientReport rep;
  rep.weight = n;
  if (n == 0) return rep;
  const int batch = cfg.batch_size == 0 ? n : std::min(cfg.batch_size, n);
  const int64_t p = ctx.model->num_params();
  Rng rng = DeriveStream(ctx.seed, Stream::kLocalTrain, static_cast<uint64_t>(task.round),
                         static_cast<uint64_t>(task.client));
  s.order.assign(task.indices->begin(), task.indices->end());
  s.sgd.Reset(p);
  const bool dp = ctx.dp_clip > 0.0f;
  Rng noise = DeriveStream(ctx.seed, Stream::kPrivacy, static_cast<uint64_t>(task.round),
                           static_cast<uint64_t>(task.client));

  const int64_t planned = PlannedLocalSgdWork(n, cfg).steps;
  const int64_t total_steps = task.max_steps > 0 ? std::min(planned, task.max_steps) : planned;
  int pos = n;  // forces a shuffle before the first batch
  for (int64_t step = 0; step < total_steps; ++step) {
    if (pos >= n) {
      rng.Shuffle(s.order.begin(), s.order.end());
      pos = 0;
    }
    const int b = std::min(batch, n - pos);
    if (ctx.augment != nullptr) s.augment_seed = AugmentStepSeed(ctx.seed, task.round, task.client, step);
    const uint64_t noise_seed = StepNoiseSeed(ctx.seed, task.round, task.client, step);
    const double loss = dp ? DpBatchGradient(ctx, s.params.data(), s.order.data() + pos, b, s, noise, noise_seed)
                           : BatchGradient(ctx, s.params.data(), s.order.data() + pos, b, s, noise_seed);
    if (hooks && hooks->correct) hooks->correct(s.params.data(), s.grad_acc.data());
    s.sgd.Step(s.params.data(), s.grad_acc.data(), p, task.lr);
    if (hooks && hooks->after_step) hooks->after_step(s.params.data());
    if (hooks && hooks->mask) s.params.array() *= Eigen::Map<const Eigen::ArrayXf>(hooks->mask, p);
    // Model state (batchnorm's running statistics) from this step's batch.
    if (ctx.model->HasState()) ctx.model->UpdateState(s.params.data(), *s.ws);
    rep.loss_sum += loss * b;
    rep.samples += b;
    pos += b;
  }
  rep.steps = total_steps;
  return rep;
}

}  // namespace fedsim
