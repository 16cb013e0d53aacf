// Per-client evaluation (metrics.client_eval), held-out clients and
// fine-tuning: the summaries against hand-computed values, the held-out
// clients never sampled, the record keys inside real runs.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "round/client_evaluator.h"
#include "round/cohort_sampler.h"
#include "run/experiment.h"

using nlohmann::json;
using fedsim::ClientScore;

namespace {

json Run(const json& j, int threads = 2, const std::string& out = "", int stop_after = 0, bool resume = false) {
  fedsim::RunOptions o;
  o.threads = threads;
  o.out_dir = out;
  o.stop_after_round = stop_after;
  o.resume = resume;
  return fedsim::RunExperiment(fedsim::ParseConfig(j, "test"), o);
}

// Synthetic(1,1): 30 natural clients of very different sizes, softmax, each
// client's own 25% test split.
json Base() {
  return {{"experiment", {{"rounds", 4}}},
          {"algorithm", {{"clients_per_round", 6}}},
          {"data", {{"client_test_fraction", 0.25}}},
          {"metrics", {{"client_eval", "all"}, {"eval_every", 2}}}};
}

}  // namespace

TEST_CASE("client accuracy summary: hand-computed figures", "[round][client_eval]") {
  // Accuracies 0.5, 1, 0 (10, 20, 10 test samples); a client without test
  // samples is left out.
  const std::vector<ClientScore> s = {{0, 10, 5, 4.0}, {1, 20, 20, 2.0}, {2, 10, 0, 30.0}, {3, 0, 0, 0.0}};
  const json a = fedsim::SummarizeClientAccuracy(s);
  CHECK(a["clients"] == 3);
  CHECK(a["weighted_mean"].get<double>() == Approx(25.0 / 40.0));
  CHECK(a["mean"].get<double>() == Approx(0.5));
  CHECK(a["variance"].get<double>() == Approx(1.0 / 6.0));
  CHECK(a["std"].get<double>() == Approx(std::sqrt(1.0 / 6.0)));
  CHECK(a["min"].get<double>() == 0.0);
  CHECK(a["max"].get<double>() == 1.0);
  // Sorted 0, 0.5, 1: p10 at position 0.2, p90 at 1.8.
  CHECK(a["p10"].get<double>() == Approx(0.1));
  CHECK(a["p50"].get<double>() == Approx(0.5));
  CHECK(a["p90"].get<double>() == Approx(0.9));
  CHECK(a["worst10"].get<double>() == 0.0);  // ceil(3 / 10) = 1 client
  CHECK(a["best10"].get<double>() == 1.0);
  CHECK(a["jain"].get<double>() == Approx(1.5 * 1.5 / (3 * 1.25)));

  // Mean losses 0.4, 0.1, 3: the worst are the highest.
  const json l = fedsim::SummarizeClientLoss(s);
  CHECK(l["weighted_mean"].get<double>() == Approx(36.0 / 40.0));
  CHECK(l["worst10"].get<double>() == Approx(3.0));
  CHECK(l["best10"].get<double>() == Approx(0.1));
  CHECK_FALSE(l.contains("jain"));

  CHECK(fedsim::SummarizeClientAccuracy({{0, 0, 0, 0.0}}).is_null());
  // 20 clients: the worst and best 10% are two clients each.
  std::vector<ClientScore> many;
  for (int c = 0; c < 20; ++c) many.push_back({c, 10, c % 11, 0.0});
  const json m = fedsim::SummarizeClientAccuracy(many);
  CHECK(m["worst10"].get<double>() == Approx(0.0));   // two clients with 0 correct (c = 0, 11)
  CHECK(m["best10"].get<double>() == Approx(0.95));  // 10 and 9 correct
  CHECK_FALSE(m.contains("non_finite"));

  // A diverged client (NaN loss) is not sorted among the others: every
  // statistic is null and non_finite counts it.
  const std::vector<ClientScore> bad = {{0, 10, 5, 4.0}, {1, 10, 1, std::nan("")}, {2, 10, 9, 1.0}};
  const json nl = fedsim::SummarizeClientLoss(bad);
  CHECK(nl["clients"] == 3);
  CHECK(nl["non_finite"] == 1);
  CHECK(nl["mean"].is_null());
  CHECK(nl["p50"].is_null());
  CHECK(nl["worst10"].is_null());
  CHECK(fedsim::SummarizeClientAccuracy(bad)["p50"].get<double>() == Approx(0.5));
}

