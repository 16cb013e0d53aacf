#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "secure/fixed_point.h"
#include "secure/secagg.h"

using namespace fedsim;

namespace {

// n random input vectors of dim values in [0, 2^bits).
struct Inputs {
  std::vector<std::vector<uint32_t>> data;
  std::vector<const uint32_t*> ptrs;
};

Inputs MakeInputs(int n, int64_t dim, int bits, uint64_t seed) {
  Inputs in;
  Rng rng(seed);
  const uint32_t mask = bits == 32 ? 0xFFFFFFFFu : ((1u << bits) - 1);
  in.data.assign(n, std::vector<uint32_t>(dim));
  for (auto& v : in.data)
    for (auto& x : v) x = static_cast<uint32_t>(rng.NextU64()) & mask;
  for (auto& v : in.data) in.ptrs.push_back(v.data());
  return in;
}

std::vector<uint32_t> PlainSum(const Inputs& in, const std::vector<int>& clients, int bits) {
  const uint32_t mask = bits == 32 ? 0xFFFFFFFFu : ((1u << bits) - 1);
  std::vector<uint32_t> s(in.data[0].size(), 0);
  for (int u : clients)
    for (size_t j = 0; j < s.size(); ++j) s[j] += in.data[u][j];
  for (auto& v : s) v &= mask;
  return s;
}

std::vector<int> AllBut(int n, const std::vector<int>& gone) {
  std::vector<int> r;
  for (int u = 0; u < n; ++u)
    if (std::find(gone.begin(), gone.end(), u) == gone.end()) r.push_back(u);
  return r;
}

SecAggConfig Config(bool plus, int bits = 32) {
  SecAggConfig c;
  c.plus = plus;
  c.bits = bits;
  return c;
}

}  // namespace

TEST_CASE("secagg: unmasked sum is exact without dropouts", "[secure][secagg]") {
  const bool plus = GENERATE(false, true);
  const int bits = GENERATE(32, 20, 1);
  const int n = plus ? 40 : 12;
  const int64_t dim = 2500;  // not a multiple of the chunk size
  const Inputs in = MakeInputs(n, dim, bits, 17);
  const SecAggResult r = RunSecAgg(Config(plus, bits), in.ptrs, dim, DropoutPlan{}, 99, 2);
  CHECK(r.sum == PlainSum(in, AllBut(n, {}), bits));
  CHECK(r.survivors == AllBut(n, {}));
  CHECK(r.dropped == 0);
  CHECK(r.recovered == 0);
  if (plus) {
    CHECK(r.neighbors == DefaultSecAggNeighbors(n));
    CHECK(r.neighbors < n - 1);
    CHECK(r.threshold == r.neighbors / 2 + 1);
  } else {
    CHECK(r.neighbors == n - 1);
    CHECK(r.threshold == n / 2 + 1);
  }
}

TEST_CASE("secagg: dropouts after ShareKeys are recovered", "[secure][secagg]") {
  const bool plus = GENERATE(false, true);
  const int n = plus ? 40 : 12;
  const int64_t dim = 777;
  const Inputs in = MakeInputs(n, dim, 32, 5);
  DropoutPlan plan;
  plan.drop_before[static_cast<int>(SecAggStep::kMaskedInputCollection)] = {1, 4, 7};
  const SecAggResult r = RunSecAgg(Config(plus), in.ptrs, dim, plan, 3, 2);
  CHECK(r.sum == PlainSum(in, AllBut(n, {1, 4, 7}), 32));
  CHECK(r.dropped == 3);
  CHECK(r.recovered == 3);
  CHECK(r.survivors == AllBut(n, {1, 4, 7}));
}

TEST_CASE("secagg: dropouts at every step", "[secure][secagg]") {
  const bool plus = GENERATE(false, true);
  const int n = plus ? 60 : 20;
  const int64_t dim = 1000;
  const Inputs in = MakeInputs(n, dim, 24, 8);
  DropoutPlan plan;
  plan.drop_before[0] = {0};                  // never advertises keys
  plan.drop_before[1] = {5};                  // advertised, never shared
  plan.drop_before[2] = {9, 10};              // shared, never sent its input: pairwise masks recovered
  plan.drop_before[3] = {11, 12};             // sent its input, then left before unmasking: input counted
  const SecAggResult r = RunSecAgg(Config(plus, 24), in.ptrs, dim, plan, 21, 3);
  CHECK(r.sum == PlainSum(in, AllBut(n, {0, 5, 9, 10}), 24));
  CHECK(r.dropped == 4);
  CHECK(r.recovered == 2);
  CHECK(std::count(r.survivors.begin(), r.survivors.end(), 11) == 1);
}

