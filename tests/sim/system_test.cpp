#include <catch2/catch.hpp>

#include <cmath>

#include "core/config.h"
#include "sim/system.h"

using fedsim::ClientPlan;
using fedsim::Fate;
using fedsim::LocalWork;
using fedsim::SystemConfig;
using fedsim::SystemModel;

namespace {

// Every client identical: 1 MFLOP/s, 8 Mbit/s both ways (1 MB/s), no latency.
SystemConfig Homogeneous() {
  SystemConfig c;
  c.compute.gflops = 1e-3;
  c.compute.sigma = 0.0;
  c.network.up_mbps = 8.0;
  c.network.down_mbps = 8.0;
  c.network.latency_ms = 0.0;
  return c;
}

}  // namespace

TEST_CASE("system: transfer time is latency plus bits over bandwidth", "[sim]") {
  CHECK(SystemModel::TransferSeconds(1000000, 8e6, 0.05) == Approx(1.05));
  CHECK(SystemModel::TransferSeconds(0, 8e6, 0.02) == Approx(0.02));
}

TEST_CASE("system: a homogeneous device reports after download + compute + upload", "[sim]") {
  // 1,000 FLOP per sample, nothing per batch: 10,000 samples = 1e7 FLOP = 10 s.
  const SystemModel sys(Homogeneous(), 7, 1000.0, 0.0);
  const fedsim::Device d = sys.DeviceOf(3);
  CHECK(d.flops == Approx(1e6));
  CHECK(d.up_bps == Approx(8e6));
  const auto plan = sys.Plan(0, {3}, {LocalWork{10000, 1000}}, {1000000}, 1000000, 10, -1);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].fate == Fate::kTrain);
  CHECK(plan[0].max_steps == 0);
  CHECK(plan[0].download_s == Approx(1.0));
  CHECK(plan[0].expected_s == Approx(12.0));
  CHECK(sys.ReportSeconds(plan[0], 10000, 1000, 500000) == Approx(11.5));
  // Two extra round trips of secure aggregation cost four latencies.
  SystemConfig lat = Homogeneous();
  lat.network.latency_ms = 100.0;
  const SystemModel sys2(lat, 7, 1000.0, 0.0);
  const auto p2 = sys2.Plan(0, {3}, {LocalWork{10000, 1000}}, {1000000}, 1000000, 10, -1);
  CHECK(sys2.ReportSeconds(p2[0], 10000, 1000, 1000000, 2) == Approx(12.0 + 0.2 + 0.4));
}

TEST_CASE("system: the deadline drops late clients or cuts their work to the steps that fit", "[sim]") {
  SystemConfig c = Homogeneous();
  c.deadline_s = 7.0;
  {
    const SystemModel sys(c, 7, 1000.0, 0.0);
    const auto plan = sys.Plan(0, {0}, {LocalWork{10000, 1000}}, {1000000}, 1000000, 10, -1);
    CHECK(plan[0].fate == Fate::kLate);
  }
  c.partial_work = true;
  const SystemModel sys(c, 7, 1000.0, 0.0);
  // Budget 7 - 1 (down) - 1 (up) = 5 s = 5e6 FLOP; a step of 10 samples is 1e4 FLOP: 500 steps.
  const auto plan = sys.Plan(0, {0}, {LocalWork{10000, 1000}}, {1000000}, 1000000, 10, -1);
  CHECK(plan[0].fate == Fate::kTrain);
  CHECK(plan[0].max_steps == 500);
  CHECK(plan[0].expected_s == Approx(7.0));
  // Work that fits is not cut; work where not one step fits is late.
  const auto fits = sys.Plan(0, {0}, {LocalWork{1000, 100}}, {1000000}, 1000000, 10, -1);
  CHECK(fits[0].fate == Fate::kTrain);
  CHECK(fits[0].max_steps == 0);
  const auto none = sys.Plan(0, {0}, {LocalWork{10000, 1000}}, {6000000}, 1000000, 10, -1);
  CHECK(none[0].fate == Fate::kLate);
}

