// The round driver of a federated run. Setup builds the stages from the
// config; the loop runs the four steps of federated learning, each a stage:
//
//   1. distribute   CohortSampler -> ClientTrainer::BeginRound -> Scheduler
//   2. train        CohortTraining (ClientTrainer::Train on the thread pool)
//   3. collect      upload transforms per client -> Aggregator
//   4. update       ServerPipeline (central noise, ServerUpdate) -> PrivacyLedger
//
// then the evaluators and the run recorder. Every stage reports its own
// figures under stages.<name> of the round's record.
#include "round/federated_run.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "metrics/writer.h"
#include "model/model.h"
#include "privacy/input_perturbation.h"
#include "round/aggregator.h"
#include "round/algorithm_trainer.h"
#include "round/async_buffer.h"
#include "round/async_scheduler.h"
#include "round/attack.h"
#include "round/client_evaluator.h"
#include "round/cohort_sampler.h"
#include "round/cohort_training.h"
#include "round/evaluator.h"
#include "round/gan_trainer.h"
#include "round/judge_evaluator.h"
#include "round/imprint.h"
#include "round/privacy_audit.h"
#include "round/privacy_ledger.h"
#include "round/run_recorder.h"
#include "round/scheduler.h"
#include "round/server_pipeline.h"
#include "round/upload_transform.h"
#include "sim/availability.h"
#include "sim/system.h"

namespace fedsim {

using nlohmann::json;

json DescribeData(const FederatedData& data) {
  return {{"description", data.description},
          {"train_samples", data.train.size()},
          {"test_samples", data.test.size()},
          {"num_features", data.train.dim()},
          {"num_classes", data.train.num_classes},
          {"shape", data.train.shape},
          {"vocab_size", data.train.vocab_size},
          {"next_token", data.train.next_token},
          {"feature_bytes", data.train.FeatureBytes() + data.test.FeatureBytes()}};
}

json DescribeModel(const Model& model) {
  return {{"kind", model.kind()},
          {"num_params", model.num_params()},
          {"description", model.Describe()},
          {"train_flops_per_sample", model.TrainFlopsPerSample()},
          {"train_flops_per_batch", model.TrainFlopsPerBatch()}};
}

namespace {

// Next-token data has a label per step, not per sample: what needs a
// sample's label (or rewrites its features) is refused, naming the key.
void CheckNextTokenSettings(const Config& cfg) {
  auto refuse = [](const std::string& key, const std::string& what) {
    throw InputError(fmt::format("{}: {} needs a label per sample, but next-token data predicts every step "
                                 "(data.tff_h5.targets = every_step)",
                                 key, what));
  };
  if (cfg.attack.kind == "label_flip") refuse("attack.kind", "label_flip");
  if (cfg.privacy.input_perturbation.label_epsilon) {
    refuse("privacy.input_perturbation.label_epsilon", "randomised response on labels");
  }
  if (cfg.privacy.input_perturbation.features != "none") {
    throw InputError("privacy.input_perturbation.features: noise on token ids would turn them into other numbers; "
                     "next-token data takes no feature perturbation");
  }
  if (cfg.algorithm.name == "afl" && cfg.algorithm.afl_domains == "labels") {
    refuse("algorithm.afl_domains", "labels (a domain per client's most frequent label)");
  }
}

// batchnorm's running statistics (Model::HasState) are moved by local SGD
// steps (TrainLocalSgd) and set by the server to the mean of the uploads
// (ServerOptimizer's averaged ranges, whatever its kind); settings that would
// move or combine them otherwise are refused.
void CheckModelStateSettings(const Config& cfg) {
  const std::string has = "model.kind=" + cfg.model.kind + " has batchnorm layers, ";
  const std::string& a = cfg.algorithm.name;
  static const std::set<std::string> keep = {"fedavg",  "fedprox", "fedavgm", "fedadagrad", "fedadam",
                                             "fedyogi", "fedpara", "scaffold", "fedper",     "fedrep",
                                             "lgfedavg", "fedbn"};
  if (keep.count(a) == 0) {
    throw InputError("algorithm.name: " + has + "whose running statistics only local SGD steps move and the mean "
                     "of the uploads combines; " + a + " would step or rescale them otherwise (fedavg, fedprox, "
                     "fedavgm, fedadagrad, fedadam, fedyogi, fedpara, scaffold, fedper, fedrep, lgfedavg and fedbn "
                     "keep them)");
  }
  if (a == "scaffold" && cfg.algorithm.server_lr > 1.0) {
    throw InputError(fmt::format("algorithm.server_lr: {} above 1 would extrapolate the running statistics of the "
                                 "batchnorm layers past the clients' average under scaffold (a variance could turn "
                                 "negative); use at most 1",
                                 cfg.algorithm.server_lr));
  }
  if (cfg.privacy.mode == "sample") {
    throw InputError("privacy.mode: sample clips per-sample gradients, which batchnorm (normalising over the batch) "
                     "does not have; use central or local DP, or groupnorm/layernorm");
  }
  if (cfg.algorithm.batch_size == 0 || cfg.algorithm.batch_size > 512) {
    throw InputError(fmt::format("algorithm.batch_size: {} with batchnorm layers: a step must be one pass of at most "
                                 "512 samples (a larger or full batch runs in chunks, each normalised alone)",
                                 cfg.algorithm.batch_size));
  }
}

// A layer marked "local" is kept on the clients only by fedbn; under any
// other algorithm the mark would be silently ignored, so it is refused.
void CheckLocalLayers(const Config& cfg, const Model& model) {
  if (cfg.algorithm.name == "fedbn") return;
  for (const ParamRange& r : model.ParamRanges()) {
    if (!r.local) continue;
    throw InputError(fmt::format("model.layers: the layer of {} is marked \"local\": true, which only "
                                 "algorithm.name=fedbn keeps on each client; {} would average it (remove the mark or "
                                 "use fedbn)",
                                 r.name, cfg.algorithm.name));
  }
}

// Cumulative counts of the run that no stage owns (a stage's own totals,
// e.g. the evaluator's best accuracy or the ledger's ε, are saved by it).
struct Totals {
  int next_round = 0;
  int64_t bytes_up = 0, bytes_down = 0, samples = 0, steps = 0, skipped_updates = 0;
  double train_seconds = 0.0;
  double sim_time_s = 0.0;
  int64_t offline = 0, dropped = 0, late = 0, partial = 0, surplus = 0;
  // ClientReport's extra work (personalised algorithms), for train_gflop;
  // saved beside the others, absent (0) in checkpoints that predate it.
  int64_t extra_samples = 0, extra_steps = 0;
  // The event-driven modes' counts (absent, 0, in synchronous checkpoints):
  // clients dispatched, lost while training, updates dropped as too stale.
  int64_t dispatched = 0, left = 0, stale = 0;

  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Totals, next_round, bytes_up, bytes_down, samples, steps, skipped_updates,
                                 train_seconds, sim_time_s, offline, dropped, late, partial, surplus)

