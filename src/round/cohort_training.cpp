#include "round/cohort_training.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/parallel.h"
#include "round/attack.h"

namespace fedsim {
namespace {

// Cap on rank 0's block of uploads in a distributed run (64 per rank until
// the block would exceed this).
constexpr int64_t kMaxBlockBytes = int64_t{1} << 30;

}  // namespace

CohortTally TallyKept(const CohortResult& c) {
  CohortTally t;
  for (size_t i = 0; i < c.reports.size(); ++i) {
    if (!c.keep[i]) continue;
    ++t.clients;
    t.loss_sum += c.reports[i].loss_sum;
    t.aux_loss_sum += c.reports[i].aux_loss_sum;
    t.samples += c.reports[i].samples;
    t.steps += c.reports[i].steps;
    t.extra_samples += c.reports[i].extra_samples;
    t.extra_steps += c.reports[i].extra_steps;
  }
  return t;
}

bool HasClientState(ClientTrainer& trainer, const std::vector<std::unique_ptr<UploadTransform>>& transforms) {
  bool any = trainer.client_state() != nullptr;
  for (const auto& t : transforms) any = any || t->client_state() != nullptr;
  return any;
}

CohortTraining::CohortTraining(Comm& comm, ClientTrainer& trainer,
                               const std::vector<std::unique_ptr<UploadTransform>>& transforms,
                               const Partition& partition, int threads, int max_cohort)
    : comm_(comm),
      trainer_(trainer),
      transforms_(transforms),
      partition_(partition),
      threads_(threads),
      exchange_(comm, trainer.upload_size(), HasClientState(trainer, transforms)) {
  const int64_t upload_size = trainer.upload_size();
  const int64_t per_rank_blocks = std::max<int64_t>(
      1, std::min<int64_t>(comm.size(), kMaxBlockBytes / (kAggregationBlock * 4 * std::max<int64_t>(1, upload_size))));
  block_ = std::max(1, static_cast<int>(std::min<int64_t>(kAggregationBlock * per_rank_blocks, max_cohort)));
  // Other ranks keep only their own members' uploads, in the exchange.
  uploads_.resize(upload_size, comm.root() ? block_ : 0);
}

CohortResult CohortTraining::Run(int round, float lr, const ScheduledRound& plan, const Eigen::VectorXf& global,
                                 Aggregator* aggregator) {
  using Clock = std::chrono::steady_clock;
  const std::vector<int>& cohort = plan.cohort;
  const bool root = comm_.root();
  const int64_t upload_size = trainer_.upload_size();
  CohortResult res;
  res.reports.assign(cohort.size(), ClientReport());
  res.keep.assign(cohort.size(), 0);
  auto task_at = [&](size_t at) {
    ClientTask task;
    task.round = round;
    task.client = cohort[at];
    const bool poisoned = poisoned_ && attack_->acting(round) && attack_->malicious(task.client);
    task.indices = &(poisoned ? *poisoned_ : partition_)[static_cast<size_t>(task.client)];
    task.lr = lr;
    task.max_steps = plan.plan(at).max_steps;
    return task;
  };
  for (size_t b0 = 0; b0 < cohort.size(); b0 += static_cast<size_t>(block_)) {
    const int nb = static_cast<int>(std::min<size_t>(static_cast<size_t>(block_), cohort.size() - b0));
    const auto t_train = Clock::now();
    // This rank's members of the block (all of them with one process).
    const std::vector<int>& mine = exchange_.Plan(cohort, b0, nb);
    ParallelFor(static_cast<int64_t>(mine.size()), threads_, [&](int64_t k, int tid) {
      const size_t at = b0 + static_cast<size_t>(mine[static_cast<size_t>(k)]);
      const ClientTask task = task_at(at);
      ClientReport& rep = res.reports[at];
      float* up = exchange_.Column(static_cast<int>(k), uploads_);
      rep = trainer_.Train(task, global.data(), up, tid);
      rep.raw_bytes_up = rep.bytes_up >= 0 ? rep.bytes_up : upload_size * static_cast<int64_t>(sizeof(float));
      rep.client = task.client;
      ClientUpload u{round, task.client, up, upload_size, &rep, tid};
      for (const auto& t : transforms_) t->Apply(u);
      res.keep[at] = std::isfinite(rep.loss_sum) && std::isfinite(rep.aux_loss_sum) &&
                     Eigen::Map<const Eigen::VectorXf>(up, upload_size).allFinite();
    });
    // Rank 0 now holds the block's uploads and reports, in block order.
    exchange_.Gather(uploads_, res.reports.data() + b0, res.keep.data() + b0);
    if (root) aggregator->AddBlock(uploads_, static_cast<int>(b0), nb, res.reports, res.keep);
    res.wall_seconds += std::chrono::duration<double>(Clock::now() - t_train).count();
    for (int i = 0; i < nb; ++i) {
      const size_t at = b0 + static_cast<size_t>(i);
      // Rank 0 knows every member's outcome, the others their own members'.
      if (!res.keep[at] && (root || exchange_.Mine(i))) {
        if (root) ++res.skipped;
        trainer_.Forget(cohort[at]);
        for (const auto& t : transforms_) {
          if (ClientStateStore* st = t->client_state()) st->Clear(cohort[at]);
        }
      }
      trainer_.AfterClient(task_at(at));
      res.cohort_samples += static_cast<int64_t>(partition_[static_cast<size_t>(cohort[at])].size());
    }
  }
  return res;
}

}  // namespace fedsim
