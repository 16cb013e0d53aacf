// The concrete algorithms, created by name in registry.cpp. Update equations
// as implemented are in each .cpp file's header comment and in
// docs/algorithms.md.
#pragma once

#include <random>

#include "fl/algorithm.h"
#include "fl/local_training.h"
#include "optim/server_optimizer.h"

namespace fedsim {

// FedAvg and the algorithms that share its client side: local SGD from the
// global model, upload Delta_k = w_k - w, weight n_k; the server applies the
// weighted mean Delta with a server optimizer. FedProx adds a proximal term;
// FedAvgM and FedAdagrad/FedAdam/FedYogi change the server optimizer; FedPara
// is FedAvg on a low-rank Hadamard-product model.
class FedAvg : public Algorithm {
 public:
  FedAvg(const AlgorithmConfig& cfg, std::string name, ServerOptimizer::Kind kind);
  std::string name() const override { return name_; }
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;
  const ServerOptimizer& server_optimizer() const { return opt_; }
  // The model's state ranges (ParamRange::state) are averaged, not stepped.
  void SetModel(const Model& model) override;
  void SaveState(CheckpointWriter& w) const override;
  void LoadState(const CheckpointReader& r) override;

 protected:
  std::string name_;
  double mu_;  // FedProx proximal weight (0 for the others)
  ServerOptimizer opt_;
};

class FedSgd : public Algorithm {
 public:
  explicit FedSgd(const AlgorithmConfig& cfg) : server_lr_(static_cast<float>(cfg.server_lr)) {}
  std::string name() const override { return "fedsgd"; }
  bool FullBatch() const override { return true; }
  UploadKind upload_kind() const override { return UploadKind::kGradient; }
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;

 private:
  float server_lr_;
};

class FedDyn : public Algorithm {
 public:
  bool uniform_weights() const override { return true; }
  explicit FedDyn(const AlgorithmConfig& cfg) : alpha_(cfg.alpha) {}
  std::string name() const override { return "feddyn"; }
  void Setup(int64_t num_params, int num_clients) override;
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;
  const ClientStateStore* client_state() const override { return &state_; }
  const Eigen::VectorXf& h() const { return h_; }
  void SaveState(CheckpointWriter& w) const override;
  void LoadState(const CheckpointReader& r) override;

 private:
  double alpha_;
  int num_clients_ = 0;
  ClientStateStore state_;  // slot 0: the client's gradient state grad L_k(theta_k^{t-1})
  Eigen::VectorXf h_;
};

class Scaffold : public Algorithm {
 public:
  explicit Scaffold(const AlgorithmConfig& cfg)
      : server_lr_(cfg.server_lr), niid_bench_(cfg.scaffold_variant == "niid_bench") {}
  std::string name() const override { return "scaffold"; }
  void Setup(int64_t num_params, int num_clients) override;
  int64_t UploadSize() const override { return 2 * num_params_; }
  UploadKind upload_kind() const override { return UploadKind::kComposite; }
  // The paper's form weighs every client 1. NIID-Bench's form weighs the
  // models by sample count and reads the sum of the weights to undo that
  // weighting for the control variates, so a secure sum cannot serve it.
  bool uniform_weights() const override { return !niid_bench_; }
  bool server_reads_reports() const override { return niid_bench_; }
  int64_t DownloadBytes(int) const override { return 2 * num_params_ * static_cast<int64_t>(sizeof(float)); }
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;
  // Model state (batchnorm's running statistics) takes no server_lr step.
  void SetModel(const Model& model) override;
  const ClientStateStore* client_state() const override { return &state_; }
  const Eigen::VectorXf& c() const { return c_; }
  void SaveState(CheckpointWriter& w) const override;
  void LoadState(const CheckpointReader& r) override;

 private:
  double server_lr_;
  bool niid_bench_;  // algorithm.scaffold_variant == "niid_bench"
  int num_clients_ = 0;
  ClientStateStore state_;  // slot 0: the client control variate c_i
  Eigen::VectorXf c_;
  std::vector<std::pair<int64_t, int64_t>> state_ranges_;  // (offset, size) of the model's state
};

class FedNova : public Algorithm {
 public:
  bool server_reads_reports() const override { return true; }
  explicit FedNova(const AlgorithmConfig& cfg) : server_lr_(cfg.server_lr), momentum_(cfg.momentum) {}
  std::string name() const override { return "fednova"; }
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;
  double last_tau_eff() const { return last_tau_eff_; }