TEST_CASE("held-out clients: drawn once, never sampled; no holdout samples as before", "[round][client_eval]") {
  using fedsim::HoldoutClients;
  CHECK(HoldoutClients(0.0, 50, 1).empty());
  const std::vector<int> h = HoldoutClients(0.2, 50, 1);
  REQUIRE(h.size() == 10);
  CHECK(std::is_sorted(h.begin(), h.end()));
  CHECK(HoldoutClients(0.2, 50, 1) == h);
  CHECK(HoldoutClients(7, 50, 1).size() == 7);
  CHECK(HoldoutClients(0.2, 50, 2) != h);

  fedsim::AlgorithmConfig cfg;
  std::vector<int> pool;
  const std::set<int> out(h.begin(), h.end());
  for (int c = 0; c < 50; ++c) {
    if (!out.count(c)) pool.push_back(c);
  }
  const fedsim::CohortSampler with(cfg, 50, 8, 0.0, 3, pool);
  const fedsim::CohortSampler identity(cfg, 40, 8, 0.0, 3);
  const fedsim::CohortSampler all(cfg, 50, 8, 0.0, 3);
  for (int r = 0; r < 200; ++r) {
    const std::vector<int> s = with.Sample(r), i = identity.Sample(r);
    REQUIRE(s.size() == 8);
    CHECK(std::is_sorted(s.begin(), s.end()));
    for (size_t k = 0; k < s.size(); ++k) {
      CHECK(out.count(s[k]) == 0);
      CHECK(s[k] == pool[static_cast<size_t>(i[k])]);  // the draw indexes the pool
    }
  }
  CHECK(with.sampling_rate() == Approx(8.0 / 40.0));
  CHECK(all.sampling_rate() == Approx(8.0 / 50.0));
  // Poisson sampling over the pool.
  cfg.sampling = "poisson";
  cfg.sampling_rate = 0.5;
  const fedsim::CohortSampler poisson(cfg, 50, 8, 0.0, 3, pool);
  for (int r = 0; r < 50; ++r) {
    for (int c : poisson.Sample(r)) CHECK(out.count(c) == 0);
  }
}

