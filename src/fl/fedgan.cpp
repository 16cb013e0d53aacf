// FedGAN's round loop (docs/algorithms.md#fedgan). Round t:
//   1. cohort S_t as in the main runner (fixed size or Poisson);
//   2. each k in S_t starts from the global (w_G, w_D) and runs K steps of
//      TrainGanClient (clients in parallel, each on its own thread's scratch);
//   3. server: (w_G, w_D) <- sum_k n_k (w_G^k, w_D^k) / sum_k n_k over the
//      kept clients, summed in client order in double precision;
//   4. on evaluation rounds: the judge classifies eval_samples generated
//      samples (fixed latent vectors), and a grid of them is written.
#include "fl/fedgan.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>

#include "core/comm.h"
#include "core/error.h"
#include "core/parallel.h"
#include "data/partition.h"
#include "fl/algorithm.h"
#include "fl/checkpoint.h"
#include "metrics/image.h"
#include "metrics/writer.h"
#include "round/cohort_sampler.h"
#include "round/run_recorder.h"
#include "model/mlp.h"
#include "optim/sgd.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Clients trained between two reductions (as the main runner).
constexpr int kBlock = 64;
// Generated samples per evaluation chunk; the chunk is also the unit of the
// latent streams, so sample i's z does not depend on the thread count.
constexpr int kSampleChunk = 256;


// Adam (Kingma & Ba 2015) on n values: step t >= 1.
void AdamStep(float* w, const float* g, float* m, float* v, int64_t n, int64_t t, float lr, const GanTrainSettings& s) {
  Eigen::Map<Eigen::ArrayXf> wa(w, n), ma(m, n), va(v, n);
  Eigen::Map<const Eigen::ArrayXf> ga(g, n);
  ma = s.beta1 * ma + (1.0f - s.beta1) * ga;
  va = s.beta2 * va + (1.0f - s.beta2) * ga.square();
  const float c1 = static_cast<float>(1.0 - std::pow(static_cast<double>(s.beta1), static_cast<double>(t)));
  const float c2 = static_cast<float>(1.0 - std::pow(static_cast<double>(s.beta2), static_cast<double>(t)));
  wa -= (lr / c1) * ma / ((va / c2).sqrt() + s.eps);
}

// Cumulative quantities carried across rounds and a resume.
struct Totals {
  int next_round = 0;
  int64_t bytes_up = 0, bytes_down = 0, samples = 0, steps = 0, skipped_updates = 0;
  double train_seconds = 0.0;

  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Totals, next_round, bytes_up, bytes_down, samples, steps, skipped_updates,
                                 train_seconds)
  json ToJson() const { return *this; }
  void FromJson(const json& j) { j.get_to(*this); }
};

// The GAN's output is a pixel in [0, 1] (tanh mapped by (y + 1) / 2), so the
// data must lie there too.
void CheckUnitRange(const Dataset& d) {
  bool ok = true;
  if (d.byte_storage) {
    for (Eigen::Index j = 0; j < d.byte_scale.size(); ++j) {
      const float lo = std::min(d.byte_shift[j], d.byte_shift[j] + 255.0f * d.byte_scale[j]);
      const float hi = std::max(d.byte_shift[j], d.byte_shift[j] + 255.0f * d.byte_scale[j]);
      ok = ok && lo >= 0.0f && hi <= 1.0f + 1e-6f;
    }
  } else if (d.x.size() > 0) {
    ok = d.x.minCoeff() >= 0.0f && d.x.maxCoeff() <= 1.0f;
  }
  if (!ok) {
    throw InputError("data.dataset: fedgan generates features in [0, 1] (pixels); this data has features outside "
                     "that range (use image data such as fashion_mnist or mnist_idx, without data.standardize)");
  }
}

// Height and width of one sample as an image: the data's shape for one
// channel, else a square if dim is one, else one row.
std::pair<int, int> ImageSize(const Dataset& d) {
  if (d.shape.size() == 3 && d.shape[0] == 1) return {d.shape[1], d.shape[2]};
  const int dim = d.dim();
  const int side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(dim))));
  if (side * side == dim) return {side, side};
  return {1, dim};
}

