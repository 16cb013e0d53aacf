// What every stage of the round has in common (docs/architecture.md).
//
// A round passes through stages in a fixed order: the cohort sampler, the
// scheduler (the simulated system), the client trainer, the upload
// transforms (per client), the aggregator, the server pipeline, the privacy
// ledger, the evaluators and the run recorder. Each stage takes the state it
// needs in, returns its result, and reports what it added to the round under
// its own name: `StageCost` (bytes, simulated seconds) and a JSON object of
// its diagnostics. The driver copies both into the round's record as
// `stages.<name>`; the flat keys of a record (bytes_up, sim_round_s, ...) stay
// the totals over stages.
//
// Stages that carry state from one round to the next save it in the
// checkpoint (Save/Load), so a resumed or branched run continues exactly.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace fedsim {

class CheckpointWriter;
class CheckpointReader;

// What a stage added to one round.
struct StageCost {
  int64_t bytes_up = 0;    // bytes clients sent because of this stage
  int64_t bytes_down = 0;  // bytes clients received because of this stage
  double sim_seconds = 0;  // simulated seconds this stage added to the round
};

// One stage's entry in a round record: its cost and its own diagnostics.
struct StageRecord {
  StageCost cost;
  nlohmann::json metrics = nlohmann::json::object();

  // {"bytes_up": ..., "bytes_down": ..., "sim_seconds": ..., <metrics>}; the
  // cost keys are left out where they are 0 for a stage that never has any.
  nlohmann::json ToJson(bool with_cost) const {
    nlohmann::json j = metrics;
    if (with_cost) {
      j["bytes_up"] = cost.bytes_up;
      j["bytes_down"] = cost.bytes_down;
      j["sim_seconds"] = cost.sim_seconds;
    }
    return j;
  }
};

}  // namespace fedsim