 private:
  double server_lr_, momentum_;
  double last_tau_eff_ = 0.0;
};

class FedSparse : public Algorithm {
 public:
  UploadKind upload_kind() const override { return UploadKind::kEncoded; }
  explicit FedSparse(const AlgorithmConfig& cfg);
  std::string name() const override { return "fedsparse"; }
  void Setup(int64_t num_params, int num_clients) override;
  void BeginRound(Eigen::VectorXf& global, int round, const std::vector<int>& cohort, uint64_t seed) override;
  int64_t DownloadBytes(int client) const override;
  // The encoded top-k upload (a client with no samples sends less).
  int64_t PlannedUploadBytes() const override;
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void AfterClient(const ClientTask& task) override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;
  const ClientStateStore* client_state() const override { return &state_; }
  const Eigen::VectorXf& mask() const { return mask_; }
  void SaveState(CheckpointWriter& w) const override;
  void LoadState(const CheckpointReader& r) override;

  // Top-k with error feedback on u = residual + delta: keeps the k entries of
  // largest |u| (ties by lower index) in `out` (all others 0), optionally as
  // mu * sign with mu the mean kept magnitude, and leaves residual = u - out.
  // Returns the encoded size in bytes. `index` is scratch.
  static int64_t SparsifyWithFeedback(Eigen::Ref<Eigen::VectorXf> residual, const float* delta, int64_t k,
                                      bool ternary, float* out, std::vector<int>& index);
  // Deep Gradient Compression's momentum correction with momentum factor
  // masking (Lin et al. 2018), on a client's round updates: velocity =
  // m * velocity + delta, then SparsifyWithFeedback(residual, velocity), then
  // velocity = 0 on the k entries sent. With m = 0 it is SparsifyWithFeedback
  // on delta (velocity ends as delta outside the sent entries, and is unused).
  static int64_t SparsifyWithMomentum(Eigen::Ref<Eigen::VectorXf> residual, Eigen::Ref<Eigen::VectorXf> velocity,
                                      const float* delta, float m, int64_t k, bool ternary, float* out,
                                      std::vector<int>& index);
  // Zhu & Gupta (2017) gradual pruning: the model density at `round`.
  static double DensityAt(int round, double final_density, int prune_rounds);
  // Wire size of a sparse vector with nnz entries out of n: positions as a
  // bitmap or as 32-bit indices, whichever is smaller, plus 32-bit values
  // (ternary: one 32-bit mu and one sign bit per entry).
  static int64_t EncodedBytes(int64_t nnz, int64_t n, bool ternary);

 private:
  double update_density_, model_density_, server_lr_, momentum_correction_;
  bool ternary_, sparse_download_;
  int mask_every_, prune_rounds_;
  int64_t dense_download_bytes_ = 0;   // the (possibly masked) model
  int64_t sparse_download_bytes_ = 0;  // last round's sparse server update
  int round_ = 0;
  std::vector<int> last_round_;        // per client: last round it took part in (-1: never)
  ClientStateStore state_;          // slot 0: the client's error-feedback residual; slot 1: its DGC velocity
  Eigen::VectorXf mask_;            // 0/1 per weight when model_density < 1
  Eigen::VectorXf server_residual_; // error feedback of the sparse download
  Eigen::VectorXf server_update_;
  std::vector<int> server_index_;
};

class FedGiA : public Algorithm {
 public:
  // z_i, a parameter-like vector the server averages into the model.
  UploadKind upload_kind() const override { return UploadKind::kParameters; }
  bool uniform_weights() const override { return true; }
  explicit FedGiA(const AlgorithmConfig& cfg) : sigma_(cfg.sigma), r_(cfg.r), k0_(cfg.k0), rho_(cfg.rho) {}
  std::string name() const override { return "fedgia"; }
  bool FullBatch() const override { return true; }
  void Setup(int64_t num_params, int num_clients) override;
  int CohortSize(int configured, int num_clients) const override { return num_clients; }
  void BeginRound(Eigen::VectorXf& global, int round, const std::vector<int>& cohort, uint64_t seed) override;
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;
  const ClientStateStore* client_state() const override { return &state_; }
  bool InAdmmSubset(int client) const { return admm_[static_cast<size_t>(client)] != 0; }
  void SaveState(CheckpointWriter& w) const override;
  void LoadState(const CheckpointReader& r) override;