  void Add(const SystemRound& s) {
    sim_time_s += s.seconds;
    offline += s.offline;
    dropped += s.dropped;
    late += s.late;
    partial += s.partial;
    surplus += s.surplus;
  }
  json ToJson() const {
    json j = *this;
    j["extra_samples"] = extra_samples;
    j["extra_steps"] = extra_steps;
    j["dispatched"] = dispatched;
    j["left"] = left;
    j["stale"] = stale;
    return j;
  }
  void FromJson(const json& j) {
    j.get_to(*this);
    extra_samples = j.value("extra_samples", int64_t{0});
    extra_steps = j.value("extra_steps", int64_t{0});
    dispatched = j.value("dispatched", int64_t{0});
    left = j.value("left", int64_t{0});
    stale = j.value("stale", int64_t{0});
  }
};

// Everything a federated run is made of, built from the config in order.
// What is trained is a classifier (model + algorithm) or, for FedGAN, a
// generator and a discriminator (nets); the two differ only in their client
// trainer and evaluator.
struct Run {
  const Config& cfg;
  const RunOptions& opt;
  Comm& comm;
  int threads;
  RunRecorder recorder;
  FederatedData data;
  Partition partition;
  ClientTests client_tests;  // each client's own test rows (data.client_test_fraction or the data's own)
  Dataset raw_train;         // the clients' rows before input perturbation, when an attack is scored on them
                             // (empty otherwise)
  json input_guarantee;
  std::unique_ptr<Model> model;   // classifiers
  std::unique_ptr<GanNets> nets;  // FedGAN
  std::unique_ptr<AttackPlan> attack;
  PoisonedTraining poisoned;      // the attackers' data (data poisoning only)
  Dataset backdoor_test;          // the triggered test set (backdoor only)
  std::unique_ptr<ClientTrainer> trainer;
  std::unique_ptr<CohortSampler> sampler;
  std::unique_ptr<SystemModel> system;
  std::unique_ptr<SyncScheduler> scheduler;
  std::unique_ptr<Availability> availability;
  std::unique_ptr<AsyncScheduler> async;    // algorithm.mode = fedbuff | fedasync
  std::unique_ptr<AsyncUploads> uploads;    // their updates in flight (rank 0)
  int64_t planned_up = 0;                   // the upload size the simulated system plans with
  std::unique_ptr<PrivacyLedger> ledger;
  std::vector<std::unique_ptr<UploadTransform>> transforms;
  std::unique_ptr<Aggregator> aggregator;  // rank 0 only
  std::unique_ptr<ServerPipeline> server;
  std::unique_ptr<CohortTraining> training;
  std::unique_ptr<RoundEvaluator> evaluator;
  std::unique_ptr<ClientEvaluator> clients;  // metrics.client_eval (built once a resume's round is known)
  std::vector<int> holdout;                  // data.holdout_clients: never sampled
  std::unique_ptr<PrivacyAudit> audit;       // audit.* (rank 0 computes it)
  ReconstructionTap* recon = nullptr;        // audit.reconstruction: wraps the aggregator (rank 0)
  CanaryTap* canaries = nullptr;             // audit.canaries: wraps the aggregator (rank 0)
  std::unique_ptr<ImprintAttack> imprint;    // audit.imprint: crafts attack rounds' models (every rank)
  ImprintTap* imprint_tap = nullptr;         // audit.imprint: wraps the aggregator (rank 0)
  Eigen::VectorXf global;
  Eigen::VectorXf initial;                   // w_0, for the canary audit

