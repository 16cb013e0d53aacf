// The federated algorithm interface. An algorithm has a client side
// (LocalUpdate: from the global parameters, train on one client's data and
// write the vector it uploads) and a server side (ServerUpdate: fold the
// weighted mean of the cohort's uploads into the global model and its own
// state). The round loop (runner.cpp) owns sampling, parallelism, the
// aggregation order and the metrics.
//
// Thread-safety: LocalUpdate is called concurrently for different clients of
// one round. It may write only to its `upload` and `scratch` arguments and to
// the persistent state of task.client (ClientStateStore guarantees distinct
// clients never share storage). Everything else runs on one thread.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "data/dataset.h"
#include "fl/checkpoint.h"
#include "model/model.h"
#include "optim/sgd.h"

namespace fedsim {

// Per-thread buffers reused for every client a thread trains.
struct ClientScratch {
  std::unique_ptr<Workspace> ws;
  Eigen::VectorXf params;   // the client's local copy of the model
  Eigen::VectorXf grad;     // gradient of one (sub)batch
  Eigen::VectorXf grad_acc; // gradient accumulated over sub-batches
  Eigen::VectorXf extra;    // algorithm-specific scratch (num_params floats)
  Eigen::VectorXf dp_sum;   // DP-SGD: sum of clipped per-example gradients
  RowMatrix batch_x;        // gathered batch rows
  std::vector<int> batch_y;
  std::vector<int> order;   // the client's sample indices in shuffled order
  std::vector<int> index;   // algorithm-specific index scratch
  Eigen::VectorXf state;    // decoded client state (ClientStateStore::Open with float16)
  Eigen::VectorXf state2;   // a second decoded state vector (FedSparse's DGC velocity)
  Sgd sgd{0.0f, 0.0f};
  uint64_t augment_seed = 0;  // data.augment: the current local step's seed (AugmentStepSeed)
};

// What the round loop knows about the run, shared read-only by all clients.
struct TrainContext {
  const Model* model = nullptr;
  const Dataset* train = nullptr;
  const AlgorithmConfig* cfg = nullptr;
  uint64_t seed = 0;
  int max_chunk = 0;    // largest number of rows a workspace holds
  int num_clients = 0;  // population size
  // Sample-level DP-SGD inside local training (privacy.mode = sample): each
  // example's gradient is clipped to dp_clip and N(0, (dp_sigma)^2) noise is
  // added to each batch's sum; off when dp_clip is 0.
  float dp_clip = 0.0f;
  float dp_sigma = 0.0f;
  // data.augment for the training batches; null when off.
  const AugmentConfig* augment = nullptr;
};

// One client's job in one round.
struct ClientTask {
  int round = 0;              // 0-based
  int client = 0;             // client id in [0, num_clients)
  const std::vector<int>* indices = nullptr;  // the client's training rows
  float lr = 0.0f;            // client learning rate this round
  int64_t max_steps = 0;      // > 0: stop local SGD after this many steps (partial work); 0: no limit
};

// What a client reports besides its upload.
struct ClientReport {
  double weight = 0.0;          // aggregation weight (FedAvg: n_k; uniform algorithms: 1)
  double loss_sum = 0.0;        // sum of per-sample training losses seen
  int64_t samples = 0;          // samples processed in local training
  int64_t steps = 0;            // optimizer steps (or gradient evaluations)
  int64_t bytes_up = -1;        // encoded size of the upload on the wire; -1 = UploadSize() * 4
  double norm_a = 0.0;          // FedNova: ||a_i||_1 of the client's local solver
  double update_norm = 0.0;     // the upload's norm before clipping (the clip transform; 0 = not clipped)
  int64_t raw_bytes_up = 0;     // the upload's size as the algorithm encoded it, before any upload transform
  double aux_loss_sum = 0.0;    // a second training loss (FedGAN: the generator's; loss_sum is the discriminator's)
  double start_loss = 0.0;      // mean training loss at the model the client received, before training (q-FFL's and AFL's F_k(w)); 0 = not computed
  int client = -1;              // who reported (set by the round before the upload transforms)
  // Work beyond `samples` and `steps` that the client computed but whose loss
  // is not the training loss: the personal model's steps (Ditto), a second
  // gradient per step (APFL, Per-FedAvg), inner steps (pFedMe), head epochs
  // (FedRep). Forward+backward samples and gradient batches; the simulated
  // clock and train_gflop count them.
  int64_t extra_samples = 0;
  int64_t extra_steps = 0;
};

// What an upload is, so that the stages after the client know what they may
// do with it (clip it, add noise, compress it, sum it securely).
enum class UploadKind {
  kModelDelta,  // w_k - w (or a scaled delta): linear; clipping, noise and compression keep its meaning
  kGradient,    // a gradient (FedSGD): linear, like a delta
  kComposite,   // deltas of several quantities (SCAFFOLD's model and control variate): linear, not one model delta
  kEncoded,     // an algorithm-specific encoding (FedSparse's sparse update): only the plain sum
  kParameters,  // parameter-like vectors (FedGiA's z_i, FedGAN's networks): averaged as they are, not small
};
const char* UploadKindName(UploadKind kind);

// How per-client state vectors are stored (algorithm.state_precision).
enum class StatePrecision {
  kFloat32,  // 4 bytes per value, exact
  kFloat16,  // 2 bytes per value: IEEE half, rounded to nearest (core/half.h)
};
StatePrecision ParseStatePrecision(const std::string& name);

// Per-client persistent state, created on a client's first participation.
// A client that never participates costs one empty entry. Entry k is only
// touched while client k trains, so concurrent clients never share storage.
//
// Algorithms reach a state vector through Open, work on the float32 view it
// returns and then call Commit: with float32 storage the view is the stored
// vector itself and Commit does nothing, so results are exactly those of
// plain float32 state; with float16 storage the view is a copy decoded into
// the caller's buffer and Commit rounds it back to halves.
class ClientStateStore {
 public:
  void Resize(int num_clients, int slots_per_client);
  // Set by the round loop before any state exists. precision: the storage
  // format. comm (null = one process): in a run of R > 1 processes this one
  // holds only the clients with client % R == rank; Open on any other client
  // throws, Load keeps only this process's clients, and Save is collective
  // (every rank's state reaches rank 0's checkpoint, in client order).
  void Configure(StatePrecision precision, class Comm* comm);
  StatePrecision precision() const { return precision_; }
  // Whether this process holds `client`'s state.
  bool Owns(int client) const;

