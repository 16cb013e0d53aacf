// Secure aggregation and Paillier inside real runs.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "run/experiment.h"

using nlohmann::json;

namespace {

json Run(json j, int threads = 2) {
  fedsim::RunOptions o;
  o.threads = threads;
  return fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o);
}

json Base() { return {{"experiment", {{"rounds", 3}}}, {"algorithm", {{"clients_per_round", 8}}}}; }

// The metrics that depend only on the model trajectory.
std::vector<double> Trajectory(const json& m) {
  std::vector<double> out;
  for (const auto& r : m["rounds"]) {
    out.push_back(r["test_loss"].get<double>());
    out.push_back(r["train_loss"].get<double>());
  }
  return out;
}

}  // namespace

TEST_CASE("SecAgg, SecAgg+ and Paillier compute the same exact sum", "[secure][run]") {
  // All three sum the same fixed-point codes exactly (Z_2^32 or Paillier
  // plaintexts), so with the same quantisation the runs are identical.
  json sa = Base();
  sa["secure_aggregation"] = {{"enabled", true}, {"bits", 32}, {"range", 1.0}};
  json plus = sa;
  plus["secure_aggregation"]["protocol"] = "secagg_plus";
  plus["secure_aggregation"]["neighbors"] = 4;
  json he = Base();
  // Paillier value bits chosen to give the same codec: 32 bits with 3 bits of
  // headroom for 8 clients leaves 29 value bits; Paillier packs value_bits + 3.
  he["encryption"] = {{"scheme", "paillier"}, {"key_bits", 1024}, {"value_bits", 28}, {"range", 1.0}};
  const json a = Run(sa), b = Run(plus), c = Run(he);
  CHECK(Trajectory(a) == Trajectory(b));
  CHECK(a["rounds"][0]["secure_aggregation"]["neighbors"] == 7);  // SecAgg: all n - 1 others
  CHECK(b["rounds"][0]["secure_aggregation"]["neighbors"] == 4);
  CHECK(b["rounds"][0]["round_bytes_up"].get<int64_t>() < a["rounds"][0]["round_bytes_up"].get<int64_t>());
  CHECK(c["rounds"][0]["encryption"]["scheme"] == "paillier");
  CHECK(c["rounds"][0]["encryption"]["expansion"].get<double>() > 1.0);
  // Paillier's codec has one value bit less than SecAgg's (28 + 3 = 31 bits),
  // so its sums differ by quantisation only.
  const auto ta = Trajectory(a), tc = Trajectory(c);
  for (size_t i = 0; i < ta.size(); ++i) CHECK(tc[i] == Approx(ta[i]).epsilon(1e-4));
}

TEST_CASE("secure aggregation is deterministic across thread counts", "[secure][run]") {
  json j = Base();
  j["secure_aggregation"] = {{"enabled", true}, {"dropout_rate", 0.1}};
  CHECK(fedsim::StripNondeterministic(Run(j, 1)).dump() == fedsim::StripNondeterministic(Run(j, 2)).dump());
}

TEST_CASE("secure aggregation below the threshold: skip the round or stop", "[secure][run]") {
  json j = Base();
  j["secure_aggregation"] = {{"enabled", true}, {"dropout_rate", 0.9}, {"threshold_fraction", 0.9}};
  const json m = Run(j);
  int failed = 0;
  for (const auto& r : m["rounds"]) failed += r["secure_aggregation"].value("failed", false);
  CHECK(failed == 3);
  // No update was applied: the model never moved from its initial value.
  CHECK(m["rounds"][0]["test_loss"] == m["rounds"][2]["test_loss"]);
  j["secure_aggregation"]["on_failure"] = "stop";
  CHECK_THROWS_AS(Run(j), fedsim::RunError);
}

TEST_CASE("secure aggregation: a round with every sampled client offline is an empty sum", "[secure][run]") {
  // availability 0.02 with 8 of 30 clients a round: some rounds have nobody
  // online. Such a round sums nothing and leaves the model as it was, as the
  // plain run does, instead of failing the protocol (or the run).
  json j = Base();
  j["experiment"]["rounds"] = 12;
  j["system"] = {{"availability", 0.02}};
  const json plain = Run(j);
  j["secure_aggregation"] = {{"enabled", true}};
  const json secure = Run(j);
  CHECK(secure["summary"]["status"] == "completed");
  int empty = 0;
  for (size_t r = 0; r < plain["rounds"].size(); ++r) {
    if (plain["rounds"][r]["cohort"].get<int>() > 0) continue;
    ++empty;
    CHECK_FALSE(secure["rounds"][r]["secure_aggregation"].value("failed", false));
    if (r > 0) CHECK(secure["rounds"][r]["test_loss"] == secure["rounds"][r - 1]["test_loss"]);
  }
  CHECK(empty > 0);
}

TEST_CASE("paillier: value bits that do not fit the 32-bit codes with the cohort's headroom are refused",
          "[secure][run]") {
  // A cohort of 20 needs ceil(log2 20) = 5 bits of headroom: 28 + 5 > 32.
  json he = Base();
  he["experiment"]["rounds"] = 1;
  he["algorithm"]["clients_per_round"] = 20;
  he["encryption"] = {{"scheme", "paillier"}, {"key_bits", 1024}, {"value_bits", 28}};
  CHECK_THROWS_WITH(Run(he), Catch::StartsWith("encryption.value_bits: 28 value bits and 5 bits of headroom") &&
                                 Catch::Contains("use at most 27"));
  he["encryption"]["value_bits"] = 27;
  CHECK(Run(he)["summary"]["status"] == "completed");
}