 private:
  double sigma_, r_;
  int k0_;
  double rho_;
  ClientStateStore state_;    // slot 0: the client's dual variable pi_i
  std::vector<char> admm_;    // this round's subset M
};

// q-FFL solved by q-FedAvg (Li, Sanjabi, Beirami, Smith, ICLR 2020,
// Algorithm 2): clients with a larger loss at the global model get a larger
// say in the step. The upload is [Delta_k / L ; h_k / L] (qffl.cpp), weight 1;
// the server steps w <- w - sum_k Delta_k / sum_k h_k.
class QFfl : public Algorithm {
 public:
  explicit QFfl(const AlgorithmConfig& cfg) : q_(cfg.q), lipschitz_(cfg.qffl_lipschitz) {}
  std::string name() const override { return "qffl"; }
  int64_t UploadSize() const override { return num_params_ + 1; }
  // A scaled model delta and a scalar: linear (a sum is all the server needs), not one model delta.
  UploadKind upload_kind() const override { return UploadKind::kComposite; }
  bool uniform_weights() const override { return true; }
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;

  // The upload of a client that started at w (p floats), ended its local
  // training at w_bar, and had mean training loss `loss` at w:
  // upload[0..p) = F^q (w - w_bar), upload[p] = F^q + q F^(q-1) L ||w - w_bar||^2,
  // with F = loss + 1e-10. This is the paper's [Delta_k ; h_k] divided by L.
  static void WriteUpload(const float* w, const float* w_bar, int64_t p, double loss, double q, double lipschitz,
                          float* upload);

 private:
  double q_;          // algorithm.q
  double lipschitz_;  // algorithm.qffl_lipschitz; 0 = 1 / (the round's client learning rate)
};

// Agnostic Federated Learning (Mohri, Sivek, Suresh, ICML 2019): min over w,
// max over mixture weights lambda in the simplex of sum_k lambda_k F_k(w),
// by stochastic gradient descent on w and projected gradient ascent on
// lambda. Domains are the clients. lambda is server state (checkpointed);
// each client scales its local-SGD delta by N lambda_k and reports F_k(w)
// (afl.cpp has the estimators).
class Afl : public Algorithm {
 public:
  explicit Afl(const AlgorithmConfig& cfg)
      : server_lr_(cfg.server_lr), lambda_lr_(cfg.afl_lambda_lr), by_label_(cfg.afl_domains == "labels") {}
  std::string name() const override { return "afl"; }
  void Setup(int64_t num_params, int num_clients) override;
  // afl_domains = labels: client k's domain is its most frequent training
  // label (ties to the smaller); lambda gets one weight per domain that has
  // clients.
  void SetClients(const Dataset& train, const std::vector<std::vector<int>>& partition) override;
  bool uniform_weights() const override { return true; }
  // The lambda step reads each kept client's id and F_k(w) from its report.
  bool server_reads_reports() const override { return true; }
  // The model and the client's own lambda_k.
  int64_t DownloadBytes(int) const override { return (num_params_ + 1) * static_cast<int64_t>(sizeof(float)); }
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;
  const std::vector<double>& lambda() const { return lambda_; }
  // The domain of each client (index into lambda(); -1 for a client without
  // training rows under label domains) and each domain's client count.
  const std::vector<int>& domain_of() const { return domain_of_; }
  const std::vector<int>& domain_size() const { return domain_size_; }
  void SaveState(CheckpointWriter& w) const override;
  void LoadState(const CheckpointReader& r) override;

  // Euclidean projection of v onto the probability simplex
  // {x : x_i >= 0, sum_i x_i = 1}, in place (Duchi, Shalev-Shwartz, Singer,
  // Chandra, ICML 2008, Figure 1: sort, find the threshold theta, clip).
  // REQUIRES: v is not empty.
  static void ProjectOntoSimplex(std::vector<double>& v);

