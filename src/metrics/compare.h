// `fedsim compare`: reads the results of finished runs (run directories with
// metrics.json, or sweep directories with manifest.jsonl written by
// scripts/sweep.sh) and builds a side-by-side table, one row per run or per
// group of runs sharing the values of some config keys. Plain functions: they
// never print; bad input (a missing or corrupt file, an unknown group key)
// throws InputError naming the file. Described in docs/tooling.md.
#pragma once

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fedsim {

// What the comparison needs from one run's metrics.json (keys in docs/metrics.md).
struct RunSummary {
  std::string name;         // the path as given, or the manifest's name for a run of a sweep
  std::string dir;          // the run's output directory
  std::string source;       // the file the values come from (for messages)
  bool has_metrics = false; // false: a sweep run without metrics.json (failed, pending, running)
  std::string status;       // summary.status, or the manifest's status when there is no metrics.json
  // The resolved config: metrics.json "config"; for a sweep run without
  // metrics.json, its config.json if readable, else the manifest's settings
  // (as nested objects) and seed. Null if none.
  nlohmann::json config;
  bool config_complete = false;  // config is a whole resolved config (not only a sweep's settings)
  std::optional<double> final_test_accuracy, best_test_accuracy;
  std::optional<double> target_accuracy;   // summary.target_accuracy
  std::optional<int> rounds_to_target;     // summary.rounds_to_target
  std::vector<std::pair<int, double>> accuracy;  // (round, test_accuracy) of the evaluated rounds
  double bytes_up = 0, bytes_down = 0;     // summary.bytes_up / bytes_down
  double wall_seconds = 0;                 // summary.wall_seconds
  std::optional<double> sim_seconds;       // summary.sim_time_s (absent in results of older versions)
  std::string kind = "federated";          // federated, or the baseline.kind of a baseline run
  bool dp = false;                         // privacy.mode != none
  std::optional<double> epsilon;           // summary.epsilon; nullopt: no DP, or infinite (null)
};

// Loads one run from its metrics.json. `name` labels it in tables.
// Throws InputError naming the file if it is missing, not JSON, or lacks
// summary.status.
RunSummary LoadRun(const std::string& metrics_path, const std::string& name);

// Expands each path: a run directory (metrics.json), a sweep directory
// (manifest.jsonl: every run it lists, in order; the last line for a name
// wins), or a metrics.json / manifest.jsonl file. Throws InputError naming the
// path for anything else, or a missing or corrupt file.
std::vector<RunSummary> LoadRuns(const std::vector<std::string>& paths);

// The value at a dotted key path (e.g. "data.partition.alpha") of the run's
// config. Throws InputError naming the key and the file if it is absent.
nlohmann::json GroupValue(const RunSummary& run, const std::string& key);

// Mean and sample standard deviation (n - 1). std is NaN for n < 2, mean is
// NaN for n = 0.
struct Stat {
  int n = 0;
  double mean = std::numeric_limits<double>::quiet_NaN();
  double std = std::numeric_limits<double>::quiet_NaN();
};
Stat MeanStd(const std::vector<double>& values);

// The run's rounds to `target` computed from its evaluated rounds (first
// round with test accuracy >= target), or summary.rounds_to_target when
// target is nullopt. nullopt: not reached, or no target.
std::optional<int> RoundsToTarget(const RunSummary& run, std::optional<double> target);

// One row of the comparison.
struct CompareRow {
  std::vector<std::string> labels;  // the group values, one per --group-by key; or {run name}
  int runs = 0;                     // runs in the row
  int completed = 0;                // of which summary.status == "completed"
  std::string status;               // "completed", the status of a lone run, or e.g. "3 completed, 1 diverged"
  // The statistics below are over the row's completed runs; a row without a
  // completed run uses all its runs that have metrics.json. `used` counts them.
  int used = 0;
  Stat final_acc, best_acc;        // over the used runs with a non-null value
  bool has_target = false;         // a target applies to at least one used run
  Stat rounds_to_target;           // over the used runs that reached it; n = runs reached
  int target_runs = 0;             // used runs with a target
  Stat mb_up, mb_down, wall;       // mean over used runs (MB = 1e6 bytes)
  Stat sim;                        // summary.sim_time_s over the used runs that have it
  std::string kind;                // "federated", "centralized", "data_parallel", or "mixed"
  bool dp = false;                 // DP was on in at least one used run
  bool epsilon_infinite = false;   // a used DP run had epsilon null (infinite)
  Stat epsilon;                    // over the used DP runs with a finite epsilon
};

// Groups the runs by the values of `group_by` (rows in order of first
// appearance; one row per run when group_by is empty) and computes each row.
// `target` overrides summary.rounds_to_target (see RoundsToTarget).
// Throws InputError for an unknown group key.
std::vector<CompareRow> CompareRows(const std::vector<RunSummary>& runs, const std::vector<std::string>& group_by,
                                    std::optional<double> target);

// The table as text: markdown (aligned columns) or CSV (a header line, full
// precision numbers, empty cells for missing values). Columns: the run or one
// per group key, kind (only when a baseline is among the runs), n, status,
// final and best test accuracy (mean ± std), rounds to target (only when a
// target applies; epochs for baselines), MB up, MB down, simulated s, wall s,
// and epsilon (only when a run had DP on).
std::string CompareTable(const std::vector<RunSummary>& runs, const std::vector<std::string>& group_by, bool csv,
                         std::optional<double> target);

}  // namespace fedsim
