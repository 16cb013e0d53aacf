// The non-federated side of the comparison (docs/fl-vs-distributed.md):
// centralized minibatch SGD on the pooled training data, and synchronous
// data-parallel SGD over W workers with IID shards whose gradients are
// all-reduced every step. Same data, model and metrics format as the
// federated runs: one record per epoch in rounds.jsonl ("round" is the
// epoch), the same summary keys, simulated time from the same device and
// network model (sim/system.h).
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/comm.h"
#include "fl/setup_agreement.h"
#include "round/run_options.h"

namespace fedsim {

// Bytes one data-parallel step moves for a model of `num_params` float32
// parameters over `workers` workers: summed over all workers, sent (up) and
// received (down). Ring all-reduce (reduce-scatter + all-gather): each worker
// sends and receives 2 (W - 1) / W of the model. Parameter server: each
// worker sends its gradient and receives the new model.
struct StepBytes {
  int64_t up = 0, down = 0;
};
StepBytes DataParallelStepBytes(int64_t num_params, int workers, const std::string& topology);

// Runs cfg.baseline (kind centralized or data_parallel) and returns the
// metrics document, as RunExperiment does (which hands such configs here).
// Baselines do not checkpoint: --resume is an InputError.
nlohmann::json RunBaseline(const Config& cfg, const RunOptions& opt, Comm& comm, SetupAgreement& setup);

}  // namespace fedsim
