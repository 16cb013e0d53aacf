// The simulated system inside real runs: the clock in closed form, partial
// work, dropouts, determinism.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/config.h"
#include "run/experiment.h"

using nlohmann::json;

namespace {

json Run(const fedsim::Config& c, int threads) {
  fedsim::RunOptions o;
  o.threads = threads;
  return fedsim::RunExperiment(c, o);
}

fedsim::Config Small() {
  fedsim::Config c;  // synthetic(1,1), 30 natural users, softmax
  c.experiment.rounds = 4;
  c.algorithm.clients_per_round = 10;
  c.algorithm.local_epochs = 2;
  return c;
}

// One client holding all the data, on a device of 2 MFLOP/s exactly.
fedsim::Config OneClient() {
  fedsim::Config c = Small();
  c.data.partition.kind = "iid";
  c.data.num_clients = 1;
  c.algorithm.clients_per_round = 1;
  c.system.compute.gflops = 0.002;
  c.system.compute.sigma = 0.0;
  return c;
}

}  // namespace

TEST_CASE("system run: one client's round time is download + compute + upload in closed form", "[fl][sim]") {
  fedsim::Config c = OneClient();
  c.algorithm.batch_size = 7;
  c.experiment.rounds = 2;
  c.system.network.up_mbps = 2.0;
  c.system.network.down_mbps = 16.0;
  c.system.network.latency_ms = 30.0;
  const json m = Run(c, 2);
  const double n = m["data"]["train_samples"].get<double>();
  const double p = m["model"]["num_params"].get<double>();
  const double fps = m["model"]["train_flops_per_sample"].get<double>();
  const double fpb = m["model"]["train_flops_per_batch"].get<double>();
  const double steps = 2 * std::ceil(n / 7);
  const double expected = (0.03 + 8 * 4 * p / 16e6) + (2 * n * fps + steps * fpb) / 2e6 + (0.03 + 8 * 4 * p / 2e6);
  for (const auto& r : m["rounds"]) {
    CHECK(r["sim_round_s"].get<double>() == Approx(expected).epsilon(1e-12));
    CHECK(r["train_samples"].get<double>() == 2 * n);
  }
  CHECK(m["summary"]["sim_time_s"].get<double>() == Approx(2 * expected).epsilon(1e-12));
}

TEST_CASE("system run: batch_size 0 plans E full-batch steps, as a batch larger than every client does",
          "[fl][sim]") {
  // Before, batch_size = 0 planned one epoch of work while the clients
  // trained local_epochs, so the clock saw a fifth of the compute here.
  fedsim::Config c = OneClient();
  c.algorithm.local_epochs = 5;
  c.experiment.rounds = 1;
  c.algorithm.batch_size = 0;
  const json zero = Run(c, 2);
  c.algorithm.batch_size = 1000000;
  const json whole = Run(c, 2);
  const double n = zero["data"]["train_samples"].get<double>();
  const double fps = zero["model"]["train_flops_per_sample"].get<double>();
  const double fpb = zero["model"]["train_flops_per_batch"].get<double>();
  const double compute = (5 * n * fps + 5 * fpb) / 2e6;
  // Five epochs of compute, then the default network's transfers.
  CHECK(zero["rounds"][0]["sim_round_s"].get<double>() > compute);
  CHECK(zero["rounds"][0]["sim_round_s"].get<double>() < 1.01 * compute);
  CHECK(zero["rounds"][0]["sim_round_s"] == whole["rounds"][0]["sim_round_s"]);
}

TEST_CASE("system run: partial work cuts stragglers' steps, and the round ends by the deadline", "[fl][sim]") {
  fedsim::Config c = Small();
  c.algorithm.name = "fedprox";
  c.system.deadline_s = 0.05;
  c.system.compute.gflops = 0.1;
  c.system.compute.sigma = 1.0;
  c.system.network.latency_ms = 1.0;
  const json dropped = Run(c, 2);
  c.system.partial_work = true;
  const json partial = Run(c, 2);
  int64_t late = 0, cut = 0;
  for (size_t i = 0; i < partial["rounds"].size(); ++i) {
    const json& d = dropped["rounds"][i];
    const json& r = partial["rounds"][i];
    INFO("round " << i + 1);
    CHECK(d["partial_clients"] == 0);
    CHECK(d["late_clients"].get<int>() + d["cohort"].get<int>() == 10);
    // The clients late without partial work train partially (or stay late if no step fits).
    CHECK(r["partial_clients"].get<int>() + r["late_clients"].get<int>() == d["late_clients"].get<int>());
    CHECK(r["sim_round_s"].get<double>() <= c.system.deadline_s + 1e-12);
    CHECK(r["train_samples"].get<int64_t>() >= d["train_samples"].get<int64_t>());
    late += d["late_clients"].get<int>();
    cut += r["partial_clients"].get<int>();
  }
  CHECK(late > 0);
  CHECK(cut > 0);
  CHECK(partial["summary"]["partial_clients"] == cut);
}

