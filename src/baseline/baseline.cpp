#include "baseline/baseline.h"

#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/comm.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "fl/algorithm.h"
#include "fl/local_training.h"
#include "metrics/writer.h"
#include "model/model.h"
#include "sim/system.h"

namespace fedsim {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

json Nullable(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

// The shard stream's "round" (epochs use 0, 1, ...).
constexpr uint64_t kShards = ~uint64_t{0};

// Simulated seconds of one step's gradient exchange over the workers' links
// (and, for a parameter server, the server's link, which carries all W
// messages each way).
double ExchangeSeconds(const std::vector<Device>& dev, int64_t num_params, const BaselineConfig& b) {
  const int w = static_cast<int>(dev.size());
  if (w <= 1) return 0.0;
  const int64_t model_bytes = num_params * static_cast<int64_t>(sizeof(float));
  if (b.topology == "ring") {
    // Reduce-scatter then all-gather: 2 (W - 1) phases, each passing one
    // chunk of ceil(P / W) floats to the next worker at once; a phase lasts
    // as long as its slowest link.
    const int64_t chunk = (num_params + w - 1) / w * static_cast<int64_t>(sizeof(float));
    double phase = 0.0;
    for (const Device& d : dev) phase = std::max(phase, SystemModel::TransferSeconds(chunk, d.up_bps, d.latency_s));
    return 2.0 * (w - 1) * phase;
  }
  const double server_bps = b.server_mbps * 1e6;
  double push = 0.0, pull = 0.0;
  for (const Device& d : dev) {
    push = std::max(push, SystemModel::TransferSeconds(model_bytes, d.up_bps, d.latency_s));
    pull = std::max(pull, SystemModel::TransferSeconds(model_bytes, d.down_bps, d.latency_s));
  }
  const double server = 8.0 * static_cast<double>(model_bytes) * w / server_bps;
  return std::max(push, server) + std::max(pull, server);
}

}  // namespace

StepBytes DataParallelStepBytes(int64_t num_params, int workers, const std::string& topology) {
  const int64_t model_bytes = num_params * static_cast<int64_t>(sizeof(float));
  StepBytes s;
  if (workers <= 1) return s;
  if (topology == "ring") {
    // Every chunk of the model crosses W - 1 links in each of the two phases.
    s.up = s.down = 2 * static_cast<int64_t>(workers - 1) * model_bytes;
  } else {
    s.up = s.down = static_cast<int64_t>(workers) * model_bytes;
  }
  return s;
}

json RunBaseline(const Config& cfg, const RunOptions& opt) {
  ValidateConfig(cfg);
  const BaselineConfig& bc = cfg.baseline;
  if (bc.kind == "none") throw InputError("baseline.kind: none is the federated run, not a baseline");
  if (opt.resume) {
    throw InputError("--resume: baselines (baseline.kind=" + bc.kind + ") write no checkpoint; rerun them instead");
  }
  const auto t_start = Clock::now();
  const int threads = ResolveThreads(opt.threads);
  const uint64_t seed = cfg.experiment.seed;
  std::unique_ptr<MetricsWriter> writer;
  if (!opt.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove(std::filesystem::path(opt.out_dir) / "checkpoint.bin", ec);  // not this run's
    writer = std::make_unique<MetricsWriter>(opt.out_dir);
    writer->WriteConfig(ToJson(cfg));
  }

  const FederatedData data = LoadData(cfg.data, cfg.data.seed >= 0 ? static_cast<uint64_t>(cfg.data.seed) : seed);
  const int n = static_cast<int>(data.train.size());
  const bool parallel = bc.kind == "data_parallel";
  const int workers = parallel ? bc.workers : 1;
  if (workers > n) {
    throw InputError(fmt::format("baseline.workers: {} workers need at least as many training samples, got {}",
                                 workers, n));
  }
  const std::unique_ptr<Model> model =
      CreateModel(cfg.model, data.train.dim(), data.train.num_classes, std::nullopt, data.train.shape);
  const int64_t p = model->num_params();

  // IID shards: one shuffle of the training rows, cut into W near-equal
  // contiguous pieces. Every step each worker takes the next batch of its
  // shard; an epoch is as many steps as the smallest shard fills.
  std::vector<int> rows(static_cast<size_t>(n));
  std::iota(rows.begin(), rows.end(), 0);
  if (parallel) {
    Rng r = DeriveStream(seed, Stream::kBaseline, kShards);
    r.Shuffle(rows.begin(), rows.end());
  }
  std::vector<std::vector<int>> shard(static_cast<size_t>(workers));
  for (int w = 0; w < workers; ++w) {
    const int64_t lo = static_cast<int64_t>(n) * w / workers, hi = static_cast<int64_t>(n) * (w + 1) / workers;
    shard[static_cast<size_t>(w)].assign(rows.begin() + lo, rows.begin() + hi);
  }
  const int min_shard = static_cast<int>(n / workers);
  const int batch = std::min(bc.batch_size, min_shard);
  const int64_t steps_per_epoch = (min_shard + batch - 1) / batch;

  // Devices: worker w is device w of the system model (the same draws a
  // federated client w gets).
  const SystemModel system(cfg.system, seed, model->TrainFlopsPerSample(), model->TrainFlopsPerBatch());
  std::vector<Device> device;
  for (int w = 0; w < workers; ++w) device.push_back(system.DeviceOf(w));
  const StepBytes step_bytes = DataParallelStepBytes(p, workers, bc.topology);
  const double exchange_s = ExchangeSeconds(device, p, bc);

  // Per-thread scratch; one gradient column per worker.
  const int max_chunk = std::max(1, std::min(batch, 512));
  std::vector<ClientScratch> scratch(static_cast<size_t>(threads));
  std::vector<std::unique_ptr<Workspace>> eval_ws(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    auto& s = scratch[static_cast<size_t>(t)];
    s.ws = model->NewWorkspace(std::max(max_chunk, kEvalChunk));
    s.grad.resize(p);
    s.grad_acc.resize(p);
    s.batch_x.resize(max_chunk, data.train.dim());
    s.batch_y.resize(static_cast<size_t>(max_chunk));
    eval_ws[static_cast<size_t>(t)] = model->NewWorkspace(kEvalChunk);
  }
  TrainContext ctx;
  ctx.model = model.get();
  ctx.train = &data.train;
  ctx.cfg = &cfg.algorithm;
  ctx.seed = seed;
  ctx.max_chunk = max_chunk;
  Eigen::MatrixXf grads(p, workers);
  std::vector<double> loss(static_cast<size_t>(workers));
  std::vector<int> count(static_cast<size_t>(workers));
  Eigen::VectorXf global(p), mean_grad(p);
  {
    Rng init = DeriveStream(seed, Stream::kModelInit);
    model->Init(global.data(), init);
  }
  Sgd sgd(static_cast<float>(bc.momentum), 0.0f);
  sgd.Reset(p);

  json doc;
  doc["config"] = ToJson(cfg);
  doc["environment"] = RunEnvironment(threads, opt.comm ? opt.comm->size() : 1);
  doc["data"] = DescribeData(data);
  doc["model"] = DescribeModel(*model);
  doc["baseline"] = {{"kind", bc.kind},
                     {"workers", workers},
                     {"topology", parallel ? json(bc.topology) : json(nullptr)},
                     {"batch_size", batch},
                     {"global_batch", static_cast<int64_t>(batch) * workers},
                     {"steps_per_epoch", steps_per_epoch},
                     {"shard_samples", min_shard},
                     {"step_bytes_up", step_bytes.up},
                     {"step_bytes_down", step_bytes.down},
                     {"step_exchange_s", exchange_s}};
  doc["rounds"] = json::array();

  const auto t_loop = Clock::now();
  const double setup_seconds = Seconds(t_start, t_loop);
  std::string status = "completed";
  json diverged_round = nullptr, rounds_to_target = nullptr, steps_to_target = nullptr;
  int stop_signal = 0, completed = 0, best_round = 0;
  int64_t steps = 0, samples = 0, bytes_up = 0, bytes_down = 0;
  double sim_time_s = 0.0, train_seconds = 0.0, final_acc = NAN, final_loss = NAN, best_acc = NAN;
  std::vector<std::vector<int>> order(static_cast<size_t>(workers));

  for (int e = 0; e < bc.epochs; ++e) {
    const auto t_epoch = Clock::now();
    for (int w = 0; w < workers; ++w) {
      order[static_cast<size_t>(w)] = shard[static_cast<size_t>(w)];
      Rng r = DeriveStream(seed, Stream::kBaseline, static_cast<uint64_t>(e), static_cast<uint64_t>(w));
      r.Shuffle(order[static_cast<size_t>(w)].begin(), order[static_cast<size_t>(w)].end());
    }
    double epoch_loss = 0.0, epoch_sim = 0.0;
    int64_t epoch_samples = 0;
    for (int64_t s = 0; s < steps_per_epoch && status == "completed"; ++s) {
      const int begin = static_cast<int>(s * batch);
      ParallelFor(workers, threads, [&](int64_t w, int tid) {
        const int b = std::min(batch, min_shard - begin);
        loss[static_cast<size_t>(w)] =
            BatchGradient(ctx, global.data(), order[static_cast<size_t>(w)].data() + begin, b,
                          scratch[static_cast<size_t>(tid)]);
        grads.col(w) = scratch[static_cast<size_t>(tid)].grad_acc;
        count[static_cast<size_t>(w)] = b;
      });
      // The all-reduced mean gradient, summed in worker order.
      int64_t step_samples = 0;
      for (int c : count) step_samples += c;
      mean_grad.setZero();
      double step_compute = 0.0;
      for (int w = 0; w < workers; ++w) {
        const int b = count[static_cast<size_t>(w)];
        mean_grad += (static_cast<float>(b) / static_cast<float>(step_samples)) * grads.col(w);
        epoch_loss += loss[static_cast<size_t>(w)] * b;
        step_compute = std::max(step_compute, system.ComputeSeconds(device[static_cast<size_t>(w)].flops, b, 1));
      }
      if (!std::isfinite(epoch_loss) || !mean_grad.allFinite()) {
        status = "diverged";
        break;
      }
      sgd.Step(global.data(), mean_grad.data(), p, static_cast<float>(bc.lr));
      epoch_samples += step_samples;
      ++steps;
      bytes_up += step_bytes.up;
      bytes_down += step_bytes.down;
      epoch_sim += step_compute + exchange_s;
    }
    train_seconds += Seconds(t_epoch, Clock::now());
    samples += epoch_samples;
    sim_time_s += epoch_sim;
    if (status == "completed" && !global.allFinite()) status = "diverged";

    const bool last = e + 1 == bc.epochs;
    const bool eval = status == "completed" && (last || (e + 1) % cfg.metrics.eval_every == 0);
    double test_loss = NAN, test_acc = NAN;
    if (eval) {
      const EvalSums r = EvaluateDataset(*model, global.data(), data.test, threads, eval_ws);
      test_loss = r.MeanLoss();
      test_acc = r.Accuracy();
      if (r.count && !std::isfinite(test_loss)) {
        status = "diverged";
        test_acc = NAN;
      }
    }
    double train_loss_global = NAN, train_acc_global = NAN;
    if (eval && cfg.metrics.eval_train) {
      const EvalSums r = EvaluateDataset(*model, global.data(), data.train, threads, eval_ws);
      train_loss_global = r.MeanLoss();
      train_acc_global = r.Accuracy();
    }
    if (eval && status == "completed") {
      final_acc = test_acc;
      final_loss = test_loss;
      if (std::isnan(best_acc) || test_acc > best_acc) {
        best_acc = test_acc;
        best_round = e + 1;
      }
      if (cfg.experiment.target_accuracy && rounds_to_target.is_null() && test_acc >= *cfg.experiment.target_accuracy) {
        rounds_to_target = e + 1;
        steps_to_target = steps;
      }
    }
    const auto t_end = Clock::now();
    json rec = {
        {"round", e + 1},
        {"epoch", e + 1},
        {"workers", workers},
        {"steps", steps},
        {"lr", bc.lr},
        {"train_loss", epoch_samples ? Nullable(epoch_loss / static_cast<double>(epoch_samples)) : json(nullptr)},
        {"test_loss", eval ? Nullable(test_loss) : json(nullptr)},
        {"test_accuracy", eval ? Nullable(test_acc) : json(nullptr)},
        {"train_samples", epoch_samples},
        {"bytes_up", bytes_up},
        {"bytes_down", bytes_down},
        {"round_bytes_up", static_cast<int64_t>(steps_per_epoch) * step_bytes.up},
        {"round_bytes_down", static_cast<int64_t>(steps_per_epoch) * step_bytes.down},
        {"sim_round_s", epoch_sim},
        {"sim_time_s", sim_time_s},
        {"wall_round_seconds", Seconds(t_epoch, t_end)},
        {"wall_seconds", Seconds(t_loop, t_end)},
    };
    if (cfg.metrics.eval_train) {
      rec["global_train_loss"] = eval ? Nullable(train_loss_global) : json(nullptr);
      rec["global_train_accuracy"] = eval ? Nullable(train_acc_global) : json(nullptr);
    }
    if (writer) writer->AppendRound(rec);
    doc["rounds"].push_back(rec);
    completed = e + 1;
    if (opt.on_round) opt.on_round(rec, bc.epochs);
    if (status == "diverged") {
      diverged_round = e + 1;
      break;
    }
    if (last) break;
    const int sig = opt.stop ? opt.stop->load() : 0;
    if (sig != 0 || (opt.stop_after_round > 0 && e + 1 >= opt.stop_after_round)) {
      status = "interrupted";
      stop_signal = sig;
      break;
    }
  }

  const double wall = Seconds(t_loop, Clock::now());
  const double train_flops =
      static_cast<double>(samples) * model->TrainFlopsPerSample() +
      static_cast<double>(steps) * workers * model->TrainFlopsPerBatch();
  doc["summary"] = {
      {"status", status},
      {"rounds", bc.epochs},
      {"rounds_completed", completed},
      {"diverged_round", diverged_round},
      {"signal", stop_signal ? json(stop_signal) : json(nullptr)},
      {"final_test_accuracy", Nullable(final_acc)},
      {"final_test_loss", Nullable(final_loss)},
      {"best_test_accuracy", Nullable(best_acc)},
      {"best_round", best_round},
      {"target_accuracy", cfg.experiment.target_accuracy ? json(*cfg.experiment.target_accuracy) : json(nullptr)},
      {"rounds_to_target", rounds_to_target},
      {"steps_to_target", steps_to_target},
      {"steps", steps},
      {"bytes_up", bytes_up},
      {"bytes_down", bytes_down},
      {"train_samples", samples},
      {"skipped_updates", 0},
      {"epsilon", nullptr},
      {"delta", nullptr},
      {"sim_time_s", sim_time_s},
      {"train_gflop", train_flops / 1e9},
      {"peak_rss_mib", PeakRssMib()},
      {"wall_seconds", wall},
      {"wall_setup_seconds", setup_seconds},
      {"wall_train_seconds", train_seconds},
      {"wall_train_samples_per_second", train_seconds > 0 ? samples / train_seconds : 0.0},
      {"wall_train_gflops", train_seconds > 0 ? train_flops / train_seconds / 1e9 : 0.0},
  };
  if (writer) writer->WriteFinal(doc);
  return doc;
}

}  // namespace fedsim