  Run(const Config& c, const RunOptions& o, Comm& cm, SetupAgreement& setup)
      : cfg(c), opt(o), comm(cm), threads(ResolveThreads(o.threads)), recorder(c, o, cm, setup) {
    const uint64_t seed = cfg.experiment.seed;
    const int num_clients = cfg.data.num_clients;
    data = LoadData(cfg.data, cfg.data.seed >= 0 ? static_cast<uint64_t>(cfg.data.seed) : seed);
    if (data.train.next_token) CheckNextTokenSettings(cfg);
    partition = MakePartition(data.train, num_clients, cfg.data.partition, seed);
    client_tests = SplitClientTests(data, partition, cfg.data, seed);
    const bool perturbs = cfg.privacy.input_perturbation.features != "none" ||
                          cfg.privacy.input_perturbation.label_epsilon.has_value();
    if (perturbs && (cfg.audit.reconstruction || cfg.audit.imprint.bins > 0 || cfg.audit.membership)) {
      raw_train = data.train;
    }
    holdout = HoldoutClients(cfg.data.holdout_clients, num_clients, seed);
    // The clients that train; empty = all (the sampler's identity).
    std::vector<int> pool = holdout.empty() ? std::vector<int>() : TrainingClients(holdout, num_clients);
    attack = std::make_unique<AttackPlan>(cfg.attack, num_clients, seed, pool);
    // Poisoning comes before input perturbation (PoisonTraining says why).
    if (attack->poisons_data()) {
      const InputPerturbationConfig* device_noise = perturbs ? &cfg.privacy.input_perturbation : nullptr;
      poisoned = PoisonTraining(data.train, partition, *attack, seed, device_noise, cfg.privacy.delta);
    }
    input_guarantee = PerturbTrainingData(data.train, partition, cfg.privacy.input_perturbation, cfg.privacy.delta, seed);
    const Dataset& train = attack->poisons_data() ? poisoned.train : data.train;  // what clients train on
    const bool gan = cfg.algorithm.name == "fedgan";
    std::unique_ptr<Algorithm> algo;
    const int trainers = pool.empty() ? num_clients : static_cast<int>(pool.size());
    int cohort_size = CohortSize(cfg.algorithm, trainers);  // ValidateConfig checked it against the population
    if (gan) {
      CheckGanData(data.train);
      nets = std::make_unique<GanNets>(cfg.gan, data.train.dim());
    } else {
      model = CreateModel(cfg.model, data.train.dim(), data.train.num_classes,
                          cfg.algorithm.name == "fedpara" ? std::optional<double>(cfg.algorithm.fedpara_gamma)
                                                          : std::nullopt,
                          data.train.shape, data.train.vocab_size, data.train.next_token);
      if (model->HasState()) CheckModelStateSettings(cfg);
      CheckLocalLayers(cfg, *model);
      algo = CreateAlgorithm(cfg.algorithm, cfg.personalization);
      algo->Setup(model->num_params(), num_clients);
      algo->SetTrainingClients(pool);
      algo->SetModel(*model);
      algo->SetClients(train, partition);
      if (ClientStateStore* st = algo->mutable_client_state()) {
        st->Configure(ParseStatePrecision(cfg.algorithm.state_precision), &comm);
      }
      cohort_size = algo->CohortSize(cohort_size, trainers);
    }
    std::vector<int> training_pool = pool;  // kept for the event-driven scheduler (empty = all)
    sampler = std::make_unique<CohortSampler>(cfg.algorithm, num_clients, cohort_size, cfg.system.over_selection, seed,
                                              std::move(pool));
    std::vector<int64_t> sizes;
    for (const auto& c : partition) sizes.push_back(static_cast<int64_t>(c.size()));
    // The event-driven modes release one aggregate of K updates per server
    // step; the ledger treats it as a round of K of the training clients
    // (docs/async.md states the assumption).
    const bool event_driven = cfg.algorithm.mode != "sync";
    const int buffer = cfg.algorithm.mode == "fedasync" ? 1 : cfg.async.buffer_size;
    const double q = event_driven ? std::min(1.0, static_cast<double>(buffer) / trainers) : sampler->sampling_rate();
    const int max_cohort = event_driven ? std::max(cfg.async.concurrency, buffer) : sampler->max_cohort();
    ledger = std::make_unique<PrivacyLedger>(cfg, q, std::move(sizes));
    const double z = ledger->noise_multiplier();
    const bool dp_sample = cfg.privacy.mode == "sample";
    if (gan) {
      trainer = std::make_unique<GanTrainer>(cfg, *nets, data.train, partition, threads, &comm);
    } else {
      trainer = std::make_unique<AlgorithmTrainer>(cfg, std::move(algo), *model, train, partition, threads,
                                                   dp_sample ? cfg.privacy.clip_norm : 0.0,
                                                   dp_sample ? z * cfg.privacy.clip_norm : 0.0);
    }
    system = std::make_unique<SystemModel>(cfg.system, seed, trainer->TrainFlopsPerSample(),
                                           trainer->TrainFlopsPerBatch());
    availability = std::make_unique<Availability>(cfg.system, seed, num_clients);
    scheduler = std::make_unique<SyncScheduler>(
        *system, cfg.system.availability_model == "constant" ? nullptr : availability.get(), cfg.async.retry_s);
    const int64_t upload_size = trainer->upload_size();
    transforms =
        BuildUploadTransforms(cfg, trainer->upload_kind(), z, upload_size, num_clients, threads, &comm, attack.get());
    // The public bound on a client's weight: 1 when every weight is 1 (the
    // algorithm's or the clipping's), else the largest client's sample count
    // (no algorithm weighs a client by more).
    bool uniform = trainer->uniform_weights();
    for (const auto& t : transforms) uniform = uniform || t->uniform_weights();
    if (event_driven) uniform = uniform || AsyncUploads::UniformWeights(cfg.async, cfg.algorithm.mode == "fedasync");
    double weight_bound = 1.0;
    if (!uniform) {
      for (const auto& c : partition) weight_bound = std::max(weight_bound, static_cast<double>(c.size()));
    }
    if (comm.root()) {
      aggregator = attack->active() || cfg.robust.rule != "mean"
                       ? MakeRobustAggregator(cfg, upload_size, threads, attack.get())
                       : MakeAggregator(cfg, upload_size, max_cohort, threads, weight_bound);
    }
    // The input attacks score reconstructions against the clients' own data
    // as it was before any input perturbation.
    const Dataset& truth = raw_train.size() > 0 ? raw_train : train;
    if (aggregator && cfg.audit.reconstruction) {
      auto tap = std::make_unique<ReconstructionTap>(std::move(aggregator), *model, truth, partition,
                                                     ServerSeesOnlySum(cfg));
      recon = tap.get();
      aggregator = std::move(tap);
    }
    if (cfg.audit.imprint.bins > 0) {
      // The server's public data is the test set; every process crafts the
      // same model from it.
      imprint = std::make_unique<ImprintAttack>(cfg.audit.imprint, *model, data.test, seed);
      if (aggregator) {
        auto tap = std::make_unique<ImprintTap>(std::move(aggregator), *imprint, truth, partition,
                                                ServerSeesOnlySum(cfg));
        imprint_tap = tap.get();
        aggregator = std::move(tap);
      }
    }
    server = event_driven ? std::make_unique<ServerPipeline>(cfg, z, q, trainers)
                          : std::make_unique<ServerPipeline>(cfg, z, sampler->sampling_rate(), trainers);
    training = std::make_unique<CohortTraining>(comm, *trainer, transforms, partition, threads, max_cohort);
    planned_up = trainer->PlannedUploadBytes();
    for (const auto& t : transforms) planned_up = t->PlannedBytes(planned_up);
    if (event_driven) {
      std::vector<int> async_pool = std::move(training_pool);
      if (async_pool.empty()) {
        for (int c = 0; c < num_clients; ++c) async_pool.push_back(c);
      }
      ClientTrainer* tr = trainer.get();
      async = std::make_unique<AsyncScheduler>(
          cfg, *system, *availability, std::move(async_pool), num_clients,
          [tr](int c) { return tr->PlannedWork(c); }, [tr](int c) { return tr->DownloadBytes(c); }, planned_up);
      if (comm.root()) uploads = std::make_unique<AsyncUploads>(upload_size, cfg.algorithm.mode == "fedasync");
    }
    if (attack->poisons_data()) training->PoisonRows(attack.get(), &poisoned.partition);
    if (gan) {
      evaluator = std::make_unique<JudgeEvaluator>(cfg, *nets, data.train, data.test, threads, comm.root(),
                                                   recorder.writes() ? opt.out_dir : std::string(), !opt.resume);
      global.resize(nets->num_params());
      Rng g_init = DeriveStream(seed, Stream::kModelInit, 0, 0);
      nets->generator.Init(global.data(), g_init);
      Rng d_init = DeriveStream(seed, Stream::kModelInit, 0, 1);
      nets->discriminator.Init(global.data() + nets->disc_offset(), d_init);
    } else {
      auto central = std::make_unique<CentralEvaluator>(*model, data.test, cfg.metrics.eval_train ? &data.train : nullptr,
                                                        cfg.experiment.target_accuracy, threads);
      if (cfg.attack.kind == "backdoor") {
        backdoor_test = TriggeredTestSet(data.test, cfg.attack);
        central->SetBackdoorTest(&backdoor_test);
      }
      evaluator = std::move(central);
      global.resize(model->num_params());
      Rng init = DeriveStream(seed, Stream::kModelInit);
      model->Init(global.data(), init);
      if (cfg.audit.canaries > 0 || cfg.audit.membership) {
        audit = std::make_unique<PrivacyAudit>(cfg, model->num_params(), sampler->sampling_rate());
        if (audit->canaries()) {
          initial = global;
          if (aggregator) {
            auto tap = std::make_unique<CanaryTap>(std::move(aggregator), *audit);
            canaries = tap.get();
            aggregator = std::move(tap);
          }
        }
      }
    }
  }

