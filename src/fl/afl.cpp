// Agnostic Federated Learning (Mohri, Sivek, Suresh, "Agnostic Federated
// Learning", ICML 2019). The model is trained for the worst mixture of the
// domains rather than for their average:
//   min_w max_{lambda in simplex} L(w, lambda) = sum_g lambda_g F_g(w),
// by stochastic gradient descent on w and projected gradient ascent on
// lambda (the paper's Stochastic-AFL, with Lambda the whole simplex).
// Domains (algorithm.afl_domains): the N training clients, each its own
// domain, or the clients grouped by their most frequent training label
// (domain g holds N_g clients; F_g is the mean of its clients' losses F_k).
// lambda starts uniform over the D domains.
//
// Round t, cohort S of m kept clients drawn uniformly from the N; client k
// in domain g = g(k):
//   client k: F_k = F_k(w^t) over all its training rows (MeanLoss), local SGD
//             from w^t to w_k as FedAvg's; upload u_k = (N lambda_g / N_g)
//             (w_k - w^t), weight 1; report start_loss = F_k.
//   server:   w^{t+1} = w^t + eta (1/m) sum_{k in S} u_k
//             lambda^{t+1} = Proj_simplex(lambda^t + gamma_lambda v),
//               v_g = (N / (m N_g)) sum_{k in S, g(k) = g} F_k.
// Each client is in S with probability m/N, so (1/m) sum_{k in S} u_k and v
// are unbiased estimates of sum_g lambda_g mean_{k in g} (w_k - w^t) and of
// the domain losses (F_1, ..., F_D) = grad_lambda L; with one full-batch
// local step (local_steps = 1, batch_size = 0) w_k - w^t = -lr grad F_k(w^t)
// and the w step is the paper's w <- w - gamma_w sum_g lambda_g grad F_g(w)
// with gamma_w = eta lr, estimated. With clients as domains N_g = 1 and
// D = N. With dropouts or Poisson sampling m is the number of clients kept,
// which makes N/m a ratio estimator (unbiased only for a fixed-size cohort
// without losses). With uniform lambda over clients (and gamma_lambda = 0)
// the w step is FedAvg with equal client weights.
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
  domain_of_.resize(static_cast<size_t>(num_clients));
  for (int k = 0; k < num_clients; ++k) domain_of_[static_cast<size_t>(k)] = k;
  domain_size_.assign(static_cast<size_t>(num_clients), 1);
}

void Afl::SetClients(const Dataset& train, const std::vector<std::vector<int>>& partition) {
  if (!by_label_) return;
  // Each client's most frequent label (ties to the smaller); a client without
  // rows has none and is in no domain: it counts in N but in no N_g, and its
  // upload and loss are 0, so the estimates stay unbiased.
  std::vector<int> label_of(partition.size(), -1);
  std::vector<int64_t> count(static_cast<size_t>(std::max(train.num_classes, 1)));
  for (size_t k = 0; k < partition.size(); ++k) {
    if (partition[k].empty()) continue;
    std::fill(count.begin(), count.end(), 0);
    for (int r : partition[k]) ++count[static_cast<size_t>(train.y[static_cast<size_t>(r)])];
    label_of[k] = static_cast<int>(std::max_element(count.begin(), count.end()) - count.begin());
  }
  // Domains: the labels that are some client's most frequent, in label order.
  std::vector<int> domain_of_label(count.size(), -1);
  for (int l : label_of) {
    if (l >= 0) domain_of_label[static_cast<size_t>(l)] = 0;
  }
  int domains = 0;
  for (int& d : domain_of_label) {
    if (d == 0) d = domains++;
  }
  domain_size_.assign(static_cast<size_t>(domains), 0);
  for (size_t k = 0; k < partition.size(); ++k) {
    domain_of_[k] = label_of[k] < 0 ? -1 : domain_of_label[static_cast<size_t>(label_of[k])];
    if (domain_of_[k] >= 0) ++domain_size_[static_cast<size_t>(domain_of_[k])];
  }
  lambda_.assign(static_cast<size_t>(domains), 1.0 / std::max(domains, 1));
}

ClientReport Afl::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                              ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  const int domain = domain_of_[static_cast<size_t>(task.client)];
  if (domain < 0) {  // no rows: nothing to train or report
    Eigen::Map<Eigen::VectorXf>(upload, p).setZero();
    ClientReport rep;
    rep.weight = 1.0;
    rep.start_loss = 0.0;
    return rep;
  }
  const double loss = MeanLoss(ctx, global, *task.indices, s);
  Eigen::Map<const Eigen::VectorXf> w0(global, p);
  s.params = w0;
  ClientReport rep = TrainLocalSgd(ctx, task, s);
  const size_t g = static_cast<size_t>(domain);
  const double scale = static_cast<double>(domain_of_.size()) * lambda_[g] / domain_size_[g];
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
  const double scale = lambda_lr_ * static_cast<double>(domain_of_.size()) / static_cast<double>(reports.size());
  for (const ClientReport& r : reports) {
    const int domain = domain_of_[static_cast<size_t>(r.client)];
    if (domain < 0) continue;
    lambda_[static_cast<size_t>(domain)] += scale * r.start_loss / domain_size_[static_cast<size_t>(domain)];
  }
  ProjectOntoSimplex(lambda_);
}

void Afl::SaveState(CheckpointWriter& w) const { w.F64("afl/lambda", lambda_.data(), static_cast<int64_t>(lambda_.size())); }

void Afl::LoadState(const CheckpointReader& r) { lambda_ = r.F64("afl/lambda", static_cast<int64_t>(lambda_.size())); }

}  // namespace fedsim
