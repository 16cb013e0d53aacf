// Personalised FL by splitting the model's layers into a shared part and a
// personal part kept on the client. A layer is every tensor whose
// ParamRanges name shares the prefix "layers.N." (one dense or conv layer:
// its weight and bias); L = personalization.personal_layers.
//
// FedPer (Arivazhagan, Aggarwal, Singh & Choudhary, "Federated Learning with
// Personalization Layers", 2019): the last L layers are the personal head
// h_k, the rest the shared body phi. Client k trains [phi_t; h_k] jointly by
// FedAvg's local SGD and uploads only the body delta phi_k - phi_t (weight
// n_k); it keeps h_k. Server: FedAvg on the body.
//
// FedRep (Collins, Hassani, Mokhtari & Shakkottai, "Exploiting Shared
// Representations for Personalized Federated Learning", ICML 2021,
// Algorithm 1): as FedPer, but the local update alternates: first
// personalization.head_epochs epochs of SGD on the head with the body fixed,
//   h_k <- h_k - eta grad_h F_k(phi_t, h_k),
// then algorithm.local_epochs (or local_steps) of SGD on the body with the
// new head fixed,  phi <- phi - eta grad_phi F_k(phi, h_k).
// Both phases draw their batches from (seed, kLocalTrain, t, k), so the body
// phase starts with the head phase's first shuffle.
//
// LG-FedAvg (Liang, Liu, Ziyin, Allen, Auerbach, Brent, Salakhutdinov &
// Morency, "Think Locally, Act Globally: Federated Learning with Local and
// Global Representations", 2020): the opposite split, the first L layers are
// the client's local representation, the rest the global layers averaged by
// FedAvg; the whole model is trained jointly as in FedPer.
//
// FedBN (Li, Jiang, Zhang, Kamp & Dou, "FedBN: Federated Learning on
// Non-IID Features via Local Batch Normalization", ICLR 2021, Algorithm 1):
// FedAvg in which the batch-normalisation layers never leave the client —
// each client keeps its own scale, shift and running statistics, and the
// server averages every other parameter. Here the personal part is every
// tensor of a layer marked "local": true in model.layers (FedBN marks its
// batchnorm layers; any parameterised layer may be marked), wherever it
// sits in the model, so the personal part may be several ranges.
//
// The upload is model-sized with zeros on the personal part, and the server
// step leaves the global copy of that part at its initial value, the starting
// point of every newcomer, whatever noise the aggregate carries; bytes_up, the
// planned upload and the download count only the shared part. PersonalModel:
// the global shared part with the client's own personal part (the initial one
// for a client that never trained). Frozen parameters stay exactly fixed: their
// gradient is replaced by -weight_decay * w, which cancels the optimizer's
// decay and leaves momentum 0.
#include <fmt/format.h>

#include "core/error.h"
#include "fl/algorithms.h"