  // The state vector `slot` of `client` as float32 values, created as `size`
  // zeros if absent. float32: a view of the stored vector (`buffer` unused);
  // float16: the decoded values in `buffer`, to be written back by Commit.
  Eigen::Map<Eigen::VectorXf> Open(int client, int slot, int64_t size, Eigen::VectorXf& buffer);
  // Stores the view returned by Open (float16: rounds each value to a half).
  void Commit(int client, int slot, const Eigen::Map<Eigen::VectorXf>& view);
  // Drops every slot of `client` (it is re-created as zeros when next used).
  void Clear(int client);
  bool Has(int client, int slot) const;
  // Clients holding any state on this process, and the bytes of their state
  // vectors (4 or 2 per value); a distributed run sums these over ranks.
  int64_t ClientsWithState() const;
  int64_t Bytes() const;
  // Checkpointing: the ids and the concatenated vectors of the clients with
  // state, streamed in client order as stored (float32, or float16 halves).
  void Save(CheckpointWriter& w, const std::string& prefix) const;
  void Load(const CheckpointReader& r, const std::string& prefix);

 private:
  size_t Index(int client, int slot) const {
    return static_cast<size_t>(client) * static_cast<size_t>(slots_) + static_cast<size_t>(slot);
  }
  const void* EntryData(size_t i) const;
  // This process's clients in [first, last) with state in `slot`, packed for
  // rank 0 (Save in a distributed run).
  std::string PackRange(int slot, int first, int last) const;
  int64_t EntrySize(size_t i) const {
    return precision_ == StatePrecision::kFloat32 ? f32_[i].size() : static_cast<int64_t>(f16_[i].size());
  }
  int slots_ = 0;
  int num_clients_ = 0;
  StatePrecision precision_ = StatePrecision::kFloat32;
  class Comm* comm_ = nullptr;
  std::vector<Eigen::VectorXf> f32_;        // float32 storage, one entry per (client, slot)
  std::vector<std::vector<uint16_t>> f16_;  // float16 storage
};

class Algorithm {
 public:
  virtual ~Algorithm() = default;
  virtual std::string name() const = 0;

