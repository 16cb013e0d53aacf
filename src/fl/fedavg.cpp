// FedAvg (McMahan et al., AISTATS 2017, Algorithm 1) and the algorithms that
// share its client side.
//
// Client k, from the global w_t: E epochs (or local_steps steps) of minibatch
// SGD on its own loss, giving w_k; uploads Delta_k = w_k - w_t with weight n_k
// (its sample count). Server: Delta = sum_k n_k Delta_k / sum_k n_k, then a
// server optimizer step (optim/server_optimizer.h):
//   fedavg, fedpara   x <- x + eta Delta                        (eta = server_lr; 1 in the paper)
//   fedprox           as fedavg; the client minimises F_k(w) + (mu/2)||w - w_t||^2
//                     (Li et al., MLSys 2020), i.e. its gradient gains mu (w - w_t)
//   fedavgm           v <- beta v + Delta; x <- x + eta v       (Hsu et al. 2019)
//   fedadagrad/fedadam/fedyogi  Reddi et al., ICLR 2021
// A model's state (batchnorm's running statistics, ParamRange::state) takes
// none of these steps: the server sets it to the clients' mean, x + Delta.
#include "fl/algorithms.h"

namespace fedsim {

FedAvg::FedAvg(const AlgorithmConfig& cfg, std::string name, ServerOptimizer::Kind kind)
    : name_(std::move(name)),
      mu_(name_ == "fedprox" ? cfg.mu : 0.0),
      opt_(kind, cfg.server_lr, kind == ServerOptimizer::Kind::kMomentum ? cfg.server_momentum : cfg.beta1, cfg.beta2,
           cfg.tau) {}

ClientReport FedAvg::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                                 ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  Eigen::Map<const Eigen::VectorXf> w0(global, p);
  s.params = w0;
  LocalHooks hooks;
  if (mu_ > 0.0) {
    const float mu = static_cast<float>(mu_);
    hooks.correct = [&, mu](const float* w, float* g) {
      Eigen::Map<Eigen::VectorXf>(g, p) += mu * (Eigen::Map<const Eigen::VectorXf>(w, p) - w0);
    };
  }
  ClientReport rep = TrainLocalSgd(ctx, task, s, &hooks);
  Eigen::Map<Eigen::VectorXf>(upload, p) = s.params - w0;
  return rep;
}

void FedAvg::SetModel(const Model& model) {
  std::vector<std::pair<int64_t, int64_t>> state;
  for (const ParamRange& r : model.ParamRanges()) {
    if (r.state) state.push_back({r.offset, r.size});
  }
  opt_.SetAveraged(std::move(state));
}

void FedAvg::SaveState(CheckpointWriter& w) const {
  w.F32("server_opt/m", opt_.m());
  w.F32("server_opt/v", opt_.v());
}

void FedAvg::LoadState(const CheckpointReader& r) { opt_.SetState(r.F32("server_opt/m"), r.F32("server_opt/v")); }

void FedAvg::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                          const std::vector<ClientReport>&, int) {
  opt_.Step(global, mean_upload);
}

}  // namespace fedsim