TEST_CASE("per-client evaluation in a run: records, clients.jsonl, holdout and the gap", "[round][client_eval]") {
  const std::string dir = (std::filesystem::temp_directory_path() / "fedsim_client_eval_run").string();
  std::filesystem::remove_all(dir);
  json j = Base();
  j["data"]["holdout_clients"] = 5;
  const json m = Run(j, 2, dir);
  const json& rounds = m["rounds"];
  REQUIRE(rounds.size() == 4);
  CHECK(rounds[0]["client_accuracy"].is_null());  // not an evaluation round
  REQUIRE(rounds[1]["client_accuracy"].is_object());
  CHECK(rounds[1]["client_accuracy"]["clients"] == 25);
  CHECK(rounds[1]["holdout_client_accuracy"]["clients"] == 5);
  const std::vector<int> holdout = m["clients"]["holdout_clients"].get<std::vector<int>>();
  REQUIRE(holdout.size() == 5);

  // clients.jsonl: one line per client per evaluation; the record's summary
  // is the lines' figures.
  std::ifstream in(dir + "/clients.jsonl");
  int64_t correct[2] = {0, 0}, samples[2] = {0, 0};
  int lines = 0;
  for (std::string line; std::getline(in, line);) {
    const json row = json::parse(line);
    ++lines;
    if (row["round"] != 4) continue;
    const bool h = row["holdout"].get<bool>();
    CHECK(h == (std::find(holdout.begin(), holdout.end(), row["client"].get<int>()) != holdout.end()));
    correct[h] += row["correct"].get<int64_t>();
    samples[h] += row["test_samples"].get<int64_t>();
  }
  CHECK(lines == 60);
  const json& last = rounds[3];
  CHECK(last["client_accuracy"]["weighted_mean"].get<double>() ==
        Approx(static_cast<double>(correct[0]) / samples[0]).epsilon(1e-12));
  CHECK(last["holdout_client_accuracy"]["weighted_mean"].get<double>() ==
        Approx(static_cast<double>(correct[1]) / samples[1]).epsilon(1e-12));
  CHECK(last["participation_gap"].get<double>() ==
        Approx(static_cast<double>(correct[0]) / samples[0] - static_cast<double>(correct[1]) / samples[1]));
  CHECK(m["summary"]["final_participation_gap"] == last["participation_gap"]);

  // A rerun into the same folder without per-client evaluation leaves no
  // stale clients.jsonl behind.
  j["metrics"]["client_eval"] = "none";
  j["data"]["holdout_clients"] = 0;
  Run(j, 2, dir);
  CHECK_FALSE(std::filesystem::exists(dir + "/clients.jsonl"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("per-client evaluation: same bits for any thread count; participants; sample", "[round][client_eval]") {
  json j = Base();
  j["personalization"]["finetune_steps"] = 3;
  j["data"]["holdout_clients"] = 0.1;
  const json a = fedsim::StripNondeterministic(Run(j, 1));
  const json b = fedsim::StripNondeterministic(Run(j, 2));
  CHECK(a == b);
  CHECK(a["rounds"][3]["client_accuracy"]["clients"] == 27);

  j["metrics"]["client_eval"] = "participants";
  const json p = Run(j, 2);
  // Participants: the round's cohort (6; those with test rows).
  CHECK(p["rounds"][3]["client_accuracy"]["clients"].get<int>() <= 6);
  CHECK(p["rounds"][3]["holdout_client_accuracy"]["clients"] == 3);

  j["metrics"]["client_eval"] = "sample";
  j["metrics"]["client_eval_fraction"] = 0.5;
  const json s = Run(j, 2);
  CHECK(s["rounds"][1]["client_accuracy"]["clients"].get<int>() <= 14);  // round(0.5 * 27), with test rows
}

TEST_CASE("fine-tuning before evaluation lifts per-client accuracy on label-skewed clients", "[round][client_eval][learn]") {
  // Fashion-MNIST-like skew is not needed: Synthetic(1,1)'s clients each have
  // their own model, so a few local steps from the global model help them.
  json j = Base();
  j["experiment"]["rounds"] = 10;
  j["metrics"]["eval_every"] = 10;
  const json plain = Run(j);
  j["personalization"]["finetune_steps"] = 20;
  const json tuned = Run(j);
  const double a = plain["summary"]["final_client_accuracy"]["mean"].get<double>();
  const double b = tuned["summary"]["final_client_accuracy"]["mean"].get<double>();
  INFO("plain " << a << " fine-tuned " << b);
  CHECK(b > a + 0.05);
  // The global model is the same: fine-tuning touches only what is scored.
  CHECK(plain["summary"]["final_test_accuracy"] == tuned["summary"]["final_test_accuracy"]);
}

TEST_CASE("per-client evaluation: bad settings are config errors", "[round][client_eval][config]") {
  auto fails = [](json j, const std::string& what) {
    try {
      Run(j);
      FAIL("no error for " << what);
    } catch (const fedsim::InputError& e) {
      CHECK_THAT(e.what(), Catch::Contains(what));
    }
  };
  json j = Base();
  j["data"]["client_test_fraction"] = 0.0;
  j["data"]["partition"]["kind"] = "iid";  // the natural partition would keep the data's own per-user test rows
  fails(j, "no client has test rows");
  j = Base();
  j["data"]["holdout_clients"] = 30;
  fails(j, "at least one must train");
  j["data"]["holdout_clients"] = 2.5;
  fails(j, "neither a fraction below 1 nor a whole count");
  j["data"]["holdout_clients"] = 26;
  fails(j, "cohort of 6 is larger than the 4 clients left to train");
  j = Base();
  j["metrics"]["client_eval"] = "none";
  j["personalization"]["finetune_steps"] = 2;
  fails(j, "set metrics.client_eval");
}

TEST_CASE("per-client evaluation resumes exactly, clients.jsonl included", "[round][client_eval][checkpoint]") {
  const auto tmp = std::filesystem::temp_directory_path();
  const std::string a = (tmp / "fedsim_ce_full").string(), b = (tmp / "fedsim_ce_resumed").string();
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  json j = Base();
  j["experiment"]["rounds"] = 6;
  j["experiment"]["checkpoint_every"] = 2;
  j["metrics"]["eval_every"] = 1;
  j["data"]["holdout_clients"] = 4;
  j["personalization"]["finetune_steps"] = 2;
  const json full = Run(j, 2, a);
  Run(j, 2, b, 3);  // stops after round 3 (checkpoint at 3)
  {
    // A killed run may have written lines after its last checkpoint: a
    // resume drops them.
    std::ofstream late(b + "/clients.jsonl", std::ios::app);
    late << R"({"round":4,"client":0,"holdout":false,"test_samples":1,"correct":1,"loss":0.0,"accuracy":1.0})" << "\n";
  }
  const json resumed = Run(j, 1, b, 0, true);
  CHECK(fedsim::StripNondeterministic(full) == fedsim::StripNondeterministic(resumed));
  auto text = [](const std::string& d) {
    std::ifstream in(d + "/clients.jsonl");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(text(a) == text(b));
  CHECK(!text(a).empty());
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
}
