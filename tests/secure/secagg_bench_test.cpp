// Timing runs for the performance targets in docs/secure-aggregation-notes.md.
// Hidden: run with  fedsim_tests "[secure_bench]"  (OMP_NUM_THREADS=2 for the
// 2-core target). Inputs alias a small pool of vectors to keep memory low.
#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "secure/secagg.h"

using namespace fedsim;

namespace {

void TimeRun(bool plus, int n, int64_t dim, double drop) {
  Rng rng(1);
  std::vector<std::vector<uint32_t>> pool(16, std::vector<uint32_t>(dim));
  for (auto& v : pool)
    for (auto& x : v) x = static_cast<uint32_t>(rng.NextU64());
  std::vector<const uint32_t*> ptrs(n);
  for (int u = 0; u < n; ++u) ptrs[u] = pool[u % pool.size()].data();
  SecAggConfig cfg;
  cfg.plus = plus;
  Rng dr(2);
  const DropoutPlan plan = RandomDropouts(n, drop, SecAggStep::kMaskedInputCollection, dr);
  const int threads = ResolveThreads(0);
  const auto t0 = std::chrono::steady_clock::now();
  const SecAggResult r = RunSecAgg(cfg, ptrs, dim, plan, 7, threads);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<uint32_t> expect(dim, 0);
  for (int u : r.survivors)
    for (int64_t j = 0; j < dim; ++j) expect[j] += ptrs[u][j];
  CHECK(r.sum == expect);
  WARN((plus ? "SecAgg+" : "SecAgg") << " n=" << n << " dim=" << dim << " k=" << r.neighbors << " t=" << r.threshold
                                     << " threads=" << threads << " dropped=" << r.dropped << " recovered="
                                     << r.recovered << ": wall " << wall << " s, client " << r.client_seconds
                                     << " s (summed), server " << r.server_seconds << " s, up " << r.bytes_up / 1e6
                                     << " MB, down " << r.bytes_down / 1e6 << " MB");
}

}  // namespace

TEST_CASE("secagg bench: SecAgg+ 1000 clients x 199,210", "[.][secure_bench]") { TimeRun(true, 1000, 199210, 0.05); }
TEST_CASE("secagg bench: SecAgg 100 clients x 199,210", "[.][secure_bench]") { TimeRun(false, 100, 199210, 0.05); }