  json Describe() const {
    json doc;
    doc["config"] = ToJson(cfg);
    doc["environment"] = RunEnvironment(threads, comm.size());
    doc["data"] = DescribeData(data);
    doc["model"] = trainer->Describe();
    doc["partition"] = PartitionStats(data.train, partition, &client_tests);
    doc["privacy"] = ledger->Describe(input_guarantee);
    if (attack->active()) {
      doc["attack"] = {{"kind", cfg.attack.kind}, {"count", attack->clients().size()},
                       {"clients", attack->clients()}, {"start_round", cfg.attack.start_round}};
      if (cfg.attack.kind == "backdoor") doc["attack"]["backdoor_test_samples"] = backdoor_test.size();
    }
    evaluator->Describe(doc);
    if (async) {
      const AsyncConfig& a = cfg.async;
      doc["async"] = {{"mode", cfg.algorithm.mode},
                      {"concurrency", a.concurrency},
                      {"buffer_size", async->buffer_size()},
                      {"staleness", a.staleness},
                      {"max_staleness", a.max_staleness},
                      {"weighting", cfg.algorithm.mode == "fedasync" ? std::string("uniform") : a.weighting}};
    }
    if (async || cfg.system.availability_model != "constant") doc["availability"] = availability->Describe();
    if (!holdout.empty()) doc["clients"] = {{"holdout", holdout.size()}, {"holdout_clients", holdout}};
    doc["rounds"] = json::array();
    return doc;
  }

  // Per-client evaluation, once the run knows whether it resumes: a resume
  // keeps clients.jsonl up to its checkpoint's round.
  void StartClientEvaluation(json& doc, int resume_round) {
    if (cfg.metrics.client_eval == "none") return;
    clients = std::make_unique<ClientEvaluator>(cfg, *trainer, data, client_tests, holdout, comm, threads,
                                                recorder.writes() ? opt.out_dir : std::string(), resume_round);
    doc["clients"] = clients->Describe();
  }

