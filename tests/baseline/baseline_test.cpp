#include <catch2/catch.hpp>

#include <cmath>

#include "baseline/baseline.h"
#include "core/config.h"
#include "core/error.h"
#include "run/experiment.h"

using nlohmann::json;

namespace {

json Run(const fedsim::Config& c, int threads) {
  fedsim::RunOptions o;
  o.threads = threads;
  return fedsim::RunExperiment(c, o);
}

// Synthetic(1,1) IID data pooled: 30 users' samples.
fedsim::Config Base(const std::string& kind) {
  fedsim::Config c;
  c.data.synthetic.iid = true;
  c.baseline.kind = kind;
  c.baseline.epochs = 3;
  c.baseline.batch_size = 16;
  c.baseline.lr = 0.05;
  c.system.compute.sigma = 0.0;
  return c;
}

}  // namespace

TEST_CASE("baseline: bytes per data-parallel step for ring all-reduce and a parameter server", "[baseline]") {
  // Ring: every worker sends and receives 2 (W - 1) / W of the model.
  const auto ring = fedsim::DataParallelStepBytes(1000, 4, "ring");
  CHECK(ring.up == 4 * 2 * 3 * 1000 / 4 * 4);
  CHECK(ring.down == ring.up);
  const auto ps = fedsim::DataParallelStepBytes(1000, 4, "parameter_server");
  CHECK(ps.up == 4 * 4000);
  CHECK(ps.down == 4 * 4000);
  CHECK(fedsim::DataParallelStepBytes(1000, 1, "ring").up == 0);
}

TEST_CASE("baseline: data-parallel simulated time and bytes in closed form", "[baseline]") {
  fedsim::Config c = Base("data_parallel");
  c.baseline.workers = 3;
  c.system.compute.gflops = 0.01;
  c.system.network.up_mbps = 4.0;
  c.system.network.latency_ms = 2.0;
  for (const std::string topo : {"ring", "parameter_server"}) {
    INFO(topo);
    c.baseline.topology = topo;
    c.baseline.server_mbps = 20.0;
    const json m = Run(c, 2);
    const double p = m["model"]["num_params"].get<double>();
    const double fps = m["model"]["train_flops_per_sample"].get<double>();
    const double fpb = m["model"]["train_flops_per_batch"].get<double>();
    const json& b = m["baseline"];
    const double steps = b["steps_per_epoch"].get<double>();
    CHECK(steps == std::ceil(std::floor(m["data"]["train_samples"].get<double>() / 3) / 16));
    double exchange;
    if (topo == "ring") {
      exchange = 2 * 2 * (0.002 + 8 * 4 * std::ceil(p / 3) / 4e6);
    } else {
      const double server = 8 * 4 * p * 3 / 20e6;
      exchange = std::max(0.002 + 8 * 4 * p / 4e6, server) + std::max(0.002 + 8 * 4 * p / 50e6, server);
    }
    CHECK(b["step_exchange_s"].get<double>() == Approx(exchange).epsilon(1e-12));
    // Every step but an epoch's last is a full batch of 16 on each worker.
    const double shard = b["shard_samples"].get<double>();
    const double last = shard - (steps - 1) * 16;
    const double epoch = (steps - 1) * ((16 * fps + fpb) / 1e7 + exchange) + (last * fps + fpb) / 1e7 + exchange;
    CHECK(m["summary"]["sim_time_s"].get<double>() == Approx(3 * epoch).epsilon(1e-9));
    const auto sb = fedsim::DataParallelStepBytes(static_cast<int64_t>(p), 3, topo);
    CHECK(m["summary"]["bytes_up"].get<double>() == 3 * steps * sb.up);
    CHECK(m["summary"]["steps"].get<double>() == 3 * steps);
    CHECK(m["rounds"].size() == 3);
  }
}

TEST_CASE("baseline: one full-batch step is the same on one machine or all-reduced over four", "[baseline]") {
  // The all-reduced mean of the shard gradients, weighted by shard size, is
  // the gradient of the pooled loss: one epoch of one step must give the same
  // model (up to float summation order) as centralized full-batch descent.
  fedsim::Config c = Base("centralized");
  c.baseline.epochs = 1;
  c.baseline.batch_size = 1000000;
  c.baseline.lr = 0.5;
  c.data.partition.kind = "iid";
  c.data.max_train_samples = 800;
  const json central = Run(c, 2);
  c.baseline.kind = "data_parallel";
  c.baseline.workers = 4;
  const json parallel = Run(c, 2);
  const int n = central["data"]["train_samples"].get<int>();
  REQUIRE(n % 4 == 0);  // equal shards, so nothing is left out
  CHECK(central["summary"]["steps"] == 1);
  CHECK(parallel["summary"]["steps"] == 1);
  CHECK(parallel["summary"]["final_test_loss"].get<double>() ==
        Approx(central["summary"]["final_test_loss"].get<double>()).epsilon(1e-5));
  CHECK(central["summary"]["bytes_up"] == 0);
}

TEST_CASE("baseline: centralized SGD learns; results do not depend on the thread count", "[baseline][determinism]") {
  fedsim::Config c = Base("centralized");
  const json a = Run(c, 1);
  CHECK(a["summary"]["final_test_accuracy"].get<double>() > 0.6);
  CHECK(a["summary"]["status"] == "completed");
  CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(Run(c, 2)).dump());
  c.baseline.kind = "data_parallel";
  c.baseline.momentum = 0.9;
  c.baseline.lr = 0.01;
  const json d1 = Run(c, 1);
  CHECK(d1["summary"]["final_test_accuracy"].get<double>() > 0.6);
  CHECK(fedsim::StripNondeterministic(d1).dump() == fedsim::StripNondeterministic(Run(c, 2)).dump());
}

TEST_CASE("baseline: an interrupted run resumes to the uninterrupted one's results", "[baseline]") {
  for (const char* kind : {"centralized", "data_parallel"}) {
    fedsim::Config c = Base(kind);
    c.baseline.epochs = 3;
    c.baseline.momentum = 0.9;  // the velocity is part of the checkpoint
    const std::string dir = std::string("/tmp/fedsim_baseline_resume_") + kind;
    fedsim::RunOptions o;
    o.out_dir = dir;
    o.threads = 2;
    const json full = fedsim::RunExperiment(c, o);
    o.stop_after_round = 1;
    const json stopped = fedsim::RunExperiment(c, o);
    CHECK(stopped["summary"]["status"] == "interrupted");
    CHECK(stopped["rounds"].size() == 1);
    o.stop_after_round = 0;
    o.resume = true;
    const json resumed = fedsim::RunExperiment(c, o);
    CHECK(fedsim::StripNondeterministic(resumed).dump() == fedsim::StripNondeterministic(full).dump());
  }
}

TEST_CASE("baseline: privacy is refused with the key named", "[baseline][config]") {
  CHECK_THROWS_WITH(fedsim::ParseConfig(json{{"baseline", {{"kind", "centralized"}}}, {"privacy", {{"mode", "central"}}}},
                                        "x.json"),
                    Catch::Contains("baseline.kind"));
  CHECK_THROWS_WITH(fedsim::ParseConfig(json{{"baseline", {{"kind", "data_parallel"}, {"workers", 0}}}}, "x.json"),
                    Catch::Contains("baseline.workers"));
}
