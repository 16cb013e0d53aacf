// Stage 5b: what each client gets from the model (metrics.client_eval).
//
// On evaluation rounds every process scores the clients it holds (client %
// R == rank, where their personal state lives): the model the client would
// use (ClientTrainer::EvaluateClient: the global model or its personalised
// one, fine-tuned with personalization.finetune_steps) on the client's own
// test rows (ClientTests). Each client is scored on one thread from start to
// end, so its sums do not depend on the thread or process count; rank 0
// gathers the rows, sorts them by client and summarises them:
//
//   client_accuracy / client_loss    the training population's clients
//   holdout_client_accuracy / _loss  the clients data.holdout_clients keeps out
//   participation_gap                the first's weighted mean minus the second's
//
// and appends one line per client to OUT/clients.jsonl (LEAF's stat_metrics:
// round, client, test samples, correct, loss). Which clients: participants
// (the round's cohort), all, or sample (metrics.client_eval_fraction of the
// training clients from (seed, kClientEval, round)); held-out clients always.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/comm.h"
#include "core/config.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "round/client_trainer.h"

namespace fedsim {

// One client's scores at one evaluation.
struct ClientScore {
  int client = 0;
  int64_t samples = 0, correct = 0;
  double loss_sum = 0.0;
};

// Summary of per-client accuracies (or mean losses) over the clients with
// test samples: weighted_mean (by test samples), mean, std (population),
// variance, min, max, p10/p50/p90 (linear interpolation between order
// statistics), worst10 / best10 (mean of the worst / best ceil(10%) clients;
// for losses the worst are the highest), jain ((sum a)^2 / (n sum a^2),
// accuracy only) and clients. Null when no client has test samples.
nlohmann::json SummarizeClientAccuracy(const std::vector<ClientScore>& scores);
nlohmann::json SummarizeClientLoss(const std::vector<ClientScore>& scores);

class ClientEvaluator {
 public:
  // tests: every client's test rows (indexing data.test, or data.train when
  // tests.from_train); holdout: the held-out clients (increasing). out_dir
  // empty: no clients.jsonl. resume_round >= 0: keep the clients.jsonl lines
  // of rounds <= resume_round (a resumed run), else start the file afresh.
  ClientEvaluator(const Config& cfg, ClientTrainer& trainer, const FederatedData& data, const ClientTests& tests,
                  std::vector<int> holdout, Comm& comm, int threads, const std::string& out_dir, int resume_round);
  ~ClientEvaluator();

  // Collective: every process calls it after round `round` (1-based) with
  // the round's cohort; rank 0 keeps the summaries and writes the lines.
  void Evaluate(int round, const std::vector<int>& cohort, const Eigen::VectorXf& global);
  // rank 0: the record's keys (nulls when the round was not evaluated).
  void Record(nlohmann::json& rec, bool evaluated) const;
  void Summarize(nlohmann::json& summary) const;
  void SaveTotals(nlohmann::json& totals) const;
  void LoadTotals(const nlohmann::json& totals);
  // metrics.json's "clients": the mode, the held-out clients, who has tests.
  nlohmann::json Describe() const;

  // The clients scored after round `round` (1-based), increasing; exposed for tests.
  std::vector<int> Selected(int round, const std::vector<int>& cohort) const;

 private:
  const Config& cfg_;
  ClientTrainer& trainer_;
  const Dataset& rows_of_;  // the data the test rows index
  const ClientTests& tests_;
  std::vector<int> holdout_;
  std::vector<char> is_holdout_;
  std::vector<int> pool_;  // the training clients
  Comm& comm_;
  int threads_;
  int fd_ = -1;  // clients.jsonl (rank 0 with an output folder)
  std::string path_;
  nlohmann::json last_ = nlohmann::json::object();   // the last evaluation's record keys (rank 0)
  nlohmann::json final_ = nlohmann::json::object();  // the summary's keys, kept over a resume
};

}  // namespace fedsim
