// FedGiA (Zhou & Li, "FedGiA: An Efficient Hybrid Algorithm for Federated
// Learning", IEEE Trans. Signal Processing 71, 2023; the authors' MATLAB
// reference FedGiA.m). Consensus problem min (1/m) sum_i f_i(x_i), x_i = x.
//
// Every round all m clients take part. With x = mean_i z_i (the global model):
// every client computes g_i = grad f_i(x) on its full data; a subset M of
// ceil(rho m) clients, drawn each round, runs k0 inexact-ADMM iterations with
// g_i and x fixed,
//   x_i = x - (g_i + pi_i) / (r_i + sigma);  pi_i <- pi_i + sigma (x_i - x),
// and uploads z_i = x_i + pi_i / sigma; every other client sets x_i = x,
// pi_i = -g_i and uploads z_i = x - g_i / sigma. The server sets x = (1/m)
// sum_i z_i. pi_i persists across rounds (0 before a client's first round);
// r_i is one constant r for all clients (the reference estimates a Lipschitz
// constant per client for linear and logistic models; none exists in closed
// form for neural networks). lr, local_epochs and batch_size do not apply.
#include <algorithm>
#include <cmath>

#include "core/rng.h"
#include "fl/algorithms.h"

namespace fedsim {

void FedGiA::Setup(int64_t num_params, int num_clients) {
  Algorithm::Setup(num_params, num_clients);
  state_.Resize(num_clients, 1);
  admm_.assign(static_cast<size_t>(num_clients), 0);
}

void FedGiA::BeginRound(Eigen::VectorXf&, int round, const std::vector<int>& cohort, uint64_t seed) {
  // M is drawn from the clients that train (all of them without held-out ones).
  const int m = TrainingPopulation(static_cast<int>(admm_.size()));
  const int subset = std::min(m, static_cast<int>(std::ceil(rho_ * m)));
  Rng rng = DeriveStream(seed, Stream::kAlgorithm, static_cast<uint64_t>(round));
  std::vector<int> ids = trainers_;
  if (ids.empty()) {
    ids.resize(static_cast<size_t>(m));
    for (int i = 0; i < m; ++i) ids[static_cast<size_t>(i)] = i;
  }
  for (int i = 0; i < subset; ++i) {
    const int j = i + static_cast<int>(rng.UniformInt(static_cast<uint64_t>(m - i)));
    std::swap(ids[static_cast<size_t>(i)], ids[static_cast<size_t>(j)]);
  }
  std::fill(admm_.begin(), admm_.end(), 0);
  for (int i = 0; i < subset; ++i) admm_[static_cast<size_t>(ids[static_cast<size_t>(i)])] = 1;
}

ClientReport FedGiA::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global,
                                 float* upload, ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  const int n = static_cast<int>(task.indices->size());
  Eigen::Map<const Eigen::VectorXf> x(global, p);
  Eigen::Map<Eigen::VectorXf> z(upload, p);
  ClientReport rep;
  rep.weight = 1.0;
  if (n > 0) {
    rep.loss_sum = BatchGradient(ctx, global, task.indices->data(), n, s,
                                 StepNoiseSeed(ctx.seed, task.round, task.client, 0)) * n;  // g_i in s.grad_acc
    rep.samples = n;
    rep.steps = 1;
  } else {
    s.grad_acc.setZero(p);
  }
  const float sigma = static_cast<float>(sigma_);
  Eigen::Map<Eigen::VectorXf> pi = state_.Open(task.client, 0, p, s.state);
  if (InAdmmSubset(task.client)) {
    const float step = static_cast<float>(1.0 / (r_ + sigma_));
    for (int it = 0; it < k0_; ++it) {
      s.params = x - step * (s.grad_acc + pi);
      pi += sigma * (s.params - x);
    }
    z = s.params + pi / sigma;
  } else {
    pi = -s.grad_acc;
    z = x - s.grad_acc / sigma;
  }
  state_.Commit(task.client, 0, pi);
  return rep;
}

void FedGiA::SaveState(CheckpointWriter& w) const { state_.Save(w, "fedgia/pi"); }

void FedGiA::LoadState(const CheckpointReader& r) { state_.Load(r, "fedgia/pi"); }

void FedGiA::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                          const std::vector<ClientReport>&, int) {
  global = mean_upload;
}

}  // namespace fedsim
