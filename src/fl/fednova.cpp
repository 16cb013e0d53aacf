// FedNova (Wang, Liu, Liang, Joshi, Poor, "Tackling the Objective
// Inconsistency Problem in Heterogeneous Federated Optimization", NeurIPS
// 2020). Clients with different numbers of local steps tau_i would bias plain
// averaging towards clients that step more; FedNova averages normalised
// updates instead.
//
// Client i runs tau_i local SGD steps (momentum rho allowed) from x, giving
// Delta_i = y_i - x, and uploads d_i = Delta_i / ||a_i||_1 with weight
// p_i = n_i, where ||a_i||_1 = tau_i for plain SGD and
// sum_{k=1..tau_i} (1 - rho^k)/(1 - rho) with momentum. Server:
//   tau_eff = sum_i p_i ||a_i||_1 / sum_i p_i,
//   x <- x + eta tau_eff sum_i p_i d_i / sum_i p_i.
// With equal tau_i this is FedAvg exactly.
#include "fl/algorithms.h"

namespace fedsim {

ClientReport FedNova::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global,
                                  float* upload, ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  Eigen::Map<const Eigen::VectorXf> x(global, p);
  s.params = x;
  ClientReport rep = TrainLocalSgd(ctx, task, s);
  Eigen::Map<Eigen::VectorXf> d(upload, p);
  rep.norm_a = FedNovaNormA(rep.steps, momentum_);
  if (rep.norm_a > 0.0) {
    d = (s.params - x) / static_cast<float>(rep.norm_a);
  } else {
    d.setZero();
  }
  return rep;
}

void FedNova::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                           const std::vector<ClientReport>& reports, int) {
  double wa = 0.0, w = 0.0;
  for (const auto& r : reports) {
    wa += r.weight * r.norm_a;
    w += r.weight;
  }
  last_tau_eff_ = w > 0.0 ? wa / w : 0.0;
  global += static_cast<float>(server_lr_ * last_tau_eff_) * mean_upload;
}

}  // namespace fedsim
