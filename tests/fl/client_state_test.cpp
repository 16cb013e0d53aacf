#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

#include <fmt/format.h>

#include "core/comm.h"
#include "core/error.h"
#include "core/half.h"
#include "fl/algorithm.h"
#include "fl/checkpoint.h"
#include "run/experiment.h"

using fedsim::ClientStateStore;
using fedsim::StatePrecision;

namespace {

// A rank of a run without collectives, for what a store does locally.
class FixedRank final : public fedsim::Comm {
 public:
  FixedRank(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void Broadcast(void*, int64_t, int) override {}
  std::vector<std::string> Gather(const std::string& m, int) override { return {m}; }
  void AllMax(int*, int) override {}
  void AllSum(int64_t*, int) override {}
  void GatherColumns(const float*, int64_t, float*, const std::vector<std::vector<int64_t>>&) override {}
  [[noreturn]] void Abort(int) override { std::terminate(); }

 private:
  int rank_, size_;
};

std::string TempFile(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("fedsim_state_" + name + "_" + std::to_string(::getpid())))
      .string();
}

// `from` written to a checkpoint file and loaded into a fresh store of
// `clients` clients, one slot, the same precision (and rank, if given).
ClientStateStore RoundTrip(const ClientStateStore& from, int clients, StatePrecision precision,
                           const std::string& name, fedsim::Comm* comm = nullptr) {
  const std::string path = TempFile(name);
  fedsim::CheckpointWriter w(nlohmann::json{{"test", true}});
  from.Save(w, "s");
  w.Write(path);
  const fedsim::CheckpointReader r(path);
  ClientStateStore to;
  to.Resize(clients, 1);
  to.Configure(precision, comm);
  to.Load(r, "s");
  std::filesystem::remove(path);
  return to;
}

}  // namespace

TEST_CASE("client state: float32 views are the stored vectors", "[fl][state]") {
  ClientStateStore st;
  st.Resize(5, 1);
  Eigen::VectorXf buffer;
  auto v = st.Open(3, 0, 4, buffer);
  CHECK(v.size() == 4);
  CHECK(v.isZero());
  v << 1.0f, 0.1f, -3e-9f, 1e6f;
  // No Commit needed: the next Open sees the exact values.
  auto w = st.Open(3, 0, 4, buffer);
  CHECK(w[1] == 0.1f);
  CHECK(w[2] == -3e-9f);
  CHECK(w[3] == 1e6f);
  CHECK(buffer.size() == 0);
  CHECK(st.ClientsWithState() == 1);
  CHECK(st.Bytes() == 16);
}

TEST_CASE("client state: float16 stores rounded halves, half the bytes", "[fl][state]") {
  ClientStateStore st;
  st.Resize(5, 2);
  st.Configure(StatePrecision::kFloat16, nullptr);
  Eigen::VectorXf buffer;
  auto v = st.Open(2, 1, 4, buffer);
  CHECK(v.isZero());
  v << 1.0f, 0.1f, 1e-9f, 1e6f;
  st.Commit(2, 1, v);
  Eigen::VectorXf other;
  auto w = st.Open(2, 1, 4, other);
  CHECK(w[0] == 1.0f);
  CHECK(w[1] == fedsim::HalfToFloat(0x2e66));  // 0.0999755859375
  CHECK(w[2] == 0.0f);                         // below the smallest subnormal half
  CHECK(w[3] == 65504.0f);                     // saturated
  CHECK(st.Has(2, 1));
  CHECK_FALSE(st.Has(2, 0));
  CHECK(st.ClientsWithState() == 1);
  CHECK(st.Bytes() == 8);
  st.Clear(2);
  CHECK(st.ClientsWithState() == 0);
  CHECK(st.Bytes() == 0);
}

