#include "round/algorithm_trainer.h"

#include "data/augment.h"

#include <algorithm>
#include <cmath>

#include "core/fmath.h"
#include "core/rng.h"
#include "fl/local_training.h"
#include "metrics/writer.h"
#include "round/federated_run.h"

namespace fedsim {

AlgorithmTrainer::AlgorithmTrainer(const Config& cfg, std::unique_ptr<Algorithm> algo, const Model& model,
                                   const Dataset& train, const Partition& partition, int threads, double dp_clip,
                                   double dp_sigma)
    : cfg_(cfg), algo_(std::move(algo)), model_(model), partition_(partition) {
  const int64_t p = model.num_params();
  // Per-thread scratch, allocated once. A workspace holds the largest chunk a
  // gradient is computed on (the batch size, capped; larger batches are
  // processed in sub-batches).
  size_t largest_client = 0;
  for (const auto& c : partition) largest_client = std::max(largest_client, c.size());
  full_batch_ = cfg.algorithm.batch_size == 0 || algo_->FullBatch();
  const int batch = full_batch_ ? static_cast<int>(largest_client) : cfg.algorithm.batch_size;
  const int max_chunk = std::max(1, std::min(batch, 512));
  const int ws_rows = std::max(max_chunk, kEvalChunk);
  scratch_.resize(static_cast<size_t>(threads));
  for (auto& s : scratch_) {
    s.ws = model.NewWorkspace(ws_rows);
    s.params.resize(p);
    s.grad.resize(p);
    s.grad_acc.resize(p);
    s.extra.resize(p);
    s.batch_x.resize(max_chunk, train.dim());
    s.batch_y.resize(static_cast<size_t>(max_chunk));
    s.sgd = Sgd(static_cast<float>(cfg.algorithm.momentum), static_cast<float>(cfg.algorithm.weight_decay));
    if (dp_clip > 0.0) s.dp_sum.resize(p);
  }
  ctx_.model = &model;
  ctx_.train = &train;
  ctx_.cfg = &cfg.algorithm;
  ctx_.seed = cfg.experiment.seed;
  ctx_.max_chunk = max_chunk;
  ctx_.num_clients = static_cast<int>(partition.size());
  ctx_.dp_clip = static_cast<float>(dp_clip);
  ctx_.dp_sigma = static_cast<float>(dp_sigma);
  if (AugmentEnabled(cfg_.data.augment)) {
    CheckAugment(cfg_.data.augment, train);
    ctx_.augment = &cfg_.data.augment;
  }
  if (cfg.metrics.client_eval != "none") {
    finetune_cfg_ = cfg.algorithm;
    finetune_cfg_.local_steps = cfg.personalization.finetune_steps;
    finetune_ctx_ = ctx_;
    finetune_ctx_.cfg = &finetune_cfg_;
    finetune_ctx_.seed = DeriveStream(cfg.experiment.seed, Stream::kFinetune).NextU64();
    finetune_ctx_.dp_clip = 0.0f;  // the fine-tuned model is scored, never released
    finetune_ctx_.dp_sigma = 0.0f;
    eval_rows_.assign(static_cast<size_t>(threads), std::vector<float>(static_cast<size_t>(kEvalChunk) * train.dim()));
    eval_y_.assign(static_cast<size_t>(threads), std::vector<int>(static_cast<size_t>(kEvalChunk)));
  }
}

EvalSums AlgorithmTrainer::EvaluateClient(int round, int client, const float* global, const Dataset& data,
                                          const std::vector<int>& rows, int thread) {
  ClientScratch& s = scratch_[static_cast<size_t>(thread)];
  ClientTask task;
  task.round = round;
  task.client = client;
  task.indices = &partition_[static_cast<size_t>(client)];
  task.lr = static_cast<float>(LearningRate(round));
  algo_->PersonalModel(ctx_, task, global, s);
  const int finetune = cfg_.personalization.finetune_steps;
  if (finetune > 0 && !task.indices->empty()) {
    if (cfg_.personalization.finetune_lr > 0.0) task.lr = static_cast<float>(cfg_.personalization.finetune_lr);
    TrainLocalSgd(finetune_ctx_, task, s);
  }
  float* x = eval_rows_[static_cast<size_t>(thread)].data();
  int* y = eval_y_[static_cast<size_t>(thread)].data();
  EvalSums total;
  const int n = static_cast<int>(rows.size());
  for (int begin = 0; begin < n; begin += kEvalChunk) {
    const int b = std::min(kEvalChunk, n - begin);
    data.Rows(rows.data() + begin, b, x);
    for (int i = 0; i < b; ++i) y[i] = data.y[static_cast<size_t>(rows[static_cast<size_t>(begin + i)])];
    const EvalSums e = model_.Evaluate(s.params.data(), x, y, b, *s.ws);
    total.loss_sum += e.loss_sum;
    total.correct += e.correct;
    total.count += e.count;
  }
  return total;
}

LocalWork AlgorithmTrainer::PlannedWork(int client) const {
  const int n = static_cast<int>(partition_[static_cast<size_t>(client)].size());
  // FedSGD and FedGiA take one full-batch gradient; batch_size = 0 alone
  // means full-batch local SGD, E epochs (or local_steps) of one step each.
  if (algo_->FullBatch()) return LocalWork{n, 1};
  LocalWork w = PlannedLocalSgdWork(n, cfg_.algorithm);
  const double m = algo_->WorkPerStep();
  if (m != 1.0) {
    w.samples = static_cast<int64_t>(std::llround(static_cast<double>(w.samples) * m));
    w.steps = static_cast<int64_t>(std::llround(static_cast<double>(w.steps) * m));
  }
  return w;
}

nlohmann::json AlgorithmTrainer::Describe() const { return DescribeModel(model_); }

double AlgorithmTrainer::LearningRate(int round) const {
  return cfg_.algorithm.lr * fm::Pow(cfg_.algorithm.lr_decay, round);
}

void AlgorithmTrainer::RecordRound(nlohmann::json& rec, int round, const CohortTally& kept) const {
  rec["lr"] = LearningRate(round);
  rec["train_loss"] = NullableNumber(kept.samples ? kept.loss_sum / static_cast<double>(kept.samples) : NAN);
}

}  // namespace fedsim