 private:
  double server_lr_;
  double lambda_lr_;            // algorithm.afl_lambda_lr, gamma_lambda
  bool by_label_;               // algorithm.afl_domains = labels
  std::vector<double> lambda_;  // one mixture weight per domain; uniform 1/D at the start
  std::vector<int> domain_of_;    // client -> domain (clients: the identity)
  std::vector<int> domain_size_;  // N_g: clients in domain g
};

// Personalised algorithms (docs/algorithms.md#personalised-fl). Each keeps
// FedAvg's server side (the weighted or uniform mean of the uploads, a server
// step of algorithm.server_lr; pFedMe: beta) and gives each client its own
// model through PersonalModel, from per-client state in a ClientStateStore.

// FedAvg with one personal vector per client (slot 0 of state_, saved in
// checkpoints as "<name>/<state_key>"): Ditto's and APFL's v_k, pFedMe's
// theta_k.
class PersonalFedAvg : public FedAvg {
 public:
  // slots: state vectors per client (APFL's adaptive alpha_k is a second).
  PersonalFedAvg(const AlgorithmConfig& cfg, std::string name, std::string state_key, int slots = 1)
      : FedAvg(cfg, std::move(name), ServerOptimizer::Kind::kSgd),
        state_key_(name_ + "/" + std::move(state_key)),
        slots_(slots) {}
  void Setup(int64_t num_params, int num_clients) override;
  // The personal vector itself (Ditto's v_k, pFedMe's theta_k); the global
  // model for a client without one.
  void PersonalModel(const TrainContext& ctx, const ClientTask& task, const float* global,
                     ClientScratch& scratch) override;
  bool personalized() const override { return true; }
  const ClientStateStore* client_state() const override { return &state_; }
  void SaveState(CheckpointWriter& w) const override;
  void LoadState(const CheckpointReader& r) override;

 protected:
  ClientStateStore state_;  // slot 0: the client's personal vector

 private:
  std::string state_key_;
  int slots_;
};

// Ditto (Li et al., ICML 2021): FedAvg for the global model; each selected
// client also trains its personal v_k on F_k(v) + (lambda/2)||v - w||^2.
class Ditto : public PersonalFedAvg {
 public:
  Ditto(const AlgorithmConfig& cfg, const PersonalizationConfig& pers)
      : PersonalFedAvg(cfg, "ditto", "v"), lambda_(pers.lambda) {}
  double WorkPerStep() const override { return 2.0; }  // the global and the personal step
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;

 private:
  double lambda_;  // state_: the personal model v_k
};

// APFL (Deng, Kamani & Mahdavi 2020, Algorithm 1) with a fixed alpha: local
// steps on the shared w and the personal v through the mixture
// alpha v + (1 - alpha) w; FedAvg averages w.
class Apfl : public PersonalFedAvg {
 public:
  Apfl(const AlgorithmConfig& cfg, const PersonalizationConfig& pers)
      : PersonalFedAvg(cfg, "apfl", "v", pers.alpha_lr > 0.0 ? 2 : 1),
        alpha_(pers.alpha),
        alpha_lr_(pers.alpha_lr) {}
  double WorkPerStep() const override { return 2.0; }  // gradients at w and at the mixture
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void PersonalModel(const TrainContext& ctx, const ClientTask& task, const float* global,
                     ClientScratch& scratch) override;

 private:
  // The client's mixing weight: alpha_, or its adaptive alpha_k (slot 1).
  float ClientAlpha(int client, ClientScratch& s);
  double alpha_;     // state_ slot 0: the personal model v_k
  double alpha_lr_;  // > 0: adaptive alpha, slot 1 holds alpha_k (one value)
};

// pFedMe (T. Dinh, Tran & Nguyen, NeurIPS 2020, Algorithm 1): bi-level
// local steps through the Moreau envelope; server w <- (1-beta) w + beta mean.
class PFedMe : public PersonalFedAvg {
 public:
  PFedMe(const AlgorithmConfig& cfg, const PersonalizationConfig& pers)
      : PersonalFedAvg(cfg, "pfedme", "theta"),
        lambda_(pers.lambda),
        beta_(pers.beta),
        inner_lr_(pers.inner_lr),
        inner_steps_(pers.inner_steps) {}
  bool uniform_weights() const override { return true; }
  double WorkPerStep() const override { return inner_steps_; }  // K gradients per local step
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;

