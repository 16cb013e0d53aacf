// Personalised FL with a personal model per client: Ditto, APFL, pFedMe and
// Per-FedAvg. Each keeps FedAvg's server side except where noted; eta is the
// round's client learning rate (algorithm.lr with its decay), w_t the global
// model the client starts from, F_k the client's loss and g(x; D) its
// minibatch gradient at x on batch D (batches as local SGD draws them, from
// (seed, kLocalTrain, t, k)).
//
// Ditto (Li, Hu, Beirami & Smith, "Ditto: Fair and Robust Federated Learning
// Through Personalization", ICML 2021, Algorithm 1). Client k:
//   global part: FedAvg's local SGD from w_t, upload w_k - w_t, weight n_k;
//   personal part: the same number of SGD steps on v_k (its state; w_t at its
//     first participation) with  v_k <- v_k - eta (g(v_k; D) + lambda (v_k - w_t)).
//   PersonalModel: v_k (w_t for a client that never trained).
//
// APFL (Deng, Kamani & Mahdavi, "Adaptive Personalized Federated Learning",
// 2020, Algorithm 1, fixed alpha). Client k starts its local w at w_t and its
// v_k from state (w_t at first participation); each local step on batch D:
//   v_bar = alpha v_k + (1 - alpha) w
//   v_k  <- v_k - eta grad_v F(v_bar; D) = v_k - eta alpha g(v_bar; D)
//   w    <- w - eta g(w; D)
// (both gradients at the values before the step), then uploads w - w_t with
// weight n_k. PersonalModel: alpha v_k + (1 - alpha) w, with w the current
// global model (the client's w is reset to it at each synchronisation).
// With personalization.alpha_lr > 0 alpha is the paper's adaptive one, per
// client (state slot 1, starting at personalization.alpha): after each step
//   alpha_k <- clip(alpha_k - alpha_lr <v_k - w, g(v_bar; D)>, 0, 1)
// with v_k, w and g(v_bar; D) the values before the step.
//
// pFedMe (T. Dinh, Tran & Nguyen, "Personalized Federated Learning with
// Moreau Envelopes", NeurIPS 2020, Algorithm 1). Client k, local w from w_t,
// theta from w_t; each of the R local steps draws a batch D and
//   K times:  theta <- theta - inner_lr (g(theta; D) + lambda (theta - w))
//   then      w <- w - eta lambda (w - theta)
// (theta warm-starts from the previous step's, as in the authors' code), and
// uploads w - w_t with weight 1; theta is kept as the client's state.
// Server: w <- (1 - beta) w + beta mean_k(w_k) = w + beta mean_k(w_k - w).
// PersonalModel: the client's last theta_k.
//
// Per-FedAvg (Fallah, Mokhtari & Ozdaglar, "Personalized Federated Learning
// with Theoretical Guarantees: A Model-Agnostic Meta-Learning Approach",
// NeurIPS 2020, Algorithm 1). Client k, w from w_t; each local step draws
// independent batches D, D' (and D'' for hf) and
//   w_tmp = w - alpha g(w; D)
//   fo:  w <- w - beta g(w_tmp; D')
//   hf:  w <- w - beta (g(w_tmp; D') - alpha h),
//        h = (g(w + delta g'; D'') - g(w - delta g'; D'')) / (2 delta), g' = g(w_tmp; D')
// (h approximates the Hessian-vector product grad^2 F(w) g'), beta = eta, and
// uploads w - w_t with weight 1 (the paper's plain mean). PersonalModel: one
// step w_t - alpha g(w_t; B) on a batch B of the client's training rows drawn
// from (seed, kPersonalize, t, k).
#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "data/augment.h"
#include "fl/algorithms.h"