  // Called once before round 0 with the model size and the population.
  virtual void Setup(int64_t num_params, int num_clients) { num_params_ = num_params; }
  // Called once after Setup with the model the run trains, for algorithms
  // that address its layers (FedPer, FedRep, LG-FedAvg read ParamRanges).
  // Throws InputError when the model does not suit the algorithm.
  virtual void SetModel(const Model& model) {}
  // Called once after Setup with the training data and every client's
  // training rows, for algorithms whose server side groups the clients by
  // their data (AFL's label domains). Not called by unit tests that drive an
  // algorithm by hand; the default groups nothing.
  virtual void SetClients(const Dataset& train, const std::vector<std::vector<int>>& partition) {}
  // Called once after Setup by the run with the ids of the clients that
  // train, in increasing order: empty when data.holdout_clients keeps none
  // out (and unit tests that never call it mean the same: all of them). A
  // server step that divides by the population (SCAFFOLD's c, FedDyn's h) or
  // an algorithm that draws clients itself (FedGiA's ADMM subset) counts
  // only these.
  void SetTrainingClients(std::vector<int> trainers) { trainers_ = std::move(trainers); }

  // Floats per upload (default: one model-sized vector).
  virtual int64_t UploadSize() const { return num_params_; }
  // What the upload is (default: a model delta).
  virtual UploadKind upload_kind() const { return UploadKind::kModelDelta; }
  // True when every client's report has weight 1 (SCAFFOLD's paper form, FedDyn, FedGiA):
  // a secure sum then needs no second sum of the weights.
  virtual bool uniform_weights() const { return false; }
  // True when ServerUpdate reads per-client report fields beyond the number
  // of kept clients (FedNova's a_i and weights), which a secure sum hides.
  virtual bool server_reads_reports() const { return false; }

  // Bytes of one client's upload as the simulated system plans a round
  // with (deadlines, partial work), before the client has trained. Default:
  // UploadSize() * 4; algorithms with encoded uploads give their typical size.
  virtual int64_t PlannedUploadBytes() const { return UploadSize() * static_cast<int64_t>(sizeof(float)); }

  // True when clients compute full-batch gradients (FedSGD, FedGiA), so
  // workspaces are sized for whole clients rather than for batch_size.
  virtual bool FullBatch() const { return false; }

  // Gradient evaluations per local step relative to plain local SGD (Ditto
  // and APFL 2, pFedMe K, Per-FedAvg 2 or 4, FedRep (head + body epochs) /
  // body epochs): the simulated system plans a client's work and fits its
  // partial work with it. Default 1.
  virtual double WorkPerStep() const { return 1.0; }

  // Cohort size for this round given the configured one (FedGiA: everyone).
  virtual int CohortSize(int configured, int num_clients) const { return configured; }

  // Server-side preparation before the cohort trains (e.g. a new sparsity
  // mask, FedGiA's ADMM subset). May modify the global model.
  virtual void BeginRound(Eigen::VectorXf& global, int round, const std::vector<int>& cohort, uint64_t seed) {}

