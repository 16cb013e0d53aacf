// Stage 2: the client side of an algorithm, as the round sees it.
//
// A ClientTrainer trains one client from the global parameters and writes
// the vector it uploads; the server side (ServerUpdate) folds the mean of the
// cohort's uploads back into the global model. AlgorithmTrainer adapts the
// federated algorithms (fl/algorithm.h: FedAvg, SCAFFOLD, ...); FedGAN has
// its own trainer.
//
// Thread-safety: Train is called concurrently for distinct clients of a
// round, with distinct `thread` indices in [0, threads); it may write only to
// its upload, its thread's scratch and the persistent state of its client.
// Everything else is called on one thread.
//
// Besides training, a trainer says what it trains (Describe, the FLOPs the
// simulated clock and the GFLOP/s figures use) and which keys of a round's
// record are its own (RecordRound: learning rates and training losses).
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fl/algorithm.h"
#include "sim/system.h"

namespace fedsim {

// What the kept members of a round's cohort contributed.
struct CohortTally {
  double loss_sum = 0.0, aux_loss_sum = 0.0;
  int64_t clients = 0, samples = 0, steps = 0;
  int64_t extra_samples = 0, extra_steps = 0;  // ClientReport's: work beyond the training loss's samples
};

class ClientTrainer {
 public:
  virtual ~ClientTrainer() = default;
  virtual UploadKind upload_kind() const = 0;
  // Floats per upload.
  virtual int64_t upload_size() const = 0;
  // The upload's wire size the simulated system plans with.
  virtual int64_t PlannedUploadBytes() const = 0;
  // What `client` downloads this round, and its full local work.
  virtual int64_t DownloadBytes(int client) const = 0;
  virtual LocalWork PlannedWork(int client) const = 0;
  // True when every report has weight 1.
  virtual bool uniform_weights() const = 0;
  // Samples per step (the system's partial-work unit).
  virtual int batch() const = 0;
  // metrics.json's "model": what is trained, and its size.
  virtual nlohmann::json Describe() const = 0;
  // Training FLOPs (multiply-adds x 2) per sample and per step.
  virtual double TrainFlopsPerSample() const = 0;
  virtual double TrainFlopsPerBatch() const = 0;
  // The learning rate a round's tasks carry (ClientTask::lr).
  virtual double LearningRate(int round) const = 0;
  // The trainer's keys of round `round`'s record (0-based), from the kept
  // members' tally: learning rate(s) and mean training loss(es).
  virtual void RecordRound(nlohmann::json& rec, int round, const CohortTally& kept) const = 0;
  // The trainer's summary keys, from the last round's record (null if none).
  virtual void Summarize(nlohmann::json& summary, const nlohmann::json& last_record) const {}

  // Server-side preparation before the cohort trains; may change `global`.
  virtual void BeginRound(Eigen::VectorXf& global, int round, const std::vector<int>& sampled) = 0;
  // Trains task.client from `global`; writes upload_size() floats to `upload`.
  virtual ClientReport Train(const ClientTask& task, const float* global, float* upload, int thread) = 0;
  // A client's update was discarded (not finite): forget its state.
  virtual void Forget(int client) = 0;
  // Called for every cohort member, in cohort order, on every process.
  virtual void AfterClient(const ClientTask& task) = 0;
  // Folds the mean upload of the kept members into the global model.
  virtual void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean,
                            const std::vector<ClientReport>& kept, int round) = 0;

  // Per-client evaluation: scores the model `client` would use after round
  // `round` (0-based; the algorithm's personal model, fine-tuned with
  // personalization.finetune_steps) on the rows `rows` of `data`. Called
  // concurrently for distinct clients with distinct `thread`s, on the
  // process that holds the client's state; the sums depend on nothing but
  // the client, the round and the parameters.
  virtual EvalSums EvaluateClient(int round, int client, const float* global, const Dataset& data,
                                  const std::vector<int>& rows, int thread) {
    throw std::logic_error("this trainer has no per-client evaluation");
  }
  // True when clients are scored on a model of their own.
  virtual bool personalized() const { return false; }

  // Persistent per-client state (placed on the process that trains the
  // client in a distributed run), or null.
  virtual ClientStateStore* client_state() = 0;
  virtual void Save(CheckpointWriter& w) const = 0;
  virtual void Load(const CheckpointReader& r) = 0;
};

}  // namespace fedsim
