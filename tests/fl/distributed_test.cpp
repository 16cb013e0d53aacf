// The distributed round loop (fl/cohort_exchange.h) driven by in-process
// ranks (thread_comm.h): without MPI, and under the sanitizers. The MPI
// backend itself is tested end to end in tests/e2e/mpi_equivalence_test.sh.
#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

#include "core/comm.h"
#include "core/config.h"
#include "core/error.h"
#include "run/experiment.h"
#include "thread_comm.h"

using fedsim::Config;
using fedsim::testing::RunRanks;
using nlohmann::json;

namespace {

Config Small(const std::string& algo) {
  Config c;  // synthetic(1,1), 30 users
  c.experiment.rounds = 4;
  c.model.kind = "mlp";
  c.model.hidden = {8};
  c.algorithm.name = algo;
  c.algorithm.clients_per_round = 11;
  return c;
}

// Rank 0's metrics of an R-rank run (1 thread per rank).
json RunDistributed(const Config& c, int ranks, fedsim::RunOptions o = {}) {
  json out;
  const auto errors = RunRanks(ranks, [&](fedsim::Comm& comm) {
    fedsim::RunOptions mine = o;
    mine.threads = 1;
    mine.comm = &comm;
    json m = fedsim::RunExperiment(c, mine);
    if (comm.root()) out = std::move(m);
  });
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return out;
}

json RunSerial(const Config& c, int threads = 2) {
  fedsim::RunOptions o;
  o.threads = threads;
  return fedsim::RunExperiment(c, o);
}

std::string Strip(const json& m) { return fedsim::StripNondeterministic(m).dump(); }

std::string TempDir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("fedsim_dist_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace

TEST_CASE("distributed: 2 and 3 ranks give the single-process metrics bit for bit", "[fl][distributed]") {
  struct Case {
    std::string name;
    std::function<void(Config&)> set;
  };
  const std::vector<Case> cases = {
      {"fedavg", [](Config&) {}},
      {"scaffold", [](Config&) {}},
      {"qffl", [](Config& c) { c.algorithm.q = 2.0; }},
      {"afl", [](Config& c) { c.algorithm.afl_lambda_lr = 0.05; }},  // lambda from the reports on every rank
      {"afl", [](Config& c) {
         c.algorithm.afl_lambda_lr = 0.05;
         c.algorithm.afl_domains = "labels";
       }},
      {"feddyn", [](Config& c) { c.algorithm.state_precision = "float16"; }},
      {"fedsparse",
       [](Config& c) {
         c.algorithm.sparse_download = true;
         c.algorithm.model_density = 0.5;
         c.algorithm.update_density = 0.1;
       }},
      {"fedavg",  // central DP with Poisson sampling
       [](Config& c) {
         c.algorithm.sampling = "poisson";
         c.algorithm.sampling_rate = 0.3;
         c.privacy.mode = "central";
         c.privacy.noise_multiplier = 0.5;
       }},
      {"fedavg",  // secure aggregation with dropouts
       [](Config& c) {
         c.secure_aggregation.enabled = true;
         c.secure_aggregation.dropout_rate = 0.1;
       }},
      {"fedavg",  // SecAgg+ (neighbours), no dropouts
       [](Config& c) {
         c.secure_aggregation.enabled = true;
         c.secure_aggregation.protocol = "secagg_plus";
         c.secure_aggregation.neighbors = 4;
       }},
      {"fedavg",  // real Paillier encryption (small keys, for speed)
       [](Config& c) {
         c.experiment.rounds = 2;
         c.encryption.scheme = "paillier";
         c.encryption.key_bits = 512;
         c.encryption.value_bits = 28;
       }},
      {"fedgia", [](Config&) {}},
      // Personalised models scored on the rank that holds each client's state.
      {"fedrep",
       [](Config& c) {
         c.data.client_test_fraction = 0.25;
         c.metrics.client_eval = "all";
         c.personalization.head_epochs = 1;
       }},
      {"ditto",
       [](Config& c) {
         c.data.client_test_fraction = 0.25;
         c.metrics.client_eval = "all";
         c.algorithm.state_precision = "float16";
       }},
      {"fednova", [](Config& c) { c.algorithm.local_steps = 3; }},
      {"fedavg",  // local DP (Laplace): each client's noise drawn on its own rank
       [](Config& c) {
         c.privacy.mode = "local";
         c.privacy.mechanism = "laplace";
         c.privacy.noise_multiplier = 0.1;
       }},
      {"fedprox",  // sample-level DP-SGD inside local training
       [](Config& c) {
         c.privacy.mode = "sample";
         c.privacy.noise_multiplier = 0.8;
       }},
  };
  for (const auto& k : cases) {
    Config c = Small(k.name);
    k.set(c);
    INFO(k.name << " " << fedsim::ToJson(c).dump());
    const json serial = RunSerial(c);
    REQUIRE(serial["summary"]["status"] == "completed");
    for (int ranks : {2, 3}) {
      INFO(ranks << " ranks");
      const json dist = RunDistributed(c, ranks);
      CHECK(dist["environment"]["ranks"] == ranks);
      CHECK(Strip(dist) == Strip(serial));
    }
  }
}

TEST_CASE("distributed: stopped on 2 ranks, resumed on 3, equals one process", "[fl][distributed][checkpoint]") {
  Config c = Small("scaffold");
  c.experiment.rounds = 6;
  c.experiment.checkpoint_every = 2;
  c.algorithm.state_precision = "float16";
  const json serial = RunSerial(c, 1);
  const std::string dir = TempDir("resume");
  fedsim::RunOptions o;
  o.out_dir = dir;
  o.stop_after_round = 3;
  const json stopped = RunDistributed(c, 2, o);
  CHECK(stopped["summary"]["status"] == "interrupted");
  o.stop_after_round = 0;
  o.resume = true;
  const json resumed = RunDistributed(c, 3, o);
  CHECK(Strip(resumed) == Strip(serial));
  // The checkpoint holds every client's state, whichever rank trained it.
  CHECK(resumed["summary"]["clients_with_state"] == serial["summary"]["clients_with_state"]);
  std::filesystem::remove_all(dir);
}

TEST_CASE("distributed: a setup failure on one rank ends every rank with its error", "[fl][distributed]") {
  const Config good = Small("fedavg");
  Config bad = good;
  bad.data.dataset = "mnist_idx";
  bad.data.path = "/nonexistent/fedsim";
  bad.data.partition.kind = "iid";  // valid: the failure comes from loading the data
  const auto errors = RunRanks(3, [&](fedsim::Comm& comm) {
    fedsim::RunOptions o;
    o.threads = 1;
    o.comm = &comm;
    fedsim::RunExperiment(comm.rank() == 1 ? bad : good, o);
  });
  for (int r = 0; r < 3; ++r) {
    INFO("rank " << r);
    REQUIRE(errors[static_cast<size_t>(r)]);
    try {
      std::rethrow_exception(errors[static_cast<size_t>(r)]);
    } catch (const fedsim::AgreedError& e) {
      CHECK(e.code() == 2);  // an InputError on rank 1
      CHECK(e.failed_rank() == 1);
      INFO(e.what());
      CHECK(std::string(e.what()).find("/nonexistent/fedsim") != std::string::npos);
    } catch (...) {
      FAIL("not an AgreedError");
    }
  }
}

TEST_CASE("comm: Agree picks the lowest failing rank; broadcasts and sums", "[core][distributed]") {
  std::vector<std::string> seen(4);
  std::vector<int64_t> sums(4);
  std::vector<std::vector<int>> vectors(4);
  const auto errors = RunRanks(4, [&](fedsim::Comm& comm) {
    const size_t r = static_cast<size_t>(comm.rank());
    fedsim::Agree(comm, 0, "");  // nobody failed: returns everywhere
    std::vector<int> v;
    if (comm.root()) v = {3, 1, 4};
    fedsim::BroadcastVector(comm, v);
    vectors[r] = v;
    int64_t x = comm.rank() + 1;
    comm.AllSum(&x, 1);
    sums[r] = x;
    try {
      fedsim::Agree(comm, comm.rank() >= 2 ? 1 : 0, "rank " + std::to_string(comm.rank()) + " failed");
    } catch (const fedsim::AgreedError& e) {
      seen[r] = std::to_string(e.code()) + "@" + std::to_string(e.failed_rank()) + ":" + e.what();
    }
  });
  for (size_t r = 0; r < 4; ++r) {
    CHECK_FALSE(errors[r]);
    CHECK(vectors[r] == std::vector<int>{3, 1, 4});
    CHECK(sums[r] == 10);
    CHECK(seen[r] == "1@2:rank 2 failed");
  }
}

TEST_CASE("distributed: every rank sees the same divergence", "[fl][distributed]") {
  for (const std::string mode : {"stop", "skip_clients"}) {
    Config c = Small("fedavg");
    c.algorithm.lr = 1e6;  // blows up within a few rounds
    c.experiment.rounds = 6;
    c.experiment.on_divergence = mode;
    INFO(mode);
    const json serial = RunSerial(c);
    REQUIRE(serial["summary"]["status"] == "diverged");
    std::vector<json> summaries(3);
    json first;
    const auto errors = RunRanks(3, [&](fedsim::Comm& comm) {
      fedsim::RunOptions o;
      o.threads = 1;
      o.comm = &comm;
      const json m = fedsim::RunExperiment(c, o);
      summaries[static_cast<size_t>(comm.rank())] = m["summary"];
      if (comm.root()) first = m;
    });
    for (const auto& e : errors) CHECK_FALSE(e);
    CHECK(Strip(first) == Strip(serial));
    for (const auto& s : summaries) {
      CHECK(s["status"] == "diverged");
      CHECK(s["diverged_round"] == serial["summary"]["diverged_round"]);
    }
  }
}
