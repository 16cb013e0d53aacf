// FedAvg (McMahan et al., AISTATS 2017, Algorithm 1). Client k runs E epochs
// of minibatch SGD from the global w_t and uploads Delta_k = w_k - w_t. The
// server forms Delta = sum_k n_k Delta_k / sum_k n_k over the cohort and sets
// w_{t+1} = w_t + eta_s * Delta (eta_s = algorithm.server_lr; 1 is the paper).
#include "fl/algorithms.h"

#include "fl/local_training.h"

namespace fedsim {

ClientReport FedAvg::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global,
                                 float* upload, ClientScratch& s) const {
  const int64_t p = ctx.model->num_params();
  s.params = Eigen::Map<const Eigen::VectorXf>(global, p);
  ClientReport rep = TrainLocalSgd(ctx, task, s);
  Eigen::Map<Eigen::VectorXf>(upload, p) = s.params - Eigen::Map<const Eigen::VectorXf>(global, p);
  return rep;
}

void FedAvg::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload, int) {
  global += server_lr_ * mean_upload;
}

}  // namespace fedsim
