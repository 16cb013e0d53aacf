// Models over one flat float32 parameter vector. The caller owns the
// parameters; a model only knows the layout and the maths, and each layer is
// an Eigen::Map on its slice. Aggregation is therefore plain vector
// arithmetic and a model's wire size is num_params() * 4 bytes.
//
// Thread-safety: a Model is immutable after creation and may be shared by all
// threads; each thread passes its own Workspace.
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/rng.h"
#include "data/dataset.h"

namespace fedsim {

// Scratch memory for one thread (activations, batch buffers). Created once per
// run by Model::NewWorkspace and reused for every batch.
class Workspace {
 public:
  virtual ~Workspace() = default;

  // Randomness of stochastic layers (dropout) in LossAndGradient; Evaluate
  // never draws. The trainer sets it before each step (StepNoiseSeed in
  // fl/local_training.h): sample i of the next batch draws its masks from
  // (seed, layer, first_sample + i), so a step's masks do not depend on how
  // its batch is split into calls, nor on the thread that runs it. Models
  // without stochastic layers ignore it.
  struct Noise {
    uint64_t seed = 0;
    int64_t first_sample = 0;
  };
  Noise noise;
};

// A named slice of the flat parameter vector: one tensor of one layer
// ("layers.3.weight"), for algorithms that address layers by name.
struct ParamRange {
  std::string name;
  int64_t offset = 0;
  int64_t size = 0;
  bool local = false;  // kept on each client by fedbn (a layer spec's "local": true)
  bool state = false;  // model state, not trained (batchnorm's running statistics): averaged by the server
  int layer = -1;      // the layer engine's top-level layer holding it (a residual block is one); -1: not known
};

// Sum of the per-sample loss and the number of correct predictions over a
// set of samples.
struct EvalSums {
  double loss_sum = 0.0;
  int64_t correct = 0;
  int64_t count = 0;
  // Mean loss and accuracy; NaN over no samples.
  double MeanLoss() const { return count ? loss_sum / static_cast<double>(count) : std::nan(""); }
  double Accuracy() const { return count ? static_cast<double>(correct) / static_cast<double>(count) : std::nan(""); }
};

class Model {
 public:
  virtual ~Model() = default;

  virtual std::string kind() const = 0;
  virtual int64_t num_params() const = 0;
  // One line for people: layer sizes.
  virtual std::string Describe() const = 0;
  // Multiply-adds x 2 for forward plus backward on one sample (for GFLOP/s).
  virtual double TrainFlopsPerSample() const = 0;
  // Work per training batch independent of its size (FedPara forms its
  // weights once per batch); 0 for most models.
  virtual double TrainFlopsPerBatch() const { return 0.0; }

  // Initial parameters drawn from rng.
  virtual void Init(float* params, Rng& rng) const = 0;

  // Workspace able to hold batches of up to max_batch samples.
  virtual std::unique_ptr<Workspace> NewWorkspace(int max_batch) const = 0;

  // Mean cross-entropy over the batch rows x (b x dim) with labels y, and its
  // gradient with respect to params written to grad (num_params floats,
  // overwritten). REQUIRES: b <= the workspace's max_batch.
  virtual double LossAndGradient(const float* params, const float* x, const int* y, int b,
                                 float* grad, Workspace& ws) const = 0;

  // Loss sum and correct count over the b rows x (b x dim) with labels y.
  // REQUIRES: b <= the workspace's max_batch.
  virtual EvalSums Evaluate(const float* params, const float* x, const int* y, int b, Workspace& ws) const = 0;

  // Model state besides the trained weights (the layer engine's batchnorm
  // running statistics): entries of the parameter vector whose gradient is
  // always 0 and that UpdateState moves, after a local step's parameter
  // update, from the statistics of that step's training forward pass (the
  // last LossAndGradient call on ws). Trainers that support it call
  // UpdateState after every local step; the others refuse such models.
  virtual bool HasState() const { return false; }
  virtual void UpdateState(float* /*params*/, const Workspace& /*ws*/) const {}

  // The parameter tensors in layout order, covering [0, num_params()). The
  // layer engine (sequential.h) names one range per tensor; the other models
  // give one range named after their kind.
  virtual std::vector<ParamRange> ParamRanges() const { return {{kind(), 0, num_params()}}; }

  // The number of scored targets among b samples, the denominator of
  // LossAndGradient's mean: b, except on next-token data, where every step of
  // a row predicts one id and pad ids are not scored.
  virtual int64_t ScoredTargets(const float* /*x*/, int b) const { return b; }
};

// Builds the model named by cfg.kind for inputs of `input_dim` features and
// `num_classes` classes. With fedpara_gamma set, every dense and convolutional
// layer is re-parameterised as FedPara's low-rank Hadamard product with that
// rank ratio (algorithm.name = fedpara). softmax and mlp are the layer
// engine's dense stacks in its rows layout (MakeDenseStack). Throws InputError for unknown kinds.
// `shape` is the data's {C, H, W} (may be empty), used by the CNNs unless
// cfg.input_shape overrides it; for token data it is {T} and vocab_size > 0
// (Dataset::vocab_size). model.kind=sequential and the presets are built by
// the layer engine (sequential.h), which refuses a model that does not fit
// the data (an image layer on flat data, an embedding on non-token data) with
// an InputError naming the model key and the data.
// next_token (Dataset::next_token) asks for a prediction at every step: only
// the layer engine's models that output a sequence accept it.
std::unique_ptr<Model> CreateModel(const ModelConfig& cfg, int input_dim, int num_classes,
                                   std::optional<double> fedpara_gamma = std::nullopt,
                                   const std::vector<int>& shape = {}, int vocab_size = 0, bool next_token = false);

// Evaluates the whole dataset in fixed chunks on `threads` threads; sums are
// reduced in chunk order, so the result does not depend on the thread count.
// workspaces must hold at least `threads` entries with max_batch >= kEvalChunk.
constexpr int kEvalChunk = 256;
EvalSums EvaluateDataset(const Model& model, const float* params, const Dataset& data, int threads,
                         std::vector<std::unique_ptr<Workspace>>& workspaces);

}  // namespace fedsim
