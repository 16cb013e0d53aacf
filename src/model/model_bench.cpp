#include "model/model_bench.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "core/rng.h"
#include "model/model.h"

namespace fedsim {

namespace {

using Clock = std::chrono::steady_clock;

// One simulated client: its parameters, workspace, gradient and data.
struct BenchClient {
  Eigen::VectorXf params, grad;
  std::vector<float> x;
  std::vector<int> y;
  std::unique_ptr<Workspace> ws;
  double last_loss = 0.0;
};

// Runs `epochs` local epochs of client c.
void TrainEpochs(const Model& model, const ModelBenchSpec& spec, BenchClient& c, int64_t epochs) {
  const int64_t p = model.num_params();
  for (int64_t e = 0; e < epochs; ++e) {
    for (int begin = 0; begin < spec.samples; begin += spec.batch) {
      const int b = std::min(spec.batch, spec.samples - begin);
      c.ws->noise = {static_cast<uint64_t>(e), begin};
      c.last_loss = model.LossAndGradient(c.params.data(), c.x.data() + static_cast<size_t>(begin) * spec.dim,
                                          c.y.data() + begin, b, c.grad.data(), *c.ws);
      Eigen::Map<Eigen::VectorXf>(c.params.data(), p) -= spec.lr * c.grad;
    }
  }
}

// Runs fn(t) on spec.threads threads, one call each, and rethrows the first
// exception after the region.
template <class Fn>
void OnEachThread(int threads, Fn&& fn) {
  std::exception_ptr error;
  std::mutex mu;
#pragma omp parallel num_threads(threads)
  {
    try {
      fn(omp_get_thread_num());
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

void SetBenchInput(ModelBenchSpec& spec) {
  const std::string& k = spec.model.kind;
  spec.vocab_size = 0;
  spec.next_token = false;
  if (k == "leaf_femnist_cnn" || k == "tff_emnist_cnn") {
    spec.shape = {1, 28, 28};
    spec.num_classes = 62;
  } else if (k == "cnn_mcmahan" || k == "cnn_lenet") {
    spec.shape = {1, 28, 28};
    spec.num_classes = 10;
  } else if (k == "niid_cifar_cnn" || k == "resnet20_gn") {
    spec.shape = {3, 32, 32};
    spec.num_classes = 10;
  } else if (k == "leaf_shakespeare_lstm") {
    spec.shape = {80};
    spec.vocab_size = 80;
    spec.num_classes = 80;
  } else if (k == "tff_stackoverflow_lstm") {
    // TFF's next-word rows: 20 + 1 word ids of 10,000 words and pad, oov, bos, eos.
    spec.shape = {21};
    spec.vocab_size = 10004;
    spec.num_classes = 10004;
    spec.next_token = true;
  } else if (k == "sent140_lstm") {
    spec.shape = {25};
    spec.vocab_size = 10001;
    spec.num_classes = 2;
  } else if (k == "mlp" || k == "softmax") {
    spec.shape = {};
    spec.dim = 784;
    spec.num_classes = 10;
    return;
  } else {
    throw InputError("bench-model: --model " + k + " has no benchmark input shape");
  }
  spec.dim = 1;
  for (int v : spec.shape) spec.dim *= v;
}

ModelBenchResult MeasureModelTraining(const ModelBenchSpec& spec) {
  if (spec.batch < 1 || spec.samples < 1 || spec.threads < 1 || spec.dim < 1) {
    throw InputError("bench-model: batch, samples, threads and the input size must be positive");
  }
  const auto model =
      CreateModel(spec.model, spec.dim, spec.num_classes, std::nullopt, spec.shape, spec.vocab_size, spec.next_token);
  const int64_t p = model->num_params();
  ModelBenchResult r;
  r.kind = model->kind();
  r.description = model->Describe();
  r.num_params = p;
  r.threads = spec.threads;
  r.train_flops_per_sample = model->TrainFlopsPerSample() + model->TrainFlopsPerBatch() / spec.batch;

  Eigen::VectorXf init(p);
  Rng init_rng = DeriveStream(spec.seed, Stream::kModelInit);
  model->Init(init.data(), init_rng);

  std::vector<BenchClient> clients(static_cast<size_t>(spec.threads));
  OnEachThread(spec.threads, [&](int t) {
    // Allocated and first touched by the thread that trains it.
    BenchClient& c = clients[static_cast<size_t>(t)];
    Rng rng = DeriveStream(spec.seed, Stream::kDataGen, 0, static_cast<uint64_t>(t));
    c.params = init;
    c.grad.resize(p);
    c.x.resize(static_cast<size_t>(spec.samples) * spec.dim);
    c.y.resize(static_cast<size_t>(spec.samples));
    for (float& v : c.x) {
      // Next-token rows: no pad (id 0), so every step is a target.
      v = spec.next_token       ? static_cast<float>(1 + rng.UniformInt(static_cast<uint64_t>(spec.vocab_size - 1)))
          : spec.vocab_size > 0 ? static_cast<float>(rng.UniformInt(static_cast<uint64_t>(spec.vocab_size)))
                                : static_cast<float>(rng.Uniform());
    }
    for (int& v : c.y) v = static_cast<int>(rng.UniformInt(static_cast<uint64_t>(spec.num_classes)));
    c.ws = model->NewWorkspace(spec.batch);
  });

  // Warm-up epoch (pages in the buffers), timed to size the measured run;
  // a timed run shorter than min_seconds (the warm-up was slow) is rerun
  // with more epochs, and the last run counts.
  const auto w0 = Clock::now();
  OnEachThread(spec.threads, [&](int t) { TrainEpochs(*model, spec, clients[static_cast<size_t>(t)], 1); });
  const double warm = std::max(1e-6, std::chrono::duration<double>(Clock::now() - w0).count());
  int64_t epochs = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(spec.min_seconds / warm)));
  for (int attempt = 0;; ++attempt) {
    const auto t0 = Clock::now();
    OnEachThread(spec.threads, [&](int t) { TrainEpochs(*model, spec, clients[static_cast<size_t>(t)], epochs); });
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (r.seconds >= spec.min_seconds || attempt == 3) break;
    epochs = std::max<int64_t>(epochs + 1, static_cast<int64_t>(std::ceil(1.1 * epochs * spec.min_seconds /
                                                                          std::max(r.seconds, 1e-6))));
  }
  r.epochs = epochs * spec.threads;
  r.samples = r.epochs * spec.samples;
  r.samples_per_second = static_cast<double>(r.samples) / r.seconds;
  r.gflops = r.samples_per_second * r.train_flops_per_sample / 1e9;
  r.final_loss = clients[0].last_loss;
  return r;
}

}  // namespace fedsim