 private:
  double lambda_, beta_, inner_lr_;
  int inner_steps_;  // state_: the client's last personal model theta_k
};

// Per-FedAvg (Fallah, Mokhtari & Ozdaglar, NeurIPS 2020, Algorithm 1):
// MAML-style local steps, first-order or Hessian-free; the personal model is
// one gradient step from the global model. Keeps no client state.
class PerFedAvg : public FedAvg {
 public:
  PerFedAvg(const AlgorithmConfig& cfg, const PersonalizationConfig& pers)
      : FedAvg(cfg, "perfedavg", ServerOptimizer::Kind::kSgd),
        hessian_free_(pers.perfedavg == "hf"),
        adapt_lr_(pers.adapt_lr),
        delta_(pers.hf_delta) {}
  bool uniform_weights() const override { return true; }
  // g(w; D) and g(w_tmp; D'); hf adds two gradients on D''.
  double WorkPerStep() const override { return hessian_free_ ? 4.0 : 2.0; }
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void PersonalModel(const TrainContext& ctx, const ClientTask& task, const float* global,
                     ClientScratch& scratch) override;
  bool personalized() const override { return true; }

 private:
  bool hessian_free_;
  double adapt_lr_, delta_;
};

// FedPer (Arivazhagan et al. 2019), FedRep (Collins et al., ICML 2021),
// LG-FedAvg (Liang et al. 2020) and FedBN (Li et al., ICLR 2021): the model
// split into a shared part, averaged as in FedAvg, and a personal part kept
// on the client (FedPer, FedRep: the last personal_layers layers, the head;
// LG-FedAvg: the first, the local representation; FedBN: the layers marked
// "local", its batchnorm layers). Only the shared part is uploaded (bytes_up) and
// downloaded; the upload holds zeros on the personal part.
class LayerSplit : public FedAvg {
 public:
  LayerSplit(const AlgorithmConfig& cfg, const PersonalizationConfig& pers, std::string name);
  // FedRep: head epochs before the body's epochs (an estimate when the body
  // runs algorithm.local_steps).
  double WorkPerStep() const override { return work_per_step_; }
  void Setup(int64_t num_params, int num_clients) override;
  void SetModel(const Model& model) override;
  int64_t PlannedUploadBytes() const override { return SharedBytes(); }
  int64_t DownloadBytes(int) const override { return SharedBytes(); }
  ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global, float* upload,
                           ClientScratch& scratch) override;
  void PersonalModel(const TrainContext& ctx, const ClientTask& task, const float* global,
                     ClientScratch& scratch) override;
  // FedAvg's step on the shared part; the global copy of the personal part
  // keeps its value (uploads are zero there, but central or local DP noise
  // and other transforms are not).
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                    const std::vector<ClientReport>& reports, int round) override;
  bool personalized() const override { return true; }
  const ClientStateStore* client_state() const override { return &state_; }
  void SaveState(CheckpointWriter& w) const override;
  void LoadState(const CheckpointReader& r) override;

  // The personal part: (begin, size) ranges of the flat vector, in order
  // (one range for fedper, fedrep and lgfedavg), personal_size floats in all.
  const std::vector<std::pair<int64_t, int64_t>>& personal_ranges() const { return personal_; }
  int64_t personal_size() const { return personal_size_; }

 private:
  int64_t SharedBytes() const { return (num_params_ - personal_size_) * static_cast<int64_t>(sizeof(float)); }
  // fedbn: the personal part is every tensor marked local (ParamRange::local).
  void SetLocalRanges(const Model& model);
  // The personal ranges of params, concatenated, and back.
  void GatherPersonal(const Eigen::VectorXf& params, Eigen::Map<Eigen::VectorXf> mine) const;
  void ScatterPersonal(const Eigen::Map<Eigen::VectorXf>& mine, Eigen::VectorXf& params) const;
  int personal_layers_, head_epochs_;
  double work_per_step_ = 1.0;
  std::vector<std::pair<int64_t, int64_t>> personal_;
  int64_t personal_size_ = 0;
  ClientStateStore state_;  // slot 0: the client's personal part
};

}  // namespace fedsim
