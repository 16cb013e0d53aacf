#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "fl/checkpoint.h"
#include "run/experiment.h"

using fedsim::CheckpointReader;
using fedsim::CheckpointWriter;
using fedsim::InputError;
using nlohmann::json;

namespace {

std::string TempDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("fedsim_ckpt_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("checkpoint: arrays round-trip and damage is detected", "[fl][checkpoint]") {
  const std::string dir = TempDir("format");
  const std::string path = dir + "/c.bin";
  Eigen::VectorXf v(3);
  v << 1.5f, -2.0f, 3.25f;
  const double d[] = {0.1, 1e300};
  CheckpointWriter w(json{{"round", 7}});
  w.F32("v", v);
  w.F64("d", d, 2);
  w.I64("i", {-1, 5, 1LL << 40});
  w.Write(path);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  const CheckpointReader r(path);
  CHECK(r.header()["round"] == 7);
  CHECK(r.F32("v", 3) == v);
  CHECK(r.F64("d") == std::vector<double>{0.1, 1e300});
  CHECK(r.I64("i") == std::vector<int64_t>{-1, 5, 1LL << 40});
  CHECK_THROWS_WITH(r.F32("v", 4), Catch::Contains("holds 3 values, expected 4"));
  CHECK_THROWS_WITH(r.F32("missing"), Catch::Contains("no 'missing'"));
  CHECK_THROWS_AS(r.F64("v"), InputError);

  const std::string bytes = ReadFile(path);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  CHECK_THROWS_WITH(CheckpointReader("x.bin", flipped), Catch::Contains("x.bin: checkpoint is truncated or corrupt"));
  CHECK_THROWS_WITH(CheckpointReader("x.bin", bytes.substr(0, bytes.size() - 9)), Catch::Contains("x.bin"));
  std::string magic = bytes;
  magic[0] = 'X';
  CHECK_THROWS_WITH(CheckpointReader("x.bin", magic), Catch::Contains("wrong magic"));
  std::string version = bytes;
  version[8] = 99;
  CHECK_THROWS_WITH(CheckpointReader("x.bin", version), Catch::Contains("format version 99"));
  // An older version is named as such (its totals lack fields this build needs).
  version[8] = 1;
  CHECK_THROWS_WITH(CheckpointReader("x.bin", version),
                    Catch::Contains("format version 1, this fedsim reads version 2 (written by an older fedsim"));
  CHECK_THROWS_WITH(CheckpointReader(dir + "/none.bin"), Catch::Contains("cannot open checkpoint"));
}

TEST_CASE("checkpoint: a run stopped at round k and resumed equals an uninterrupted run", "[fl][checkpoint]") {
  struct Case {
    std::string algo;
    std::vector<std::string> sets;
  };
  const std::vector<Case> cases = {
      // A stateful algorithm with central DP: the accountant's state is resumed too.
      {"feddyn", {"privacy.mode=central", "privacy.noise_multiplier=0.8", "privacy.clip_norm=1.0"}},
      {"fedprox", {"privacy.mode=sample", "privacy.noise_multiplier=1.0", "algorithm.local_steps=2"}},
      {"feddyn", {}},
      {"scaffold", {}},
      {"fedsparse", {"algorithm.sparse_download=true", "algorithm.model_density=0.5", "algorithm.update_density=0.1"}},
      {"fedadam", {"algorithm.server_lr=0.03"}},
      {"fedgia", {}},
      {"qffl", {"algorithm.q=2"}},
      {"afl", {"algorithm.afl_lambda_lr=0.05"}},  // lambda is server state
      {"afl", {"algorithm.afl_lambda_lr=0.05", "algorithm.afl_domains=labels"}},
      // Personalised algorithms, their personal models scored every round.
      {"ditto", {"data.client_test_fraction=0.25", "metrics.client_eval=all", "algorithm.state_precision=float16"}},
      {"apfl", {"data.client_test_fraction=0.25", "metrics.client_eval=all"}},
      {"apfl", {"data.client_test_fraction=0.25", "metrics.client_eval=all", "personalization.alpha_lr=0.1",
                "algorithm.state_precision=float16"}},
      {"pfedme", {"data.client_test_fraction=0.25", "metrics.client_eval=all", "personalization.inner_steps=2"}},
      {"perfedavg", {"data.client_test_fraction=0.25", "metrics.client_eval=all", "personalization.perfedavg=hf"}},
      {"fedrep",
       {"data.client_test_fraction=0.25", "metrics.client_eval=all", "model.kind=mlp", "model.hidden=[8]",
        "personalization.head_epochs=1", "algorithm.state_precision=float16"}},
      {"lgfedavg", {"data.client_test_fraction=0.25", "metrics.client_eval=all", "model.kind=mlp", "model.hidden=[8]"}},
      // The reconstruction audits' run totals and last shown pairs.
      {"fedavg", {"audit.reconstruction=true", "model.kind=mlp", "model.hidden=[8]", "algorithm.batch_size=0"}},
      {"fedavg", {"audit.imprint.bins=8", "audit.imprint.every=2", "model.kind=mlp", "model.hidden=[16]"}},
      // Simulated stragglers with partial work, dropouts and the simulated clock.
      {"fednova",
       {"system.deadline_s=0.02", "system.partial_work=true", "system.compute.gflops=0.1",
        "system.compute.round_sigma=1.0", "system.dropout=0.2", "system.availability=0.9"}},
  };
  for (const auto& c : cases) {
    INFO(c.algo);
    json j = {{"experiment", {{"rounds", 7}, {"checkpoint_every", 2}}},
              {"algorithm", {{"name", c.algo}, {"clients_per_round", 5}}}};
    for (const auto& s : c.sets) fedsim::ApplyOverride(j, s);
    const fedsim::Config cfg = fedsim::ParseConfig(j, "test");
    const std::string full_dir = TempDir(c.algo + "_full"), part_dir = TempDir(c.algo + "_part");

    fedsim::RunOptions o;
    o.threads = 2;
    o.out_dir = full_dir;
    const json full = fedsim::RunExperiment(cfg, o);
    REQUIRE(full["summary"]["status"] == "completed");

    o.out_dir = part_dir;
    o.stop_after_round = 3;  // not a checkpoint_every multiple: the stop writes its own checkpoint
    const json stopped = fedsim::RunExperiment(cfg, o);
    CHECK(stopped["summary"]["status"] == "interrupted");
    CHECK(stopped["summary"]["rounds_completed"] == 3);
    CHECK(std::filesystem::exists(part_dir + "/metrics.json"));

    o.stop_after_round = 0;
    o.resume = true;
    const json resumed = fedsim::RunExperiment(fedsim::ParseConfig(fedsim::CheckpointConfig(part_dir), "ckpt"), o);
    CHECK(resumed["summary"]["status"] == "completed");
    CHECK(fedsim::StripNondeterministic(resumed).dump() == fedsim::StripNondeterministic(full).dump());
    // rounds.jsonl of the resumed run holds every round exactly once.
    std::ifstream in(part_dir + "/rounds.jsonl");
    int lines = 0;
    for (std::string line; std::getline(in, line);) CHECK(json::parse(line)["round"] == ++lines);
    CHECK(lines == 7);
  }
}

TEST_CASE("checkpoint: resuming with another config is refused", "[fl][checkpoint]") {
  const std::string dir = TempDir("mismatch");
  fedsim::Config cfg;
  cfg.experiment.rounds = 3;
  fedsim::RunOptions o;
  o.out_dir = dir;
  o.stop_after_round = 1;
  fedsim::RunExperiment(cfg, o);
  cfg.algorithm.lr = 0.5;
  o.resume = true;
  o.stop_after_round = 0;
  CHECK_THROWS_WITH(fedsim::RunExperiment(cfg, o), Catch::Contains("different config"));
}

TEST_CASE("divergence: NaN stops the run, or skips the offending clients", "[fl][divergence]") {
  // Valid but huge features: the first step makes the weights ~1e33 and the
  // next logits overflow to Inf, so the loss becomes NaN in round 1.
  const std::string dir = TempDir("diverge");
  {
    std::ofstream csv(dir + "/huge.csv");
    csv << "label,a,b\n";
    for (int i = 0; i < 40; ++i) csv << (i % 2) << "," << (i % 2 ? 1e35 : -1e35) << "," << (i % 3) * 1e35 << "\n";
  }
  json j = {{"experiment", {{"rounds", 5}}},
            {"data", {{"dataset", "csv"}, {"path", dir + "/huge.csv"}, {"num_clients", 4},
                      {"partition", {{"kind", "iid"}}}, {"csv", {{"test_fraction", 0.25}}}}},
            {"algorithm", {{"clients_per_round", 4}, {"lr", 0.5}, {"local_epochs", 3}}}};
  fedsim::Config cfg = fedsim::ParseConfig(j, "test");
  fedsim::RunOptions o;
  o.out_dir = dir + "/out";
  const json m = fedsim::RunExperiment(cfg, o);
  CHECK(m["summary"]["status"] == "diverged");
  CHECK(m["summary"]["diverged_round"] == 1);
  CHECK(m["summary"]["skipped_updates"].get<int>() > 0);
  CHECK(m["rounds"].size() == 1);
  CHECK(m["rounds"][0]["test_accuracy"].is_null());
  CHECK(json::parse(ReadFile(dir + "/out/metrics.json"))["summary"]["status"] == "diverged");
  CHECK_FALSE(std::filesystem::exists(dir + "/out/checkpoint.bin"));  // no good round to checkpoint

  // skip_clients: every client's update is non-finite, so none is applied
  // and the model stays at its initial (finite) value.
  cfg.experiment.on_divergence = "skip_clients";
  const json s = fedsim::RunExperiment(cfg, fedsim::RunOptions{});
  CHECK(s["summary"]["status"] == "completed");
  CHECK(s["summary"]["skipped_updates"] == 5 * 4);
  CHECK(s["rounds"][0]["test_loss"] == s["rounds"][4]["test_loss"]);
}