TEST_CASE("system: availability and dropout rates, drawn per (round, client)", "[sim]") {
  SystemConfig c = Homogeneous();
  c.availability = 0.7;
  c.dropout = 0.2;
  const SystemModel sys(c, 11, 1000.0, 0.0);
  const int n = 20000;
  std::vector<int> ids(n);
  for (int i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i;
  const std::vector<LocalWork> work(n, LocalWork{10, 1});
  const std::vector<int64_t> down(n, 100);
  const auto plan = sys.Plan(5, ids, work, down, 100, 10, -1);
  int offline = 0, dropped = 0;
  for (const auto& p : plan) {
    offline += p.fate == Fate::kOffline;
    dropped += p.fate == Fate::kDropped;
  }
  // Binomial(20000, 0.3) and Binomial(14000, 0.2): 5 standard deviations.
  CHECK(std::abs(offline - 6000) < 5 * std::sqrt(n * 0.3 * 0.7));
  CHECK(std::abs(dropped - 2800) < 5 * std::sqrt(14000 * 0.2 * 0.8));
  // The same (round, client) gets the same fate, whatever else is sampled.
  const auto one = sys.Plan(5, {1234}, {LocalWork{10, 1}}, {100}, 100, 10, -1);
  CHECK(one[0].fate == plan[1234].fate);
  // Extremes.
  c.availability = 0.0;
  CHECK(SystemModel(c, 11, 1000.0, 0.0).Plan(0, {1}, {LocalWork{10, 1}}, {100}, 100, 10, -1)[0].fate ==
        Fate::kOffline);
  c.availability = 1.0;
  c.dropout = 1.0;
  CHECK(SystemModel(c, 11, 1000.0, 0.0).Plan(0, {1}, {LocalWork{10, 1}}, {100}, 100, 10, -1)[0].fate ==
        Fate::kDropped);
}

TEST_CASE("system: over-selection keeps the first K planned reports", "[sim]") {
  SystemConfig c = Homogeneous();
  c.compute.sigma = 1.0;  // different speeds
  const SystemModel sys(c, 3, 1000.0, 0.0);
  const std::vector<int> ids = {2, 5, 8, 13, 21, 34};
  const std::vector<LocalWork> work(ids.size(), LocalWork{10000, 1000});
  const std::vector<int64_t> down(ids.size(), 1000);
  const auto all = sys.Plan(0, ids, work, down, 1000, 10, -1);
  const auto kept = sys.Plan(0, ids, work, down, 1000, 10, 3);
  std::vector<double> t;
  for (const auto& p : all) t.push_back(p.expected_s);
  std::vector<double> sorted = t;
  std::sort(sorted.begin(), sorted.end());
  int train = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const bool fast = t[i] <= sorted[2];
    CHECK((kept[i].fate == Fate::kTrain) == fast);
    CHECK((kept[i].fate == Fate::kSurplus) == !fast);
    train += kept[i].fate == Fate::kTrain;
  }
  CHECK(train == 3);
}

TEST_CASE("system: device profiles by share, spread around each profile", "[sim]") {
  SystemConfig c = Homogeneous();
  c.compute.distribution = "profiles";
  c.profiles.share = {1.0, 3.0};  // normalised: 25% and 75%
  c.profiles.gflops = {2.0, 0.5};
  c.profiles.up_mbps = {20.0, 1.0};
  c.profiles.down_mbps = {100.0, 5.0};
  c.profiles.latency_ms = {10.0, 200.0};
  const SystemModel sys(c, 5, 1.0, 0.0);
  int first = 0;
  const int n = 20000;
  for (int k = 0; k < n; ++k) {
    const fedsim::Device d = sys.DeviceOf(k);
    REQUIRE((d.profile == 0 || d.profile == 1));
    first += d.profile == 0;
    const size_t i = static_cast<size_t>(d.profile);
    CHECK(d.flops == Approx(c.profiles.gflops[i] * 1e9));
    CHECK(d.down_bps == Approx(c.profiles.down_mbps[i] * 1e6));
    CHECK(d.latency_s == Approx(c.profiles.latency_ms[i] * 1e-3));
  }
  CHECK(std::abs(first - n / 4) < 5 * std::sqrt(n * 0.25 * 0.75));
}

TEST_CASE("system: lognormal speeds have the configured median and spread", "[sim]") {
  SystemConfig c = Homogeneous();
  c.compute.gflops = 10.0;
  c.compute.sigma = 0.5;
  const SystemModel sys(c, 9, 1.0, 0.0);
  const int n = 20000;
  double sum = 0.0, sq = 0.0;
  for (int k = 0; k < n; ++k) {
    const double z = std::log(sys.DeviceOf(k).flops / 1e10);
    sum += z;
    sq += z * z;
  }
  const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  CHECK(std::abs(mean) < 5 * 0.5 / std::sqrt(n));
  CHECK(sd == Approx(0.5).epsilon(0.03));
}

TEST_CASE("system: a round lasts until the last report, or the deadline if it waited for missing clients", "[sim]") {
  SystemConfig c = Homogeneous();
  CHECK(SystemModel(c, 1, 1.0, 0.0).RoundSeconds({3.0, 5.0, 4.0}, false) == 5.0);
  CHECK(SystemModel(c, 1, 1.0, 0.0).RoundSeconds({}, false) == 0.0);
  CHECK(SystemModel(c, 1, 1.0, 0.0).RoundSeconds({3.0}, true) == 3.0);  // no deadline: dropouts noticed at once
  c.deadline_s = 8.0;
  CHECK(SystemModel(c, 1, 1.0, 0.0).RoundSeconds({3.0, 5.0}, true) == 8.0);
  CHECK(SystemModel(c, 1, 1.0, 0.0).RoundSeconds({3.0, 5.0}, false) == 5.0);
}