namespace fedsim {
namespace {

// Copies client's state vector (slot 0) into `out` if it has one.
bool ReadState(ClientStateStore& st, int client, int64_t size, Eigen::VectorXf& buffer, Eigen::VectorXf& out) {
  if (!st.Has(client, 0)) return false;
  out = st.Open(client, 0, size, buffer);
  return true;
}

// The client's personal vector as a view, set to `init` on its first use.
Eigen::Map<Eigen::VectorXf> OpenOrInit(ClientStateStore& st, int client, const Eigen::Ref<const Eigen::VectorXf>& init,
                                       Eigen::VectorXf& buffer) {
  const bool fresh = !st.Has(client, 0);
  Eigen::Map<Eigen::VectorXf> v = st.Open(client, 0, init.size(), buffer);
  if (fresh) v = init;
  return v;
}

// The seeds of local step `step`'s stochastic layers and augmentation.
uint64_t PrepareStep(const TrainContext& ctx, const ClientTask& task, int64_t step, ClientScratch& s) {
  if (ctx.augment != nullptr) s.augment_seed = AugmentStepSeed(ctx.seed, task.round, task.client, step);
  return StepNoiseSeed(ctx.seed, task.round, task.client, step);
}

}  // namespace

// ---- The personal vector of Ditto, APFL and pFedMe ----

void PersonalFedAvg::Setup(int64_t num_params, int num_clients) {
  FedAvg::Setup(num_params, num_clients);
  state_.Resize(num_clients, slots_);
}

void PersonalFedAvg::PersonalModel(const TrainContext& ctx, const ClientTask& task, const float* global,
                                   ClientScratch& s) {
  if (!ReadState(state_, task.client, ctx.model->num_params(), s.state, s.params)) {
    Algorithm::PersonalModel(ctx, task, global, s);
  }
}

void PersonalFedAvg::SaveState(CheckpointWriter& w) const {
  FedAvg::SaveState(w);
  state_.Save(w, state_key_);
}

void PersonalFedAvg::LoadState(const CheckpointReader& r) {
  FedAvg::LoadState(r);
  state_.Load(r, state_key_);
}

// ---- Ditto ----

ClientReport Ditto::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                                ClientScratch& s) {
  ClientReport rep = FedAvg::LocalUpdate(ctx, task, global, upload, s);
  if (task.indices->empty()) return rep;
  const int64_t p = ctx.model->num_params();
  Eigen::Map<const Eigen::VectorXf> w0(global, p);
  Eigen::Map<Eigen::VectorXf> v = OpenOrInit(state_, task.client, w0, s.state);
  s.params = v;
  const float lambda = static_cast<float>(lambda_);
  LocalHooks hooks;
  hooks.correct = [&, lambda](const float* x, float* g) {
    Eigen::Map<Eigen::VectorXf>(g, p) += lambda * (Eigen::Map<const Eigen::VectorXf>(x, p) - w0);
  };
  TrainContext personal = ctx;  // v_k never leaves the client: no sample-level DP noise on it
  personal.dp_clip = 0.0f;
  personal.dp_sigma = 0.0f;
  const ClientReport personal_rep = TrainLocalSgd(personal, task, s, &hooks);
  rep.extra_samples = personal_rep.samples;
  rep.extra_steps = personal_rep.steps;
  v = s.params;
  state_.Commit(task.client, 0, v);
  // v_k never enters the upload, so a diverged v_k would not be caught by the
  // round's finite-upload check: drop it (the client starts again from w_t).
  if (!v.allFinite()) state_.Clear(task.client);
  return rep;  // the global part's loss, samples and steps; the personal part's as extra work
}

// ---- APFL ----

ClientReport Apfl::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                               ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  Eigen::Map<const Eigen::VectorXf> w0(global, p);
  Eigen::Map<Eigen::VectorXf> up(upload, p);
  ClientReport rep;
  rep.weight = static_cast<double>(task.indices->size());
  if (task.indices->empty()) {
    up.setZero();
    return rep;
  }
  float alpha = ClientAlpha(task.client, s);
  Eigen::Map<Eigen::VectorXf> v = OpenOrInit(state_, task.client, w0, s.state);
  s.params = w0;
  const float lr = task.lr;
  MinibatchStream batches(ctx, task, s.order);
  for (int64_t step = 0; step < batches.steps(); ++step) {
    int b = 0;
    const int* rows = batches.Next(b);
    const uint64_t noise = PrepareStep(ctx, task, step, s);
    s.extra = alpha * v + (1.0f - alpha) * s.params;
    BatchGradient(ctx, s.extra.data(), rows, b, s, noise);
    // Adaptive alpha: d F(v_bar) / d alpha = <v - w, grad F(v_bar)>, at the
    // values before this step's updates.
    const double dalpha = alpha_lr_ > 0.0 ? (v - s.params).cast<double>().dot(s.grad_acc.cast<double>()) : 0.0;
    v -= (lr * alpha) * s.grad_acc;
    const double loss = BatchGradient(ctx, s.params.data(), rows, b, s, noise);
    s.params -= lr * s.grad_acc;
    rep.loss_sum += loss * b;
    rep.samples += b;
    rep.extra_samples += b;  // the gradient at the mixture
    ++rep.extra_steps;
    if (alpha_lr_ > 0.0) alpha = static_cast<float>(std::clamp(alpha - alpha_lr_ * dalpha, 0.0, 1.0));
  }
  rep.steps = batches.steps();
  state_.Commit(task.client, 0, v);
  if (alpha_lr_ > 0.0) {
    Eigen::Map<Eigen::VectorXf> a = state_.Open(task.client, 1, 1, s.state2);
    a[0] = alpha;
    state_.Commit(task.client, 1, a);
  }
  // v and alpha never enter the upload (w's steps do not read them): a
  // diverged personal model is dropped here, not kept for good.
  if (!v.allFinite() || !std::isfinite(alpha)) state_.Clear(task.client);
  up = s.params - w0;
  return rep;
}

float Apfl::ClientAlpha(int client, ClientScratch& s) {
  if (alpha_lr_ <= 0.0 || !state_.Has(client, 1)) return static_cast<float>(alpha_);
  return state_.Open(client, 1, 1, s.state2)[0];
}

void Apfl::PersonalModel(const TrainContext& ctx, const ClientTask& task, const float* global, ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  if (!ReadState(state_, task.client, p, s.state, s.params)) {
    Algorithm::PersonalModel(ctx, task, global, s);
    return;
  }
  const float alpha = ClientAlpha(task.client, s);
  s.params = alpha * s.params + (1.0f - alpha) * Eigen::Map<const Eigen::VectorXf>(global, p);
}

