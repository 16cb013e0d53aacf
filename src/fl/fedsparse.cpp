// FedSparse: sparsity-preserving federated training, two independent parts.
//
// (a) Sparse client updates with error feedback (top-k sparsification as in
//     Sattler et al., "Robust and Communication-Efficient Federated Learning
//     from Non-IID Data" (STC), IEEE TNNLS 2020; error accumulation as in
//     Stich et al. 2018). Client k trains like FedAvg, Delta = w_k - w, then
//       u = e_k + Delta;  s = topk(u, k = ceil(update_density * P));
//       ternary: s <- mu sign(s) on the kept entries, mu = mean |kept u|;
//       e_k <- u - s;  upload s (weight n_k).
//     e_k is the client's persistent residual, created on first participation.
//     With momentum_correction m > 0 (Deep Gradient Compression, Lin et al.
//     ICLR 2018, momentum correction and momentum factor masking) the client
//     also keeps a velocity v_k: v_k <- m v_k + Delta, u = e_k + v_k, and after
//     sending v_k is zeroed on the sent entries.
//     With sparse_download the server treats its aggregated update the same
//     way (its own residual) and a client that took part in the previous round
//     downloads only that sparse update; any other client downloads the model.
// (b) A sparse global model: with model_density < 1 the server keeps a
//     magnitude mask of the top model_density * P weights, re-chosen every
//     mask_every rounds; weights outside it are zero, clients train only the
//     weights inside it, and the model is sent sparse. The density follows
//     Zhu & Gupta's cubic schedule ("To prune, or not to prune", 2017),
//     d_t = d + (1 - d)(1 - t/T)^3 for t < T = prune_rounds, then d; with
//     T = 0 the model is pruned to d at round 0. A pruned weight stays zero
//     (the mask only shrinks), and a client's residual is masked with it.
// bytes_up / bytes_down count the encoded sizes (EncodedBytes), not P * 4.
// The top-k selection, k from a density, and the position bytes are the
// topk compressor's (compress/topk.h), so the two agree entry for entry.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "compress/topk.h"
#include "core/error.h"
#include "fl/algorithms.h"

namespace fedsim {

FedSparse::FedSparse(const AlgorithmConfig& cfg)
    : update_density_(cfg.update_density),
      model_density_(cfg.model_density),
      server_lr_(cfg.server_lr),
      momentum_correction_(cfg.momentum_correction),
      ternary_(cfg.ternary),
      sparse_download_(cfg.sparse_download),
      mask_every_(cfg.mask_every),
      prune_rounds_(cfg.prune_rounds) {}

double FedSparse::DensityAt(int round, double final_density, int prune_rounds) {
  if (prune_rounds <= 0 || round >= prune_rounds) return final_density;
  const double left = 1.0 - static_cast<double>(round) / prune_rounds;
  return final_density + (1.0 - final_density) * left * left * left;
}

int64_t FedSparse::EncodedBytes(int64_t nnz, int64_t n, bool ternary) {
  if (!ternary) return TopKEncodedBytes(nnz, n);
  return SparsePositionBytes(nnz, n) + 4 + (nnz + 7) / 8;
}

int64_t FedSparse::SparsifyWithFeedback(Eigen::Ref<Eigen::VectorXf> residual, const float* delta, int64_t k,
                                        bool ternary, float* out, std::vector<int>& index) {
  const int64_t n = residual.size();
  residual += Eigen::Map<const Eigen::VectorXf>(delta, n);  // u = e + Delta
  k = std::min(k, n);
  SelectTopK(residual.data(), n, k, index);
  Eigen::Map<Eigen::VectorXf> o(out, n);
  o.setZero();
  double mu = 0.0;
  if (ternary && k > 0) {
    for (int64_t j = 0; j < k; ++j) mu += std::fabs(residual[index[static_cast<size_t>(j)]]);
    mu /= static_cast<double>(k);
  }
  for (int64_t j = 0; j < k; ++j) {
    const int i = index[static_cast<size_t>(j)];
    const float u = residual[i];
    o[i] = ternary ? static_cast<float>(mu) * (u > 0.0f ? 1.0f : (u < 0.0f ? -1.0f : 0.0f)) : u;
    residual[i] -= o[i];
  }
  return EncodedBytes(k, n, ternary);
}

int64_t FedSparse::SparsifyWithMomentum(Eigen::Ref<Eigen::VectorXf> residual, Eigen::Ref<Eigen::VectorXf> velocity,
                                        const float* delta, float m, int64_t k, bool ternary, float* out,
                                        std::vector<int>& index) {
  const int64_t n = velocity.size();
  velocity = m * velocity + Eigen::Map<const Eigen::VectorXf>(delta, n);
  const int64_t bytes = SparsifyWithFeedback(residual, velocity.data(), k, ternary, out, index);
  k = std::min(k, n);
  for (int64_t j = 0; j < k; ++j) velocity[index[static_cast<size_t>(j)]] = 0.0f;
  return bytes;
}

void FedSparse::Setup(int64_t num_params, int num_clients) {
  Algorithm::Setup(num_params, num_clients);
  state_.Resize(num_clients, 2);
  last_round_.assign(static_cast<size_t>(num_clients), -1);
  dense_download_bytes_ = num_params * static_cast<int64_t>(sizeof(float));
  if (sparse_download_) {
    server_residual_.setZero(num_params);
    server_update_.setZero(num_params);
  }
}

void FedSparse::BeginRound(Eigen::VectorXf& global, int round, const std::vector<int>&, uint64_t) {
  round_ = round;
  const bool update = round % mask_every_ == 0 || (prune_rounds_ > 0 && round == prune_rounds_);
  if (model_density_ < 1.0 && update && (mask_.size() == 0 || round <= prune_rounds_)) {
    const int64_t p = global.size();
    const double density = DensityAt(round, model_density_, prune_rounds_);
    const int64_t keep = TopKCount(density, p);
    SelectTopK(global.data(), p, keep, server_index_);
    mask_.setZero(p);
    for (int64_t j = 0; j < keep; ++j) mask_[server_index_[static_cast<size_t>(j)]] = 1.0f;
    global.array() *= mask_.array();
    dense_download_bytes_ = EncodedBytes(keep, p, false);
  }
}

int64_t FedSparse::PlannedUploadBytes() const {
  return EncodedBytes(TopKCount(update_density_, num_params_), num_params_, ternary_);
}

int64_t FedSparse::DownloadBytes(int client) const {
  if (sparse_download_ && last_round_[static_cast<size_t>(client)] == round_ - 1 && round_ > 0) {
    return std::min(sparse_download_bytes_, dense_download_bytes_);
  }
  return dense_download_bytes_;
}

ClientReport FedSparse::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global,
                                    float* upload, ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  Eigen::Map<const Eigen::VectorXf> w0(global, p);
  s.params = w0;
  LocalHooks hooks;
  if (mask_.size() == p) hooks.mask = mask_.data();
  ClientReport rep = TrainLocalSgd(ctx, task, s, &hooks);
  if (task.indices->empty()) {
    // Nothing trained and nothing to send: leave the residual for a later round.
    Eigen::Map<Eigen::VectorXf>(upload, p).setZero();
    rep.bytes_up = EncodedBytes(0, p, ternary_);
    return rep;
  }
  s.extra = s.params - w0;
  Eigen::Map<Eigen::VectorXf> e = state_.Open(task.client, 0, p, s.state);
  if (hooks.mask) e.array() *= mask_.array();
  const int64_t k = TopKCount(update_density_, p);
  if (momentum_correction_ > 0.0) {
    Eigen::Map<Eigen::VectorXf> v = state_.Open(task.client, 1, p, s.state2);
    if (hooks.mask) v.array() *= mask_.array();
    rep.bytes_up = SparsifyWithMomentum(e, v, s.extra.data(), static_cast<float>(momentum_correction_), k, ternary_,
                                        upload, s.index);
    state_.Commit(task.client, 1, v);
  } else {
    rep.bytes_up = SparsifyWithFeedback(e, s.extra.data(), k, ternary_, upload, s.index);
  }
  state_.Commit(task.client, 0, e);
  return rep;
}