TEST_CASE("system run: everyone dropping out leaves the model untouched but costs the downloads", "[fl][sim]") {
  fedsim::Config c = Small();
  c.system.dropout = 1.0;
  c.metrics.eval_every = 1;
  const json m = Run(c, 2);
  const double first = m["rounds"][0]["test_accuracy"].get<double>();
  for (const auto& r : m["rounds"]) {
    CHECK(r["cohort"] == 0);
    CHECK(r["dropped_clients"] == 10);
    CHECK(r["round_bytes_up"] == 0);
    CHECK(r["round_bytes_down"].get<int64_t>() == 10 * 4 * m["model"]["num_params"].get<int64_t>());
    CHECK(r["test_accuracy"].get<double>() == first);
  }
  CHECK(m["summary"]["dropped_clients"] == 40);
}

TEST_CASE("system run: over-selection trains exactly K of the sampled clients", "[fl][sim]") {
  fedsim::Config c = Small();
  c.system.over_selection = 0.3;
  const json m = Run(c, 2);
  for (const auto& r : m["rounds"]) {
    CHECK(r["sampled"] == 13);
    CHECK(r["cohort"] == 10);
    CHECK(r["surplus_clients"] == 3);
  }
}

TEST_CASE("system run: metrics with a heterogeneous system are identical for 1 and 2 threads", "[fl][sim][determinism]") {
  for (const std::string algo : {"fedavg", "fednova", "scaffold", "fedsparse"}) {
    INFO(algo);
    fedsim::Config c = Small();
    c.algorithm.name = algo;
    c.algorithm.update_density = 0.2;
    c.system.availability = 0.8;
    c.system.dropout = 0.1;
    c.system.deadline_s = 0.05;
    c.system.partial_work = true;
    c.system.compute.gflops = 0.1;
    c.system.compute.round_sigma = 0.5;
    c.system.network.sigma = 0.5;
    const json a = fedsim::StripNondeterministic(Run(c, 1));
    const json b = fedsim::StripNondeterministic(Run(c, 2));
    CHECK(a.dump() == b.dump());
    CHECK(a["summary"]["sim_time_s"].get<double>() > 0.0);
  }
}

TEST_CASE("system run: bad system settings are rejected with the key", "[fl][sim][config]") {
  auto parse = [](json j) { return fedsim::ParseConfig(j, "cfg.json"); };
  CHECK_THROWS_WITH(parse({{"system", {{"partial_work", true}}}}), Catch::Contains("system.partial_work"));
  CHECK_THROWS_WITH(parse({{"system", {{"compute", {{"distribution", "profiles"}}}}}}),
                    Catch::Contains("system.profiles.share"));
  CHECK_THROWS_WITH(parse({{"system", {{"compute", {{"distribution", "profiles"}}},
                                       {"profiles", {{"share", {1.0, 1.0}}, {"gflops", {1.0}}}}}}}),
                    Catch::Contains("system.profiles.gflops: expected 2 entries"));
  CHECK_THROWS_WITH(parse({{"system", {{"profiles", {{"share", {1.0}}}}}}}), Catch::Contains("system.profiles"));
  CHECK_THROWS_WITH(parse({{"algorithm", {{"name", "fedgia"}}}, {"system", {{"dropout", 0.1}}}}),
                    Catch::Contains("fedgia"));
  CHECK_THROWS_WITH(parse({{"system", {{"availability", 1.5}}}}), Catch::Contains("system.availability"));
  CHECK_THROWS_WITH(parse({{"system", {{"profiles", {{"share", {1.0, -1.0}}}}}}}),
                    Catch::Contains("system.profiles.share"));
}