  // Every stage's state, for checkpoints (collective in a distributed run).
  void SaveState(CheckpointWriter& w) const {
    w.F32("global", global);
    trainer->Save(w);
    for (const auto& t : transforms) t->Save(w);
    if (aggregator) aggregator->Save(w);
    ledger->Save(w);
    if (uploads) uploads->Save(w);
  }
  void LoadState(const CheckpointReader& r) {
    global = r.F32("global", global.size());
    trainer->Load(r);
    for (const auto& t : transforms) t->Load(r);
    if (aggregator) aggregator->Load(r);
    ledger->Load(r);
    if (uploads) uploads->Load(r);
  }
};

// What both loops record after the server step: the transforms' figures,
// the aggregator's and the server's stages, privacy, client state and the
// evaluation (`members`: the reports whose uploads the server saw).
void RecordTail(Run& run, json& rec, json& stages, const CohortResult& members, const AggregateResult& agg,
                const ServerPipeline::Outcome& upd, int64_t included, bool eval, double wall_client_eval) {
  CohortExchange& exchange = run.training->exchange();
  if (const ClientStateStore* st = run.trainer->client_state()) {
    rec["clients_with_state"] = exchange.Sum(st->ClientsWithState());
    rec["client_state_bytes"] = exchange.Sum(st->Bytes());
  }
  if (!agg.record.is_null()) rec[agg.record_key] = agg.record;
  if (run.ledger->active()) {
    rec["epsilon"] = NullableNumber(run.ledger->epsilon());
    rec["delta"] = run.ledger->delta();
  }
  for (const auto& t : run.transforms) {
    json m = t->RoundMetrics(members.reports);
    for (const std::string& k : t->flat_keys()) rec[k] = m[k];
    stages[t->name()] = std::move(m);
  }
  if (run.comm.root()) {
    stages["aggregator"] = {{"kind", run.aggregator->name()}, {"included", included},
                            {"denominator", agg.denominator}, {"bytes_up", agg.bytes_up},
                            {"bytes_down", agg.bytes_down},   {"round_trips", agg.round_trips},
                            {"failed", agg.failed}};
  }
  stages["server"] = {{"released", upd.released}, {"applied", upd.applied}};
  if (run.server->adds_noise()) stages["server"].update(run.server->NoiseRecord());
  if (run.ledger->active()) {
    stages["privacy"] = {{"epsilon", NullableNumber(run.ledger->epsilon())},
                         {"round_epsilon", NullableNumber(run.ledger->round_epsilon())}};
  }
  stages["evaluation"] = {{"evaluated", eval}};
  if (run.clients) stages["evaluation"]["client_seconds"] = wall_client_eval;
  if (run.recon) stages["audit"]["reconstruction"] = run.recon->RoundRecord();
  if (run.canaries) stages["audit"]["canaries_inserted"] = run.canaries->inserted();
  if (run.imprint_tap) stages["audit"]["imprint"] = run.imprint_tap->RoundRecord();
}

// Closes round (or server step) r's record: its stages and wall times,
// rounds.jsonl, the stop policy and checkpoints (every rank stops
// together). Returns false when the run stops.
bool EndRecord(Run& run, json& doc, Totals& tot, json rec, json stages, int r, double wall_round0,
               std::string& status, const RunRecorder::SaveFn& save) {
  const int rounds = run.cfg.experiment.rounds;
  rec["stages"] = std::move(stages);
  const double wall_now = run.recorder.WallSeconds();
  rec["wall_round_seconds"] = wall_now - wall_round0;
  rec["wall_seconds"] = wall_now;
  run.recorder.Append(doc, rec, rounds);
  tot.next_round = r + 1;
  int sig = run.opt.stop ? run.opt.stop->load() : 0;
  run.training->exchange().EndRound(status, sig);
  return run.recorder.Next(r + 1, rounds, status, sig, doc, save);
}

// The synchronous rounds (algorithm.mode = sync).
void SyncLoop(Run& run, json& doc, Totals& tot, std::string& status, const RunRecorder::SaveFn& save) {
  const Config& cfg = run.cfg;
  const bool root = run.comm.root();
  const int rounds = cfg.experiment.rounds;
  ClientTrainer& trainer = *run.trainer;
  CohortExchange& exchange = run.training->exchange();
  for (int r = tot.next_round; r < rounds; ++r) {
    const double wall_round0 = run.recorder.WallSeconds();
    // 1. Distribute: sample the cohort; the simulated system decides who is
    //    online, drops out, is too late or is not waited for.
    const std::vector<int> sampled = run.sampler->Sample(r);
    // audit.imprint: on an attack round the malicious server sends a crafted
    // model, and the round's server step lands in that copy, which is then
    // dropped: the honest global model does not move.
    const bool imprint_round = run.imprint && run.imprint->Attacks(r);
    Eigen::VectorXf crafted;
    if (imprint_round) run.imprint->Craft(run.global, crafted);
    Eigen::VectorXf& sent = imprint_round ? crafted : run.global;
    trainer.BeginRound(sent, r, sampled);
    std::vector<ClientDemand> demand(sampled.size());
    for (size_t i = 0; i < sampled.size(); ++i) {
      demand[i] = {trainer.PlannedWork(sampled[i]), trainer.DownloadBytes(sampled[i])};
    }
    ScheduledRound plan = run.scheduler->Schedule(r, sampled, demand, run.planned_up, trainer.batch(),
                                                  run.sampler->keep(), tot.sim_time_s);
    const double lr_round = trainer.LearningRate(r);

    // 2-3. Train locally, transform each upload, collect the aggregate.
    if (root) run.aggregator->Begin(r, static_cast<int>(plan.cohort.size()));
    CohortResult cohort = run.training->Run(r, static_cast<float>(lr_round), plan, sent, run.aggregator.get());
    AggregateResult agg;
    if (root) agg = run.aggregator->Finish(cohort.reports, cohort.keep);
    if (cohort.skipped > 0 && cfg.experiment.on_divergence == "stop") status = "diverged";
    if (root) plan.sys.seconds = run.scheduler->Finish(plan, cohort.reports, agg.member_bytes_up, agg.round_trips);
    // Time-dependent availability plans the next round at the simulated
    // time, so every process needs the round's duration (rank 0 has it).
    if (cfg.system.availability_model != "constant") BroadcastValue(run.comm, plan.sys.seconds);
    const CohortTally kept = TallyKept(cohort);
    // What the members' uploads would weigh before any transform (the
    // algorithm's own encoding), for the compression ratio.
    int64_t cohort_raw_bytes = 0;
    for (const ClientReport& rp : cohort.reports) cohort_raw_bytes += rp.raw_bytes_up;

    // 4. Update the global model; account the privacy spent.
    const ServerPipeline::Outcome upd =
        run.server->Run(r, root ? &agg : nullptr, cohort, status == "diverged", trainer, exchange, sent);
    if (upd.diverged) status = "diverged";
    if (root) run.ledger->Step(upd.released, plan.cohort, cohort.reports);

    tot.Add(plan.sys);
    tot.steps += kept.steps;
    tot.extra_samples += kept.extra_samples;
    tot.extra_steps += kept.extra_steps;
    tot.bytes_down += plan.bytes_down + agg.bytes_down;
    tot.bytes_up += agg.bytes_up;
    tot.samples += kept.samples;
    tot.skipped_updates += cohort.skipped;
    tot.train_seconds += cohort.wall_seconds;

    // 5. Evaluate (per client on every process, a collective step; the
    //    global model on rank 0); 6. record.
    const bool eval_round = r + 1 == rounds || (r + 1) % cfg.metrics.eval_every == 0;
    const bool eval = root && status == "completed" && eval_round;
    const double wall_eval0 = run.recorder.WallSeconds();
    if (run.clients && eval_round && !upd.diverged) run.clients->Evaluate(r + 1, plan.cohort, run.global);
    const double wall_client_eval = run.recorder.WallSeconds() - wall_eval0;
    if (eval && !run.evaluator->Evaluate(r + 1, run.global)) status = "diverged";
    json rec = {
        {"round", r + 1},
        {"sampled", plan.sys.sampled},
        {"cohort", static_cast<int64_t>(plan.cohort.size())},
        {"cohort_samples", cohort.cohort_samples},
        {"train_samples", kept.samples},
        {"skipped_updates", cohort.skipped},
        {"bytes_up", tot.bytes_up},
        {"bytes_down", tot.bytes_down},
        {"round_bytes_up", agg.bytes_up},
        {"round_bytes_down", plan.bytes_down + agg.bytes_down},
        {"sim_time_s", tot.sim_time_s},
    };
    trainer.RecordRound(rec, r, kept);
    rec.update(SystemRecord(plan.sys));
    run.evaluator->Record(rec, eval);
    if (run.clients) run.clients->Record(rec, eval);
    json stages = {
        {"sampler", {{"sampled", plan.sys.sampled}, {"sampling_rate", run.sampler->sampling_rate()}}},
        {"scheduler", SchedulerRecord(plan)},
        {"train", {{"kept", kept.clients}, {"skipped", cohort.skipped}, {"samples", kept.samples},
                   {"steps", kept.steps}, {"upload_bytes", cohort_raw_bytes}}},
    };
    RecordTail(run, rec, stages, cohort, agg, upd, kept.clients, eval, wall_client_eval);
    if (!EndRecord(run, doc, tot, std::move(rec), std::move(stages), r, wall_round0, status, save)) break;
  }
}

// Mean, 90th percentile (nearest rank) and maximum of the buffer's staleness.
json StalenessRecord(const std::vector<AsyncArrival>& buffer) {
  std::vector<int> s;
  for (const AsyncArrival& a : buffer) s.push_back(a.staleness);
  if (s.empty()) return {{"mean", nullptr}, {"p90", nullptr}, {"max", nullptr}};
  std::sort(s.begin(), s.end());
  double sum = 0.0;
  for (int x : s) sum += x;
  const size_t rank = static_cast<size_t>(std::ceil(0.9 * static_cast<double>(s.size())));
  return {{"mean", sum / static_cast<double>(s.size())}, {"p90", s[std::max<size_t>(rank, 1) - 1]}, {"max", s.back()}};
}

// The event-driven modes (algorithm.mode = fedbuff | fedasync): one record
// per server step (docs/async.md).
void AsyncLoop(Run& run, json& doc, Totals& tot, std::string& status, const RunRecorder::SaveFn& save) {
  const Config& cfg = run.cfg;
  const bool root = run.comm.root();
  const bool fedasync = cfg.algorithm.mode == "fedasync";
  const int rounds = cfg.experiment.rounds;
  ClientTrainer& trainer = *run.trainer;
  CohortExchange& exchange = run.training->exchange();
  for (int r = tot.next_round; r < rounds; ++r) {
    const double wall_round0 = run.recorder.WallSeconds();
    // 1. Events until the buffer is full: dispatches, arrivals, losses.
    const AsyncStep step = run.async->Next();
    const double wall_events = run.recorder.WallSeconds() - wall_round0;
    if (step.stalled) {
      status = "stalled";
      doc["stall_reason"] = step.stall_reason;
      break;
    }
    // 2. The clients dispatched under this version train together, on the
    //    model they downloaded (the current one); their uploads wait for
    //    their arrival in run.uploads.
    ScheduledRound wave;
    std::vector<int64_t> seqs;
    for (const AsyncDispatch& d : step.train) {
      wave.cohort_at.push_back(wave.cohort.size());
      wave.cohort.push_back(d.client);
      seqs.push_back(d.seq);
    }
    wave.plans.resize(wave.cohort.size());
    trainer.BeginRound(run.global, r, wave.cohort);
    if (root) run.uploads->StartWave(std::move(seqs), &run.global);
    const CohortResult trained = run.training->Run(r, static_cast<float>(trainer.LearningRate(r)), wave, run.global,
                                                   root ? run.uploads.get() : nullptr);
    const CohortTally work = TallyKept(trained);

    // 3. The buffer's updates (staleness-weighted) into the aggregate.
    CohortResult buffer;
    AggregateResult agg;
    if (root) {
      agg = run.uploads->Apply(step.buffer, cfg.async, fedasync, run.global, *run.aggregator, r, buffer.reports,
                               buffer.keep);
    }
    const int64_t skipped = root ? run.uploads->skipped() : 0;  // buffered updates that were not finite
    // Updates that arrived too stale were uploaded, then dropped.
    int64_t stale_bytes = 0;
    if (root) {
      for (int64_t seq : step.discarded) stale_bytes += run.uploads->Discard(seq);
    }
    if (skipped > 0 && cfg.experiment.on_divergence == "stop") status = "diverged";

    // 4. The server step; privacy: central DP accounts each released
    //    buffer, local and sample-level DP each trained client.
    const ServerPipeline::Outcome upd =
        run.server->Run(r, root ? &agg : nullptr, buffer, status == "diverged", trainer, exchange, run.global);
    if (upd.diverged) status = "diverged";
    if (root) run.ledger->Step(upd.released, wave.cohort, trained.reports);
    const CohortTally applied = TallyKept(buffer);

    const AsyncCounts& n = step.counts;
    tot.sim_time_s = step.time_s;
    tot.offline += n.offline;
    tot.dropped += n.dropped;
    tot.dispatched += n.dispatched;
    tot.left += n.left;
    tot.stale += n.stale;
    tot.steps += work.steps;
    tot.extra_samples += work.extra_samples;
    tot.extra_steps += work.extra_steps;
    tot.samples += work.samples;
    tot.bytes_down += n.bytes_down + agg.bytes_down;
    tot.bytes_up += agg.bytes_up + stale_bytes;
    tot.skipped_updates += trained.skipped;
    tot.train_seconds += trained.wall_seconds;

    // 5. Evaluate; 6. record.
    const bool eval_round = r + 1 == rounds || (r + 1) % cfg.metrics.eval_every == 0;
    const bool eval = root && status == "completed" && eval_round;
    const double wall_eval0 = run.recorder.WallSeconds();
    std::vector<int> participants;
    for (const AsyncArrival& a : step.buffer) participants.push_back(a.dispatch.client);
    if (run.clients && eval_round && !upd.diverged) run.clients->Evaluate(r + 1, participants, run.global);
    const double wall_client_eval = run.recorder.WallSeconds() - wall_eval0;
    if (eval && !run.evaluator->Evaluate(r + 1, run.global)) status = "diverged";
    json rec = {
        {"round", r + 1},
        {"sim_time_s", step.time_s},
        {"cohort", static_cast<int64_t>(step.buffer.size())},
        {"trained", static_cast<int64_t>(wave.cohort.size())},
        {"train_samples", work.samples},
        {"skipped_updates", trained.skipped},
        {"bytes_up", tot.bytes_up},
        {"bytes_down", tot.bytes_down},
        {"round_bytes_up", agg.bytes_up + stale_bytes},
        {"round_bytes_down", n.bytes_down + agg.bytes_down},
        {"staleness", StalenessRecord(step.buffer)},
        {"in_flight", step.in_flight},
        {"dispatched", n.dispatched},
        {"offline_clients", n.offline},
        {"dropped_clients", n.dropped},
        {"lost_clients", n.left},
        {"stale_updates", n.stale},
        {"retries", n.retries},
    };
    trainer.RecordRound(rec, r, applied);
    run.evaluator->Record(rec, eval);
    if (run.clients) run.clients->Record(rec, eval);
    json stages = {
        {"scheduler", {{"dispatched", n.dispatched}, {"in_flight", step.in_flight}, {"sim_seconds", step.time_s},
                       {"bytes_down", n.bytes_down}, {"held_uploads", root ? run.uploads->held() : 0},
                       {"events", n.events}, {"wall_seconds", wall_events}}},
        {"train", {{"clients", static_cast<int64_t>(wave.cohort.size())}, {"kept", work.clients},
                   {"skipped", trained.skipped}, {"samples", work.samples}, {"steps", work.steps},
                   {"wall_seconds", trained.wall_seconds}}},
    };
    RecordTail(run, rec, stages, buffer, agg, upd, applied.clients, eval, wall_client_eval);
    if (!EndRecord(run, doc, tot, std::move(rec), std::move(stages), r, wall_round0, status, save)) break;
  }
}

}  // namespace

