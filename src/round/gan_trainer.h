// FedGAN's client side as the round's client trainer (docs/algorithms.md#fedgan):
// each cohort member starts from the global pair (w_G, w_D), runs its local
// steps of alternating discriminator and generator updates (fl/fedgan.h)
// and uploads its pair; the server's update is the weighted mean itself.
//
// Adam's moments and step count are per-client state (a ClientStateStore of
// three slots: m, v over [w_G; w_D], and the step count), placed on the
// process that trains the client like every algorithm's state.
#pragma once

#include <memory>
#include <vector>

#include "core/config.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "fl/fedgan.h"
#include "model/gan.h"
#include "round/client_trainer.h"

namespace fedsim {

class GanTrainer : public ClientTrainer {
 public:
  GanTrainer(const Config& cfg, const GanNets& nets, const Dataset& train, const Partition& partition, int threads,
             Comm* comm);

  UploadKind upload_kind() const override { return UploadKind::kParameters; }
  int64_t upload_size() const override { return nets_.num_params(); }
  int64_t PlannedUploadBytes() const override { return model_bytes_; }
  int64_t DownloadBytes(int) const override { return model_bytes_; }
  LocalWork PlannedWork(int client) const override;
  bool uniform_weights() const override { return false; }
  int batch() const override { return settings_.batch_size; }
  nlohmann::json Describe() const override;
  double TrainFlopsPerSample() const override;
  double TrainFlopsPerBatch() const override { return 0.0; }
  // The generator's learning rate (each task's two rates come from gan.*).
  double LearningRate(int round) const override;
  // generator_lr, discriminator_lr, generator_loss, discriminator_loss.
  void RecordRound(nlohmann::json& rec, int round, const CohortTally& kept) const override;
  // final_generator_loss, final_discriminator_loss, train_steps.
  void Summarize(nlohmann::json& summary, const nlohmann::json& last_record) const override;

  void BeginRound(Eigen::VectorXf&, int, const std::vector<int>&) override {}
  ClientReport Train(const ClientTask& task, const float* global, float* upload, int thread) override;
  void Forget(int client) override;
  void AfterClient(const ClientTask&) override {}
  // The new global pair is the mean of the kept members' pairs.
  void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean, const std::vector<ClientReport>&,
                    int) override {
    global = mean;
  }

  ClientStateStore* client_state() override { return settings_.adam ? &adam_ : nullptr; }
  void Save(CheckpointWriter& w) const override;
  void Load(const CheckpointReader& r) override;

 private:
  double Decay(int round) const;

  const Config& cfg_;
  const GanNets& nets_;
  const Dataset& train_;
  const Partition& partition_;
  GanTrainSettings settings_;
  int64_t model_bytes_;
  std::vector<GanScratch> scratch_;
  ClientStateStore adam_;  // slots: 0 first moment, 1 second moment, 2 step count (one float)
};

}  // namespace fedsim
