// How a run is started: threads, output folder, resume, stopping, progress.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace fedsim {

struct RunOptions {
  int threads = 0;         // OpenMP threads for client training and evaluation; 0 = all cores
  std::string out_dir;     // where result files go; empty = write nothing
  bool resume = false;     // continue from out_dir/checkpoint.bin (REQUIRES out_dir)
  // Branch: start from another run's checkpoint (a path to its
  // checkpoint.bin) with this config, which may differ from that run's in
  // anything that can change mid-run (docs/architecture.md#branching); the
  // results go to out_dir as a new run. Not with `resume`.
  std::string branch_from;
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

}  // namespace fedsim
