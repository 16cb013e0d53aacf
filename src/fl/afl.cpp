// Agnostic Federated Learning (Mohri, Sivek, Suresh, "Agnostic Federated
// Learning", ICML 2019). The model is trained for the worst mixture of the
// domains rather than for their average:
//   min_w max_{lambda in simplex} L(w, lambda) = sum_k lambda_k F_k(w),
// by stochastic gradient descent on w and projected gradient ascent on
// lambda (the paper's Stochastic-AFL, with Lambda the whole simplex).
// Domains are the N training clients (no grouping); lambda starts uniform.
//
// Round t, cohort S of m kept clients drawn uniformly from the N:
//   client k: F_k = F_k(w^t) over all its training rows (MeanLoss), local SGD
//             from w^t to w_k as FedAvg's; upload u_k = N lambda_k (w_k - w^t),
//             weight 1; report start_loss = F_k.
//   server:   w^{t+1} = w^t + eta (1/m) sum_{k in S} u_k
//             lambda^{t+1} = Proj_simplex(lambda^t + gamma_lambda v),
//               v_k = (N/m) F_k for k in S, 0 otherwise.
// Each client is in S with probability m/N, so (N/m) sum_{k in S} lambda_k
// (w_k - w^t) and v are unbiased estimates of sum_k lambda_k (w_k - w^t) and
// of the loss vector (F_1, ..., F_N) = grad_lambda L; with one full-batch
// local step (local_steps = 1, batch_size = 0) w_k - w^t = -lr grad F_k(w^t)
// and the w step is the paper's w <- w - gamma_w sum_k lambda_k grad F_k(w)
// with gamma_w = eta lr, estimated. With dropouts or Poisson sampling m is
// the number of clients kept, which makes N/m a ratio estimator (unbiased
// only for a fixed-size cohort without losses). With uniform lambda (and
// gamma_lambda = 0) the w step is FedAvg with equal client weights.
//
// The paper reports the average of the iterates; fedsim's model is the last
// iterate, like every other algorithm's.
#include <algorithm>
#include <functional>

#include "fl/algorithms.h"

namespace fedsim {

void Afl::ProjectOntoSimplex(std::vector<double>& v) {
  std::vector<double> u = v;
  std::sort(u.begin(), u.end(), std::greater<double>());
  // rho = the largest j with u_j - (sum_{r<=j} u_r - 1) / j > 0 (1-based);
  // theta = (sum_{r<=rho} u_r - 1) / rho.
  double prefix = 0.0, theta = 0.0;
  for (size_t j = 0; j < u.size(); ++j) {
    prefix += u[j];
    const double t = (prefix - 1.0) / static_cast<double>(j + 1);
    if (u[j] - t > 0.0) theta = t;
  }
  for (double& x : v) x = std::max(x - theta, 0.0);
}

void Afl::Setup(int64_t num_params, int num_clients) {
  Algorithm::Setup(num_params, num_clients);
  lambda_.assign(static_cast<size_t>(num_clients), 1.0 / num_clients);
}

ClientReport Afl::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                              ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  const double loss = MeanLoss(ctx, global, *task.indices, s);
  Eigen::Map<const Eigen::VectorXf> w0(global, p);
  s.params = w0;
  ClientReport rep = TrainLocalSgd(ctx, task, s);
  const double scale = static_cast<double>(lambda_.size()) * lambda_[static_cast<size_t>(task.client)];
  Eigen::Map<Eigen::VectorXf>(upload, p) = static_cast<float>(scale) * (s.params - w0);
  rep.weight = 1.0;
  rep.start_loss = loss;
  return rep;
}

void Afl::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                       const std::vector<ClientReport>& reports, int) {
  if (reports.empty()) return;
  global += static_cast<float>(server_lr_) * mean_upload;
  if (lambda_lr_ == 0.0) return;
  const double scale = lambda_lr_ * static_cast<double>(lambda_.size()) / static_cast<double>(reports.size());
  for (const ClientReport& r : reports) lambda_[static_cast<size_t>(r.client)] += scale * r.start_loss;
  ProjectOntoSimplex(lambda_);
}

void Afl::SaveState(CheckpointWriter& w) const { w.F64("afl/lambda", lambda_.data(), static_cast<int64_t>(lambda_.size())); }

void Afl::LoadState(const CheckpointReader& r) { lambda_ = r.F64("afl/lambda", static_cast<int64_t>(lambda_.size())); }

}  // namespace fedsim
