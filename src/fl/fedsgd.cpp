// FedSGD (McMahan et al., AISTATS 2017, the C-fraction baseline): each cohort
// client computes the gradient g_k of its full local loss at the global w_t
// and uploads -lr * g_k; the server applies w_{t+1} = w_t + eta_s * sum_k n_k
// (-lr g_k) / sum_k n_k, i.e. one gradient step with learning rate lr * eta_s.
// local_epochs, local_steps and batch_size do not apply.
#include "fl/algorithms.h"

namespace fedsim {

ClientReport FedSgd::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global,
                                 float* upload, ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  const int n = static_cast<int>(task.indices->size());
  ClientReport rep;
  rep.weight = n;
  Eigen::Map<Eigen::VectorXf> up(upload, p);
  if (n == 0) {
    up.setZero();
    return rep;
  }
  const double loss =
      BatchGradient(ctx, global, task.indices->data(), n, s, StepNoiseSeed(ctx.seed, task.round, task.client, 0));
  up = -task.lr * s.grad_acc;
  rep.loss_sum = loss * n;
  rep.samples = n;
  rep.steps = 1;
  return rep;
}

void FedSgd::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                          const std::vector<ClientReport>&, int) {
  global += server_lr_ * mean_upload;
}

}  // namespace fedsim