void FedSparse::AfterClient(const ClientTask& task) {
  // As LocalUpdate: a client without data took no part in the round.
  if (!task.indices->empty()) last_round_[static_cast<size_t>(task.client)] = task.round;
}

void FedSparse::SaveState(CheckpointWriter& w) const {
  state_.Save(w, "fedsparse/residual");
  w.F32("fedsparse/mask", mask_);
  w.F32("fedsparse/server_residual", server_residual_);
  w.I64("fedsparse/last_round", std::vector<int64_t>(last_round_.begin(), last_round_.end()));
  w.I64("fedsparse/bytes", {dense_download_bytes_, sparse_download_bytes_});
}

void FedSparse::LoadState(const CheckpointReader& r) {
  state_.Load(r, "fedsparse/residual");
  mask_ = r.F32("fedsparse/mask");
  if (mask_.size() != 0 && mask_.size() != num_params_) {
    throw InputError(fmt::format("checkpoint: 'fedsparse/mask' holds {} values, expected {} (or none)", mask_.size(),
                                 num_params_));
  }
  server_residual_ = r.F32("fedsparse/server_residual", sparse_download_ ? num_params_ : 0);
  const std::vector<int64_t> last = r.I64("fedsparse/last_round", static_cast<int64_t>(last_round_.size()));
  last_round_.assign(last.begin(), last.end());
  const std::vector<int64_t> bytes = r.I64("fedsparse/bytes", 2);
  dense_download_bytes_ = bytes[0];
  sparse_download_bytes_ = bytes[1];
}

void FedSparse::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                             const std::vector<ClientReport>&, int) {
  const float eta = static_cast<float>(server_lr_);
  if (sparse_download_) {
    const int64_t p = global.size();
    const int64_t k = TopKCount(update_density_, p);
    sparse_download_bytes_ =
        SparsifyWithFeedback(server_residual_, mean_upload.data(), k, ternary_, server_update_.data(), server_index_);
    global += eta * server_update_;
  } else {
    global += eta * mean_upload;
  }
  if (mask_.size() == global.size()) global.array() *= mask_.array();
}

}  // namespace fedsim