// The judge: a softmax regression or MLP trained by minibatch SGD on the
// whole training set, single-threaded, from (seed, kJudge) streams.
struct Judge {
  std::unique_ptr<Mlp> model;
  Eigen::VectorXf params;
  double test_accuracy = NAN, test_loss = NAN;
};

Judge TrainJudge(const GanConfig& g, const Dataset& train, const Dataset& test, uint64_t seed, int threads) {
  Judge j;
  std::vector<int> sizes{train.dim()};
  if (g.judge_kind == "mlp") sizes.insert(sizes.end(), g.judge_hidden.begin(), g.judge_hidden.end());
  sizes.push_back(train.num_classes);
  j.model = std::make_unique<Mlp>(sizes, 1.0, g.judge_kind);
  const int64_t p = j.model->num_params();
  j.params.resize(p);
  Rng init = DeriveStream(seed, Stream::kJudge);
  j.model->Init(j.params.data(), init);
  const int n = train.size();
  const int batch = std::max(1, std::min(g.judge_batch_size, n));
  auto ws = j.model->NewWorkspace(batch);
  RowMatrix x(batch, train.dim());
  std::vector<int> y(static_cast<size_t>(batch)), order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  Eigen::VectorXf grad(p);
  Sgd sgd(0.0f, 0.0f);
  for (int e = 0; e < g.judge_epochs && n > 0; ++e) {
    Rng rng = DeriveStream(seed, Stream::kJudge, static_cast<uint64_t>(e) + 1);
    rng.Shuffle(order.begin(), order.end());
    for (int pos = 0; pos < n; pos += batch) {
      const int b = std::min(batch, n - pos);
      train.Rows(order.data() + pos, b, x.data());
      for (int i = 0; i < b; ++i) y[static_cast<size_t>(i)] = train.y[static_cast<size_t>(order[static_cast<size_t>(pos + i)])];
      j.model->LossAndGradient(j.params.data(), x.data(), y.data(), b, grad.data(), *ws);
      sgd.Step(j.params.data(), grad.data(), p, static_cast<float>(g.judge_lr));
    }
  }
  std::vector<std::unique_ptr<Workspace>> eval_ws(static_cast<size_t>(threads));
  for (auto& w : eval_ws) w = j.model->NewWorkspace(kEvalChunk);
  const EvalSums e = EvaluateDataset(*j.model, j.params.data(), test, threads, eval_ws);
  if (e.count > 0) {
    j.test_accuracy = static_cast<double>(e.correct) / static_cast<double>(e.count);
    j.test_loss = e.loss_sum / static_cast<double>(e.count);
  }
  return j;
}

// Per-thread buffers of the evaluation.
struct EvalScratch {
  DenseNet::Workspace gen;
  std::unique_ptr<Workspace> judge;
  Eigen::VectorXf z;
  RowMatrix pixels;
  Eigen::VectorXd prob;
};

}  // namespace

GanTrainSettings GanTrainSettings::FromConfig(const Config& cfg) {
  GanTrainSettings s;
  s.batch_size = cfg.algorithm.batch_size;
  s.local_steps = cfg.algorithm.local_steps;
  s.local_epochs = cfg.algorithm.local_epochs;
  s.adam = cfg.gan.optimizer == "adam";
  s.beta1 = static_cast<float>(cfg.gan.beta1);
  s.beta2 = static_cast<float>(cfg.gan.beta2);
  return s;
}

GanScratch::GanScratch(const GanNets& nets, int max_batch)
    : ws(nets, max_batch),
      grad(nets.num_params()),
      real(max_batch, nets.data_dim()),
      z(static_cast<Eigen::Index>(max_batch) * nets.latent_dim()) {}

