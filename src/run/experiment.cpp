#include "run/experiment.h"

#include <fmt/format.h>

#include "baseline/baseline.h"
#include "core/comm.h"
#include "core/error.h"
#include "fl/algorithm.h"
#include "fl/checkpoint.h"
#include "fl/setup_agreement.h"
#include "round/run_recorder.h"
#include "round/upload_transform.h"

namespace fedsim {

using nlohmann::json;

json StripNondeterministic(json m) {
  if (m.is_object()) {
    m.erase("environment");
    for (auto it = m.begin(); it != m.end();) {
      const std::string& k = it.key();
      const bool seconds = k.size() >= 8 && k.compare(k.size() - 8, 8, "_seconds") == 0;
      if (k.rfind("wall_", 0) == 0 || seconds || k == "peak_rss_mib") {
        it = m.erase(it);
      } else {
        *it = StripNondeterministic(*it);
        ++it;
      }
    }
  } else if (m.is_array()) {
    for (auto& e : m) e = StripNondeterministic(e);
  }
  return m;
}

json CheckpointConfig(const std::string& out_dir) {
  const CheckpointReader r(CheckpointPath(out_dir));
  if (!r.header().contains("config")) throw InputError(CheckpointPath(out_dir) + ": checkpoint has no config");
  return r.header()["config"];
}

void CheckExperiment(const Config& cfg) {
  const bool federated = cfg.baseline.kind == "none" && cfg.algorithm.name != "fedgan";
  if (!federated && cfg.compression.kind != "none") {
    throw InputError(fmt::format("compression.kind: {} has no uploads to compress (compression applies to federated "
                                 "model-delta uploads); set compression.kind=none",
                                 cfg.baseline.kind != "none" ? "baseline.kind=" + cfg.baseline.kind
                                                             : std::string("algorithm.name=fedgan")));
  }
  if (federated) CheckUploadTransforms(cfg, *CreateAlgorithm(cfg.algorithm, cfg.personalization));
}

json RunExperiment(const Config& cfg, const RunOptions& opt) {
  SerialComm serial;
  Comm& comm = opt.comm ? *opt.comm : serial;
  SetupAgreement setup(comm);
  try {
    CheckExperiment(cfg);
    if (cfg.baseline.kind != "none") return RunBaseline(cfg, opt, comm, setup);
    return RunFederated(cfg, opt, comm, setup);
  } catch (const AgreedError&) {
    throw;
  } catch (const InputError& e) {
    setup.Fail(2, e.what());
    throw;
  } catch (const std::exception& e) {
    setup.Fail(1, e.what());
    throw;
  }
}

}  // namespace fedsim
