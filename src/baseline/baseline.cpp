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
#include "round/evaluator.h"
#include "round/federated_run.h"
#include "round/run_recorder.h"
#include "sim/system.h"

namespace fedsim {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }


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

// What a baseline carries from one epoch to the next (and across a resume),
// besides the evaluator's figures and the model.
struct Totals {
  int next_round = 0;  // epochs done
  int64_t steps = 0, samples = 0, bytes_up = 0, bytes_down = 0;
  double sim_time_s = 0.0, train_seconds = 0.0;
  json steps_to_target = nullptr;

  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Totals, next_round, steps, samples, bytes_up, bytes_down, sim_time_s, train_seconds,
                                 steps_to_target)
  json ToJson() const { return *this; }
  void FromJson(const json& j) { j.get_to(*this); }
};

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

json RunBaseline(const Config& cfg, const RunOptions& opt, Comm& comm, SetupAgreement& setup) {
  ValidateConfig(cfg);
  const BaselineConfig& bc = cfg.baseline;
  if (bc.kind == "none") throw InputError("baseline.kind: none is the federated run, not a baseline");
  const int threads = ResolveThreads(opt.threads);
  const uint64_t seed = cfg.experiment.seed;
  // Not split over processes: under MPI every rank runs the whole
  // (deterministic) run and rank 0 alone writes and reports.
  RunRecorder recorder(cfg, opt, comm, setup);

  const FederatedData data = LoadData(cfg.data, cfg.data.seed >= 0 ? static_cast<uint64_t>(cfg.data.seed) : seed);
  const int n = static_cast<int>(data.train.size());
  const bool parallel = bc.kind == "data_parallel";
  const int workers = parallel ? bc.workers : 1;
  if (workers > n) {
    throw InputError(fmt::format("baseline.workers: {} workers need at least as many training samples, got {}",
                                 workers, n));
  }
  const std::unique_ptr<Model> model =
      CreateModel(cfg.model, data.train.dim(), data.train.num_classes, std::nullopt, data.train.shape,
                  data.train.vocab_size, data.train.next_token);
  if (model->HasState()) {
    throw InputError("baseline.kind: the baselines average gradients over workers and do not move batchnorm's running "
                     "statistics; model.kind=" + cfg.model.kind + " has batchnorm layers (use groupnorm or layernorm "
                     "for a baseline)");
  }
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
  for (int t = 0; t < threads; ++t) {
    auto& s = scratch[static_cast<size_t>(t)];
    s.ws = model->NewWorkspace(std::max(max_chunk, kEvalChunk));
    s.grad.resize(p);
    s.grad_acc.resize(p);
    s.batch_x.resize(max_chunk, data.train.dim());
    s.batch_y.resize(static_cast<size_t>(max_chunk));
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
  doc["environment"] = RunEnvironment(threads, comm.size());
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

  CentralEvaluator evaluator(*model, data.test, cfg.metrics.eval_train ? &data.train : nullptr,
                             cfg.experiment.target_accuracy, threads);
  Totals tot;
  if (const json saved = recorder.Restore(doc, bc.epochs); !saved.is_null()) {
    try {
      tot.FromJson(saved);
      evaluator.LoadTotals(saved);
    } catch (const json::exception& e) {
      throw InputError(fmt::format("{}: checkpoint totals are damaged: {}", CheckpointPath(opt.out_dir), e.what()));
    }
    const CheckpointReader& ck = *recorder.resume();
    global = ck.F32("baseline/global", p);
    if (bc.momentum != 0.0) sgd.set_velocity(ck.F32("baseline/velocity", p));
    recorder.StartLoop(saved);
  } else {
    recorder.StartLoop(nullptr);
  }
  setup.Close();
  std::string status = "completed";
  const RunRecorder::SaveFn save{[&] {
                                   json t = tot.ToJson();
                                   evaluator.SaveTotals(t);
                                   return t;
                                 },
                                 [&](CheckpointWriter& w) {
                                   w.F32("baseline/global", global);
                                   if (bc.momentum != 0.0) w.F32("baseline/velocity", sgd.velocity());
                                 }};
  std::vector<std::vector<int>> order(static_cast<size_t>(workers));

  for (int e = tot.next_round; e < bc.epochs; ++e) {
    const auto t_epoch = Clock::now();
    const double wall_round0 = recorder.WallSeconds();
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
                          scratch[static_cast<size_t>(tid)],
                          StepNoiseSeed(seed, e, static_cast<int>(w), e * steps_per_epoch + s));
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
      ++tot.steps;
      tot.bytes_up += step_bytes.up;
      tot.bytes_down += step_bytes.down;
      epoch_sim += step_compute + exchange_s;
    }
    tot.train_seconds += Seconds(t_epoch, Clock::now());
    tot.samples += epoch_samples;
    tot.sim_time_s += epoch_sim;
    if (status == "completed" && !global.allFinite()) status = "diverged";

    const bool eval = status == "completed" && (e + 1 == bc.epochs || (e + 1) % cfg.metrics.eval_every == 0);
    CentralEvaluator::Result score;
    if (eval) {
      score = evaluator.Evaluate(global.data());
      if (score.diverged) status = "diverged";
      if (status == "completed") {
        const bool first_hit = evaluator.rounds_to_target().is_null();
        evaluator.Track(e + 1, score);
        if (first_hit && !evaluator.rounds_to_target().is_null()) tot.steps_to_target = tot.steps;
      }
    }
    json rec = {
        {"round", e + 1},
        {"epoch", e + 1},
        {"workers", workers},
        {"steps", tot.steps},
        {"lr", bc.lr},
        {"train_loss", epoch_samples ? NullableNumber(epoch_loss / static_cast<double>(epoch_samples)) : json(nullptr)},
        {"train_samples", epoch_samples},
        {"bytes_up", tot.bytes_up},
        {"bytes_down", tot.bytes_down},
        {"round_bytes_up", static_cast<int64_t>(steps_per_epoch) * step_bytes.up},
        {"round_bytes_down", static_cast<int64_t>(steps_per_epoch) * step_bytes.down},
        {"sim_round_s", epoch_sim},
        {"sim_time_s", tot.sim_time_s},
    };
    evaluator.Record(rec, eval ? &score : nullptr);
    const double wall_now = recorder.WallSeconds();
    rec["wall_round_seconds"] = wall_now - wall_round0;
    rec["wall_seconds"] = wall_now;
    recorder.Append(doc, rec, bc.epochs);
    tot.next_round = e + 1;
    const int sig = opt.stop ? opt.stop->load() : 0;
    if (!recorder.Next(e + 1, bc.epochs, status, sig, doc, save)) break;
  }
  recorder.Close(status, doc, save);

  const double train_seconds = tot.train_seconds;
  const int64_t samples = tot.samples;
  const double train_flops =
      static_cast<double>(samples) * model->TrainFlopsPerSample() +
      static_cast<double>(tot.steps) * workers * model->TrainFlopsPerBatch();
  json summary = recorder.SummaryHead(status, bc.epochs, tot.next_round);
  evaluator.Summarize(summary);
  summary.update({
      {"steps_to_target", tot.steps_to_target},
      {"steps", tot.steps},
      {"bytes_up", tot.bytes_up},
      {"bytes_down", tot.bytes_down},
      {"train_samples", samples},
      {"skipped_updates", 0},
      {"epsilon", nullptr},
      {"delta", nullptr},
      {"sim_time_s", tot.sim_time_s},
      {"train_gflop", train_flops / 1e9},
      {"peak_rss_mib", PeakRssMib()},
      {"wall_seconds", recorder.WallSeconds()},
      {"wall_setup_seconds", recorder.setup_seconds()},
      {"wall_train_seconds", train_seconds},
      {"wall_train_samples_per_second", train_seconds > 0 ? samples / train_seconds : 0.0},
      {"wall_train_gflops", train_seconds > 0 ? train_flops / train_seconds / 1e9 : 0.0},
  });
  doc["summary"] = summary;
  recorder.Finish(doc);
  return doc;
}

}  // namespace fedsim