TEST_CASE("client state: float16 checkpoints round-trip exactly", "[fl][state][checkpoint]") {
  ClientStateStore a;
  a.Resize(6, 1);
  a.Configure(StatePrecision::kFloat16, nullptr);
  Eigen::VectorXf buf;
  for (int c : {1, 4}) {
    auto v = a.Open(c, 0, 3, buf);
    v << 0.3f * static_cast<float>(c), -1.0f / 7.0f, 2.5e-6f;
    a.Commit(c, 0, v);
  }
  const std::string path = TempFile("f16");
  fedsim::CheckpointWriter w(nlohmann::json{{"test", true}});
  a.Save(w, "s");
  w.Write(path);
  const fedsim::CheckpointReader r(path);
  ClientStateStore b;
  b.Resize(6, 1);
  b.Configure(StatePrecision::kFloat16, nullptr);
  b.Load(r, "s");
  for (int c : {1, 4}) {
    Eigen::VectorXf x, y;
    CHECK(a.Open(c, 0, 3, x) == b.Open(c, 0, 3, y));
  }
  CHECK(b.ClientsWithState() == 2);
  // A rank of a 2-rank run keeps only its own clients (odd ids on rank 1)
  // and refuses to open another rank's.
  ClientStateStore odd;
  odd.Resize(6, 1);
  FixedRank rank1(1, 2);
  odd.Configure(StatePrecision::kFloat32, &rank1);
  odd.Load(r, "s");
  CHECK(odd.Has(1, 0));
  CHECK_FALSE(odd.Has(4, 0));
  CHECK(odd.Owns(5));
  CHECK_FALSE(odd.Owns(4));
  CHECK_THROWS_AS(odd.Open(4, 0, 3, buf), fedsim::RunError);
  std::filesystem::remove(path);
}

TEST_CASE("client state: a restored vector of another length is refused, not read past its end",
          "[fl][state][checkpoint]") {
  for (const StatePrecision precision : {StatePrecision::kFloat32, StatePrecision::kFloat16}) {
    ClientStateStore a;
    a.Resize(3, 1);
    a.Configure(precision, nullptr);
    Eigen::VectorXf buf;
    auto v = a.Open(2, 0, 5, buf);
    v.setConstant(0.5f);
    a.Commit(2, 0, v);
    ClientStateStore b = RoundTrip(a, 3, precision, "length");
    CHECK(b.Open(2, 0, 5, buf).isConstant(0.5f));
    for (const int64_t other : {4, 8}) {
      CHECK_THROWS_WITH(b.Open(2, 0, other, buf),
                        fmt::format("checkpoint: client 2's saved state (slot 0) holds 5 values, but this run's "
                                    "algorithm keeps {}",
                                    other));
    }
  }
}

TEST_CASE("client state: precision is fixed before state exists", "[fl][state]") {
  ClientStateStore st;
  st.Resize(3, 1);
  Eigen::VectorXf buf;
  st.Open(0, 0, 2, buf);
  CHECK_THROWS_AS(st.Configure(StatePrecision::kFloat16, nullptr), fedsim::RunError);
  CHECK(fedsim::ParseStatePrecision("float16") == StatePrecision::kFloat16);
  CHECK_THROWS_AS(fedsim::ParseStatePrecision("bf16"), fedsim::InputError);
}


TEST_CASE("client state: float16 runs are deterministic and hold half the bytes", "[fl][state][determinism]") {
  fedsim::Config c;  // synthetic(1,1), 30 users
  c.experiment.rounds = 5;
  c.model.kind = "mlp";
  c.model.hidden = {8};
  c.algorithm.name = "scaffold";
  c.algorithm.clients_per_round = 12;
  auto run = [&](int threads) {
    fedsim::RunOptions o;
    o.threads = threads;
    return fedsim::RunExperiment(c, o);
  };
  const nlohmann::json f32 = run(1);
  c.algorithm.state_precision = "float16";
  const nlohmann::json a = run(1), b = run(2);
  CHECK(fedsim::StripNondeterministic(a).dump() == fedsim::StripNondeterministic(b).dump());
  const auto& s16 = a["summary"];
  const auto& s32 = f32["summary"];
  CHECK(s16["clients_with_state"] == s32["clients_with_state"]);
  CHECK(2 * s16["client_state_bytes"].get<int64_t>() == s32["client_state_bytes"].get<int64_t>());
  // The rounding reaches the model (the option is not a no-op) but barely.
  CHECK(s16["final_test_loss"].get<double>() != s32["final_test_loss"].get<double>());
  CHECK(s16["final_test_loss"].get<double>() == Approx(s32["final_test_loss"].get<double>()).epsilon(0.01));
}