json RunFederated(const Config& cfg, const RunOptions& opt, Comm& comm, SetupAgreement& setup) {
  ValidateConfig(cfg);
  Run run(cfg, opt, comm, setup);
  json doc = run.Describe();
  Totals tot;
  if (const json saved = run.recorder.Restore(doc, cfg.experiment.rounds); !saved.is_null()) {
    try {
      tot.FromJson(saved);
      run.evaluator->LoadTotals(saved);
      run.ledger->LoadTotals(saved);
      run.StartClientEvaluation(doc, opt.resume ? tot.next_round : -1);
      if (run.clients) run.clients->LoadTotals(saved);
      if (run.async) {
        run.async->Load(saved.at("async").at("scheduler"));
        if (run.uploads) run.uploads->LoadReports(saved.at("async").at("uploads"));
        if (run.async->version() != tot.next_round) {
          throw InputError(fmt::format("{}: checkpoint: the scheduler is at model version {}, the run at round {}",
                                       CheckpointPath(opt.out_dir), run.async->version(), tot.next_round));
        }
      }
    } catch (const json::exception& e) {
      throw InputError(fmt::format("{}: checkpoint totals are damaged: {}", CheckpointPath(opt.out_dir), e.what()));
    }
    run.LoadState(*run.recorder.resume());
    run.recorder.StartLoop(saved);
  } else {
    run.StartClientEvaluation(doc, -1);
    run.recorder.StartLoop(nullptr);
  }
  // From here on a failure is one rank's alone.
  setup.Close();
  const int rounds = cfg.experiment.rounds;
  ClientTrainer& trainer = *run.trainer;
  CohortExchange& exchange = run.training->exchange();
  std::string status = "completed";
  const RunRecorder::SaveFn save{[&] {
                                   json t = tot.ToJson();
                                   run.evaluator->SaveTotals(t);
                                   run.ledger->SaveTotals(t);
                                   if (run.clients) run.clients->SaveTotals(t);
                                   if (run.async) {
                                     t["async"] = {{"scheduler", run.async->Save()},
                                                   {"uploads", run.uploads ? run.uploads->SaveReports() : json::array()}};
                                   }
                                   return t;
                                 },
                                 [&](CheckpointWriter& w) { run.SaveState(w); }};
  if (run.async) {
    AsyncLoop(run, doc, tot, status, save);
  } else {
    SyncLoop(run, doc, tot, status, save);
  }
  // The last checkpoint holds the state after the last good round.
  run.recorder.Close(status, doc, save);
  const double wall = run.recorder.WallSeconds();
  const double train_flops = static_cast<double>(tot.samples + tot.extra_samples) * trainer.TrainFlopsPerSample() +
                             static_cast<double>(tot.steps + tot.extra_steps) * trainer.TrainFlopsPerBatch();
  json summary = run.recorder.SummaryHead(status, rounds, tot.next_round);
  run.evaluator->Summarize(summary);
  if (run.clients) run.clients->Summarize(summary);
  trainer.Summarize(summary, doc["rounds"].empty() ? json(nullptr) : doc["rounds"].back());
  const bool dp = cfg.privacy.mode != "none";
  summary.update({
      {"bytes_up", tot.bytes_up},
      {"bytes_down", tot.bytes_down},
      {"train_samples", tot.samples},
      {"train_steps", tot.steps},
      {"skipped_updates", tot.skipped_updates},
      {"sim_time_s", tot.sim_time_s},
      {"offline_clients", tot.offline},
      {"dropped_clients", tot.dropped},
      {"late_clients", tot.late},
      {"partial_clients", tot.partial},
      {"surplus_clients", tot.surplus},
      {"epsilon", dp ? NullableNumber(run.ledger->epsilon()) : json(nullptr)},
      {"delta", dp ? json(run.ledger->delta()) : json(nullptr)},
      {"train_gflop", train_flops / 1e9},
      {"peak_rss_mib", PeakRssMib()},
      {"wall_seconds", wall},
      {"wall_setup_seconds", run.recorder.setup_seconds()},
      {"wall_train_seconds", tot.train_seconds},
      {"wall_train_samples_per_second", tot.train_seconds > 0 ? tot.samples / tot.train_seconds : 0.0},
      {"wall_train_gflops", tot.train_seconds > 0 ? train_flops / tot.train_seconds / 1e9 : 0.0},
  });
  if (const ClientStateStore* st = trainer.client_state()) {
    summary["clients_with_state"] = exchange.Sum(st->ClientsWithState());
    summary["client_state_bytes"] = exchange.Sum(st->Bytes());
  }
  if (run.audit && comm.root() && status != "diverged") {
    json a;
    if (run.audit->canaries()) {
      a["canaries"] = run.audit->FinishCanaries(run.initial, run.global, run.ledger->epsilon(), run.threads);
    }
    if (run.audit->membership()) {
      std::vector<int> members;
      for (int c : TrainingClients(run.holdout, cfg.data.num_clients)) {
        const auto& rows = run.partition[static_cast<size_t>(c)];
        members.insert(members.end(), rows.begin(), rows.end());
      }
      // Members are the clients' examples as they were before any input
      // perturbation: what the attacker asks about.
      const Dataset& rows = run.raw_train.size() > 0 ? run.raw_train : run.data.train;
      a["membership"] = run.audit->FinishMembership(*run.model, run.global.data(), rows, members,
                                                    run.data.test, run.threads);
    }
    summary["audit"] = a;
  }
  if (run.recon) {
    summary["audit"]["reconstruction"] = run.recon->Summary();
    if (run.recorder.writes() && run.recon->WriteGrid(opt.out_dir + "/reconstructions.pgm")) {
      summary["audit"]["reconstruction"]["grid"] = "reconstructions.pgm";
    }
  }
  if (run.imprint_tap) {
    summary["audit"]["imprint"] = run.imprint_tap->Summary();
    if (run.recorder.writes() && run.imprint_tap->WriteGrid(opt.out_dir + "/imprint.pgm")) {
      summary["audit"]["imprint"]["grid"] = "imprint.pgm";
    }
  }
  if (run.async) {
    summary["dispatched_clients"] = tot.dispatched;
    summary["lost_clients"] = tot.left;
    summary["stale_updates"] = tot.stale;
  }
  if (status == "stalled") {
    summary["stall_reason"] = doc["stall_reason"];
    doc.erase("stall_reason");
  }
  doc["summary"] = summary;
  // Rank 0's traffic with the other ranks in the round loop (0 with one process).
  doc["environment"]["exchange_bytes_received"] = exchange.bytes_received();
  doc["environment"]["exchange_bytes_sent"] = exchange.bytes_sent();
  run.recorder.Finish(doc);
  return doc;
}

}  // namespace fedsim
