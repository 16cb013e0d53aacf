// Steps 2 and 3 of a round: the cohort trains locally and its uploads are
// collected. The cohort is trained in blocks of at most kAggregationBlock
// clients per process; in each block every process trains its own members
// (threads within the process), each upload passes the transform chain on
// the thread that trained it, the block's uploads and reports are gathered
// on rank 0 (fl/cohort_exchange.h), and rank 0 feeds them to the aggregator
// in cohort order. Memory follows the block, not the cohort.
#pragma once

#include <Eigen/Core>

#include <memory>
#include <vector>

#include "core/comm.h"
#include "data/partition.h"
#include "fl/cohort_exchange.h"
#include "round/aggregator.h"
#include "round/client_trainer.h"
#include "round/scheduler.h"
#include "round/upload_transform.h"

namespace fedsim {

// Clients trained between two reductions (per process: a distributed run's
// block is this times the number of ranks).
constexpr int kAggregationBlock = 64;

// What the cohort's training left for the server.
struct CohortResult {
  std::vector<ClientReport> reports;  // per member, in cohort order (complete on rank 0)
  std::vector<char> keep;             // whose update is usable (finite)
  int64_t skipped = 0;                // members whose update was not finite (rank 0)
  int64_t cohort_samples = 0;         // training samples the members hold
  double wall_seconds = 0.0;          // wall time of training and collection
};

// The kept members' losses, samples and steps (rank 0).
CohortTally TallyKept(const CohortResult& c);

class CohortTraining {
 public:
  // transforms: the upload chain, in order; max_cohort: the largest cohort.
  CohortTraining(Comm& comm, ClientTrainer& trainer, const std::vector<std::unique_ptr<UploadTransform>>& transforms,
                 const Partition& partition, int threads, int max_cohort);

  // Trains round `round`'s cohort from `global` with client learning rate
  // `lr`; rank 0 feeds `aggregator` (null on other ranks).
  CohortResult Run(int round, float lr, const ScheduledRound& plan, const Eigen::VectorXf& global,
                   Aggregator* aggregator);

  CohortExchange& exchange() { return exchange_; }
  // Data poisoning: from the rounds in which they act, the attackers of
  // `plan` train on their rows of `poisoned` (indices into the trainer's data).
  void PoisonRows(const class AttackPlan* plan, const Partition* poisoned) {
    attack_ = plan;
    poisoned_ = poisoned;
  }

 private:
  Comm& comm_;
  ClientTrainer& trainer_;
  const std::vector<std::unique_ptr<UploadTransform>>& transforms_;
  const Partition& partition_;
  int threads_;
  int block_;
  const class AttackPlan* attack_ = nullptr;
  const Partition* poisoned_ = nullptr;
  Eigen::MatrixXf uploads_;  // rank 0: column i holds the block's i-th member's upload
  CohortExchange exchange_;
};

// True when the trainer or a transform keeps per-client state (clients are
// then placed on the process that holds their state).
bool HasClientState(ClientTrainer& trainer, const std::vector<std::unique_ptr<UploadTransform>>& transforms);

}  // namespace fedsim