TEST_CASE("secagg: dropouts right before Unmasking keep the inputs", "[secure][secagg]") {
  const bool plus = GENERATE(false, true);
  const int n = plus ? 40 : 10;
  const Inputs in = MakeInputs(n, 300, 32, 2);
  DropoutPlan plan;
  plan.drop_before[3] = {2, 3};
  const SecAggResult r = RunSecAgg(Config(plus), in.ptrs, 300, plan, 4, 1);
  CHECK(r.sum == PlainSum(in, AllBut(n, {}), 32));
  CHECK(r.dropped == 0);
}

TEST_CASE("secagg: dropouts up to the threshold succeed, one more fails", "[secure][secagg]") {
  const int n = 10;  // t = 6
  const Inputs in = MakeInputs(n, 200, 32, 6);
  DropoutPlan spread;
  spread.drop_before[0] = {0};
  spread.drop_before[1] = {1};
  spread.drop_before[2] = {2};
  spread.drop_before[3] = {3};  // 6 remain for unmasking
  const SecAggResult r = RunSecAgg(Config(false), in.ptrs, 200, spread, 1, 2);
  CHECK(r.threshold == 6);
  CHECK(r.sum == PlainSum(in, AllBut(n, {0, 1, 2}), 32));

  for (int step = 0; step < kSecAggSteps; ++step) {
    DropoutPlan four;
    four.drop_before[step] = {0, 1, 2, 3};
    const SecAggResult ok = RunSecAgg(Config(false), in.ptrs, 200, four, 1, 2);
    CHECK(ok.sum == PlainSum(in, step < 3 ? AllBut(n, {0, 1, 2, 3}) : AllBut(n, {}), 32));

    DropoutPlan five = four;
    five.drop_before[step].push_back(9);  // 5 remain after `step`
    std::vector<uint32_t> untouched;
    try {
      const SecAggResult never = RunSecAgg(Config(false), in.ptrs, 200, five, 1, 2);
      untouched = never.sum;
      FAIL("expected SecAggError");
    } catch (const SecAggError& e) {
      CHECK_THAT(std::string(e.what()),
                 Catch::Contains(std::string("only 5 of 10 clients remain after ") +
                                 SecAggStepName(static_cast<SecAggStep>(step)) + ", below the threshold t = 6"));
    }
    CHECK(untouched.empty());
  }
  // Everyone gone: an error, not an empty sum.
  DropoutPlan all;
  for (int u = 0; u < n; ++u) all.drop_before[0].push_back(u);
  CHECK_THROWS_WITH(RunSecAgg(Config(false), in.ptrs, 200, all, 1, 2), Catch::Contains("only 0 of 10"));
}

TEST_CASE("secagg+: a neighbourhood below the threshold fails", "[secure][secagg]") {
  const int n = 50;
  SecAggConfig cfg = Config(true);
  cfg.neighbors = 6;  // holder sets of 7, t = 4
  const Inputs in = MakeInputs(n, 100, 32, 12);
  // 30 of 50 clients leave before Unmasking: 20 >= t remain overall, but some
  // holder set of 7 keeps fewer than 4 members (a certainty for this seed,
  // and with overwhelming probability for any).
  DropoutPlan plan;
  plan.drops = [](SecAggStep s, int u) { return s == SecAggStep::kUnmasking && u < 30; };
  CHECK_THROWS_WITH(RunSecAgg(cfg, in.ptrs, 100, plan, 8, 2),
                    Catch::Contains("in the neighbourhood of client") && Catch::Contains("threshold t = 4"));
  // A few dropouts are fine.
  DropoutPlan few;
  few.drop_before[2] = {3, 17};
  const SecAggResult r = RunSecAgg(cfg, in.ptrs, 100, few, 8, 2);
  CHECK(r.threshold == 4);
  CHECK(r.neighbors == 6);
  CHECK(r.sum == PlainSum(in, AllBut(n, {3, 17}), 32));
}

