// The event-driven modes (algorithm.mode = fedbuff | fedasync): the
// scheduler's events against closed-form times, its invariants, its
// checkpoint, availability over time, and real runs (equivalences with
// synchronous FedAvg, thread counts, resume).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/error.h"
#include "round/async_scheduler.h"
#include "run/experiment.h"
#include "../run_helpers.h"
#include "sim/availability.h"
#include "sim/system.h"

using nlohmann::json;
using fedsim::AsyncScheduler;
using fedsim::AsyncStep;
using fedsim::Availability;
using fedsim::Config;
using fedsim::LocalWork;
using fedsim::SystemModel;

namespace {

json Run(const json& j, int threads = 2, const std::string& out = "", int stop_after = 0, bool resume = false) {
  return fedsim::testing::RunJson(j, threads, out, stop_after, resume);
}

std::string TempDir(const std::string& name) { return fedsim::testing::FreshTempDir("fedsim_async_", name); }

// A system where client c takes exactly c + 1 seconds: 1 GFLOP/s, no spread,
// 100 samples of 1e7 FLOP per second of work, nothing to transfer, no latency.
Config SchedConfig(int concurrency, int buffer, const std::string& mode = "fedbuff") {
  Config cfg = fedsim::ParseConfig(json{{"algorithm", {{"mode", mode}}},
                                        {"async", {{"concurrency", concurrency}, {"buffer_size", buffer}}},
                                        {"system",
                                         {{"compute", {{"gflops", 1.0}, {"sigma", 0.0}, {"round_sigma", 0.0}}},
                                          {"network", {{"latency_ms", 0.0}}}}}},
                                   "test");
  return cfg;
}

LocalWork WorkOf(int c) { return {100 * static_cast<int64_t>(c + 1), 0}; }

struct Sched {
  Config cfg;
  SystemModel system;
  Availability availability;
  AsyncScheduler sched;
  Sched(const Config& c, int num_clients)
      : cfg(c),
        system(cfg.system, cfg.experiment.seed, 1e7, 0.0),
        availability(cfg.system, cfg.experiment.seed, num_clients),
        sched(cfg, system, availability, Pool(num_clients), num_clients, WorkOf, [](int) { return int64_t{0}; }, 0) {}
  static std::vector<int> Pool(int n) {
    std::vector<int> p;
    for (int i = 0; i < n; ++i) p.push_back(i);
    return p;
  }
};

// Every step's invariants; returns the steps.
std::vector<AsyncStep> RunSteps(AsyncScheduler& s, int steps, int buffer) {
  std::vector<AsyncStep> out;
  std::set<int64_t> trained;
  double last = 0.0;
  for (int k = 0; k < steps; ++k) {
    AsyncStep st = s.Next();
    REQUIRE_FALSE(st.stalled);
    CHECK(st.version == k);
    CHECK(st.time_s >= last);
    last = st.time_s;
    for (const auto& d : st.train) {
      CHECK(d.version == k);  // the wave trains on the current version
      CHECK(trained.insert(d.seq).second);
    }
    REQUIRE(static_cast<int>(st.buffer.size()) == buffer);
    for (const auto& a : st.buffer) {
      CHECK(trained.count(a.dispatch.seq) == 1);  // trained before it is applied
      CHECK(a.staleness == k - a.dispatch.version);
      CHECK(a.dispatch.end_s <= st.time_s);
      // Closed form: client c works c + 1 seconds, transfers are free.
      CHECK(a.dispatch.end_s - a.dispatch.start_s == Approx(a.dispatch.client + 1.0).epsilon(1e-9));
    }
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace

TEST_CASE("staleness weights match Xie et al.'s functions", "[async]") {
  fedsim::AsyncConfig a;
  a.staleness = "constant";
  CHECK(fedsim::StalenessWeight(a, 7) == 1.0);
  a.staleness = "polynomial";
  a.staleness_a = 0.5;
  CHECK(fedsim::StalenessWeight(a, 0) == 1.0);
  CHECK(fedsim::StalenessWeight(a, 3) == Approx(0.5));  // FedBuff: 1 / sqrt(1 + 3)
  a.staleness = "hinge";
  a.staleness_a = 1.0;
  a.staleness_b = 2.0;
  CHECK(fedsim::StalenessWeight(a, 2) == 1.0);
  CHECK(fedsim::StalenessWeight(a, 4) == Approx(1.0 / 3.0));  // 1 / (a (s - b) + 1)
}

TEST_CASE("one client at a time: arrivals every c + 1 seconds, staleness 0", "[async]") {
  // concurrency 1 over one client: it is dispatched at 0, reports at 1, is
  // dispatched again under version 1, reports at 2, ...
  Sched s(SchedConfig(1, 1), 1);
  const auto steps = RunSteps(s.sched, 4, 1);
  for (int k = 0; k < 4; ++k) {
    CHECK(steps[static_cast<size_t>(k)].time_s == Approx(k + 1.0));
    CHECK(steps[static_cast<size_t>(k)].buffer[0].staleness == 0);
    CHECK(steps[static_cast<size_t>(k)].train.size() == 1);
  }
}

TEST_CASE("a fast and a slow client: the slow one's update is stale", "[async]") {
  // Clients 0 (1 s) and 1 (2 s), both dispatched at 0, K = 1. Client 0
  // reports at 1 (step 0), is re-dispatched under version 1 and reports at 2
  // together with client 1 (dispatched under version 0): the tie is broken by
  // the client id, so step 1 applies client 0 (staleness 0) and step 2
  // client 1 (staleness 2).
  Sched s(SchedConfig(2, 1), 2);
  const auto steps = RunSteps(s.sched, 3, 1);
  CHECK(steps[0].buffer[0].dispatch.client == 0);
  CHECK(steps[0].time_s == Approx(1.0));
  CHECK(steps[0].train.size() == 2);  // both dispatched under version 0
  CHECK(steps[1].buffer[0].dispatch.client == 0);
  CHECK(steps[1].time_s == Approx(2.0));
  CHECK(steps[2].buffer[0].dispatch.client == 1);
  CHECK(steps[2].buffer[0].dispatch.version == 0);
  CHECK(steps[2].buffer[0].staleness == 2);
  CHECK(steps[2].time_s == Approx(2.0));
}

TEST_CASE("a client found offline is asked again when a trace brings it online", "[async][availability]") {
  // Three clients, all online from 100 s on. At 0 and 60 s everybody is
  // offline (and nobody trains), so the slots retry every async.retry_s =
  // 60 s; at 120 s both slots find a client online under version 0. Asking
  // an offline client again is futile only with constant availability: here
  // the run must not stall as "every client was asked".
  const std::string dir = TempDir("trace_later");
  const std::string trace = dir + "/trace.csv";
  {
    std::ofstream f(trace);
    f << "client,online_from,online_until\n";
    for (int c = 0; c < 3; ++c) f << c << ",100,1e9\n";
  }
  Config cfg = SchedConfig(2, 1);
  cfg.system.availability_model = "trace";
  cfg.system.trace = trace;
  Sched s(cfg, 3);
  const AsyncStep first = s.sched.Next();
  REQUIRE_FALSE(first.stalled);
  CHECK(first.version == 0);
  REQUIRE(first.train.size() == 2);
  for (const auto& d : first.train) CHECK(d.start_s == 120.0);
  // The faster of the two dispatched clients reports first (client c works c + 1 s).
  const int fastest = std::min(first.train[0].client, first.train[1].client);
  CHECK(first.time_s == Approx(120.0 + fastest + 1.0));
  CHECK(first.counts.offline >= 6);  // each of the 2 slots asked all 3 at 0 and at 60 s
  CHECK(first.counts.retries >= 4);
  for (int k = 1; k < 6; ++k) {
    const AsyncStep st = s.sched.Next();
    REQUIRE_FALSE(st.stalled);
    CHECK(st.version == k);
  }
}

TEST_CASE("the scheduler's invariants hold with many clients, and a checkpoint continues it exactly", "[async]") {
  Config cfg = SchedConfig(20, 5);
  cfg.system.compute.sigma = 0.0;
  cfg.system.dropout = 0.2;
  cfg.async.max_staleness = 6;
  Sched a(cfg, 200);
  const auto first = RunSteps(a.sched, 30, 5);
  int64_t dropped = 0, stale = 0;
  for (const auto& st : first) {
    dropped += st.counts.dropped;
    stale += st.counts.stale;
    CHECK(st.in_flight <= 20);
    for (const auto& arr : st.buffer) CHECK(arr.staleness <= 6);
  }
  CHECK(dropped > 0);  // 20% of dispatches drop out
  // A second scheduler runs 12 steps, saves, a third loads and runs the rest.
  Sched b(cfg, 200);
  for (int k = 0; k < 12; ++k) b.sched.Next();
  const json saved = json::parse(b.sched.Save().dump());
  Sched c(cfg, 200);
  c.sched.Load(saved);
  for (int k = 12; k < 30; ++k) {
    const AsyncStep st = c.sched.Next();
    const AsyncStep& want = first[static_cast<size_t>(k)];
    REQUIRE(st.version == want.version);
    CHECK(st.time_s == want.time_s);
    REQUIRE(st.buffer.size() == want.buffer.size());
    for (size_t i = 0; i < st.buffer.size(); ++i) CHECK(st.buffer[i].dispatch.seq == want.buffer[i].dispatch.seq);
    REQUIRE(st.train.size() == want.train.size());
    for (size_t i = 0; i < st.train.size(); ++i) CHECK(st.train[i].client == want.train[i].client);
    CHECK(st.counts.dispatched == want.counts.dispatched);
  }
}

TEST_CASE("diurnal availability follows the daily curve in the client's zone", "[async][availability]") {
  fedsim::SystemConfig sys;
  sys.availability_model = "diurnal";
  sys.availability = 0.9;
  sys.diurnal.amplitude = 0.5;
  sys.diurnal.peak_hour = 20.0;
  sys.diurnal.timezone_spread_h = 0.0;  // everyone in UTC
  Availability av(sys, 1, 3);
  CHECK(av.Probability(0, 20 * 3600.0) == Approx(0.9));         // peak
  CHECK(av.Probability(1, 8 * 3600.0) == Approx(0.9 * 0.5));    // trough: availability (1 - a)
  CHECK(av.Probability(2, 14 * 3600.0) == Approx(0.9 * 0.75));  // 6 h off the peak: cos = 0
  CHECK(av.Probability(0, (24 + 20) * 3600.0) == Approx(0.9));  // a day later
  // u = 0.6 is online at the peak (0.9) and offline at the trough (0.45):
  // dispatched at 20:00 for 12 hours it leaves when p falls below 0.6.
  const double leaves = av.LeavesAt(0, 20 * 3600.0, 32 * 3600.0, 0.6);
  REQUIRE(std::isfinite(leaves));
  // p(t) = 0.9 (0.5 + 0.25 (1 + cos(2 pi h / 24))) = 0.6 at h = 20 + 24/(2 pi) acos(-1/3) hours.
  const double exact = (20.0 + 24.0 / (2.0 * M_PI) * std::acos(-1.0 / 3.0)) * 3600.0;
  CHECK(leaves >= exact);
  CHECK(leaves < exact + Availability::kDiurnalStep);
  CHECK(std::isinf(av.LeavesAt(0, 20 * 3600.0, 21 * 3600.0, 0.6)));
  // Who can come back with the same draw: below the peak, 0.9, yes.
  CHECK(av.CanComeOnline(1, 8 * 3600.0, 0.6));
  CHECK_FALSE(av.CanComeOnline(1, 8 * 3600.0, 0.95));
}

TEST_CASE("diurnal availability: a buffer no draw can fill stalls at once, naming why", "[async][availability]") {
  // Availability 0.3 at the peak: a client whose draw under version 0 is
  // >= 0.3 is never online under it, so a buffer of all 6 clients cannot
  // fill. The clients that can come online are asked again at later retries
  // and train; the others stay asked, and the run stalls as soon as nobody
  // is training, not after a million retries.
  Config cfg = SchedConfig(2, 6);
  cfg.system.availability_model = "diurnal";
  cfg.system.availability = 0.3;
  cfg.system.diurnal.amplitude = 1.0;
  Sched s(cfg, 6);
  const AsyncStep st = s.sched.Next();
  REQUIRE(st.stalled);
  CHECK_THAT(st.stall_reason, Catch::Contains("every training client was asked under model version 0"));
  CHECK(st.counts.retries < 10000);
}

namespace {

// Synthetic(1,1) with 30 natural clients of different sizes, softmax, on a
// heterogeneous simulated system.
json AsyncBase(const std::string& mode) {
  return {{"experiment", {{"rounds", 6}}},
          {"algorithm", {{"mode", mode}, {"lr", 0.05}}},
          {"async", {{"concurrency", 8}, {"buffer_size", 3}}},
          {"system", {{"compute", {{"gflops", 0.01}, {"sigma", 1.0}, {"round_sigma", 0.3}}}, {"dropout", 0.1}}}};
}

std::vector<double> Losses(const json& m) {
  std::vector<double> out;
  for (const auto& r : m["rounds"]) {
    out.push_back(r["test_loss"].get<double>());
    out.push_back(r["train_loss"].get<double>());
    out.push_back(r["sim_time_s"].get<double>());
  }
  return out;
}

}  // namespace

TEST_CASE("FedBuff with everyone in every buffer is synchronous FedAvg with full participation", "[async][run]") {
  // concurrency = K = N: every client is dispatched under each version and
  // the buffer fills with all of them; with the algorithm's weights, constant
  // staleness and no faults this is FedAvg over all 30 clients, up to the
  // order of the sum (arrival order against client order).
  json buf = AsyncBase("fedbuff");
  buf["async"] = {{"concurrency", 30}, {"buffer_size", 30}, {"staleness", "constant"}, {"weighting", "samples"}};
  buf["system"]["dropout"] = 0.0;
  json sync = AsyncBase("sync");
  sync.erase("async");
  sync["system"]["dropout"] = 0.0;
  sync["algorithm"]["clients_per_round"] = 30;
  const json a = Run(buf), s = Run(sync);
  const auto la = Losses(a), ls = Losses(s);
  REQUIRE(la.size() == ls.size());
  for (size_t i = 0; i < la.size(); ++i) CHECK(la[i] == Approx(ls[i]).epsilon(1e-9));
  for (const auto& r : a["rounds"]) {
    CHECK(r["staleness"]["max"] == 0);
    CHECK(r["cohort"] == 30);
  }
}

TEST_CASE("FedBuff's uniform weights under a secure sum: no weight coordinate, the plain run's model", "[async][run]") {
  // async.weighting = uniform sets every weight to 1, so the secure sum's
  // public weight bound is 1: uploads are encoded unscaled (not shrunk by
  // 1 / the largest client's size) and the server divides by the count.
  const json plain = Run(AsyncBase("fedbuff"));
  json sa = AsyncBase("fedbuff");
  sa["secure_aggregation"] = {{"enabled", true}, {"range", 4.0}};
  const json secure = Run(sa);
  REQUIRE(secure["rounds"].size() == plain["rounds"].size());
  for (size_t r = 0; r < plain["rounds"].size(); ++r) {
    CHECK(secure["rounds"][r]["stages"]["aggregator"]["kind"] == "secure");
    // 32-bit codes over [-4, 4]: far below what the losses show at 1e-6.
    CHECK(secure["rounds"][r]["test_loss"].get<double>() ==
          Approx(plain["rounds"][r]["test_loss"].get<double>()).epsilon(1e-6));
  }
}

TEST_CASE("FedAsync with one client at a time is FedBuff with K = 1 and server_lr = alpha", "[async][run]") {
  // With concurrency 1 every update has staleness 0, so FedAsync's
  // w + alpha (w_client - w) is w + alpha Delta: FedBuff's step with K = 1
  // and eta_g = alpha, up to the rounding of (w + Delta) - w.
  json fa = AsyncBase("fedasync");
  fa["async"] = {{"concurrency", 1}, {"alpha", 0.5}, {"staleness", "constant"}};
  json fb = AsyncBase("fedbuff");
  fb["async"] = {{"concurrency", 1}, {"buffer_size", 1}, {"staleness", "constant"}};
  fb["algorithm"]["server_lr"] = 0.5;
  const auto la = Losses(Run(fa)), lb = Losses(Run(fb));
  REQUIRE(la.size() == lb.size());
  for (size_t i = 0; i < la.size(); ++i) CHECK(la[i] == Approx(lb[i]).epsilon(1e-5));
}

TEST_CASE("asynchronous runs are bitwise the same for 1 and 2 threads", "[async][run]") {
  for (const char* mode : {"fedbuff", "fedasync"}) {
    json cfg = AsyncBase(mode);
    cfg["system"]["availability_model"] = "diurnal";
    cfg["system"]["availability"] = 0.8;
    cfg["async"]["max_staleness"] = 4;
    const json one = Run(cfg, 1), two = Run(cfg, 2);
    CHECK(Losses(one) == Losses(two));
    CHECK(one["summary"]["dispatched_clients"] == two["summary"]["dispatched_clients"]);
    for (size_t i = 0; i < one["rounds"].size(); ++i) {
      CHECK(one["rounds"][i]["staleness"] == two["rounds"][i]["staleness"]);
    }
    CHECK(one["summary"]["status"] == "completed");
    CHECK(one["summary"]["dropped_clients"].get<int64_t>() > 0);
  }
}

TEST_CASE("an asynchronous run resumed with clients in flight equals the uninterrupted run", "[async][run][checkpoint]") {
  for (const char* mode : {"fedbuff", "fedasync"}) {
    json cfg = AsyncBase(mode);
    cfg["algorithm"]["name"] = "fedprox";
    cfg["algorithm"]["mu"] = 0.01;
    cfg["compression"] = {{"kind", "qsgd"}, {"bits", 4}, {"error_feedback", true}};
    const json full = Run(cfg);
    const std::string dir = TempDir(std::string("resume_") + mode);
    const json part = Run(cfg, 2, dir, 3);
    REQUIRE(part["summary"]["status"] == "interrupted");
    const json resumed = Run(cfg, 1, dir, 0, true);
    CHECK(Losses(resumed) == Losses(full));
    CHECK(resumed["summary"]["bytes_up"] == full["summary"]["bytes_up"]);
    CHECK(resumed["summary"]["dispatched_clients"] == full["summary"]["dispatched_clients"]);
  }
}

TEST_CASE("a trace decides who is online; clients whose interval ends while they train are lost", "[async][run]") {
  const std::string dir = TempDir("trace");
  const std::string trace = dir + "/trace.csv";
  {
    std::ofstream f(trace);
    f << "client,online_from,online_until\n";
    // Clients 0-9 online for a long time, 10-19 for 1 ms (they leave while
    // training), the rest never; client 0 has two rows that merge.
    for (int c = 0; c < 20; ++c) f << c << ",0," << (c < 10 ? 1e9 : 1e-3) << "\n";
    f << "0,5e8,2e9\n";
    f << "99,0,10\n";  // not a client of this run: counted as unused
  }
  json cfg = AsyncBase("fedbuff");
  cfg["system"]["availability_model"] = "trace";
  cfg["system"]["trace"] = trace;
  cfg["system"]["dropout"] = 0.0;
  const json m = Run(cfg);
  CHECK(m["summary"]["status"] == "completed");
  CHECK(m["summary"]["lost_clients"].get<int64_t>() > 0);
  CHECK(m["summary"]["offline_clients"].get<int64_t>() > 0);
  CHECK(m["availability"]["trace_rows_unused"] == 1);
  CHECK(m["availability"]["clients_in_trace"] == 20);
  // Every trace interval ends at 1e3 s: the run cannot go on and says why.
  {
    std::ofstream f(trace);
    f << "client,online_from,online_until\n";
    for (int c = 0; c < 30; ++c) f << c << ",0,1000\n";
  }
  cfg["system"]["compute"]["gflops"] = 1e-8;  // a client needs far longer than 1,000 s
  const json stalled = Run(cfg);
  CHECK(stalled["summary"]["status"] == "stalled");
  CHECK(stalled["summary"]["stall_reason"].get<std::string>().find("system.trace") != std::string::npos);
}

TEST_CASE("the event-driven modes refuse what they cannot do, naming the key", "[async][config]") {
  auto refuse = [](json j, const std::string& key) {
    try {
      Run(j);
      FAIL("accepted: " << j.dump());
    } catch (const fedsim::InputError& e) {
      CHECK_THAT(e.what(), Catch::Contains(key));
    }
  };
  json j = AsyncBase("fedbuff");
  j["algorithm"]["name"] = "scaffold";
  refuse(j, "algorithm.mode");
  j = AsyncBase("fedasync");
  j["privacy"] = {{"mode", "central"}, {"noise_multiplier", 1.0}};
  refuse(j, "privacy.mode");
  j = AsyncBase("fedasync");
  j["algorithm"]["server_lr"] = 0.5;
  refuse(j, "algorithm.server_lr");
  j = AsyncBase("fedbuff");
  j["async"]["concurrency"] = 31;
  refuse(j, "async.concurrency");
  j = AsyncBase("fedbuff");
  j["system"]["availability_model"] = "trace";
  refuse(j, "system.trace");
  j["system"]["trace"] = "/nonexistent/trace.csv";
  refuse(j, "/nonexistent/trace.csv");
  const std::string dir = TempDir("bad_trace");
  {
    std::ofstream f(dir + "/t.csv");
    f << "client,online_from,online_until\n0,0,10\n1,20,5\n";
  }
  j["system"]["trace"] = dir + "/t.csv";
  refuse(j, "t.csv:3");
  j = AsyncBase("fedbuff");
  j["system"]["deadline_s"] = 10.0;
  refuse(j, "system.deadline_s");
}

TEST_CASE("synchronous rounds follow a trace on the simulated clock", "[async][run]") {
  // Clients 0-14 are online for the first 1,000 simulated seconds only,
  // 15-29 from 1,000 s on: the first rounds see only the first half, the
  // rounds after 1,000 s only the second, and a round straddling the switch
  // loses its clients that leave before they report.
  const std::string dir = TempDir("sync_trace");
  const std::string trace = dir + "/trace.csv";
  {
    std::ofstream f(trace);
    f << "client,online_from,online_until\n";
    for (int c = 0; c < 30; ++c) f << c << "," << (c < 15 ? 0 : 1000) << "," << (c < 15 ? 1000 : 1e9) << "\n";
  }
  json cfg = AsyncBase("sync");
  cfg.erase("async");
  cfg["experiment"]["rounds"] = 12;
  cfg["system"] = {{"compute", {{"gflops", 0.0002}, {"sigma", 0.5}}}, {"availability_model", "trace"},
                   {"trace", trace}};
  const json one = Run(cfg, 1), two = Run(cfg, 2);
  CHECK(Losses(one) == Losses(two));
  int64_t offline = 0, dropped = 0;
  bool before = false, after = false;
  for (const auto& r : one["rounds"]) {
    offline += r["offline_clients"].get<int64_t>();
    dropped += r["dropped_clients"].get<int64_t>();
    const double end = r["sim_time_s"].get<double>();
    before = before || end < 1000.0;
    after = after || end - r["sim_round_s"].get<double>() >= 1000.0;
  }
  REQUIRE(before);
  REQUIRE(after);
  CHECK(offline > 0);
  CHECK(one["summary"]["status"] == "completed");
  CHECK(one["availability"]["clients_in_trace"] == 30);
}
