// The federated run: config -> data -> partition -> model -> rounds ->
// metrics, on the round driver (docs/architecture.md).
#pragma once

#include <nlohmann/json.hpp>

#include "core/comm.h"
#include "core/config.h"
#include "fl/setup_agreement.h"
#include "round/run_options.h"

namespace fedsim {

struct FederatedData;
class Model;

// Runs a federated experiment (any algorithm of the registry, FedGAN
// included) and returns the metrics document. Throws InputError for bad config, data or
// checkpoint, RunError for I/O.
nlohmann::json RunFederated(const Config& cfg, const RunOptions& opt, Comm& comm, SetupAgreement& setup);

// The "data" and "model" objects of metrics.json (docs/metrics.md).
nlohmann::json DescribeData(const FederatedData& data);
nlohmann::json DescribeModel(const Model& model);

}  // namespace fedsim
