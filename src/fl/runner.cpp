#include "fl/runner.h"

#include <fmt/format.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>

#include "baseline/baseline.h"
#include "core/comm.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "fl/algorithm.h"
#include "fl/checkpoint.h"
#include "fl/local_training.h"
#include "fl/fedgan.h"
#include "fl/cohort_exchange.h"
#include "fl/setup_agreement.h"
#include "metrics/writer.h"
#include "model/model.h"
#include "privacy/input_perturbation.h"
#include "privacy/mechanisms.h"
#include "privacy/rdp_accountant.h"
#include "secure/secure_error.h"
#include "secure/secure_sum.h"
#include "sim/system.h"

namespace fedsim {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Clients trained between two reductions (per process: a distributed run's
// block is this times the number of ranks). The sum is accumulated client by
// client in cohort order whatever the block, the thread count or the number
// of ranks, so the aggregate is bitwise reproducible.
constexpr int kAggregationBlock = 64;
// Cap on rank 0's block of uploads in a distributed run (64 per rank until
// the block would exceed this).
constexpr int64_t kMaxBlockBytes = int64_t{1} << 30;
// Coordinates per task when summing uploads in parallel.
constexpr int64_t kReduceSpan = 1 << 14;

json NullableNumber(double x, bool present) { return present && std::isfinite(x) ? json(x) : json(nullptr); }

// The server's noise stream id (clients use their own ids).
constexpr uint64_t kServerStream = ~uint64_t{0};

// Scales v so its L1 norm is at most bound; returns the norm before.
double ClipL1(float* v, int64_t n, double bound) {
  Eigen::Map<Eigen::VectorXf> m(v, n);
  const double norm = m.cast<double>().lpNorm<1>();
  if (norm > bound) {
    m *= static_cast<float>(bound / norm);
    // Float rounding can leave the norm a few ulps above the bound: shrink
    // until it holds, so the sensitivity the noise assumes is exact.
    while (m.cast<double>().lpNorm<1>() > bound) m *= 1.0f - 1e-7f;
  }
  return norm;
}

std::string CheckpointPath(const std::string& dir) { return (std::filesystem::path(dir) / "checkpoint.bin").string(); }

// Cumulative quantities carried across rounds (and across a resume).
struct Totals {
  int next_round = 0;
  int64_t bytes_up = 0, bytes_down = 0, samples = 0, steps = 0, skipped_updates = 0;
  double train_seconds = 0.0, wall_seconds = 0.0;
  double sim_time_s = 0.0;  // simulated clock
  int64_t offline = 0, dropped = 0, late = 0, partial = 0, surplus = 0;  // system outcomes, summed over rounds
  double final_acc = NAN, final_loss = NAN, best_acc = NAN;
  int best_round = 0;
  json rounds_to_target = nullptr;
  double epsilon = 0.0, delta = 0.0;  // privacy spent so far

  json ToJson() const {
    return {{"next_round", next_round},       {"bytes_up", bytes_up},         {"bytes_down", bytes_down},
            {"samples", samples},             {"steps", steps},               {"skipped_updates", skipped_updates},
            {"train_seconds", train_seconds}, {"wall_seconds", wall_seconds}, {"final_acc", NullableNumber(final_acc, true)},
            {"final_loss", NullableNumber(final_loss, true)}, {"best_acc", NullableNumber(best_acc, true)},
            {"best_round", best_round},       {"rounds_to_target", rounds_to_target},
            {"epsilon", epsilon},             {"delta", delta},
            {"sim_time_s", sim_time_s},       {"offline", offline},
            {"dropped", dropped},             {"late", late},
            {"partial", partial},             {"surplus", surplus}};
  }
  void FromJson(const json& j) {
    auto num = [&](const char* k) { return j.at(k).is_null() ? NAN : j.at(k).get<double>(); };
    next_round = j.at("next_round").get<int>();
    bytes_up = j.at("bytes_up").get<int64_t>();
    bytes_down = j.at("bytes_down").get<int64_t>();
    samples = j.at("samples").get<int64_t>();
    steps = j.at("steps").get<int64_t>();
    skipped_updates = j.at("skipped_updates").get<int64_t>();
    train_seconds = j.at("train_seconds").get<double>();
    wall_seconds = j.at("wall_seconds").get<double>();
    final_acc = num("final_acc");
    final_loss = num("final_loss");
    best_acc = num("best_acc");
    best_round = j.at("best_round").get<int>();
    rounds_to_target = j.at("rounds_to_target");
    epsilon = j.at("epsilon").get<double>();
    delta = j.at("delta").get<double>();
    sim_time_s = j.at("sim_time_s").get<double>();
    offline = j.at("offline").get<int64_t>();
    dropped = j.at("dropped").get<int64_t>();
    late = j.at("late").get<int64_t>();
    partial = j.at("partial").get<int64_t>();
    surplus = j.at("surplus").get<int64_t>();
  }
};

}  // namespace

int CohortSize(const AlgorithmConfig& cfg, int num_clients) {
  if (cfg.client_fraction) {
    return std::clamp(static_cast<int>(std::lround(*cfg.client_fraction * num_clients)), 1, num_clients);
  }
  return cfg.clients_per_round;
}

std::vector<int> SampleCohort(int n, int k, Rng& rng) {
  // Partial Fisher-Yates over the population.
  std::vector<int> ids(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i;
  for (int i = 0; i < k; ++i) {
    const int j = i + static_cast<int>(rng.UniformInt(static_cast<uint64_t>(n - i)));
    std::swap(ids[static_cast<size_t>(i)], ids[static_cast<size_t>(j)]);
  }
  ids.resize(static_cast<size_t>(k));
  std::sort(ids.begin(), ids.end());
  return ids;
}

json StripNondeterministic(json m) {
  if (m.is_object()) {
    m.erase("environment");
    for (auto it = m.begin(); it != m.end();) {
      const std::string& k = it.key();
      const bool seconds = k.size() >= 8 && k.compare(k.size() - 8, 8, "_seconds") == 0;
      if (k.rfind("wall_", 0) == 0 || seconds || k == "peak_rss_mib") {
        it = m.erase(it);
      } else {
        *it = StripNondeterministic(*it);
        ++it;
      }
    }
  } else if (m.is_array()) {
    for (auto& e : m) e = StripNondeterministic(e);
  }
  return m;
}

json DescribeData(const FederatedData& data) {
  return {{"description", data.description},
          {"train_samples", data.train.size()},
          {"test_samples", data.test.size()},
          {"num_features", data.train.dim()},
          {"num_classes", data.train.num_classes},
          {"feature_bytes", data.train.FeatureBytes() + data.test.FeatureBytes()}};
}

json DescribeModel(const Model& model) {
  return {{"kind", model.kind()},
          {"num_params", model.num_params()},
          {"description", model.Describe()},
          {"train_flops_per_sample", model.TrainFlopsPerSample()},
          {"train_flops_per_batch", model.TrainFlopsPerBatch()}};
}

json CheckpointConfig(const std::string& out_dir) {
  const CheckpointReader r(CheckpointPath(out_dir));
  if (!r.header().contains("config")) throw InputError(CheckpointPath(out_dir) + ": checkpoint has no config");
  return r.header()["config"];
}

namespace {

json RunOn(const Config& cfg, const RunOptions& opt, Comm& comm, SetupAgreement& setup) {
  ValidateConfig(cfg);
  if (cfg.baseline.kind != "none" || cfg.algorithm.name == "fedgan") {
    // Not split over processes: under MPI every rank runs the whole
    // (deterministic) run and only rank 0 writes and reports.
    RunOptions local = opt;
    if (!comm.root()) {
      local.out_dir.clear();
      local.on_round = nullptr;
    }
    return cfg.baseline.kind != "none" ? RunBaseline(cfg, local) : RunFedGan(cfg, local);
  }
  const auto t_start = Clock::now();
  const int threads = ResolveThreads(opt.threads);
  const uint64_t seed = cfg.experiment.seed;
  const bool root = comm.root();  // rank 0 writes the results; with one process, always
  if (opt.resume && opt.out_dir.empty()) throw InputError("--resume needs the run's output directory");
  // A resume reads its checkpoint before anything is rewritten.
  std::unique_ptr<CheckpointReader> resume;
  if (opt.resume) resume = ReadCheckpoint(CheckpointPath(opt.out_dir), comm, setup);
  // Opened first: it removes a stale metrics.json, so a rerun that fails while
  // loading data never leaves an older run's results looking current.
  std::unique_ptr<MetricsWriter> writer;
  if (!opt.out_dir.empty() && root) {
    if (!opt.resume) {
      std::error_code ec;
      std::filesystem::remove(CheckpointPath(opt.out_dir), ec);  // an earlier run's, not this one's
    }
    writer = std::make_unique<MetricsWriter>(opt.out_dir);
    writer->WriteConfig(ToJson(cfg));
  }

  FederatedData data = LoadData(cfg.data, cfg.data.seed >= 0 ? static_cast<uint64_t>(cfg.data.seed) : seed);
  const int num_clients = cfg.data.num_clients;
  const Partition partition = MakePartition(data.train, num_clients, cfg.data.partition, seed);
  const json input_guarantee =
      PerturbTrainingData(data.train, partition, cfg.privacy.input_perturbation, cfg.privacy.delta, seed);

  std::unique_ptr<Model> model =
      CreateModel(cfg.model, data.train.dim(), data.train.num_classes,
                  cfg.algorithm.name == "fedpara" ? std::optional<double>(cfg.algorithm.fedpara_gamma) : std::nullopt,
                  data.train.shape);
  std::unique_ptr<Algorithm> algo = CreateAlgorithm(cfg.algorithm);
  const int64_t p = model->num_params();
  algo->Setup(p, num_clients);
  if (ClientStateStore* st = algo->mutable_client_state()) {
    st->Configure(ParseStatePrecision(cfg.algorithm.state_precision), &comm);
  }
  const int64_t upload_size = algo->UploadSize();
  // ValidateConfig checked the configured cohort against the population.
  const bool poisson = cfg.algorithm.sampling == "poisson";
  const int cohort_size = algo->CohortSize(CohortSize(cfg.algorithm, num_clients), num_clients);
  // Over-selection samples more clients than the cohort and keeps the first
  // cohort_size to report.
  const bool over_select = cfg.system.over_selection > 0.0;
  const int sample_size =
      over_select ? std::min(num_clients, static_cast<int>(std::ceil((1.0 + cfg.system.over_selection) * cohort_size)))
                  : cohort_size;
  const int max_cohort = poisson ? num_clients : sample_size;
  const SystemModel system(cfg.system, seed, model->TrainFlopsPerSample(), model->TrainFlopsPerBatch());

  // Differential privacy (docs/privacy.md).
  const PrivacyConfig& pc = cfg.privacy;
  const bool dp_central = pc.mode == "central", dp_local = pc.mode == "local", dp_sample = pc.mode == "sample";
  const Conversion conversion = pc.conversion == "classic" ? Conversion::kClassic : Conversion::kImproved;
  const double sampling_q = poisson ? cfg.algorithm.sampling_rate : static_cast<double>(cohort_size) / num_clients;
  double noise_multiplier = pc.noise_multiplier;
  if (dp_central && pc.target_epsilon) {
    noise_multiplier = FindNoiseMultiplier(sampling_q, cfg.experiment.rounds, pc.delta, *pc.target_epsilon, conversion);
  }
  RdpAccountant accountant;
  const std::vector<double> orders = DefaultOrders();
  std::vector<int64_t> dp_count(dp_sample || dp_local ? static_cast<size_t>(num_clients) : 0, 0);
  std::map<double, std::vector<double>> rdp_per_step;  // sample mode: RDP of one DP-SGD step by q_c
  const double local_eps_round =
      !dp_local ? 0.0
      : noise_multiplier <= 0.0 ? INFINITY
      : pc.mechanism == "laplace" ? LaplaceMechanismEpsilon(2.0 * pc.clip_norm, noise_multiplier * pc.clip_norm)
                                  : GaussianMechanismEpsilon(2.0 * pc.clip_norm, noise_multiplier * pc.clip_norm,
                                                             pc.delta);

  Eigen::VectorXf global(p);
  {
    Rng init = DeriveStream(seed, Stream::kModelInit);
    model->Init(global.data(), init);
  }

  // Per-thread scratch, allocated once. A workspace holds the largest chunk a
  // gradient is computed on (the batch size, capped; larger batches are
  // processed in sub-batches) and the evaluation chunk.
  size_t largest_client = 0;
  for (const auto& c : partition) largest_client = std::max(largest_client, c.size());
  const bool full_batch = cfg.algorithm.batch_size == 0 || algo->FullBatch();
  const int batch = full_batch ? static_cast<int>(largest_client) : cfg.algorithm.batch_size;
  const int max_chunk = std::max(1, std::min(batch, 512));
  const int ws_rows = std::max(max_chunk, kEvalChunk);
  std::vector<ClientScratch> scratch(static_cast<size_t>(threads));
  std::vector<std::unique_ptr<Workspace>> eval_ws(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    auto& s = scratch[static_cast<size_t>(t)];
    s.ws = model->NewWorkspace(ws_rows);
    s.params.resize(p);
    s.grad.resize(p);
    s.grad_acc.resize(p);
    s.extra.resize(p);
    s.batch_x.resize(max_chunk, data.train.dim());
    s.batch_y.resize(static_cast<size_t>(max_chunk));
    s.sgd = Sgd(static_cast<float>(cfg.algorithm.momentum), static_cast<float>(cfg.algorithm.weight_decay));
    eval_ws[static_cast<size_t>(t)] = model->NewWorkspace(kEvalChunk);
  }
  const int64_t per_rank_blocks = std::max<int64_t>(
      1, std::min<int64_t>(comm.size(), kMaxBlockBytes / (kAggregationBlock * 4 * std::max<int64_t>(1, upload_size))));
  const int block = std::max(1, static_cast<int>(std::min<int64_t>(kAggregationBlock * per_rank_blocks, max_cohort)));
  // Column i: upload of the i-th client of the block (other ranks keep only
  // their own members' uploads, in the exchange).
  Eigen::MatrixXf uploads(upload_size, root ? block : 0);
  CohortExchange exchange(comm, upload_size, algo->client_state() != nullptr);
  std::vector<ClientReport> reports;
  std::vector<char> keep;
  std::vector<double> update_norm;
  Eigen::VectorXd acc(upload_size);

  // Secure aggregation / homomorphic encryption of the uploads, run by rank 0.
  std::unique_ptr<SecureSum> secure;
  if (root) {
    secure = std::make_unique<SecureSum>(cfg.secure_aggregation, cfg.encryption, upload_size, max_cohort, threads,
                                         seed);
  }
  const bool secure_sum = SecureSum::Protocol(cfg.secure_aggregation, cfg.encryption);

  TrainContext ctx;
  ctx.model = model.get();
  ctx.train = &data.train;
  ctx.cfg = &cfg.algorithm;
  ctx.seed = seed;
  ctx.max_chunk = max_chunk;
  ctx.num_clients = num_clients;
  if (dp_sample) {
    ctx.dp_clip = static_cast<float>(pc.clip_norm);
    ctx.dp_sigma = static_cast<float>(noise_multiplier * pc.clip_norm);
    for (auto& s : scratch) s.dp_sum.resize(p);
  }

  json doc;
  doc["config"] = ToJson(cfg);
  doc["environment"] = RunEnvironment(threads, comm.size());
  doc["data"] = DescribeData(data);
  doc["model"] = DescribeModel(*model);
  doc["partition"] = PartitionStats(data.train, partition);
  doc["privacy"] = {{"mode", pc.mode},
                    {"clip_norm", pc.clip_norm},
                    {"noise_multiplier", noise_multiplier},
                    {"delta", pc.delta},
                    {"sampling_rate", sampling_q},
                    {"conversion", pc.conversion},
                    {"local_epsilon_per_round", dp_local ? NullableNumber(local_eps_round, true) : json(nullptr)},
                    {"input_perturbation", input_guarantee}};
  doc["rounds"] = json::array();

  Totals tot;
  if (resume) {
    const json& h = resume->header();
    const std::string path = CheckpointPath(opt.out_dir);
    CheckResumeConfig(h, doc["config"], path);
    try {
      tot.FromJson(h.at("totals"));
    } catch (const json::exception& e) {
      throw InputError(fmt::format("{}: checkpoint totals are damaged: {}", path, e.what()));
    }
    doc["rounds"] = SavedRounds(h, tot.next_round, cfg.experiment.rounds, path);
    global = resume->F32("global", p);
    algo->LoadState(*resume);
    if (dp_central) accountant.Restore(resume->F64("privacy/accountant"));
    if (!dp_count.empty()) {
      const std::vector<int64_t> c = resume->I64("privacy/counts", num_clients);
      dp_count.assign(c.begin(), c.end());
    }
    if (writer) {
      for (const auto& rec : doc["rounds"]) writer->AppendRound(rec);
    }
    resume.reset();
  }
  // From here on a failure is one rank's alone.
  setup.Close();

  const int rounds = cfg.experiment.rounds;
  const int64_t upload_bytes = upload_size * static_cast<int64_t>(sizeof(float));
  const auto t_loop = Clock::now();
  const double setup_seconds = Seconds(t_start, t_loop);
  const double wall_before = tot.wall_seconds;
  std::string status = "completed";
  json diverged_round = nullptr;
  int stop_signal = 0;

  // Collective in a distributed run (client state is gathered on rank 0).
  auto save_checkpoint = [&]() {
    if (opt.out_dir.empty()) return;
    tot.wall_seconds = wall_before + Seconds(t_loop, Clock::now());
    // Streamed to the file as it is built (rank 0; other ranks write nothing).
    CheckpointWriter w(json{{"fedsim_version", FEDSIM_VERSION},
                            {"config", doc["config"]},
                            {"totals", tot.ToJson()},
                            {"rounds", doc["rounds"]}},
                       writer ? CheckpointPath(opt.out_dir) : std::string());
    w.F32("global", global);
    algo->SaveState(w);
    if (dp_central) {
      const std::vector<double> st = accountant.State();
      w.F64("privacy/accountant", st.data(), static_cast<int64_t>(st.size()));
    }
    if (!dp_count.empty()) w.I64("privacy/counts", dp_count);
    w.Commit();
  };

  for (int r = tot.next_round; r < rounds; ++r) {
    const auto t_round = Clock::now();
    Rng cohort_rng = DeriveStream(seed, Stream::kCohort, static_cast<uint64_t>(r));
    std::vector<int> sampled;
    if (poisson) {
      for (int c = 0; c < num_clients; ++c) {
        if (cohort_rng.Uniform() < cfg.algorithm.sampling_rate) sampled.push_back(c);
      }
    } else {
      sampled = SampleCohort(num_clients, sample_size, cohort_rng);
    }
    algo->BeginRound(global, r, sampled, seed);
    // The simulated system decides who is online, drops out, is too late or
    // is not waited for; the cohort is the sampled clients that train.
    std::vector<LocalWork> work(sampled.size());
    std::vector<int64_t> down_bytes(sampled.size());
    for (size_t i = 0; i < sampled.size(); ++i) {
      const int n = static_cast<int>(partition[static_cast<size_t>(sampled[i])].size());
      work[i] = full_batch ? LocalWork{n, 1} : PlannedLocalSgdWork(n, cfg.algorithm);
      down_bytes[i] = algo->DownloadBytes(sampled[i]);
    }
    const std::vector<ClientPlan> plans =
        system.Plan(r, sampled, work, down_bytes, algo->PlannedUploadBytes(), cfg.algorithm.batch_size,
                    over_select ? cohort_size : -1);
    std::vector<int> cohort;
    std::vector<const ClientPlan*> cohort_plan;
    SystemRound sys;
    sys.sampled = static_cast<int>(sampled.size());
    int64_t round_bytes_down = 0;
    for (size_t i = 0; i < sampled.size(); ++i) {
      const ClientPlan& pl = plans[i];
      if (pl.fate != Fate::kOffline) round_bytes_down += down_bytes[i];
      sys.offline += pl.fate == Fate::kOffline;
      sys.dropped += pl.fate == Fate::kDropped;
      sys.late += pl.fate == Fate::kLate;
      sys.surplus += pl.fate == Fate::kSurplus;
      if (pl.fate == Fate::kTrain) {
        cohort.push_back(sampled[i]);
        cohort_plan.push_back(&pl);
        sys.partial += pl.max_steps > 0;
      }
    }
    reports.assign(cohort.size(), ClientReport());
    keep.assign(cohort.size(), 0);
    update_norm.assign(cohort.size(), 0.0);
    const double lr_round = cfg.algorithm.lr * std::pow(cfg.algorithm.lr_decay, r);
    const float lr = static_cast<float>(lr_round);

    acc.setZero();
    bool secure_failed = false;
    if (secure && secure->active()) {
      try {
        if (secure_sum) secure->BeginRound(r, static_cast<int>(cohort.size()));
      } catch (const SecAggError& e) {
        if (cfg.secure_aggregation.on_failure == "stop") throw RunError(fmt::format("round {}: {}", r + 1, e.what()));
        secure_failed = true;
      }
    }
    double weight_sum = 0.0, loss_sum = 0.0;
    int64_t round_bytes_up = 0, round_samples = 0, cohort_samples = 0, skipped = 0;
    for (size_t b0 = 0; b0 < cohort.size(); b0 += static_cast<size_t>(block)) {
      const int nb = static_cast<int>(std::min<size_t>(static_cast<size_t>(block), cohort.size() - b0));
      const auto t_train = Clock::now();
      auto task_at = [&](size_t at) {
        ClientTask task;
        task.round = r;
        task.client = cohort[at];
        task.indices = &partition[static_cast<size_t>(task.client)];
        task.lr = lr;
        task.max_steps = cohort_plan[at]->max_steps;
        return task;
      };
      // This rank's members of the block (all of them with one process).
      const std::vector<int>& mine = exchange.Plan(cohort, b0, nb);
      ParallelFor(static_cast<int64_t>(mine.size()), threads, [&](int64_t k, int tid) {
        const size_t at = b0 + static_cast<size_t>(mine[static_cast<size_t>(k)]);
        const ClientTask task = task_at(at);
        ClientReport& rep = reports[at];
        float* up = exchange.Column(static_cast<int>(k), uploads);
        Eigen::Map<Eigen::VectorXf> col(up, upload_size);
        rep = algo->LocalUpdate(ctx, task, global.data(), up, scratch[static_cast<size_t>(tid)]);
        if (secure_sum) rep.weight = 1.0;  // the server only learns the sum
        if (dp_central || dp_local) {
          // Every client counts the same and its update's norm is bounded:
          // the sensitivity the noise is calibrated to.
          rep.weight = 1.0;
          const bool l1 = dp_local && pc.mechanism == "laplace";
          if (col.allFinite()) {
            update_norm[at] = l1 ? ClipL1(up, upload_size, pc.clip_norm) : ClipL2(up, upload_size, pc.clip_norm);
          }
          if (dp_local) {
            Rng noise =
                DeriveStream(seed, Stream::kPrivacy, static_cast<uint64_t>(r), static_cast<uint64_t>(task.client));
            const double scale = noise_multiplier * pc.clip_norm;
            if (l1) {
              AddLaplaceNoise(up, upload_size, scale, noise);
            } else {
              AddGaussianNoise(up, upload_size, scale, noise);
            }
          }
        }
        keep[at] = std::isfinite(rep.loss_sum) && col.allFinite();
      });
      // Rank 0 now holds the block's uploads and reports, in block order.
      exchange.Gather(uploads, reports.data() + b0, keep.data() + b0, update_norm.data() + b0);
      if (secure_sum && !secure_failed && root) {
        ParallelFor(nb, threads, [&](int64_t i, int tid) {
          const int at = static_cast<int>(b0) + static_cast<int>(i);
          if (keep[static_cast<size_t>(at)] && secure->Wants(at)) secure->Submit(at, uploads.col(i).data(), tid);
        });
      }
      tot.train_seconds += Seconds(t_train, Clock::now());
      for (int i = 0; i < nb; ++i) {
        const size_t at = b0 + static_cast<size_t>(i);
        // Rank 0 knows every member's outcome, the others their own members'.
        if (!keep[at] && (root || exchange.Mine(i))) {
          if (root) {
            ++skipped;
            if (cfg.experiment.on_divergence == "stop") status = "diverged";
          }
          algo->ForgetClient(cohort[at]);
        }
        algo->AfterClient(task_at(at));
      }
      // Weighted sum in client order, coordinates split across threads (in
      // the clear; with secure aggregation the protocol's sum replaces it).
      const int64_t spans = secure_sum || !root ? 0 : (upload_size + kReduceSpan - 1) / kReduceSpan;
      ParallelFor(spans, threads, [&](int64_t s, int) {
        const int64_t lo = s * kReduceSpan, len = std::min(kReduceSpan, upload_size - lo);
        auto a = acc.segment(lo, len);
        for (int i = 0; i < nb; ++i) {
          if (!keep[b0 + static_cast<size_t>(i)]) continue;
          a += reports[b0 + static_cast<size_t>(i)].weight * uploads.col(i).segment(lo, len).cast<double>();
        }
      });
      for (int i = 0; i < nb; ++i) {
        const auto& rep = reports[b0 + static_cast<size_t>(i)];
        round_bytes_up += rep.bytes_up >= 0 ? rep.bytes_up : upload_bytes;
        cohort_samples +=
            static_cast<int64_t>(partition[static_cast<size_t>(cohort[b0 + static_cast<size_t>(i)])].size());
      }
    }
    json secure_record = nullptr;
    if (secure_sum && !secure_failed && root) {
      try {
        const std::vector<int> included = secure->Finish(acc);
        // Only the clients in the protocol's sum count; the others dropped.
        std::vector<char> in(cohort.size(), 0);
        for (int i : included) in[static_cast<size_t>(i)] = 1;
        for (size_t i = 0; i < cohort.size(); ++i) keep[i] = keep[i] && in[i];
        secure_record = secure->RoundMetrics();
        round_bytes_up = secure->RoundBytesUp();
        round_bytes_down += secure->RoundBytesDown();
      } catch (const SecAggError& e) {
        if (cfg.secure_aggregation.on_failure == "stop") throw RunError(fmt::format("round {}: {}", r + 1, e.what()));
        secure_failed = true;
      }
    }
    if (secure_failed) {
      // Nothing half-aggregated reaches the model.
      std::fill(keep.begin(), keep.end(), 0);
      secure_record = {{"failed", true}};
    } else if (!secure_sum && secure && secure->active()) {
      secure_record = secure->ModelledCost(static_cast<int>(cohort.size()));
    }
    // The simulated clock: each client reports after its download, the work
    // it really did and its real upload; with secure aggregation each
    // client's share of the protocol's bytes and three more round trips.
    // Rank 0 alone holds every report (and alone writes the records).
    if (root) {
      std::vector<double> report_s(cohort.size());
      const int64_t secure_up = secure_sum && !cohort.empty() ? round_bytes_up / static_cast<int64_t>(cohort.size()) : 0;
      for (size_t i = 0; i < cohort.size(); ++i) {
        const ClientReport& rp = reports[i];
        const int64_t up = secure_sum ? secure_up : rp.bytes_up >= 0 ? rp.bytes_up : upload_bytes;
        report_s[i] = system.ReportSeconds(*cohort_plan[i], rp.samples, rp.steps, up, secure_sum ? 3 : 0);
      }
      sys.seconds = system.RoundSeconds(report_s, sys.dropped + sys.late > 0);
    }
    tot.sim_time_s += sys.seconds;
    tot.offline += sys.offline;
    tot.dropped += sys.dropped;
    tot.late += sys.late;
    tot.partial += sys.partial;
    tot.surplus += sys.surplus;
    // What the round's aggregate contains: the kept clients only.
    for (size_t i = 0; i < cohort.size(); ++i) {
      if (!keep[i]) continue;
      weight_sum += reports[i].weight;
      loss_sum += reports[i].loss_sum;
      round_samples += reports[i].samples;
      tot.steps += reports[i].steps;
    }
    // With central DP the server releases a noisy sum every round (even an
    // empty one), unless the secure protocol failed and nothing was released.
    // Rank 0 decides and computes the server step's input; every rank runs it.
    const bool release = dp_central ? !secure_failed : weight_sum > 0.0;
    bool apply = release && status != "diverged";
    Eigen::VectorXf mean_upload;
    std::vector<ClientReport> kept;
    if (apply && root) {
      kept.reserve(reports.size());
      for (size_t i = 0; i < reports.size(); ++i) {
        if (keep[i]) kept.push_back(reports[i]);
      }
      double denominator = weight_sum;
      if (dp_central) {
        // DP-FedAvg (McMahan et al. 2018): Gaussian noise of std z S on the
        // sum of clipped updates, divided by a fixed denominator (the
        // expected cohort size) so one client cannot change it.
        Rng noise = DeriveStream(seed, Stream::kPrivacy, static_cast<uint64_t>(r), kServerStream);
        const double sd = noise_multiplier * pc.clip_norm;
        for (int64_t j = 0; j < upload_size; ++j) acc[j] += sd * noise.Normal();
        denominator = sampling_q * num_clients;
      }
      mean_upload = (acc / denominator).cast<float>();
    }
    exchange.ShareServerInput(apply, mean_upload, kept);
    if (apply) {
      algo->ServerUpdate(global, mean_upload, kept, r);
      if (!global.allFinite()) status = "diverged";
    }
    // Privacy spent after this round (rank 0 alone has every report).
    if (!root) {
    } else if (dp_central && release) {
      accountant.Step(sampling_q, noise_multiplier);
      const EpsilonResult e = accountant.Epsilon(pc.delta, conversion);
      tot.epsilon = e.epsilon;
      tot.delta = pc.delta;
    } else if (dp_sample || dp_local) {
      for (size_t i = 0; i < cohort.size(); ++i) {
        const int c = cohort[i];
        dp_count[static_cast<size_t>(c)] += dp_sample ? reports[i].steps : 1;
        if (dp_sample && reports[i].steps > 0) {
          // Client c's DP-SGD: batches of B out of n_c samples, q_c = B / n_c,
          // composed over all its steps so far; the run reports the worst client.
          const int nc = static_cast<int>(partition[static_cast<size_t>(c)].size());
          const double qc = std::min(1.0, static_cast<double>(cfg.algorithm.batch_size) / nc);
          auto it = rdp_per_step.find(qc);
          if (it == rdp_per_step.end()) it = rdp_per_step.emplace(qc, ComputeRdp(qc, noise_multiplier, 1, orders)).first;
          std::vector<double> rdp(it->second);
          for (double& v : rdp) v *= static_cast<double>(dp_count[static_cast<size_t>(c)]);
          tot.epsilon = std::max(tot.epsilon, GetEpsilon(orders, rdp, pc.delta, conversion).epsilon);
          tot.delta = pc.delta;
        } else if (dp_local) {
          // Basic composition over the rounds the most frequent client took part in.
          const double k = static_cast<double>(dp_count[static_cast<size_t>(c)]);
          tot.epsilon = std::max(tot.epsilon, k * local_eps_round);
          tot.delta = std::max(tot.delta, pc.mechanism == "laplace" ? 0.0 : std::min(1.0, k * pc.delta));
        }
      }
    }
    tot.bytes_down += round_bytes_down;
    tot.bytes_up += round_bytes_up;
    tot.samples += round_samples;
    tot.skipped_updates += skipped;

    const bool last = r + 1 == rounds;
    const bool eval = root && status == "completed" && (last || (r + 1) % cfg.metrics.eval_every == 0);
    double test_loss = NAN, test_acc = NAN;
    if (eval) {
      const EvalSums e = EvaluateDataset(*model, global.data(), data.test, threads, eval_ws);
      test_loss = e.MeanLoss();
      test_acc = e.Accuracy();
    }
    double train_loss_global = NAN, train_acc_global = NAN;
    if (eval && cfg.metrics.eval_train) {
      const EvalSums e = EvaluateDataset(*model, global.data(), data.train, threads, eval_ws);
      train_loss_global = e.MeanLoss();
      train_acc_global = e.Accuracy();
    }
    if (eval && data.test.size() > 0 && !std::isfinite(test_loss)) {
      status = "diverged";
      test_acc = NAN;  // the accuracy of a non-finite model means nothing
    }
    if (eval && status == "completed") {
      tot.final_acc = test_acc;
      tot.final_loss = test_loss;
      if (std::isnan(tot.best_acc) || test_acc > tot.best_acc) {
        tot.best_acc = test_acc;
        tot.best_round = r + 1;
      }
      if (cfg.experiment.target_accuracy && tot.rounds_to_target.is_null() &&
          test_acc >= *cfg.experiment.target_accuracy) {
        tot.rounds_to_target = r + 1;
      }
    }
    const auto t_end = Clock::now();
    json rec = {
        {"round", r + 1},
        {"sampled", sys.sampled},
        {"cohort", static_cast<int64_t>(cohort.size())},
        {"cohort_samples", cohort_samples},
        {"lr", lr_round},
        {"train_loss", NullableNumber(round_samples ? loss_sum / static_cast<double>(round_samples) : NAN, true)},
        {"test_loss", NullableNumber(test_loss, eval)},
        {"test_accuracy", NullableNumber(test_acc, eval)},
        {"train_samples", round_samples},
        {"skipped_updates", skipped},
        {"bytes_up", tot.bytes_up},
        {"bytes_down", tot.bytes_down},
        {"round_bytes_up", round_bytes_up},
        {"round_bytes_down", round_bytes_down},
        {"offline_clients", sys.offline},
        {"dropped_clients", sys.dropped},
        {"late_clients", sys.late},
        {"partial_clients", sys.partial},
        {"surplus_clients", sys.surplus},
        {"sim_round_s", sys.seconds},
        {"sim_time_s", tot.sim_time_s},
        {"wall_round_seconds", Seconds(t_round, t_end)},
        {"wall_seconds", wall_before + Seconds(t_loop, t_end)},
    };
    if (cfg.metrics.eval_train) {
      rec["global_train_loss"] = NullableNumber(train_loss_global, eval);
      rec["global_train_accuracy"] = NullableNumber(train_acc_global, eval);
    }
    if (const ClientStateStore* st = algo->client_state()) {
      rec["clients_with_state"] = exchange.Sum(st->ClientsWithState());
      rec["client_state_bytes"] = exchange.Sum(st->Bytes());
    }
    if (!secure_record.is_null()) rec[cfg.secure_aggregation.enabled ? "secure_aggregation" : "encryption"] = secure_record;
    if (pc.mode != "none") {
      rec["epsilon"] = NullableNumber(tot.epsilon, true);
      rec["delta"] = tot.delta;
    }
    if (dp_central || dp_local) {
      int64_t clipped = 0;
      double norm_sum = 0.0;
      for (double n : update_norm) {
        clipped += n > pc.clip_norm;
        norm_sum += n;
      }
      rec["clip_fraction"] = cohort.empty() ? 0.0 : static_cast<double>(clipped) / static_cast<double>(cohort.size());
      rec["mean_update_norm"] = cohort.empty() ? 0.0 : norm_sum / static_cast<double>(cohort.size());
    }
    if (writer) writer->AppendRound(rec);
    doc["rounds"].push_back(rec);
    tot.next_round = r + 1;
    if (opt.on_round && root) opt.on_round(rec, rounds);
    int sig = opt.stop ? opt.stop->load() : 0;
    exchange.EndRound(status, sig);  // every rank stops together
    if (status == "diverged") {
      diverged_round = r + 1;
      break;
    }
    if (last) break;
    if (sig != 0 || (opt.stop_after_round > 0 && r + 1 >= opt.stop_after_round)) {
      status = "interrupted";
      stop_signal = sig;
      break;
    }
    if (cfg.experiment.checkpoint_every > 0 && (r + 1) % cfg.experiment.checkpoint_every == 0) save_checkpoint();
  }
  // The last checkpoint holds the state after the last good round: a diverged
  // run keeps the one written before it diverged.
  if (status != "diverged") save_checkpoint();

  const double wall = wall_before + Seconds(t_loop, Clock::now());
  const double train_flops = static_cast<double>(tot.samples) * model->TrainFlopsPerSample() +
                             static_cast<double>(tot.steps) * model->TrainFlopsPerBatch();
  doc["summary"] = {
      {"status", status},
      {"rounds", rounds},
      {"rounds_completed", tot.next_round},
      {"diverged_round", diverged_round},
      {"signal", stop_signal ? json(stop_signal) : json(nullptr)},
      {"final_test_accuracy", NullableNumber(tot.final_acc, true)},
      {"final_test_loss", NullableNumber(tot.final_loss, true)},
      {"best_test_accuracy", NullableNumber(tot.best_acc, true)},
      {"best_round", tot.best_round},
      {"target_accuracy", cfg.experiment.target_accuracy ? json(*cfg.experiment.target_accuracy) : json(nullptr)},
      {"rounds_to_target", tot.rounds_to_target},
      {"bytes_up", tot.bytes_up},
      {"bytes_down", tot.bytes_down},
      {"train_samples", tot.samples},
      {"skipped_updates", tot.skipped_updates},
      {"sim_time_s", tot.sim_time_s},
      {"offline_clients", tot.offline},
      {"dropped_clients", tot.dropped},
      {"late_clients", tot.late},
      {"partial_clients", tot.partial},
      {"surplus_clients", tot.surplus},
      {"epsilon", pc.mode == "none" ? json(nullptr) : NullableNumber(tot.epsilon, true)},
      {"delta", pc.mode == "none" ? json(nullptr) : json(tot.delta)},
      {"train_gflop", train_flops / 1e9},
      {"peak_rss_mib", PeakRssMib()},
      {"wall_seconds", wall},
      {"wall_setup_seconds", setup_seconds},
      {"wall_train_seconds", tot.train_seconds},
      {"wall_train_samples_per_second", tot.train_seconds > 0 ? tot.samples / tot.train_seconds : 0.0},
      {"wall_train_gflops", tot.train_seconds > 0 ? train_flops / tot.train_seconds / 1e9 : 0.0},
  };
  if (const ClientStateStore* st = algo->client_state()) {
    doc["summary"]["clients_with_state"] = exchange.Sum(st->ClientsWithState());
    doc["summary"]["client_state_bytes"] = exchange.Sum(st->Bytes());
  }
  // Rank 0's traffic with the other ranks in the round loop (0 with one process).
  doc["environment"]["exchange_bytes_received"] = exchange.bytes_received();
  doc["environment"]["exchange_bytes_sent"] = exchange.bytes_sent();
  if (writer) writer->WriteFinal(doc);
  return doc;
}

}  // namespace

json RunExperiment(const Config& cfg, const RunOptions& opt) {
  SerialComm serial;
  Comm& comm = opt.comm ? *opt.comm : serial;
  SetupAgreement setup(comm);
  try {
    return RunOn(cfg, opt, comm, setup);
  } catch (const AgreedError&) {
    throw;
  } catch (const InputError& e) {
    setup.Fail(2, e.what());
    throw;
  } catch (const std::exception& e) {
    setup.Fail(1, e.what());
    throw;
  }
}

}  // namespace fedsim
