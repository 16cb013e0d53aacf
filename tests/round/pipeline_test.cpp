// The round pipeline's stages inside real runs: weighted secure sums,
// compression transforms, per-stage records, branching.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "fl/algorithm.h"
#include "round/upload_transform.h"
#include "run/experiment.h"

using nlohmann::json;

namespace {

json Run(const json& j, int threads = 2, const std::string& out = "", int stop_after = 0, bool resume = false,
         const std::string& from = "") {
  fedsim::RunOptions o;
  o.threads = threads;
  o.out_dir = out;
  o.stop_after_round = stop_after;
  o.resume = resume;
  o.branch_from = from;
  return fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o);
}

// Synthetic(1,1), 30 natural clients of different sizes, softmax.
json Base() { return {{"experiment", {{"rounds", 3}}}, {"algorithm", {{"clients_per_round", 8}}}}; }

std::vector<double> Trajectory(const json& m) {
  std::vector<double> out;
  for (const auto& r : m["rounds"]) {
    out.push_back(r["test_loss"].get<double>());
    out.push_back(r["train_loss"].get<double>());
  }
  return out;
}

std::string TempDir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("fedsim_pipeline_" + name);
  std::filesystem::remove_all(d);
  return d.string();
}

}  // namespace

TEST_CASE("weighted secure aggregation reaches the plain run's model up to fixed-point rounding",
          "[round][secure]") {
  const json plain = Run(Base());
  json sa = Base();
  sa["secure_aggregation"] = {{"enabled", true}, {"range", 4.0}};
  const json weighted = Run(sa);
  sa["secure_aggregation"]["weighting"] = "uniform";
  const json uniform = Run(sa);
  const auto tp = Trajectory(plain), tw = Trajectory(weighted), tu = Trajectory(uniform);
  // 32-bit codes over [-4, 4] with 3 bits of headroom: a step of 2^-26 per
  // client and coordinate, far below what the losses can show at 1e-6.
  double max_weighted = 0.0, max_uniform = 0.0;
  for (size_t i = 0; i < tp.size(); ++i) {
    max_weighted = std::max(max_weighted, std::fabs(tw[i] - tp[i]) / std::fabs(tp[i]));
    max_uniform = std::max(max_uniform, std::fabs(tu[i] - tp[i]) / std::fabs(tp[i]));
  }
  CHECK(max_weighted < 1e-6);
  // The clients hold different numbers of samples: the unweighted mean is a
  // different model.
  CHECK(max_uniform > 1e-4);
  const json& st = weighted["rounds"][0]["stages"]["aggregator"];
  CHECK(st["kind"] == "secure_weighted");
  CHECK(st["included"] == 8);
  // The weight coordinate costs 4 bytes (32 bits) per client over the
  // unweighted protocol.
  CHECK(weighted["rounds"][0]["round_bytes_up"].get<int64_t>() - uniform["rounds"][0]["round_bytes_up"].get<int64_t>() ==
        8 * 4);
}

TEST_CASE("compression: bytes up are the codec's encoded sizes, and the run is deterministic", "[round][compress]") {
  json j = Base();
  j["compression"] = {{"kind", "qsgd"}, {"bits", 4}, {"bucket", 512}};
  const json a = Run(j, 1), b = Run(j, 2);
  CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
  const int64_t n = a["model"]["num_params"].get<int64_t>();
  const int64_t per_client = (n * 4 + 7) / 8 + 4 * ((n + 511) / 512);
  for (const auto& r : a["rounds"]) {
    CHECK(r["round_bytes_up"].get<int64_t>() == r["cohort"].get<int64_t>() * per_client);
    const json& c = r["stages"]["compress"];
    CHECK(c["bytes_up"] == r["round_bytes_up"]);
    CHECK(c["raw_bytes_up"].get<int64_t>() == r["cohort"].get<int64_t>() * n * 4);
  }
  // Lossy: not the uncompressed model.
  CHECK(Trajectory(a) != Trajectory(Run(Base())));
}

TEST_CASE("compression with error feedback resumes exactly", "[round][compress][checkpoint]") {
  json j = Base();
  j["experiment"]["rounds"] = 4;
  j["compression"] = {{"kind", "topk"}, {"density", 0.1}, {"error_feedback", true}};
  const std::string dir = TempDir("ef_resume");
  const json full = Run(j, 2, dir);
  const json stopped = Run(j, 2, dir, 2);
  CHECK(stopped["summary"]["status"] == "interrupted");
  const json resumed = Run(j, 2, dir, 0, true);
  CHECK(fedsim::StripNondeterministic(resumed).dump() == fedsim::StripNondeterministic(full).dump());
  // Error feedback changes the run (the residual is added back).
  j["compression"]["error_feedback"] = false;
  CHECK(Trajectory(Run(j)) != Trajectory(full));
}

