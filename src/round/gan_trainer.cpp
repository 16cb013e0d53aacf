#include "round/gan_trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/fmath.h"
#include "core/rng.h"
#include "fl/checkpoint.h"
#include "fl/local_training.h"
#include "metrics/writer.h"

namespace fedsim {
namespace {

// Adam's step count is stored as one float: exact up to 2^24 steps.
constexpr int64_t kMaxExactSteps = int64_t{1} << 24;

}  // namespace

GanTrainer::GanTrainer(const Config& cfg, const GanNets& nets, const Dataset& train, const Partition& partition,
                       int threads, Comm* comm)
    : cfg_(cfg),
      nets_(nets),
      train_(train),
      partition_(partition),
      settings_(GanTrainSettings::FromConfig(cfg)),
      model_bytes_(nets.num_params() * static_cast<int64_t>(sizeof(float))) {
  size_t largest_client = 0;
  for (const auto& c : partition) largest_client = std::max(largest_client, c.size());
  const int max_batch = std::max(1, std::min<int>(settings_.batch_size, static_cast<int>(largest_client)));
  scratch_.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) scratch_.emplace_back(nets, max_batch);
  if (settings_.adam) {
    adam_.Resize(static_cast<int>(partition.size()), 3);
    // float32: Adam's moments are not rounded, and the step count stays exact.
    adam_.Configure(StatePrecision::kFloat32, comm);
  }
}

LocalWork GanTrainer::PlannedWork(int client) const {
  return PlannedLocalSgdWork(static_cast<int>(partition_[static_cast<size_t>(client)].size()), cfg_.algorithm);
}

nlohmann::json GanTrainer::Describe() const {
  return {{"kind", "gan_mlp"},
          {"num_params", nets_.num_params()},
          {"description", fmt::format("generator {}, discriminator {}", nets_.generator.Describe(),
                                      nets_.discriminator.Describe())},
          {"generator_params", nets_.generator.num_params()},
          {"discriminator_params", nets_.discriminator.num_params()},
          {"train_flops_per_sample", TrainFlopsPerSample()},
          {"train_flops_per_batch", 0.0}};
}

// Per real sample of a step (dense layers: 2 FLOPs per weight and sample
// forward, 4 backward): the discriminator's update runs D forward and back
// on a real and a fake sample (2 x 6 |D|) after G's forward pass (2 |G|);
// the generator's update runs G forward, D forward, D back to its input and
// G back (6 |G| + 6 |D|, counting D's weight gradient it does not need).
// An estimate for the simulated clock and the GFLOP/s figures.
double GanTrainer::TrainFlopsPerSample() const {
  const double g = static_cast<double>(nets_.generator.num_params());
  const double d = static_cast<double>(nets_.discriminator.num_params());
  return 8.0 * g + 18.0 * d;
}

double GanTrainer::Decay(int round) const { return fm::Pow(cfg_.algorithm.lr_decay, round); }

double GanTrainer::LearningRate(int round) const { return cfg_.gan.generator_lr * Decay(round); }

void GanTrainer::RecordRound(nlohmann::json& rec, int round, const CohortTally& kept) const {
  const double n = static_cast<double>(kept.samples);
  rec["generator_lr"] = cfg_.gan.generator_lr * Decay(round);
  rec["discriminator_lr"] = cfg_.gan.discriminator_lr * Decay(round);
  rec["generator_loss"] = NullableNumber(kept.samples ? kept.aux_loss_sum / n : NAN);
  rec["discriminator_loss"] = NullableNumber(kept.samples ? kept.loss_sum / n : NAN);
}

void GanTrainer::Summarize(nlohmann::json& summary, const nlohmann::json& last) const {
  auto from = [&](const char* k) { return last.is_null() ? nlohmann::json(nullptr) : last[k]; };
  summary["final_generator_loss"] = from("generator_loss");
  summary["final_discriminator_loss"] = from("discriminator_loss");
}

ClientReport GanTrainer::Train(const ClientTask& task, const float* global, float* upload, int thread) {
  const int64_t p = nets_.num_params();
  const std::vector<int>& rows = *task.indices;
  GanScratch& sc = scratch_[static_cast<size_t>(thread)];
  // Trained in the thread's aligned copy, not in place in the upload: where
  // a vectorised loop peels scalar iterations depends on the alignment of
  // what it writes, and an upload column's alignment depends on where the
  // client sits in the block and on which process.
  Eigen::VectorXf& w = sc.params;
  w = Eigen::Map<const Eigen::VectorXf>(global, p);
  Rng rng = DeriveStream(cfg_.experiment.seed, Stream::kLocalTrain, static_cast<uint64_t>(task.round),
                         static_cast<uint64_t>(task.client));
  const float lr_g = static_cast<float>(cfg_.gan.generator_lr * Decay(task.round));
  const float lr_d = static_cast<float>(cfg_.gan.discriminator_lr * Decay(task.round));
  GanClientReport g;
  if (settings_.adam) {
    // float32 storage: Open returns views of the stored vectors.
    Eigen::VectorXf unused;
    auto m = adam_.Open(task.client, 0, p, unused);
    auto v = adam_.Open(task.client, 1, p, unused);
    auto t_store = adam_.Open(task.client, 2, 1, unused);
    int64_t t = static_cast<int64_t>(t_store[0]);
    g = TrainGanClient(nets_, settings_, train_, rows, rng, lr_g, lr_d, w.data(), m.data(), v.data(), &t, sc,
                       task.max_steps);
    if (t >= kMaxExactSteps) {
      throw RunError(fmt::format("fedgan: client {} has taken {} Adam steps; the step count is stored exactly only "
                                 "up to 2^24",
                                 task.client, t));
    }
    t_store[0] = static_cast<float>(t);
  } else {
    g = TrainGanClient(nets_, settings_, train_, rows, rng, lr_g, lr_d, w.data(), nullptr, nullptr, nullptr, sc,
                       task.max_steps);
  }
  Eigen::Map<Eigen::VectorXf>(upload, p) = w;
  ClientReport rep;
  rep.weight = g.weight;
  rep.loss_sum = g.d_loss_sum;
  rep.aux_loss_sum = g.g_loss_sum;
  rep.samples = g.samples;
  rep.steps = g.steps;
  return rep;
}

void GanTrainer::Forget(int client) {
  if (settings_.adam) adam_.Clear(client);
}

void GanTrainer::Save(CheckpointWriter& w) const {
  if (settings_.adam) adam_.Save(w, "gan/adam");
}

void GanTrainer::Load(const CheckpointReader& r) {
  if (settings_.adam) adam_.Load(r, "gan/adam");
}

}  // namespace fedsim
