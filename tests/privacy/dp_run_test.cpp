// Differential privacy inside real runs (the mechanisms and the accountant
// have their own tests in this folder).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <set>

#include "run/experiment.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "privacy/input_perturbation.h"
#include "privacy/mechanisms.h"
#include "privacy/rdp_accountant.h"

using nlohmann::json;

namespace {

json Run(json j) {
  fedsim::RunOptions o;
  o.threads = 2;
  return fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o);
}

// 10 IID clients of exactly 64 samples each (the Fashion-MNIST sample).
json SampleFmnist() {
  return {{"experiment", {{"rounds", 4}}},
          {"data", {{"dataset", "mnist_idx"}, {"path", std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample"},
                    {"num_clients", 10}, {"max_train_samples", 640}, {"partition", {{"kind", "iid"}}}}},
          {"algorithm", {{"clients_per_round", 5}, {"lr", 0.05}}}};
}

// The two runs' test and train losses are equal, round by round.
void RequireSameLosses(const json& a, const json& b) {
  REQUIRE(a["rounds"].size() == b["rounds"].size());
  for (size_t r = 0; r < a["rounds"].size(); ++r) {
    CHECK(a["rounds"][r]["test_loss"] == b["rounds"][r]["test_loss"]);
    CHECK(a["rounds"][r]["train_loss"] == b["rounds"][r]["train_loss"]);
  }
}

}  // namespace

TEST_CASE("central DP with no noise and no clipping is FedAvg bit for bit", "[privacy][dp]") {
  // With equal client sizes that are a power of two, n_k-weighting and the
  // fixed denominator K round identically.
  json plain = SampleFmnist();
  json dp = plain;
  dp["privacy"] = {{"mode", "central"}, {"noise_multiplier", 0.0}, {"clip_norm", 1e9}};
  RequireSameLosses(Run(plain), Run(dp));
}

TEST_CASE("central DP with held-out clients: the fixed denominator is qN over the clients that train",
          "[privacy][dp]") {
  // 2 of the 10 clients held out: q = 5/8, and qN = 5 (the cohort), not 5/8 * 10.
  json plain = SampleFmnist();
  plain["data"]["holdout_clients"] = 2;
  json dp = plain;
  dp["privacy"] = {{"mode", "central"}, {"noise_multiplier", 0.0}, {"clip_norm", 1e9}};
  RequireSameLosses(Run(plain), Run(dp));
}

TEST_CASE("central DP: clipping, noise and the accountant in the metrics", "[privacy][dp]") {
  json j = SampleFmnist();
  j["privacy"] = {{"mode", "central"}, {"noise_multiplier", 1.1}, {"clip_norm", 0.01}, {"delta", 1e-5}};
  const json m = Run(j);
  fedsim::RdpAccountant acc;
  for (int r = 0; r < 4; ++r) {
    acc.Step(0.5, 1.1);  // q = 5 of 10 clients
    const json& rec = m["rounds"][r];
    CHECK(rec["clip_fraction"] == 1.0);  // every update is longer than 0.01
    CHECK(rec["mean_update_norm"].get<double>() > 0.01);
    CHECK(rec["epsilon"].get<double>() ==
          Approx(acc.Epsilon(1e-5, fedsim::Conversion::kImproved).epsilon).epsilon(1e-12));
    CHECK(rec["delta"] == 1e-5);
  }
  CHECK(m["summary"]["epsilon"] == m["rounds"][3]["epsilon"]);
  CHECK(m["privacy"]["noise_multiplier"] == 1.1);
}

TEST_CASE("central DP: target_epsilon picks the noise that meets it", "[privacy][dp]") {
  json j = SampleFmnist();
  j["privacy"] = {{"mode", "central"}, {"target_epsilon", 3.0}};
  const json m = Run(j);
  const double eps = m["summary"]["epsilon"].get<double>();
  CHECK(eps <= 3.0);
  CHECK(eps > 2.9);
}