TEST_CASE("secagg: a masked input looks uniformly random", "[secure][secagg]") {
  const bool plus = GENERATE(false, true);
  const int n = 20;
  const int64_t dim = 20000;
  Inputs in = MakeInputs(n, dim, 32, 1);
  for (auto& v : in.data) std::fill(v.begin(), v.end(), 7u);  // a very non-random input
  SecAggConfig cfg = Config(plus);
  cfg.record_masked_inputs = {4};
  const SecAggResult r = RunSecAgg(cfg, in.ptrs, dim, DropoutPlan{}, 5, 2);
  REQUIRE(r.masked_inputs.size() == 1);
  const auto& y = r.masked_inputs[0];
  REQUIRE(static_cast<int64_t>(y.size()) == dim);
  int64_t same = 0;
  double mean = 0;
  int64_t high_bit = 0;
  for (int64_t j = 0; j < dim; ++j) {
    same += y[j] == 7u;
    mean += static_cast<double>(y[j]) / dim;
    high_bit += y[j] >> 31;
  }
  CHECK(same <= 2);
  CHECK(mean / 4294967296.0 == Approx(0.5).margin(0.01));
  CHECK(static_cast<double>(high_bit) / dim == Approx(0.5).margin(0.02));
  CHECK(std::set<uint32_t>(y.begin(), y.end()).size() > static_cast<size_t>(dim * 0.99));
  CHECK(r.sum == std::vector<uint32_t>(dim, 7u * n));
}

TEST_CASE("secagg: result does not depend on the thread count", "[secure][secagg]") {
  const bool plus = GENERATE(false, true);
  const int n = 30;
  const Inputs in = MakeInputs(n, 5000, 32, 77);
  DropoutPlan plan;
  plan.drop_before[2] = {3, 8};
  plan.drop_before[3] = {12};
  const SecAggResult a = RunSecAgg(Config(plus), in.ptrs, 5000, plan, 31, 1);
  const SecAggResult b = RunSecAgg(Config(plus), in.ptrs, 5000, plan, 31, 4);
  CHECK(a.sum == b.sum);
  CHECK(a.bytes_up == b.bytes_up);
  CHECK(a.bytes_down == b.bytes_down);
  CHECK(a.sum == PlainSum(in, AllBut(n, {3, 8}), 32));
  // A different run seed changes every key and mask, not the sum.
  const SecAggResult c = RunSecAgg(Config(plus), in.ptrs, 5000, plan, 32, 2);
  CHECK(c.sum == a.sum);
}

TEST_CASE("secagg: message sizes", "[secure][secagg]") {
  const int n = 6;
  const int64_t dim = 1001;
  const Inputs in = MakeInputs(n, dim, 20, 3);
  const SecAggResult r = RunSecAgg(Config(false, 20), in.ptrs, dim, DropoutPlan{}, 1, 1);
  const int64_t per_client_up = 2 * 32                      // two X25519 public keys
                                + (n - 1) * (4 + 88 + 16)    // encrypted shares: id + plaintext + Poly1305 tag
                                + dim * 3                    // masked input, ceil(20 / 8) bytes per value
                                + n * (4 + 40);              // revealed b shares (incl. its own)
  const int64_t per_client_down = (n - 1) * (4 + 64)         // everyone's keys
                                  + (n - 1) * (4 + 104)      // the shares addressed to it
                                  + (n - 1) * 4;             // survivor list
  for (int u = 0; u < n; ++u) {
    CHECK(r.client_bytes_up[u] == per_client_up);
    CHECK(r.client_bytes_down[u] == per_client_down);
  }
  CHECK(r.bytes_up == n * per_client_up);
  CHECK(r.client_seconds > 0);
  CHECK(r.server_seconds > 0);
}

