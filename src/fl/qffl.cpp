// q-FFL solved by q-FedAvg (Li, Sanjabi, Beirami, Smith, "Fair Resource
// Allocation in Federated Learning", ICLR 2020, Algorithm 2). The objective
// is min_w sum_k p_k F_k(w)^(q+1) / (q+1): q = 0 is the usual average loss,
// larger q weighs clients with a large loss more.
//
// Client k, from the global w^t: F = F_k(w^t), its mean training loss over
// all its training rows (deterministic, MeanLoss), then local SGD as FedAvg's
// to w_bar, and with L the Lipschitz estimate (algorithm.qffl_lipschitz, or
// 1/lr when that is 0, as the paper and its code set it):
//   Delta w_k = L (w^t - w_bar)
//   Delta_k   = F^q Delta w_k
//   h_k       = q F^(q-1) ||Delta w_k||^2 + L F^q
// Server: w^{t+1} = w^t - sum_k Delta_k / sum_k h_k.
//
// The upload is [Delta_k / L ; h_k / L] with weight 1: dividing both by L
// leaves the ratio unchanged and keeps the values at the scale of a model
// delta (F^q (w^t - w_bar)) and of F^q, which matters for a secure sum's
// fixed-point range. The mean of the uploads is (1/m)[sum Delta ; sum h] / L,
// so the server's ratio of its two parts is the ratio of sums. As in the
// authors' code (fair_flearn, qffedavg.py), F is taken as F + 1e-10 so that
// F^(q-1) stays finite for a client with zero loss.
//
// q = 0: Delta_k = L (w^t - w_bar_k), h_k = L, so w^{t+1} = (1/m) sum_k w_bar_k:
// FedAvg with equal client weights (not n_k) and server_lr 1. The paper
// samples clients with probability proportional to n_k, which makes that the
// sample-weighted FedAvg in expectation; fedsim samples uniformly.
#include <cmath>

#include "core/fmath.h"
#include "fl/algorithms.h"

namespace fedsim {

void QFfl::WriteUpload(const float* w, const float* w_bar, int64_t p, double loss, double q, double lipschitz,
                       float* upload) {
  Eigen::Map<const Eigen::VectorXf> w0(w, p), w1(w_bar, p);
  Eigen::Map<Eigen::VectorXf> delta(upload, p);
  const double f = loss + 1e-10;
  const double fq = fm::Pow(f, q);
  delta = w0 - w1;
  const double sq = delta.cast<double>().squaredNorm();
  delta *= static_cast<float>(fq);
  // h_k / L = F^q + q F^(q-1) L ||w - w_bar||^2  (= (q F^(q-1) ||L (w - w_bar)||^2 + L F^q) / L)
  const double h = fq + (q == 0.0 ? 0.0 : q * fm::Pow(f, q - 1.0) * lipschitz * sq);
  upload[p] = static_cast<float>(h);
}

ClientReport QFfl::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                               ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  const double loss = MeanLoss(ctx, global, *task.indices, s);
  s.params = Eigen::Map<const Eigen::VectorXf>(global, p);
  ClientReport rep = TrainLocalSgd(ctx, task, s);
  const double lipschitz = lipschitz_ > 0.0 ? lipschitz_ : 1.0 / task.lr;
  WriteUpload(global, s.params.data(), p, loss, q_, lipschitz, upload);
  rep.weight = 1.0;
  rep.start_loss = loss;
  return rep;
}

void QFfl::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                        const std::vector<ClientReport>&, int) {
  const int64_t p = num_params_;
  const double h = mean_upload[p];
  if (!(h > 0.0)) return;  // no client, or nothing finite to divide by: keep the model
  global -= mean_upload.head(p) * static_cast<float>(1.0 / h);
}

}  // namespace fedsim
