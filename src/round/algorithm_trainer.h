// The federated algorithms (fl/algorithm.h) as the round's client trainer:
// the algorithm, the context its clients share and each thread's scratch.
#pragma once

#include <cmath>
#include <memory>

#include "core/config.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "fl/algorithm.h"
#include "round/client_trainer.h"

namespace fedsim {

class AlgorithmTrainer : public ClientTrainer {
 public:
  // noise: sample-level DP-SGD's clip and noise std (0 = off).
  AlgorithmTrainer(const Config& cfg, std::unique_ptr<Algorithm> algo, const Model& model, const Dataset& train,
                   const Partition& partition, int threads, double dp_clip, double dp_sigma);

  Algorithm& algorithm() { return *algo_; }
  const Algorithm& algorithm() const { return *algo_; }

  UploadKind upload_kind() const override { return algo_->upload_kind(); }
  int64_t upload_size() const override { return algo_->UploadSize(); }
  int64_t PlannedUploadBytes() const override { return algo_->PlannedUploadBytes(); }
  int64_t DownloadBytes(int client) const override { return algo_->DownloadBytes(client); }
  LocalWork PlannedWork(int client) const override;
  // Samples per step, times the algorithm's WorkPerStep (the system fits
  // partial work in these units).
  int batch() const override {
    return static_cast<int>(std::lround(cfg_.algorithm.batch_size * algo_->WorkPerStep()));
  }
  bool uniform_weights() const override { return algo_->uniform_weights(); }
  nlohmann::json Describe() const override;
  double TrainFlopsPerSample() const override { return model_.TrainFlopsPerSample(); }
  double TrainFlopsPerBatch() const override { return model_.TrainFlopsPerBatch(); }
  // algorithm.lr decayed by algorithm.lr_decay per round.
  double LearningRate(int round) const override;
  // "lr" and "train_loss".
  void RecordRound(nlohmann::json& rec, int round, const CohortTally& kept) const override;

  void BeginRound(Eigen::VectorXf& global, int round, const std::vector<int>& sampled) override {
    algo_->BeginRound(global, round, sampled, cfg_.experiment.seed);
  }
  ClientReport Train(const ClientTask& task, const float* global, float* upload, int thread) override {
    return algo_->LocalUpdate(ctx_, task, global, upload, scratch_[static_cast<size_t>(thread)]);
  }
  void Forget(int client) override { algo_->ForgetClient(client); }
  void AfterClient(const ClientTask& task) override { algo_->AfterClient(task); }
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean, const std::vector<ClientReport>& kept,
                    int round) override {
    algo_->ServerUpdate(global, mean, kept, round);
  }
  // The algorithm's PersonalModel, then personalization.finetune_steps of
  // local SGD from (seed, kFinetune) for the round and client, scored in
  // chunks of kEvalChunk rows.
  EvalSums EvaluateClient(int round, int client, const float* global, const Dataset& data,
                          const std::vector<int>& rows, int thread) override;
  bool personalized() const override {
    return algo_->personalized() || cfg_.personalization.finetune_steps > 0;
  }
  ClientStateStore* client_state() override { return algo_->mutable_client_state(); }
  void Save(CheckpointWriter& w) const override { algo_->SaveState(w); }
  void Load(const CheckpointReader& r) override { algo_->LoadState(r); }

 private:
  const Config& cfg_;
  std::unique_ptr<Algorithm> algo_;
  const Model& model_;
  const Partition& partition_;
  bool full_batch_;
  TrainContext ctx_;
  std::vector<ClientScratch> scratch_;
  // Fine-tuning: the algorithm config with local_steps = finetune_steps and
  // the context that points at it (its own seed, no DP noise).
  AlgorithmConfig finetune_cfg_;
  TrainContext finetune_ctx_;
  std::vector<std::vector<float>> eval_rows_;  // per thread: kEvalChunk gathered rows
  std::vector<std::vector<int>> eval_y_;
};

}  // namespace fedsim