TEST_CASE("secagg+: the graph is k-regular and symmetric", "[secure][secagg]") {
  CHECK(DefaultSecAggNeighbors(1000) == 20);
  CHECK(DefaultSecAggNeighbors(100) == 14);
  CHECK(DefaultSecAggNeighbors(2) == 1);
  CHECK(DefaultSecAggNeighbors(1) == 0);
  CHECK(ValidSecAggNeighbors(100, 7) == 8);
  CHECK(ValidSecAggNeighbors(10, 8) == 8);
  CHECK(ValidSecAggNeighbors(10, 7) == 8);
  CHECK(ValidSecAggNeighbors(10, 9) == 9);
  CHECK(ValidSecAggNeighbors(10, 50) == 9);
  CHECK_THROWS_AS(SecAggPlusGraph(10, 7, 1), InputError);
  for (const auto& [n, k] : std::vector<std::pair<int, int>>{{1000, 20}, {101, 14}, {10, 8}, {10, 9}, {11, 10}, {12, 4}, {5, 2}}) {
    const auto g = SecAggPlusGraph(n, k, 123);
    REQUIRE(static_cast<int>(g.size()) == n);
    for (int u = 0; u < n; ++u) {
      CHECK(static_cast<int>(g[u].size()) == k);
      CHECK(std::set<int>(g[u].begin(), g[u].end()).size() == g[u].size());
      CHECK(std::find(g[u].begin(), g[u].end(), u) == g[u].end());
      for (int v : g[u]) CHECK(std::binary_search(g[v].begin(), g[v].end(), u));
    }
  }
  // The permutation depends on the seed.
  CHECK(SecAggPlusGraph(100, 6, 1) != SecAggPlusGraph(100, 6, 2));
}

TEST_CASE("secagg: random dropouts and the callback", "[secure][secagg]") {
  Rng rng(4);
  const DropoutPlan p = RandomDropouts(10000, 0.1, SecAggStep::kShareKeys, rng);
  CHECK(p.drop_before[1].size() == Approx(1000).margin(100));
  CHECK(p.drop_before[0].empty());
  Rng r1(9), r2(9);
  const auto a = RandomDropouts(1000, {0.05, 0.05, 0.05, 0.05}, r1);
  const auto b = RandomDropouts(1000, {0.05, 0.05, 0.05, 0.05}, r2);
  std::set<int> seen;
  for (int s = 0; s < kSecAggSteps; ++s) {
    CHECK(a.drop_before[s] == b.drop_before[s]);
    for (int u : a.drop_before[s]) CHECK(seen.insert(u).second);  // each client drops at most once
  }
  CHECK_THROWS_AS(RandomDropouts(10, 1.5, SecAggStep::kUnmasking, rng), InputError);

  const int n = 40;
  const Inputs in = MakeInputs(n, 400, 32, 10);
  Rng dr(1);
  const DropoutPlan plan = RandomDropouts(n, {0.03, 0.03, 0.05, 0.05}, dr);
  const SecAggResult res = RunSecAgg(Config(true), in.ptrs, 400, plan, 2, 2);
  CHECK(res.sum == PlainSum(in, res.survivors, 32));
  DropoutPlan cb;
  cb.drops = [](SecAggStep s, int u) { return s == SecAggStep::kMaskedInputCollection && u % 7 == 0; };
  const SecAggResult rc = RunSecAgg(Config(false), in.ptrs, 400, cb, 2, 2);
  CHECK(rc.sum == PlainSum(in, AllBut(n, {0, 7, 14, 21, 28, 35}), 32));
  CHECK(rc.recovered == 6);
}

TEST_CASE("secagg: bad arguments name the parameter", "[secure][secagg]") {
  const Inputs in = MakeInputs(4, 10, 8, 1);
  CHECK_THROWS_WITH(RunSecAgg(Config(false, 0), in.ptrs, 10, {}, 1), Catch::Contains("config.bits"));
  CHECK_THROWS_WITH(RunSecAgg(Config(false, 8), {}, 10, {}, 1), Catch::Contains("inputs"));
  CHECK_THROWS_WITH(RunSecAgg(Config(false, 8), in.ptrs, 0, {}, 1), Catch::Contains("dim"));
  CHECK_THROWS_WITH(RunSecAgg(Config(false, 7), in.ptrs, 10, {}, 1), Catch::Contains("does not fit in config.bits"));
  SecAggConfig c = Config(false, 8);
  c.threshold_fraction = 2;
  CHECK_THROWS_WITH(RunSecAgg(c, in.ptrs, 10, {}, 1), Catch::Contains("threshold_fraction"));
  DropoutPlan p;
  p.drop_before[1] = {4};
  CHECK_THROWS_WITH(RunSecAgg(Config(false, 8), in.ptrs, 10, p, 1), Catch::Contains("drop_before[ShareKeys]"));
}