GanClientReport TrainGanClient(const GanNets& nets, const GanTrainSettings& s, const Dataset& train,
                               const std::vector<int>& rows, Rng& rng, float lr_g, float lr_d, float* params,
                               float* adam_m, float* adam_v, int64_t* adam_t, GanScratch& sc) {
  GanClientReport rep;
  const int n = static_cast<int>(rows.size());
  rep.weight = n;
  if (n == 0) return rep;
  const int batch = std::min(s.batch_size, n);
  const int64_t steps_per_epoch = (n + batch - 1) / batch;
  const int64_t total = s.local_steps > 0 ? s.local_steps : steps_per_epoch * s.local_epochs;
  const int64_t pg = nets.generator.num_params(), pd = nets.discriminator.num_params(), off = nets.disc_offset();
  const int latent = nets.latent_dim();
  float* wg = params;
  float* wd = params + off;
  sc.order.assign(rows.begin(), rows.end());
  int pos = n;  // forces a shuffle before the first batch
  for (int64_t step = 0; step < total; ++step) {
    if (pos >= n) {
      rng.Shuffle(sc.order.begin(), sc.order.end());
      pos = 0;
    }
    const int b = std::min(batch, n - pos);
    train.Rows(sc.order.data() + pos, b, sc.real.data());
    auto real = sc.real.topRows(b);
    real.array() = 2.0f * real.array() - 1.0f;
    for (int64_t i = 0; i < static_cast<int64_t>(b) * latent; ++i) sc.z[i] = static_cast<float>(rng.Normal());
    const float* fake = GeneratorForward(nets, wg, sc.z.data(), b, sc.ws);
    const double ld = DiscriminatorLossAndGradient(nets, wd, sc.real.data(), fake, b, sc.grad.data() + off, sc.ws);
    if (s.adam) ++*adam_t;
    if (s.adam) {
      AdamStep(wd, sc.grad.data() + off, adam_m + off, adam_v + off, pd, *adam_t, lr_d, s);
    } else {
      Eigen::Map<Eigen::VectorXf>(wd, pd) -= lr_d * Eigen::Map<const Eigen::VectorXf>(sc.grad.data() + off, pd);
    }
    const double lg = GeneratorLossAndGradient(nets, wg, wd, sc.z.data(), b, sc.grad.data(), sc.ws);
    if (s.adam) {
      AdamStep(wg, sc.grad.data(), adam_m, adam_v, pg, *adam_t, lr_g, s);
    } else {
      Eigen::Map<Eigen::VectorXf>(wg, pg) -= lr_g * Eigen::Map<const Eigen::VectorXf>(sc.grad.data(), pg);
    }
    rep.d_loss_sum += ld * b;
    rep.g_loss_sum += lg * b;
    rep.samples += b;
    pos += b;
  }
  rep.steps = total;
  return rep;
}

void AddWeightedUploads(Eigen::VectorXd& acc, const Eigen::MatrixXf& uploads, const double* weights, const char* keep,
                        int count) {
  for (int i = 0; i < count; ++i) {
    if (keep[i]) acc += weights[i] * uploads.col(i).cast<double>();
  }
}