TEST_CASE("central DP: a branch that would end above target_epsilon is refused; a resume meets it",
          "[privacy][dp][checkpoint]") {
  const std::string dir = (std::filesystem::temp_directory_path() / "fedsim_dp_branch").string();
  std::filesystem::remove_all(dir);
  json j = SampleFmnist();
  j["privacy"] = {{"mode", "central"}, {"target_epsilon", 3.0}};
  // The whole run, and the same run stopped after round 2 and resumed.
  const json whole = Run(j);
  fedsim::RunOptions o;
  o.threads = 2;
  o.out_dir = dir + "/parent";
  o.stop_after_round = 2;
  fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o);
  o.stop_after_round = 0;
  o.resume = true;
  const json resumed = fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o);
  CHECK(resumed["summary"]["epsilon"] == whole["summary"]["epsilon"]);
  RequireSameLosses(whole, resumed);
  // A branch from the parent's last checkpoint (round 4, epsilon ~3 spent)
  // that doubles the rounds cannot meet the target with z solved from zero.
  json longer = j;
  longer["experiment"]["rounds"] = 8;
  fedsim::RunOptions b;
  b.threads = 2;
  b.out_dir = dir + "/branch";
  b.branch_from = dir + "/parent/checkpoint.bin";
  REQUIRE_THROWS_WITH(fedsim::RunExperiment(fedsim::ParseConfig(longer, "test"), b),
                      Catch::StartsWith("privacy.target_epsilon: the checkpoint's 4 noisy rounds have spent epsilon"));
  // With the noise multiplier set instead, the branch runs and reports the
  // epsilon it spends on top of its parent's.
  longer["privacy"] = {{"mode", "central"}, {"noise_multiplier", whole["privacy"]["noise_multiplier"]}};
  const json branched = fedsim::RunExperiment(fedsim::ParseConfig(longer, "test"), b);
  CHECK(branched["summary"]["epsilon"].get<double>() > 3.0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("Poisson sampling draws cohorts of varying size around qN", "[privacy][dp]") {
  json j = {{"experiment", {{"rounds", 40}}},
            {"data", {{"synthetic", {{"num_users", 200}}}, {"num_clients", 200}}},
            {"algorithm", {{"sampling", "poisson"}, {"sampling_rate", 0.1}}},
            {"privacy", {{"mode", "central"}, {"noise_multiplier", 1.0}, {"clip_norm", 1.0}}},
            {"metrics", {{"eval_every", 40}}}};
  const json m = Run(j);
  double total = 0;
  std::set<int> sizes;
  for (const auto& r : m["rounds"]) {
    total += r["cohort"].get<int>();
    sizes.insert(r["cohort"].get<int>());
  }
  CHECK(total / 40 == Approx(20).margin(4 * std::sqrt(200 * 0.1 * 0.9 / 40)));
  CHECK(sizes.size() > 3);
  CHECK(m["privacy"]["sampling_rate"] == 0.1);
}

TEST_CASE("local DP reports its mechanism's epsilon per round, composed over participation", "[privacy][dp]") {
  json j = SampleFmnist();
  j["privacy"] = {{"mode", "local"}, {"noise_multiplier", 2.0}, {"clip_norm", 0.5}, {"delta", 1e-5}};
  const json m = Run(j);
  const double per_round = fedsim::GaussianMechanismEpsilon(1.0, 1.0, 1e-5);
  CHECK(m["privacy"]["local_epsilon_per_round"].get<double>() == Approx(per_round));
  // 4 rounds of 5 of 10 clients: someone took part in k rounds, 2 <= k <= 4.
  const double k = m["summary"]["epsilon"].get<double>() / per_round;
  CHECK(k == Approx(std::round(k)));
  CHECK(k >= 2);
  CHECK(k <= 4);
  j["privacy"]["mechanism"] = "laplace";
  const json l = Run(j);
  CHECK(l["privacy"]["local_epsilon_per_round"].get<double>() == Approx(2.0 / 2.0));  // 2S / (z S)
  CHECK(l["summary"]["delta"] == 0.0);
}

TEST_CASE("sample-level DP-SGD accounts the worst client", "[privacy][dp]") {
  json j = SampleFmnist();
  j["algorithm"]["batch_size"] = 16;
  j["algorithm"]["local_epochs"] = 1;
  j["experiment"]["rounds"] = 2;
  j["privacy"] = {{"mode", "sample"}, {"noise_multiplier", 1.0}, {"clip_norm", 1.0}};
  const json m = Run(j);
  // Every client has 64 samples: q = 16/64, 4 steps per round; the most
  // frequent client took part in 1 or 2 rounds.
  const auto orders = fedsim::DefaultOrders();
  auto eps = [&](int steps) {
    return fedsim::GetEpsilon(orders, fedsim::ComputeRdp(0.25, 1.0, steps, orders), 1e-5, fedsim::Conversion::kImproved)
        .epsilon;
  };
  const double e = m["summary"]["epsilon"].get<double>();
  CHECK((e == Approx(eps(4)) || e == Approx(eps(8))));
  CHECK(m["summary"]["final_test_accuracy"].get<double>() > 0.1);  // above chance after 8 noisy steps
}

TEST_CASE("input perturbation: randomised labels at the stated rate and the guarantee", "[privacy][dp]") {
  json j = SampleFmnist();
  j["experiment"]["rounds"] = 1;
  j["privacy"] = {{"input_perturbation",
                   {{"features", "gaussian"}, {"feature_clip", 10.0}, {"feature_noise", 4.0}, {"label_epsilon", 1.0}}}};
  const json m = Run(j);
  const json& g = m["privacy"]["input_perturbation"];
  CHECK(g["label_epsilon"] == 1.0);
  CHECK(g["feature_epsilon"].get<double>() == Approx(fedsim::GaussianMechanismEpsilon(20.0, 4.0, 1e-5)));
  CHECK(g["epsilon"].get<double>() == Approx(g["feature_epsilon"].get<double>() + 1.0));

  // The labels flip at the randomised-response rate, and features are bounded then noised.
  fedsim::DataConfig dc;
  dc.dataset = "mnist_idx";
  dc.path = std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample";
  fedsim::FederatedData fd = fedsim::LoadData(dc, 1);
  const std::vector<int> before = fd.train.y;
  fedsim::PartitionConfig iid;
  iid.kind = "iid";
  const auto part = fedsim::MakePartition(fd.train, 10, iid, 1);
  fedsim::InputPerturbationConfig ip;
  ip.label_epsilon = 1.0;
  fedsim::PerturbTrainingData(fd.train, part, ip, 1e-5, 1);
  int changed = 0;
  for (size_t i = 0; i < before.size(); ++i) changed += before[i] != fd.train.y[i];
  const double keep = fedsim::RandomizedResponseKeepProbability(10, 1.0);
  CHECK(keep == Approx(std::exp(1.0) / (std::exp(1.0) + 9)));
  const double n = static_cast<double>(before.size());
  CHECK(changed / n == Approx(1 - keep).margin(4 * std::sqrt(keep * (1 - keep) / n)));
}
