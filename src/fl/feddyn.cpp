// FedDyn (Acar et al., "Federated Learning Based on Dynamic Regularization",
// ICLR 2021, Algorithm 1).
//
// Client k in round t, from theta^{t-1}, minimises by local SGD
//   L_k(theta) - <g_k, theta> + (alpha/2) ||theta - theta^{t-1}||^2,
// g_k = grad L_k(theta_k^{t-1}) its gradient state (0 before its first round),
// so each minibatch gradient gains -g_k + alpha (theta - theta^{t-1}). Then
//   g_k <- g_k - alpha (theta_k^t - theta^{t-1})
// and it uploads theta_k^t - theta^{t-1} with weight 1. Server, with P_t the
// cohort and m the population:
//   h <- h - alpha (1/m) sum_{k in P_t} (theta_k^t - theta^{t-1})
//   theta^t = (1/|P_t|) sum_{k in P_t} theta_k^t - h / alpha.
#include "fl/algorithms.h"

namespace fedsim {

void FedDyn::Setup(int64_t num_params, int num_clients) {
  Algorithm::Setup(num_params, num_clients);
  num_clients_ = num_clients;
  state_.Resize(num_clients, 1);
  h_.setZero(num_params);
}

ClientReport FedDyn::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                                 ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  Eigen::Map<const Eigen::VectorXf> w0(global, p);
  Eigen::Map<Eigen::VectorXf> gk = state_.Open(task.client, 0, p, s.state);
  s.params = w0;
  const float alpha = static_cast<float>(alpha_);
  LocalHooks hooks;
  hooks.correct = [&, alpha](const float* w, float* g) {
    Eigen::Map<Eigen::VectorXf>(g, p) += alpha * (Eigen::Map<const Eigen::VectorXf>(w, p) - w0) - gk;
  };
  ClientReport rep = TrainLocalSgd(ctx, task, s, &hooks);
  Eigen::Map<Eigen::VectorXf> delta(upload, p);
  delta = s.params - w0;
  gk -= alpha * delta;
  state_.Commit(task.client, 0, gk);
  rep.weight = 1.0;
  return rep;
}

void FedDyn::SaveState(CheckpointWriter& w) const {
  w.F32("feddyn/h", h_);
  state_.Save(w, "feddyn/grad_state");
}

void FedDyn::LoadState(const CheckpointReader& r) {
  h_ = r.F32("feddyn/h", num_params_);
  state_.Load(r, "feddyn/grad_state");
}

void FedDyn::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                          const std::vector<ClientReport>& reports, int) {
  // sum_k (theta_k - theta) = |P| * mean; h <- h - alpha/m * that, m the
  // clients that train.
  const double cohort = static_cast<double>(reports.size());
  h_ -= static_cast<float>(alpha_ * cohort / TrainingPopulation(num_clients_)) * mean_upload;
  global += mean_upload - static_cast<float>(1.0 / alpha_) * h_;
}

}  // namespace fedsim
