// The federated algorithm interface. An algorithm has a client side
// (LocalUpdate: from the global parameters, train on one client's data and
// write the update it uploads) and a server side (ServerUpdate: fold the
// weighted mean of the cohort's uploads into the global model). The round
// loop (runner.cpp) owns sampling, parallelism, aggregation order and metrics.
//
// Thread-safety: LocalUpdate is called concurrently for different clients and
// must only write to its `upload` and `scratch` arguments. ServerUpdate runs on
// one thread.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "data/dataset.h"
#include "model/model.h"
#include "optim/sgd.h"

namespace fedsim {

// Per-thread buffers reused for every client a thread trains.
struct ClientScratch {
  std::unique_ptr<Workspace> ws;
  Eigen::VectorXf params;   // the client's local copy of the model
  Eigen::VectorXf grad;     // gradient of one (sub)batch
  Eigen::VectorXf grad_acc; // gradient accumulated over sub-batches
  RowMatrix batch_x;        // gathered batch rows
  std::vector<int> batch_y;
  std::vector<int> order;   // the client's sample indices in shuffled order
  Sgd sgd{0.0f, 0.0f};
};

// What the round loop knows about the run, shared read-only by all clients.
struct TrainContext {
  const Model* model = nullptr;
  const Dataset* train = nullptr;
  const AlgorithmConfig* cfg = nullptr;
  uint64_t seed = 0;
  int max_chunk = 0;  // largest number of rows a workspace holds
};

// One client's job in one round.
struct ClientTask {
  int round = 0;              // 0-based
  int client = 0;             // client id in [0, num_clients)
  const std::vector<int>* indices = nullptr;  // the client's training rows
  float lr = 0.0f;            // client learning rate this round
};

// What a client reports besides its upload.
struct ClientReport {
  double weight = 0.0;          // aggregation weight (FedAvg: n_k)
  double loss_sum = 0.0;        // sum of per-sample training losses seen
  int64_t samples = 0;          // samples processed in local training
  int64_t steps = 0;            // optimizer steps (or gradient evaluations)
};

class Algorithm {
 public:
  virtual ~Algorithm() = default;
  virtual std::string name() const = 0;

  // Trains client task.client from `global` and writes its upload (num_params
  // floats) to `upload`.
  virtual ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global,
                                   float* upload, ClientScratch& scratch) const = 0;

  // Applies the weighted mean of the cohort's uploads to the global model.
  virtual void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload, int round) = 0;
};

// A named component with one line of description, for `fedsim list`.
struct CatalogEntry {
  std::string name;
  std::string summary;
};

struct Catalog {
  std::vector<CatalogEntry> datasets, partitioners, models, algorithms;
};

// The registry: every selectable component by name (registry.cpp).
const Catalog& GetCatalog();
std::unique_ptr<Algorithm> CreateAlgorithm(const AlgorithmConfig& cfg);

}  // namespace fedsim
