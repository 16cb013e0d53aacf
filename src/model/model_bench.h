// Local-training speed of one model on generated data of its input shape:
// `fedsim bench-model`, which scripts/bench_models.sh and
// scripts/bench_vs_pytorch.sh run beside the machine's GEMM rate
// (gemm_bench.h) and PyTorch. Not a test: it measures; tests only check that
// it runs and reports a positive rate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace fedsim {

struct ModelBenchSpec {
  ModelConfig model;            // kind (a preset or an old kind), hidden for mlp
  std::vector<int> shape;       // {C, H, W} images, {T} tokens, empty = flat
  int dim = 0;                  // features per sample (C*H*W, T, or the flat width)
  int vocab_size = 0;           // > 0: token ids in [0, vocab_size)
  bool next_token = false;      // rows of T + 1 ids, every step predicted (Dataset::next_token)
  int num_classes = 10;
  int batch = 10;               // local SGD batch size
  int samples = 1000;           // samples per client: one local epoch = ceil(samples / batch) steps
  int threads = 1;              // clients trained at once, one per thread (fedsim's parallelism)
  double min_seconds = 2.0;     // whole epochs are repeated until at least this long
  float lr = 0.01f;
  uint64_t seed = 1;
};

struct ModelBenchResult {
  std::string kind;
  std::string description;
  int64_t num_params = 0;
  double train_flops_per_sample = 0.0;  // Model::TrainFlopsPerSample (+ per-batch work / batch)
  int threads = 1;
  int64_t epochs = 0;                   // local epochs timed, all threads together
  int64_t samples = 0;                  // samples trained in the timed epochs, all threads
  double seconds = 0.0;                 // wall time of the timed epochs
  double samples_per_second = 0.0;      // all threads together
  double gflops = 0.0;                  // samples_per_second * train_flops_per_sample / 1e9
  double final_loss = 0.0;              // mean loss of thread 0's last batch (finite: the steps ran)
};

// The data shape each kind is benchmarked on: the preset's own (docs/models.md:
// 1x28x28 and 62 classes for the FEMNIST/EMNIST CNNs, 3x32x32 and 10 for the
// CIFAR ones, 80 tokens of a vocabulary of 80 and 80 classes for Shakespeare,
// 25 tokens of 10,001 ids and 2 classes for Sent140), 1x28x28 and 10 classes
// for cnn_mcmahan and cnn_lenet, 784 flat features and 10 classes for mlp and
// softmax. Fills shape, dim, vocab_size and num_classes of spec from
// spec.model.kind. Throws InputError for a kind it does not know.
void SetBenchInput(ModelBenchSpec& spec);

// Each of spec.threads threads plays one client: its own copy of the initial
// parameters, its own workspace and its own generated data (uniform [0, 1)
// pixels or features, uniform token ids, uniform labels), trained with plain
// SGD (LossAndGradient then w -= lr g, as FedAvg's local step) over whole
// local epochs of spec.batch samples per step, in order. One warm-up epoch
// sizes the timed run; all threads then run the same number of epochs,
// together, timed as one (rerun with more epochs, up to 3 times, while it
// lasts less than spec.min_seconds). The data is generated
// before timing, as floats (fedsim's batch decode from bytes is not timed,
// as PyTorch's data "already in tensors"). Throws InputError for a model
// that does not fit the shape.
ModelBenchResult MeasureModelTraining(const ModelBenchSpec& spec);

}  // namespace fedsim
