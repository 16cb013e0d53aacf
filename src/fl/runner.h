// The round loop: config -> data -> partition -> model -> rounds -> metrics.
// RunExperiment is a plain function: the CLI and the tests call it the same
// way. It never prints; progress is reported through RunOptions::on_round.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"

namespace fedsim {

struct FederatedData;
class Model;

struct RunOptions {
  int threads = 0;         // OpenMP threads for client training and evaluation; 0 = all cores
  std::string out_dir;     // where result files go; empty = write nothing
  bool resume = false;     // continue from out_dir/checkpoint.bin (REQUIRES out_dir)
  // Non-zero (a signal number) asks the run to stop after the current round:
  // it writes a checkpoint and the metrics so far, with status "interrupted".
  const std::atomic<int>* stop = nullptr;
  // Stop (as if interrupted) after this many rounds in total; 0 = no limit.
  // For tests of resumption.
  int stop_after_round = 0;
  // Called after each round with that round's record and the number of rounds.
  std::function<void(const nlohmann::json& round, int total_rounds)> on_round;
  // The processes of a distributed run (core/comm.h); null = one process.
  // With R > 1 ranks every rank calls RunExperiment with the same config and
  // options; client k trains on rank k % R, rank 0 writes the result files,
  // calls on_round and returns the full metrics; the other ranks return a
  // document whose summary status (and signal) is the run's but whose other
  // fields are not meaningful.
  class Comm* comm = nullptr;
};

// Runs the experiment and returns the full metrics document (the content of
// metrics.json); algorithm.name = fedgan is handed to RunFedGan (fl/fedgan.h). summary.status is "completed", "diverged" or
// "interrupted". Throws InputError for bad config, data or checkpoint,
// RunError for I/O. In a distributed run a failure before the first round
// on any rank throws AgreedError (core/comm.h) on every rank; a later one is
// thrown on the failing rank only (the caller should Comm::Abort).
nlohmann::json RunExperiment(const Config& cfg, const RunOptions& opt);

// The "data" and "model" objects of metrics.json (docs/metrics.md).
nlohmann::json DescribeData(const FederatedData& data);
nlohmann::json DescribeModel(const Model& model);

// The resolved config stored in OUT/checkpoint.bin, for `fedsim run --resume`.
nlohmann::json CheckpointConfig(const std::string& out_dir);

// Samples `k` distinct clients out of `n` from rng, returned in increasing
// order. REQUIRES: 1 <= k <= n.
std::vector<int> SampleCohort(int n, int k, class Rng& rng);

// Cohort size for the config: client_fraction if set, else clients_per_round.
int CohortSize(const AlgorithmConfig& cfg, int num_clients);

// Fields of metrics.json that depend on wall-clock time or the machine (the
// "environment" object, keys beginning with "wall_", and "peak_rss_mib"), for
// determinism comparisons: the document with them removed.
nlohmann::json StripNondeterministic(nlohmann::json metrics);

}  // namespace fedsim
