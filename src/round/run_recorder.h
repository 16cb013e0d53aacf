// Stage 6: what a run leaves behind, and when it stops (every kind of run:
// federated, FedGAN, baselines).
//
// The recorder opens the output folder (a resume reads its checkpoint first,
// before anything is rewritten; a fresh run removes an earlier run's
// checkpoint), writes the resolved config, appends each round's record to
// rounds.jsonl as the round ends, applies the stop policy (last round,
// divergence, a signal, stop_after_round, checkpoint_every), writes
// checkpoints holding the totals, the records so far and every stage's state
// (temporary file + rename), and writes metrics.json at the end. Rank 0 of a
// distributed run writes; every rank follows the same policy.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/comm.h"
#include "core/config.h"
#include "fl/checkpoint.h"
#include "fl/setup_agreement.h"
#include "metrics/writer.h"
#include "round/run_options.h"

namespace fedsim {

std::string CheckpointPath(const std::string& out_dir);

class RunRecorder {
 public:
  // Opens the run's outputs (see above). Throws InputError for a resume
  // without an output folder or with a bad checkpoint, RunError for I/O.
  RunRecorder(const Config& cfg, const RunOptions& opt, Comm& comm, SetupAgreement& setup);
  ~RunRecorder();

  bool writes() const { return writer_ != nullptr; }
  const std::string& out_dir() const { return opt_.out_dir; }
  // The checkpoint being resumed from, or null; valid until Resumed().
  const CheckpointReader* resume() const { return resume_.get(); }

  // Resuming: checks the checkpoint's config against doc["config"], puts its
  // saved records into doc["rounds"] (and rounds.jsonl) and returns its
  // totals; `rounds`: the run's length. Branching: the same, but the config
  // may differ in keys that can change mid-run (an InputError names the
  // first key that cannot), and doc["branch"] says where the run branched
  // from and what changed. Otherwise: returns null.
  nlohmann::json Restore(nlohmann::json& doc, int rounds);
  // Drops the checkpoint being resumed from and starts the loop's clock;
  // `totals` (as Restore returned, or null) gives the wall time before.
  void StartLoop(const nlohmann::json& totals);

  // Seconds of the loop so far, including a resumed run's earlier loop.
  double WallSeconds() const;
  double setup_seconds() const { return setup_seconds_; }

  // Appends a finished round's record (rank 0: rounds.jsonl and on_round).
  void Append(nlohmann::json& doc, const nlohmann::json& rec, int rounds);

  // The stop policy after round `round` (1-based) of `rounds`: returns true to
  // go on. status "diverged" stops; a signal or stop_after_round stops with
  // status "interrupted"; checkpoint_every writes a checkpoint (save).
  // What a checkpoint holds besides the config and the records so far: the
  // run's totals (the recorder adds wall_seconds) and every stage's state.
  struct SaveFn {
    std::function<nlohmann::json()> totals;
    std::function<void(CheckpointWriter&)> state;
  };
  bool Next(int round, int rounds, std::string& status, int signal, const nlohmann::json& doc, const SaveFn& save);
  // The last checkpoint, unless the run diverged (then the one before stays).
  void Close(const std::string& status, const nlohmann::json& doc, const SaveFn& save);

  // The summary's head: status, rounds, rounds_completed, diverged_round,
  // signal.
  nlohmann::json SummaryHead(const std::string& status, int rounds, int completed) const;
  // Writes metrics.json (rank 0).
  void Finish(const nlohmann::json& doc);

 private:
  void Checkpoint(const nlohmann::json& doc, const SaveFn& save);

  using Clock = std::chrono::steady_clock;
  const Config& cfg_;
  RunOptions opt_;
  Comm& comm_;
  std::unique_ptr<CheckpointReader> resume_;
  std::unique_ptr<MetricsWriter> writer_;
  Clock::time_point t_start_, t_loop_;
  double setup_seconds_ = 0.0, wall_before_ = 0.0;
  nlohmann::json diverged_round_ = nullptr;
  int signal_ = 0;
};

}  // namespace fedsim