  // Bytes `client` downloads this round (default: the dense model).
  virtual int64_t DownloadBytes(int client) const { return num_params_ * static_cast<int64_t>(sizeof(float)); }

  // Trains task.client from `global` and writes its upload (UploadSize()
  // floats) to `upload`. Reports bytes_up = -1 to mean "UploadSize() * 4".
  virtual ClientReport LocalUpdate(const TrainContext& ctx, const ClientTask& task, const float* global,
                                   float* upload, ClientScratch& scratch) = 0;

  // Applies the weighted mean of the cohort's uploads (sum_k w_k u_k /
  // sum_k w_k) to the global model; `reports` are the cohort's, in cohort
  // order.
  virtual void ServerUpdate(Eigen::VectorXf& global, const Eigen::VectorXf& mean_upload,
                            const std::vector<ClientReport>& reports, int round) = 0;

  // The model `task.client` predicts with after round task.round (0-based),
  // written to scratch.params (num_params floats) from the global
  // parameters: by default the global model itself; a personalised algorithm
  // gives the client's own (Ditto's v_k, FedPer's head on the global body,
  // Per-FedAvg's one adaptation step). Called by per-client evaluation on
  // the process that holds the client's state, concurrently for distinct
  // clients: it may read that state and its scratch, and change nothing
  // else. task.indices are the client's training rows, task.lr the round's
  // client learning rate.
  virtual void PersonalModel(const TrainContext& ctx, const ClientTask& task, const float* global,
                             ClientScratch& scratch) {
    scratch.params = Eigen::Map<const Eigen::VectorXf>(global, ctx.model->num_params());
  }
  // True when PersonalModel is not the global model.
  virtual bool personalized() const { return false; }

  // Persistent per-client state, for memory reporting; the round loop also
  // configures its precision and placement (ClientStateStore::Configure).
  virtual const ClientStateStore* client_state() const { return nullptr; }
  ClientStateStore* mutable_client_state() { return const_cast<ClientStateStore*>(client_state()); }
  // A client's update was discarded as non-finite: forget the state it left
  // behind so that a NaN does not stay in it for good.
  virtual void ForgetClient(int client) {
    if (auto* st = mutable_client_state()) st->Clear(client);
  }

  // Called for every cohort member, in cohort order and on one thread, after
  // its block has trained; in a distributed run on every rank, also for
  // members another rank trained. For bookkeeping that the server side reads
  // for all clients (FedSparse: who took part when), which must therefore not
  // be written in LocalUpdate (that runs only where the client lives).
  virtual void AfterClient(const ClientTask& task) {}

  // Everything the algorithm carries from one round to the next (server
  // optimizer moments, control variates, client state), for checkpoints.
  virtual void SaveState(CheckpointWriter& w) const {}
  // REQUIRES: Setup() was called with the same model size and population.
  virtual void LoadState(const CheckpointReader& r) {}

 protected:
  // The number of clients that train: `population` (Setup's num_clients)
  // less the held-out ones.
  int TrainingPopulation(int population) const {
    return trainers_.empty() ? population : static_cast<int>(trainers_.size());
  }

  int64_t num_params_ = 0;
  std::vector<int> trainers_;  // SetTrainingClients; empty: everyone trains
};

// A named component with one line of description, for `fedsim list`.
struct CatalogEntry {
  std::string name;
  std::string summary;
  // Algorithms only: true for a generative algorithm (fedgan), which has its
  // own client trainer and evaluator, no Algorithm object and no classifier.
  bool generative = false;
};

struct Catalog {
  std::vector<CatalogEntry> datasets, partitioners, models, algorithms;
};

// The registry: every selectable component by name (registry.cpp).
const Catalog& GetCatalog();
// pers: the personalised algorithms' settings (personalization.*).
std::unique_ptr<Algorithm> CreateAlgorithm(const AlgorithmConfig& cfg, const PersonalizationConfig& pers = {});

}  // namespace fedsim