namespace fedsim {
namespace {

// The hook that keeps [begin, begin + size) of the weights fixed.
LocalHooks FreezeHook(int64_t begin, int64_t size, float weight_decay) {
  LocalHooks h;
  h.correct = [begin, size, weight_decay](const float* w, float* g) {
    Eigen::Map<Eigen::VectorXf>(g + begin, size) = -weight_decay * Eigen::Map<const Eigen::VectorXf>(w + begin, size);
  };
  return h;
}

// The layer a tensor belongs to: the layer engine's top-level index (a
// layer's spec "name" and a block's inner layers do not change it); for a
// model that does not give it, "layers.3.weight" -> "layers.3." and any other
// name is its own layer.
std::string LayerOf(const ParamRange& r) {
  if (r.layer >= 0) return std::to_string(r.layer);
  if (r.name.rfind("layers.", 0) == 0) {
    const auto dot = r.name.find('.', 7);
    if (dot != std::string::npos) return r.name.substr(0, dot + 1);
  }
  return r.name;
}

}  // namespace

LayerSplit::LayerSplit(const AlgorithmConfig& cfg, const PersonalizationConfig& pers, std::string name)
    : FedAvg(cfg, std::move(name), ServerOptimizer::Kind::kSgd),
      personal_layers_(pers.personal_layers),
      head_epochs_(pers.head_epochs) {
  if (name_ == "fedrep" && cfg.local_steps == 0 && cfg.local_epochs > 0) {
    work_per_step_ = static_cast<double>(head_epochs_ + cfg.local_epochs) / cfg.local_epochs;
  }
}

void LayerSplit::Setup(int64_t num_params, int num_clients) {
  FedAvg::Setup(num_params, num_clients);
  state_.Resize(num_clients, 1);
}

void LayerSplit::SetModel(const Model& model) {
  FedAvg::SetModel(model);
  if (name_ == "fedbn") {
    SetLocalRanges(model);
    return;
  }
  // Layers as [begin, end) of the flat vector, in layout order.
  std::vector<std::pair<int64_t, int64_t>> layers;
  std::string last;
  int64_t end = 0;
  for (const ParamRange& r : model.ParamRanges()) {
    if (r.offset != end) {
      throw InputError(
          fmt::format("algorithm.name={}: model.kind={} does not name its parameters tensor by tensor "
                      "in layout order",
                      name_, model.kind()));
    }
    const std::string layer = LayerOf(r);
    if (layers.empty() || layer != last) layers.push_back({r.offset, r.offset});
    layers.back().second = r.offset + r.size;
    last = layer;
    end = r.offset + r.size;
  }
  const int count = static_cast<int>(layers.size());
  if (end != model.num_params() || personal_layers_ >= count) {
    throw InputError(
        fmt::format("personalization.personal_layers: {} of the {} parameterised layers of model.kind={} "
                    "would leave no shared layer for {}; use a model with more layers or fewer personal "
                    "layers",
                    personal_layers_, count, model.kind(), name_));
  }
  personal_.clear();
  if (name_ == "lgfedavg") {
    personal_.push_back({0, layers[static_cast<size_t>(personal_layers_ - 1)].second});
  } else {
    const int64_t begin = layers[static_cast<size_t>(count - personal_layers_)].first;
    personal_.push_back({begin, model.num_params() - begin});
  }
  personal_size_ = personal_[0].second;
}

void LayerSplit::SetLocalRanges(const Model& model) {
  personal_.clear();
  personal_size_ = 0;
  for (const ParamRange& r : model.ParamRanges()) {
    if (!r.local || r.size == 0) continue;
    if (!personal_.empty() && personal_.back().first + personal_.back().second == r.offset) {
      personal_.back().second += r.size;  // adjacent tensors: one range
    } else {
      personal_.push_back({r.offset, r.size});
    }
    personal_size_ += r.size;
  }
  if (personal_size_ == 0) {
    throw InputError(fmt::format("algorithm.name=fedbn keeps the layers marked \"local\": true on each client, and "
                                 "model.kind={} marks none; add \"local\": true to its batchnorm layers in "
                                 "model.layers (FedBN keeps every batchnorm layer local)",
                                 model.kind()));
  }
  if (personal_size_ == model.num_params()) {
    throw InputError(fmt::format("algorithm.name=fedbn: every layer of model.kind={} is marked \"local\", which would "
                                 "leave nothing to average",
                                 model.kind()));
  }
}

void LayerSplit::GatherPersonal(const Eigen::VectorXf& params, Eigen::Map<Eigen::VectorXf> mine) const {
  int64_t at = 0;
  for (const auto& [begin, size] : personal_) {
    mine.segment(at, size) = params.segment(begin, size);
    at += size;
  }
}

void LayerSplit::ScatterPersonal(const Eigen::Map<Eigen::VectorXf>& mine, Eigen::VectorXf& params) const {
  int64_t at = 0;
  for (const auto& [begin, size] : personal_) {
    params.segment(begin, size) = mine.segment(at, size);
    at += size;
  }
}

ClientReport LayerSplit::LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global,
                                     float* upload, ClientScratch& s) {
  const int64_t p = ctx.model->num_params();
  if (personal_.empty()) throw std::logic_error(name_ + ": SetModel was not called");
  Eigen::Map<const Eigen::VectorXf> w0(global, p);
  Eigen::Map<Eigen::VectorXf> up(upload, p);
  s.params = w0;
  if (task.indices->empty()) {
    up.setZero();
    ClientReport rep;
    rep.bytes_up = SharedBytes();
    return rep;
  }
  // On first use the personal part starts as the global model's copy of it.
  const bool fresh = !state_.Has(task.client, 0);
  Eigen::Map<Eigen::VectorXf> mine = state_.Open(task.client, 0, personal_size_, s.state);
  if (!fresh) ScatterPersonal(mine, s.params);
  ClientReport rep;
  if (name_ == "fedrep") {
    const float wd = static_cast<float>(ctx.cfg->weight_decay);
    const int64_t personal_begin = personal_[0].first;  // fedrep: one range, the head
    const int64_t body_begin = personal_begin == 0 ? personal_size_ : 0;
    const int64_t body_size = p - personal_size_;
    // A frozen part keeps its model state too: batchnorm's running
    // statistics move in every training forward pass, not by the gradient
    // the freeze hook zeroes, so they are put back after the other phase.
    std::vector<std::pair<int64_t, int64_t>> state;
    if (ctx.model->HasState()) {
      for (const ParamRange& r : ctx.model->ParamRanges()) {
        if (r.state) state.push_back({r.offset, r.size});
      }
    }
    const auto keep_state = [&](int64_t begin, int64_t size, const Eigen::VectorXf& before) {
      for (const auto& [offset, n] : state) {
        if (offset >= begin && offset + n <= begin + size) s.params.segment(offset, n) = before.segment(offset, n);
      }
    };
    if (head_epochs_ > 0) {
      AlgorithmConfig head_cfg = *ctx.cfg;
      head_cfg.local_epochs = head_epochs_;
      head_cfg.local_steps = 0;
      TrainContext head = ctx;  // no DP-SGD here: config.cpp refuses fedrep with privacy.mode=sample
      head.cfg = &head_cfg;
      head.dp_clip = 0.0f;
      head.dp_sigma = 0.0f;
      const LocalHooks freeze_body = FreezeHook(body_begin, body_size, wd);
      const Eigen::VectorXf before = state.empty() ? Eigen::VectorXf() : Eigen::VectorXf(s.params);
      const ClientReport head_rep = TrainLocalSgd(head, task, s, &freeze_body);
      if (!state.empty()) keep_state(body_begin, body_size, before);
      rep.extra_samples = head_rep.samples;
      rep.extra_steps = head_rep.steps;
    }
    const LocalHooks freeze_head = FreezeHook(personal_begin, personal_size_, wd);
    const Eigen::VectorXf before = state.empty() ? Eigen::VectorXf() : Eigen::VectorXf(s.params);
    const ClientReport body_rep = TrainLocalSgd(ctx, task, s, &freeze_head);
    if (!state.empty()) keep_state(personal_begin, personal_size_, before);
    const int64_t extra_samples = rep.extra_samples, extra_steps = rep.extra_steps;
    rep = body_rep;
    rep.extra_samples = extra_samples;
    rep.extra_steps = extra_steps;
  } else {
    rep = TrainLocalSgd(ctx, task, s);
  }
  GatherPersonal(s.params, mine);
  state_.Commit(task.client, 0, mine);
  up = s.params - w0;
  for (const auto& [begin, size] : personal_) up.segment(begin, size).setZero();
  rep.bytes_up = SharedBytes();
  return rep;
}

void LayerSplit::PersonalModel(const TrainContext& ctx, const ClientTask& task, const float* global, ClientScratch& s) {
  Algorithm::PersonalModel(ctx, task, global, s);
  if (state_.Has(task.client, 0)) {
    ScatterPersonal(state_.Open(task.client, 0, personal_size_, s.state), s.params);
  }
}

void LayerSplit::ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                              const std::vector<ClientReport>& reports, int round) {
  Eigen::VectorXf kept(personal_size_);
  GatherPersonal(global, Eigen::Map<Eigen::VectorXf>(kept.data(), personal_size_));
  FedAvg::ServerUpdate(global, mean_upload, reports, round);
  ScatterPersonal(Eigen::Map<Eigen::VectorXf>(kept.data(), personal_size_), global);
}

void LayerSplit::SaveState(CheckpointWriter& w) const {
  FedAvg::SaveState(w);
  state_.Save(w, name_ + "/personal");
}

void LayerSplit::LoadState(const CheckpointReader& r) {
  FedAvg::LoadState(r);
  state_.Load(r, name_ + "/personal");
}

}  // namespace fedsim