TEST_CASE("compression is refused where it cannot apply, naming both keys", "[round][compress][config]") {
  json sa = Base();
  sa["compression"] = {{"kind", "int8"}};
  sa["secure_aggregation"] = {{"enabled", true}};
  CHECK_THROWS_WITH(Run(sa), Catch::Contains("compression.kind") && Catch::Contains("secure_aggregation.enabled"));
  json sc = Base();
  sc["compression"] = {{"kind", "topk"}};
  sc["algorithm"]["name"] = "scaffold";
  CHECK_THROWS_WITH(Run(sc), Catch::Contains("compression.kind") && Catch::Contains("algorithm.name=scaffold"));
  json dp = Base();
  dp["compression"] = {{"kind", "qsgd"}};
  dp["privacy"] = {{"mode", "central"}, {"noise_multiplier", 1.0}};
  CHECK_THROWS_WITH(Run(dp), Catch::Contains("compression.kind") && Catch::Contains("privacy.mode=central"));
  json ef = Base();
  ef["compression"] = {{"error_feedback", true}};
  CHECK_THROWS_AS(Run(ef), fedsim::InputError);
}

TEST_CASE("every round record carries its stages", "[round]") {
  json j = Base();
  j["privacy"] = {{"mode", "central"}, {"noise_multiplier", 1.0}, {"clip_norm", 0.5}};
  const json m = Run(j);
  for (const auto& r : m["rounds"]) {
    const json& s = r["stages"];
    CHECK(s["sampler"]["sampled"] == r["sampled"]);
    CHECK(s["scheduler"]["bytes_down"] == r["round_bytes_down"]);
    CHECK(s["aggregator"]["bytes_up"] == r["round_bytes_up"]);
    CHECK(s["clip"]["clip_fraction"] == r["clip_fraction"]);
    CHECK(s["server"]["noise_std"] == 0.5);
    CHECK(s["privacy"]["epsilon"] == r["epsilon"]);
  }
  CHECK(m["rounds"][1]["stages"]["privacy"]["round_epsilon"].get<double>() > 0.0);
}

TEST_CASE("a branch continues another run's checkpoint with changed settings", "[round][checkpoint]") {
  json j = Base();
  j["experiment"]["rounds"] = 2;
  const std::string trunk = TempDir("trunk");
  const json first = Run(j, 2, trunk);
  j["experiment"]["rounds"] = 4;
  const json whole = Run(j, 2);
  // A branch that changes only the length continues exactly.
  const json same = Run(j, 2, TempDir("branch_same"), 0, false, trunk + "/checkpoint.bin");
  CHECK(same["branch"]["round"] == 2);
  CHECK(same["branch"]["changed"] == json::array({"experiment.rounds"}));
  json same_rounds = fedsim::StripNondeterministic(same["rounds"]);
  CHECK(same_rounds.dump() == fedsim::StripNondeterministic(whole["rounds"]).dump());
  // Another server learning rate from round 3 on: rounds 1-2 are the trunk's.
  json k = j;
  k["algorithm"]["name"] = "fedavgm";
  const std::string bad = TempDir("branch_bad");
  CHECK_THROWS_WITH(Run(k, 2, bad, 0, false, trunk + "/checkpoint.bin"), Catch::Contains("algorithm.name"));
  k = j;
  k["model"] = {{"kind", "mlp"}, {"hidden", {8}}};
  CHECK_THROWS_WITH(Run(k, 2, bad, 0, false, trunk + "/checkpoint.bin"), Catch::Contains("model."));
  k = j;
  k["algorithm"]["lr"] = 0.1;
  const json other = Run(k, 2, TempDir("branch_lr"), 0, false, trunk + "/checkpoint.bin");
  CHECK(fedsim::StripNondeterministic(other["rounds"][1]).dump() ==
        fedsim::StripNondeterministic(first["rounds"][1]).dump());
  CHECK(other["rounds"][3]["test_loss"] != whole["rounds"][3]["test_loss"]);
}

TEST_CASE("a branch interrupted and resumed is still a branch", "[round][checkpoint]") {
  json j = Base();
  j["experiment"]["rounds"] = 2;
  const std::string trunk = TempDir("trunk_resume");
  Run(j, 2, trunk);
  j["experiment"]["rounds"] = 5;
  j["algorithm"]["lr"] = 0.1;
  const json whole = Run(j, 2, TempDir("branch_whole"), 0, false, trunk + "/checkpoint.bin");
  const std::string part = TempDir("branch_part");
  Run(j, 2, part, 3, false, trunk + "/checkpoint.bin");  // stops after round 3
  const json resumed = Run(j, 1, part, 0, true);
  REQUIRE(resumed["branch"].is_object());
  CHECK(resumed["branch"] == whole["branch"]);
  CHECK(fedsim::StripNondeterministic(resumed["rounds"]).dump() ==
        fedsim::StripNondeterministic(whole["rounds"]).dump());
}