// ---- pFedMe ----

ClientReport PFedMe::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                                 ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  Eigen::Map<const Eigen::VectorXf> w0(global, p);
  Eigen::Map<Eigen::VectorXf> up(upload, p);
  ClientReport rep;
  rep.weight = 1.0;
  if (task.indices->empty()) {
    up.setZero();
    return rep;
  }
  const float lambda = static_cast<float>(lambda_), inner_lr = static_cast<float>(inner_lr_), lr = task.lr;
  s.params = w0;  // the local w
  s.extra = w0;   // theta
  MinibatchStream batches(ctx, task, s.order);
  for (int64_t step = 0; step < batches.steps(); ++step) {
    int b = 0;
    const int* rows = batches.Next(b);
    const uint64_t noise = PrepareStep(ctx, task, step, s);
    for (int k = 0; k < inner_steps_; ++k) {
      const double loss = BatchGradient(ctx, s.extra.data(), rows, b, s, noise);
      if (k == 0) rep.loss_sum += loss * b;  // F_k at the step's starting theta
      s.extra -= inner_lr * (s.grad_acc + lambda * (s.extra - s.params));
    }
    s.params -= (lr * lambda) * (s.params - s.extra);
    rep.samples += b;
    rep.extra_samples += static_cast<int64_t>(inner_steps_ - 1) * b;  // K gradients per step in all
    rep.extra_steps += inner_steps_ - 1;
  }
  rep.steps = batches.steps();
  Eigen::Map<Eigen::VectorXf> theta = state_.Open(task.client, 0, p, s.state);
  theta = s.extra;
  state_.Commit(task.client, 0, theta);
  up = s.params - w0;
  return rep;
}

void PFedMe::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload, const std::vector<ClientReport>&,
                          int) {
  global += static_cast<float>(beta_) * mean_upload;
}


// ---- Per-FedAvg ----

ClientReport PerFedAvg::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                                    ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  Eigen::Map<const Eigen::VectorXf> w0(global, p);
  Eigen::Map<Eigen::VectorXf> up(upload, p);
  ClientReport rep;
  rep.weight = 1.0;
  if (task.indices->empty()) {
    up.setZero();
    return rep;
  }
  const float alpha = static_cast<float>(adapt_lr_), beta = task.lr, delta = static_cast<float>(delta_);
  s.params = w0;
  MinibatchStream batches(ctx, task, s.order);
  for (int64_t step = 0; step < batches.steps(); ++step) {
    const uint64_t noise = PrepareStep(ctx, task, step, s);
    int b = 0;
    const int* rows = batches.Next(b);
    const double loss = BatchGradient(ctx, s.params.data(), rows, b, s, noise);  // g(w; D)
    rep.loss_sum += loss * b;
    rep.samples += b;
    s.extra = s.params - alpha * s.grad_acc;  // w_tmp
    rows = batches.Next(b);
    BatchGradient(ctx, s.extra.data(), rows, b, s, noise);  // g' = g(w_tmp; D')
    rep.extra_samples += b;
    ++rep.extra_steps;
    if (!hessian_free_) {
      s.params -= beta * s.grad_acc;
      continue;
    }
    s.extra = s.grad_acc;  // g'
    rows = batches.Next(b);
    s.state = s.params + delta * s.extra;
    BatchGradient(ctx, s.state.data(), rows, b, s, noise);
    s.state2 = s.grad_acc;  // g(w + delta g'; D'')
    s.state = s.params - delta * s.extra;
    BatchGradient(ctx, s.state.data(), rows, b, s, noise);
    rep.extra_samples += 2 * static_cast<int64_t>(b);  // the two gradients on D''
    rep.extra_steps += 2;
    // w <- w - beta (g' - alpha (g+ - g-) / (2 delta))
    s.params -= beta * (s.extra - (alpha / (2.0f * delta)) * (s.state2 - s.grad_acc));
  }
  rep.steps = batches.steps();
  up = s.params - w0;
  return rep;
}

void PerFedAvg::PersonalModel(const TrainContext& ctx, const ClientTask& task, const float* global, ClientScratch& s) {
  const int n = static_cast<int>(task.indices->size());
  Algorithm::PersonalModel(ctx, task, global, s);
  if (n == 0) return;
  Rng rng = DeriveStream(ctx.seed, Stream::kPersonalize, static_cast<uint64_t>(task.round),
                         static_cast<uint64_t>(task.client));
  s.order.assign(task.indices->begin(), task.indices->end());
  rng.Shuffle(s.order.begin(), s.order.end());
  const int b = ctx.cfg->batch_size == 0 ? n : std::min(ctx.cfg->batch_size, n);
  TrainContext plain = ctx;  // the adaptation batch is not augmented
  plain.augment = nullptr;
  BatchGradient(plain, global, s.order.data(), b, s, rng.NextU64());
  s.params -= static_cast<float>(adapt_lr_) * s.grad_acc;
}

}  // namespace fedsim