TEST_CASE("secagg: floats through the fixed-point codec and SecAgg+", "[secure][secagg]") {
  // Moderate size: 100 clients, 50,000 coordinates.
  const int n = 100;
  const int64_t dim = 50000;
  const FixedPointCodec codec(32, 1.0, n);
  Rng rng(2024);
  std::vector<std::vector<float>> x(n, std::vector<float>(dim));
  std::vector<std::vector<uint32_t>> q(n, std::vector<uint32_t>(dim));
  std::vector<const uint32_t*> ptrs;
  std::vector<double> expect(dim, 0.0);
  for (int u = 0; u < n; ++u) {
    for (auto& v : x[u]) v = static_cast<float>(rng.Normal(0.0, 0.3));
    codec.Encode(x[u].data(), dim, q[u].data());
    ptrs.push_back(q[u].data());
  }
  DropoutPlan plan;
  plan.drop_before[2] = {10, 20, 30};
  const SecAggResult r = RunSecAgg(Config(true, 32), ptrs, dim, plan, 77, 2);
  REQUIRE(static_cast<int>(r.survivors.size()) == n - 3);
  for (int u : r.survivors)
    for (int64_t j = 0; j < dim; ++j) expect[j] += std::clamp(static_cast<double>(x[u][j]), -1.0, 1.0);
  std::vector<float> out(dim);
  codec.DecodeSum(r.sum.data(), dim, static_cast<int>(r.survivors.size()), out.data());
  double worst = 0;
  for (int64_t j = 0; j < dim; ++j) worst = std::max(worst, std::fabs(out[j] - expect[j]));
  CHECK(worst <= r.survivors.size() * codec.step() / 2 + 1e-4);
}

TEST_CASE("secagg session: streamed inputs, stragglers and call order", "[secure][secagg]") {
  const bool plus = GENERATE(false, true);
  const int n = 30;
  const int64_t dim = 3000;
  const Inputs in = MakeInputs(n, dim, 16, 44);
  DropoutPlan plan;
  plan.drop_before[1] = {2};
  SecAggSession s(Config(plus, 16), n, dim, plan, 5, 2);
  CHECK_THROWS_AS(s.SubmitInput(0, in.ptrs[0], 0), RunError);  // before OpenInputCollection
  CHECK_THROWS_AS(s.Finish(), RunError);
  s.ShareKeys();
  CHECK_THROWS_AS(s.ShareKeys(), RunError);
  const std::vector<int> expected = s.OpenInputCollection();
  CHECK(expected == AllBut(n, {2}));
  CHECK_THROWS_WITH(s.SubmitInput(2, in.ptrs[2], 0), Catch::Contains("not expected"));
  // Clients 7 and 8 miss the deadline; the others submit from two workers in
  // reverse order, the way a parallel round loop would.
  std::vector<int> order;
  for (int u : expected)
    if (u != 7 && u != 8) order.push_back(u);
  std::reverse(order.begin(), order.end());
  ParallelFor(static_cast<int64_t>(order.size()), 2,
              [&](int64_t i, int worker) { s.SubmitInput(order[i], in.ptrs[order[i]], worker); });
  CHECK_THROWS_WITH(s.SubmitInput(order[0], in.ptrs[order[0]], 0), Catch::Contains("twice"));
  CHECK_THROWS_WITH(s.SubmitInput(7, in.ptrs[7], 2), Catch::Contains("worker"));
  const SecAggResult r = s.Finish();
  CHECK(r.sum == PlainSum(in, AllBut(n, {2, 7, 8}), 16));
  CHECK(r.recovered == 2);
  CHECK(r.dropped == 3);
  CHECK_THROWS_AS(s.Finish(), RunError);
  // The same run through RunSecAgg with the stragglers as planned dropouts.
  DropoutPlan same = plan;
  same.drop_before[2] = {7, 8};
  CHECK(RunSecAgg(Config(plus, 16), in.ptrs, dim, same, 5, 1).sum == r.sum);
}