TEST_CASE("a branch may not change what the saved state's shape or accounting depends on", "[round][checkpoint]") {
  const auto refused = [](json trunk_cfg, const std::string& key, const json& value) {
    INFO(key);
    trunk_cfg["experiment"]["rounds"] = 1;
    const std::string trunk = TempDir("frozen_trunk");
    Run(trunk_cfg, 2, trunk);
    json b = trunk_cfg;
    b["experiment"]["rounds"] = 2;
    const auto dot = key.find('.');
    b[key.substr(0, dot)][key.substr(dot + 1)] = value;
    CHECK_THROWS_WITH(Run(b, 2, TempDir("frozen_branch"), 0, false, trunk + "/checkpoint.bin"),
                      Catch::Contains(key + " cannot change in a branch"));
  };
  json mlp = Base();
  mlp["model"] = {{"kind", "mlp"}, {"hidden", {8, 8}}};
  // The personal vectors' length (a longer one was read past its end).
  json per = mlp;
  per["algorithm"]["name"] = "fedper";
  refused(per, "personalization.personal_layers", 2);
  json sparse = mlp;
  sparse["algorithm"]["name"] = "fedsparse";
  refused(sparse, "algorithm.sparse_download", true);
  refused(sparse, "algorithm.model_density", 0.25);
  // Local and sample DP recompute epsilon from per-client counts at the
  // current noise: a new noise would re-price the parent's rounds.
  json local = Base();
  local["privacy"] = {{"mode", "local"}, {"noise_multiplier", 1.0}, {"clip_norm", 1.0}};
  refused(local, "privacy.noise_multiplier", 4.0);
  refused(local, "privacy.clip_norm", 2.0);
  json sample = Base();
  sample["privacy"] = {{"mode", "sample"}, {"noise_multiplier", 1.0}, {"clip_norm", 1.0}};
  refused(sample, "privacy.noise_multiplier", 4.0);
  refused(sample, "algorithm.batch_size", 5);
  // Central DP keeps its accountant's RDP: a branch may change the noise.
  json central = Base();
  central["privacy"] = {{"mode", "central"}, {"noise_multiplier", 1.0}, {"clip_norm", 1.0}};
  central["experiment"]["rounds"] = 1;
  const std::string trunk = TempDir("central_trunk");
  const json c1 = Run(central, 2, trunk);
  central["experiment"]["rounds"] = 2;
  central["privacy"]["noise_multiplier"] = 4.0;
  const json c2 = Run(central, 2, TempDir("central_branch"), 0, false, trunk + "/checkpoint.bin");
  CHECK(c2["summary"]["epsilon"].get<double>() > c1["summary"]["epsilon"].get<double>());
}

TEST_CASE("what an algorithm declares about its upload decides DP, secure sums and compression", "[round][config]") {
  // The algorithms each stage accepts, from their UploadKind and
  // server_reads_reports (no list of names in the stages).
  // The personalised algorithms upload model deltas of their shared part.
  const std::set<std::string> dp = {"fedavg",    "fedsgd",  "fedprox", "feddyn",  "fedavgm", "fedadagrad",
                                    "fedadam",   "fedyogi", "fedpara", "ditto",   "apfl",    "pfedme",
                                    "perfedavg", "fedper",  "fedrep",  "lgfedavg", "fedbn"};
  std::set<std::string> secure = dp;
  secure.insert("scaffold");
  secure.insert("qffl");  // [Delta_k ; h_k]: the server needs only the two sums
  std::set<std::string> compress = dp;
  compress.insert("fednova");
  compress.insert("afl");  // a scaled model delta, though its server reads each report's loss
  for (const auto& e : fedsim::GetCatalog().algorithms) {
    if (e.generative) continue;
    INFO(e.name);
    fedsim::Config c;
    c.algorithm.name = e.name;
    const auto algo = fedsim::CreateAlgorithm(c.algorithm);
    auto accepts = [&](const fedsim::Config& cfg) {
      try {
        fedsim::CheckUploadTransforms(cfg, *algo);
        return true;
      } catch (const fedsim::InputError&) {
        return false;
      }
    };
    fedsim::Config p = c;
    p.privacy.mode = "central";
    CHECK(accepts(p) == (dp.count(e.name) > 0));
    p.privacy.mode = "local";
    CHECK(accepts(p) == (dp.count(e.name) > 0));
    fedsim::Config s = c;
    s.secure_aggregation.enabled = true;
    CHECK(accepts(s) == (secure.count(e.name) > 0));
    s.secure_aggregation.enabled = false;
    s.encryption.scheme = "paillier";
    CHECK(accepts(s) == (secure.count(e.name) > 0));
    fedsim::Config k = c;
    k.compression.kind = "topk";
    CHECK(accepts(k) == (compress.count(e.name) > 0));
  }
}
