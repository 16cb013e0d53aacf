// Running an experiment: the one entry point the CLI and the tests call.
// RunExperiment picks the kind of run a config asks for (a baseline, FedGAN,
// or a federated run of any other algorithm) and hands it to that run's
// driver; it never prints; progress is reported through RunOptions::on_round.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "round/cohort_sampler.h"
#include "round/federated_run.h"
#include "round/run_options.h"

namespace fedsim {

// Runs the experiment and returns the full metrics document (the content of
// metrics.json). summary.status is "completed", "diverged" or "interrupted".
// Throws InputError for bad config, data or checkpoint, RunError for I/O. In
// a distributed run a failure before the first round on any rank throws
// AgreedError (core/comm.h) on every rank; a later one is thrown on the
// failing rank only (the caller should Comm::Abort).
nlohmann::json RunExperiment(const Config& cfg, const RunOptions& opt);

// What ParseConfig cannot check alone because it needs the run's
// components: the upload transforms against the algorithm's upload
// (compression of an upload that is not a delta, ...), and stages a kind of
// run has none of (compression for baselines and FedGAN). Throws InputError
// naming the keys. RunExperiment checks the same; `fedsim validate` calls it.
void CheckExperiment(const Config& cfg);

// The resolved config stored in OUT/checkpoint.bin, for `fedsim run --resume`.
nlohmann::json CheckpointConfig(const std::string& out_dir);

// Fields of metrics.json that depend on wall-clock time or the machine (the
// "environment" object, keys beginning with "wall_" or ending in "_seconds",
// and "peak_rss_mib"), for determinism comparisons: the document with them
// removed.
nlohmann::json StripNondeterministic(nlohmann::json metrics);

}  // namespace fedsim