json RunFedGan(const Config& cfg, const RunOptions& opt, Comm& comm, SetupAgreement& setup) {
  ValidateConfig(cfg);
  const int threads = ResolveThreads(opt.threads);
  const uint64_t seed = cfg.experiment.seed;
  const GanConfig& gc = cfg.gan;
  // Not split over processes: under MPI every rank runs the whole
  // (deterministic) run and rank 0 alone writes and reports.
  RunRecorder recorder(cfg, opt, comm, setup);
  if (recorder.writes() && !opt.resume) {
    // An earlier run's sample images would look like this run's.
    std::error_code ec;
    const fs::path samples = fs::path(opt.out_dir) / "samples";
    if (fs::is_directory(samples, ec)) {
      for (const auto& e : fs::directory_iterator(samples, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind("round_", 0) == 0 && e.path().extension() == ".pgm") fs::remove(e.path(), ec);
      }
    }
  }

  FederatedData data = LoadData(cfg.data, cfg.data.seed >= 0 ? static_cast<uint64_t>(cfg.data.seed) : seed);
  CheckUnitRange(data.train);
  const int num_clients = cfg.data.num_clients;
  const Partition partition = MakePartition(data.train, num_clients, cfg.data.partition, seed);
  const int dim = data.train.dim();

  const GanNets nets(gc, dim);
  const int64_t p = nets.num_params();
  const GanTrainSettings settings = GanTrainSettings::FromConfig(cfg);
  const bool poisson = cfg.algorithm.sampling == "poisson";
  const int cohort_size = CohortSize(cfg.algorithm, num_clients);
  const int max_cohort = poisson ? num_clients : cohort_size;

  Eigen::VectorXf global(p);
  {
    Rng g_init = DeriveStream(seed, Stream::kModelInit, 0, 0);
    nets.generator.Init(global.data(), g_init);
    Rng d_init = DeriveStream(seed, Stream::kModelInit, 0, 1);
    nets.discriminator.Init(global.data() + nets.disc_offset(), d_init);
  }

  const auto t_judge = Clock::now();
  const Judge judge = TrainJudge(gc, data.train, data.test, seed, threads);
  const double judge_seconds = Seconds(t_judge, Clock::now());
  const int classes = data.train.num_classes;

  // Per-thread buffers, allocated once.
  size_t largest_client = 0;
  for (const auto& c : partition) largest_client = std::max(largest_client, c.size());
  const int max_batch = std::max(1, std::min<int>(cfg.algorithm.batch_size, static_cast<int>(largest_client)));
  std::vector<GanScratch> scratch;
  std::vector<EvalScratch> eval(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    scratch.emplace_back(nets, max_batch);
    EvalScratch& e = eval[static_cast<size_t>(t)];
    e.gen = nets.generator.NewWorkspace(kSampleChunk);
    e.judge = judge.model->NewWorkspace(kSampleChunk);
    e.z.resize(static_cast<Eigen::Index>(kSampleChunk) * nets.latent_dim());
    e.pixels.resize(kSampleChunk, dim);
    e.prob.resize(classes);
  }
  const int block = std::max(1, std::min(kBlock, max_cohort));
  Eigen::MatrixXf uploads(p, block);
  Eigen::VectorXd acc(p);
  std::vector<GanClientReport> reports;
  std::vector<double> weights;
  std::vector<char> keep;
  ClientStateStore adam_state;
  std::vector<int64_t> adam_steps;
  if (settings.adam) {
    adam_state.Resize(num_clients, 2);  // slot 0: first moment m, slot 1: second moment v, over [w_G; w_D]
    adam_steps.assign(static_cast<size_t>(num_clients), 0);
  }
  const auto [img_h, img_w] = ImageSize(data.train);
  const int grid_n = std::min(gc.grid * gc.grid, gc.eval_samples);
  RowMatrix grid_pixels(std::max(grid_n, 1), dim);

  json doc;
  doc["config"] = ToJson(cfg);
  doc["environment"] = RunEnvironment(threads, comm.size());
  doc["data"] = {{"description", data.description},
                 {"train_samples", data.train.size()},
                 {"test_samples", data.test.size()},
                 {"num_features", dim},
                 {"num_classes", classes},
                 {"feature_bytes", data.train.FeatureBytes() + data.test.FeatureBytes()}};
  doc["model"] = {{"kind", "gan_mlp"},
                  {"num_params", p},
                  {"description", fmt::format("generator {}, discriminator {}", nets.generator.Describe(),
                                              nets.discriminator.Describe())},
                  {"generator_params", nets.generator.num_params()},
                  {"discriminator_params", nets.discriminator.num_params()}};
  doc["partition"] = PartitionStats(data.train, partition);
  doc["judge"] = {{"kind", gc.judge_kind},
                  {"description", judge.model->Describe()},
                  {"num_params", judge.model->num_params()},
                  {"epochs", gc.judge_epochs},
                  {"test_accuracy", NullableNumber(judge.test_accuracy)},
                  {"test_loss", NullableNumber(judge.test_loss)},
                  {"wall_train_seconds", judge_seconds}};
  doc["rounds"] = json::array();

  Totals tot;
  if (const json saved = recorder.Restore(doc, cfg.experiment.rounds); !saved.is_null()) {
    try {
      tot.FromJson(saved);
    } catch (const json::exception& e) {
      throw InputError(fmt::format("{}: checkpoint totals are damaged: {}", CheckpointPath(opt.out_dir), e.what()));
    }
    const CheckpointReader& ck = *recorder.resume();
    global = ck.F32("gan/global", p);
    if (settings.adam) {
      adam_state.Load(ck, "gan/adam");
      adam_steps = ck.I64("gan/adam_steps", num_clients);
    }
    recorder.StartLoop(saved);
  } else {
    recorder.StartLoop(nullptr);
  }
  setup.Close();
  const bool writes = recorder.writes();

  const int rounds = cfg.experiment.rounds;
  const int64_t model_bytes = p * static_cast<int64_t>(sizeof(float));
  std::string status = "completed";
  const RunRecorder::SaveFn save{[&] { return tot.ToJson(); },
                                 [&](CheckpointWriter& w) {
                                   w.F32("gan/global", global);
                                   if (settings.adam) {
                                     adam_state.Save(w, "gan/adam");
                                     w.I64("gan/adam_steps", adam_steps);
                                   }
                                 }};

  // Judges eval_samples generated samples; fills grid_pixels with the first ones.
  auto judge_samples = [&]() {
    const int m = gc.eval_samples;
    const int chunks = (m + kSampleChunk - 1) / kSampleChunk;
    std::vector<SampleQualitySums> part(static_cast<size_t>(chunks), SampleQualitySums(classes));
    ParallelFor(chunks, threads, [&](int64_t c, int tid) {
      EvalScratch& e = eval[static_cast<size_t>(tid)];
      const int begin = static_cast<int>(c) * kSampleChunk;
      const int b = std::min(kSampleChunk, m - begin);
      Rng rng = DeriveStream(seed, Stream::kGanSamples, 0, static_cast<uint64_t>(c));
      for (int64_t i = 0; i < static_cast<int64_t>(b) * nets.latent_dim(); ++i) e.z[i] = static_cast<float>(rng.Normal());
      const float* out = nets.generator.Forward(global.data(), e.z.data(), false, b, e.gen);
      auto px = e.pixels.topRows(b);
      px = (Eigen::Map<const Eigen::MatrixXf>(out, b, dim).array() + 1.0f) * 0.5f;
      for (int i = begin; i < std::min(begin + b, grid_n); ++i) grid_pixels.row(i) = px.row(i - begin);
      const float* logits = judge.model->Logits(judge.params.data(), e.pixels.data(), b, *e.judge);
      Eigen::Map<const Eigen::MatrixXf> z(logits, b, classes);
      for (int i = 0; i < b; ++i) {
        const double mx = z.row(i).maxCoeff();
        double sum = 0.0;
        for (int y = 0; y < classes; ++y) sum += e.prob[y] = std::exp(static_cast<double>(z(i, y)) - mx);
        e.prob /= sum;
        part[static_cast<size_t>(c)].Add(e.prob.data(), gc.confidence);
      }
    });
    SampleQualitySums all(classes);
    for (const auto& s : part) all.Merge(s);
    return all;
  };

  for (int r = tot.next_round; r < rounds; ++r) {
    const double wall_round0 = recorder.WallSeconds();
    Rng cohort_rng = DeriveStream(seed, Stream::kCohort, static_cast<uint64_t>(r));
    std::vector<int> cohort;
    if (poisson) {
      for (int c = 0; c < num_clients; ++c) {
        if (cohort_rng.Uniform() < cfg.algorithm.sampling_rate) cohort.push_back(c);
      }
    } else {
      cohort = SampleCohort(num_clients, cohort_size, cohort_rng);
    }
    const size_t nc = cohort.size();
    reports.assign(nc, GanClientReport());
    weights.assign(nc, 0.0);
    keep.assign(nc, 0);
    const double decay = std::pow(cfg.algorithm.lr_decay, r);
    const float lr_g = static_cast<float>(gc.generator_lr * decay), lr_d = static_cast<float>(gc.discriminator_lr * decay);
    acc.setZero();
    int64_t cohort_samples = 0, skipped = 0;
    for (size_t b0 = 0; b0 < nc; b0 += static_cast<size_t>(block)) {
      const int nb = static_cast<int>(std::min<size_t>(static_cast<size_t>(block), nc - b0));
      const auto t_train = Clock::now();
      ParallelFor(nb, threads, [&](int64_t i, int tid) {
        const size_t k = b0 + static_cast<size_t>(i);
        const int client = cohort[k];
        float* w = uploads.col(i).data();
        uploads.col(i) = global;
        Rng rng = DeriveStream(seed, Stream::kLocalTrain, static_cast<uint64_t>(r), static_cast<uint64_t>(client));
        float *m = nullptr, *v = nullptr;
        int64_t* t = nullptr;
        if (settings.adam) {
          // float32 storage (the store is never configured for float16 here):
          // Open returns views of the stored vectors, so no Commit is needed.
          Eigen::VectorXf unused;
          m = adam_state.Open(client, 0, p, unused).data();
          v = adam_state.Open(client, 1, p, unused).data();
          t = &adam_steps[static_cast<size_t>(client)];
        }
        reports[k] = TrainGanClient(nets, settings, data.train, partition[static_cast<size_t>(client)], rng, lr_g, lr_d, w,
                                    m, v, t, scratch[static_cast<size_t>(tid)]);
        keep[k] = std::isfinite(reports[k].d_loss_sum) && std::isfinite(reports[k].g_loss_sum) &&
                  uploads.col(i).allFinite();
        weights[k] = reports[k].weight;
      });
      tot.train_seconds += Seconds(t_train, Clock::now());
      for (int i = 0; i < nb; ++i) {
        const size_t k = b0 + static_cast<size_t>(i);
        cohort_samples += static_cast<int64_t>(partition[static_cast<size_t>(cohort[k])].size());
        if (keep[k]) continue;
        ++skipped;
        if (cfg.experiment.on_divergence == "stop") status = "diverged";
        if (settings.adam) {
          adam_state.Clear(cohort[k]);
          adam_steps[static_cast<size_t>(cohort[k])] = 0;
        }
      }
      AddWeightedUploads(acc, uploads, weights.data() + b0, keep.data() + b0, nb);
    }
    double weight_sum = 0.0, d_loss = 0.0, g_loss = 0.0;
    int64_t round_samples = 0;
    for (size_t k = 0; k < nc; ++k) {
      if (!keep[k]) continue;
      weight_sum += reports[k].weight;
      d_loss += reports[k].d_loss_sum;
      g_loss += reports[k].g_loss_sum;
      round_samples += reports[k].samples;
      tot.steps += reports[k].steps;
    }
    if (weight_sum > 0.0 && status != "diverged") {
      global = (acc / weight_sum).cast<float>();
      if (!global.allFinite()) status = "diverged";
    }
    const int64_t round_bytes = static_cast<int64_t>(nc) * model_bytes;
    tot.bytes_up += round_bytes;
    tot.bytes_down += round_bytes;
    tot.samples += round_samples;
    tot.skipped_updates += skipped;

    const bool last = r + 1 == rounds;
    const bool do_eval = status == "completed" && (last || (r + 1) % cfg.metrics.eval_every == 0);
    json rec = {
        {"round", r + 1},
        {"cohort", static_cast<int64_t>(nc)},
        {"cohort_samples", cohort_samples},
        {"generator_lr", gc.generator_lr * decay},
        {"discriminator_lr", gc.discriminator_lr * decay},
        {"train_samples", round_samples},
        {"generator_loss", NullableNumber(round_samples ? g_loss / static_cast<double>(round_samples) : NAN)},
        {"discriminator_loss", NullableNumber(round_samples ? d_loss / static_cast<double>(round_samples) : NAN)},
        {"skipped_updates", skipped},
        {"bytes_up", tot.bytes_up},
        {"bytes_down", tot.bytes_down},
        {"round_bytes_up", round_bytes},
        {"round_bytes_down", round_bytes},
    };
    if (settings.adam) {
      rec["clients_with_state"] = adam_state.ClientsWithState();
      rec["client_state_bytes"] = adam_state.Bytes();
    }
    for (const char* k : {"confident_share", "class_entropy", "effective_classes", "inception_score",
                          "classes_covered", "class_histogram", "samples_image"}) {
      rec[k] = nullptr;
    }
    if (do_eval) {
      const SampleQualitySums sums = judge_samples();
      const SampleQuality q = Summarize(sums, gc.class_share);
      rec["confident_share"] = q.confident_share;
      rec["class_entropy"] = q.class_entropy;
      rec["effective_classes"] = q.effective_classes;
      rec["inception_score"] = q.inception_score;
      rec["classes_covered"] = q.classes_covered;
      rec["class_histogram"] = sums.histogram;
      if (writes && grid_n > 0) {
        const std::string rel = fmt::format("samples/round_{:04d}.pgm", r + 1);
        std::error_code ec;
        fs::create_directories(fs::path(opt.out_dir) / "samples", ec);
        if (ec) throw RunError(fmt::format("{}/samples: cannot create: {}", opt.out_dir, ec.message()));
        WritePgm((fs::path(opt.out_dir) / rel).string(),
                 TileImages(grid_pixels.data(), grid_n, img_h, img_w, gc.grid, 2));
        rec["samples_image"] = rel;
      }
    }
    const double wall_now = recorder.WallSeconds();
    rec["wall_round_seconds"] = wall_now - wall_round0;
    rec["wall_seconds"] = wall_now;
    recorder.Append(doc, rec, rounds);
    tot.next_round = r + 1;
    const int sig = opt.stop ? opt.stop->load() : 0;
    if (!recorder.Next(r + 1, rounds, status, sig, doc, save)) break;
  }
  recorder.Close(status, doc, save);

  // Final figures: the last evaluated round and the last round's losses.
  json last_eval = nullptr, last_round = nullptr;
  for (const auto& rec : doc["rounds"]) {
    last_round = rec;
    if (!rec["classes_covered"].is_null()) last_eval = rec;
  }
  auto from = [](const json& rec, const char* k) { return rec.is_null() ? json(nullptr) : rec[k]; };
  json summary = recorder.SummaryHead(status, rounds, tot.next_round);
  summary.update({
      {"judge_test_accuracy", NullableNumber(judge.test_accuracy)},
      {"final_eval_round", from(last_eval, "round")},
      {"final_classes_covered", from(last_eval, "classes_covered")},
      {"final_effective_classes", from(last_eval, "effective_classes")},
      {"final_class_entropy", from(last_eval, "class_entropy")},
      {"final_inception_score", from(last_eval, "inception_score")},
      {"final_confident_share", from(last_eval, "confident_share")},
      {"final_samples_image", from(last_eval, "samples_image")},
      {"final_generator_loss", from(last_round, "generator_loss")},
      {"final_discriminator_loss", from(last_round, "discriminator_loss")},
      {"bytes_up", tot.bytes_up},
      {"bytes_down", tot.bytes_down},
      {"train_samples", tot.samples},
      {"train_steps", tot.steps},
      {"skipped_updates", tot.skipped_updates},
      {"peak_rss_mib", PeakRssMib()},
      {"wall_seconds", recorder.WallSeconds()},
      {"wall_setup_seconds", recorder.setup_seconds()},
      {"wall_train_seconds", tot.train_seconds},
  });
  doc["summary"] = summary;
  recorder.Finish(doc);
  return doc;
}

}  // namespace fedsim
