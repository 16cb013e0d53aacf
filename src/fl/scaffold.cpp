// SCAFFOLD (Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for
// Federated Learning", ICML 2020, Algorithm 1 with option II).
//
// Client i, from the global x and server control variate c, with its own c_i
// (0 before its first round): K local steps y <- y - eta_l (g_i(y) + c - c_i),
// then c_i+ = c_i - c + (x - y) / (K eta_l), and it uploads
// (Delta y_i, Delta c_i) = (y - x, c_i+ - c_i) with weight 1; c_i <- c_i+.
// Server, with S the cohort and N the population:
//   x <- x + eta_g mean(Delta y_i);   c <- c + (|S|/N) mean(Delta c_i).
// A round sends x and c down and Delta y, Delta c up: 2x the FedAvg bytes.
// A model's state (batchnorm's running statistics) takes no eta_g step: the
// server sets it to the clients' mean, x + mean(Delta y_i), as FedAvg does.
// Option II assumes plain local SGD: momentum must be 0 (ValidateConfig).
//
// algorithm.scaffold_variant = niid_bench is the form of NIID-Bench's code
// (Li, Diao, Chen, He, ICDE 2022; experiments.py, train_net_scaffold), which
// its SCAFFOLD figures measure:
//   - the local optimizer takes momentum and weight decay; after each of its
//     steps the weights move by -eta_l (c - c_i), outside the momentum
//     buffer (so the correction is not amplified by 1 / (1 - momentum));
//   - c_i+ is the same formula, with K the number of local steps;
//   - the server averages the models by sample count, x <- x + eta_g
//     sum n_i Delta y_i / sum n_i, and keeps c <- c + sum Delta c_i / N.
// The upload is (Delta y_i, Delta c_i / n_i) with weight n_i, so the
// weighted mean's second half is sum Delta c_i / sum n_i and the server
// multiplies it by sum n_i / N (it reads the reports' weights).
#include "fl/algorithms.h"

namespace fedsim {

void Scaffold::Setup(int64_t num_params, int num_clients) {
  Algorithm::Setup(num_params, num_clients);
  num_clients_ = num_clients;
  state_.Resize(num_clients, 1);
  c_.setZero(num_params);
}

ClientReport Scaffold::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global,
                                   float* upload, ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  Eigen::Map<const Eigen::VectorXf> x(global, p);
  Eigen::Map<Eigen::VectorXf> ci = state_.Open(task.client, 0, p, s.state);
  s.extra = c_ - ci;  // the correction c - c_i, fixed during local training
  s.params = x;
  LocalHooks hooks;
  const float lr = task.lr;
  if (niid_bench_) {
    hooks.after_step = [&](float* w) { Eigen::Map<Eigen::VectorXf>(w, p) -= lr * s.extra; };
  } else {
    hooks.correct = [&](const float*, float* g) { Eigen::Map<Eigen::VectorXf>(g, p) += s.extra; };
  }
  ClientReport rep = TrainLocalSgd(ctx, task, s, &hooks);
  Eigen::Map<Eigen::VectorXf> dy(upload, p), dc(upload + p, p);
  dy = s.params - x;
  if (rep.steps > 0) {
    // c_i+ - c_i = -c + (x - y) / (K eta_l)
    dc = -c_ - dy / (static_cast<float>(rep.steps) * task.lr);
  } else {
    dc.setZero();
  }
  ci += dc;
  state_.Commit(task.client, 0, ci);
  if (!niid_bench_) {
    rep.weight = 1.0;
  } else if (rep.weight > 0.0) {
    dc /= static_cast<float>(rep.weight);  // weight n_i (TrainLocalSgd's), undone by ServerUpdate
  }
  return rep;
}

void Scaffold::SaveState(CheckpointWriter& w) const {
  w.F32("scaffold/c", c_);
  state_.Save(w, "scaffold/c_i");
}

void Scaffold::LoadState(const CheckpointReader& r) {
  c_ = r.F32("scaffold/c", num_params_);
  state_.Load(r, "scaffold/c_i");
}

void Scaffold::SetModel(const Model& model) {
  state_ranges_.clear();
  for (const ParamRange& r : model.ParamRanges()) {
    if (r.state) state_ranges_.push_back({r.offset, r.size});
  }
}

void Scaffold::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                            const std::vector<ClientReport>& reports, int) {
  const int64_t p = num_params_;
  if (state_ranges_.empty() || server_lr_ == 1.0) {
    global += static_cast<float>(server_lr_) * mean_upload.head(p);
  } else {
    // The model's state is set to the clients' mean, whatever server_lr.
    Eigen::VectorXf step = static_cast<float>(server_lr_) * mean_upload.head(p);
    for (const auto& [offset, size] : state_ranges_) step.segment(offset, size) = mean_upload.segment(offset, size);
    global += step;
  }
  if (niid_bench_) {
    // mean_upload.tail = sum Delta c_i / sum n_i; c gains sum Delta c_i / N.
    double weight_sum = 0.0;
    for (const auto& r : reports) weight_sum += r.weight;
    c_ += static_cast<float>(weight_sum / TrainingPopulation(num_clients_)) * mean_upload.tail(p);
  } else {
    c_ += static_cast<float>(static_cast<double>(reports.size()) / TrainingPopulation(num_clients_)) *
          mean_upload.tail(p);
  }
}

}  // namespace fedsim
