#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "data/partition.h"

namespace fedsim {
namespace {

using Catch::Matchers::Contains;

// n samples, `classes` labels of equal frequency; sorted by label or shuffled.
Dataset Labelled(int n, int classes, bool sorted, uint64_t seed = 99) {
  Dataset ds;
  ds.x = RowMatrix::Zero(n, 2);
  ds.y.resize(n);
  for (int i = 0; i < n; ++i) ds.y[i] = static_cast<int>(static_cast<int64_t>(i) * classes / n);
  if (!sorted) {
    Rng rng(seed);
    rng.Shuffle(ds.y.begin(), ds.y.end());
  }
  ds.num_classes = classes;
  return ds;
}

PartitionConfig Kind(const std::string& kind) {
  PartitionConfig c;
  c.kind = kind;
  return c;
}

void CheckExactCover(const Partition& p, int n, int num_clients) {
  REQUIRE(static_cast<int>(p.size()) == num_clients);
  std::vector<int> seen(n, 0);
  bool sorted = true, in_range = true;
  for (const auto& client : p) {
    sorted = sorted && std::is_sorted(client.begin(), client.end());
    for (int i : client) {
      if (i < 0 || i >= n) {
        in_range = false;
        continue;
      }
      ++seen[i];
    }
  }
  CHECK(sorted);
  REQUIRE(in_range);
  CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
}

double MeanTv(const Dataset& ds, const Partition& p) { return PartitionStats(ds, p)["mean_label_tv"].get<double>(); }

TEST_CASE("Every partitioner assigns every sample exactly once", "[data][partition]") {
  const Dataset ds = Labelled(1000, 10, false);
  for (const char* kind : {"iid", "dirichlet", "shards", "quantity"}) {
    for (uint64_t seed : {1, 2, 3}) {
      INFO(kind << " seed " << seed);
      for (int clients : {1, 7, 50}) CheckExactCover(MakePartition(ds, clients, Kind(kind), seed), 1000, clients);
    }
  }
  Dataset users = ds;
  users.user.resize(1000);
  for (int i = 0; i < 1000; ++i) users.user[i] = (i * 37) % 13;
  const Partition p = MakePartition(users, 13, Kind("natural"), 1);
  CheckExactCover(p, 1000, 13);
  for (int k = 0; k < 13; ++k) {
    for (int i : p[k]) CHECK(users.user[i] == k);
  }
}

TEST_CASE("labels (#C=k): each client holds exactly k labels, each label split evenly among its holders",
          "[data][partition]") {
  const Dataset ds = Labelled(1000, 10, false);
  for (int k : {1, 2, 3}) {
    PartitionConfig c = Kind("labels");
    c.labels_per_client = k;
    const Partition p = MakePartition(ds, 10, c, 4);
    INFO("k = " << k);
    CheckExactCover(p, 1000, 10);
    std::vector<int> holders(10, 0);
    for (int i = 0; i < 10; ++i) {
      std::set<int> labels;
      for (int r : p[static_cast<size_t>(i)]) labels.insert(ds.y[static_cast<size_t>(r)]);
      CHECK(static_cast<int>(labels.size()) == k);
      CHECK(labels.count(i % 10) == 1);  // client i always holds label i mod L
      for (int l : labels) ++holders[static_cast<size_t>(l)];
    }
    // #C=1 with 10 clients: client i holds all 100 samples of label i.
    if (k == 1) {
      for (int i = 0; i < 10; ++i) CHECK(p[static_cast<size_t>(i)].size() == 100);
    }
    // A label's 100 samples over h holders: sizes differ by at most 1.
    for (int i = 0; i < 10; ++i) {
      for (int l = 0; l < 10; ++l) {
        int count = 0;
        for (int r : p[static_cast<size_t>(i)]) count += ds.y[static_cast<size_t>(r)] == l;
        if (count > 0) CHECK(std::abs(count - 100 / holders[static_cast<size_t>(l)]) <= 1);
      }
    }
  }
  PartitionConfig c = Kind("labels");
  c.labels_per_client = 11;
  CHECK_THROWS_WITH(MakePartition(ds, 10, c, 1), Contains("data.partition.labels_per_client"));
  c.labels_per_client = 1;
  CHECK_THROWS_WITH(MakePartition(ds, 5, c, 1), Contains("held by no client"));
}

TEST_CASE("Partitions are deterministic per seed", "[data][partition]") {
  const Dataset ds = Labelled(500, 5, false);
  for (const char* kind : {"iid", "dirichlet", "shards", "quantity"}) {
    INFO(kind);
    CHECK(MakePartition(ds, 10, Kind(kind), 8) == MakePartition(ds, 10, Kind(kind), 8));
    CHECK(MakePartition(ds, 10, Kind(kind), 8) != MakePartition(ds, 10, Kind(kind), 9));
  }
}

TEST_CASE("iid: near-equal sizes and close to the global label mix", "[data][partition]") {
  const Dataset ds = Labelled(1003, 10, true);
  const Partition p = MakePartition(ds, 10, Kind("iid"), 4);
  for (const auto& c : p) CHECK((c.size() == 100 || c.size() == 101));
  CHECK(MeanTv(ds, p) < 0.15);
}

TEST_CASE("dirichlet: small alpha skews labels more than iid", "[data][partition]") {
  const Dataset ds = Labelled(2000, 10, false);
  PartitionConfig dir = Kind("dirichlet");
  dir.alpha = 0.1;
  for (uint64_t seed : {1, 2, 3}) {
    const Partition p = MakePartition(ds, 20, dir, seed);
    const double skewed = MeanTv(ds, p);
    const double iid = MeanTv(ds, MakePartition(ds, 20, Kind("iid"), seed));
    CHECK(skewed > 0.5);
    CHECK(skewed > 2.0 * iid);
    CHECK(PartitionStats(ds, p)["labels_per_client"]["median"].get<double>() < 6);
  }
}

TEST_CASE("dirichlet honours min_samples or says which keys to change", "[data][partition]") {
  const Dataset ds = Labelled(1000, 10, false);
  PartitionConfig dir = Kind("dirichlet");
  dir.alpha = 0.3;
  dir.min_samples = 10;
  for (uint64_t seed : {1, 2}) {
    for (const auto& c : MakePartition(ds, 20, dir, seed)) CHECK(c.size() >= 10);
  }
  dir.alpha = 1.0;
  dir.min_samples = 100;  // 10 x 100 = all 1000 samples: the draws never land on exactly 100 each
  CHECK_THROWS_WITH(MakePartition(ds, 10, dir, 1),
                    Contains("data.partition.alpha") && Contains("data.partition.min_samples"));
  dir.min_samples = 101;
  CHECK_THROWS_WITH(MakePartition(ds, 10, dir, 1), Contains("data.partition.min_samples"));
}

TEST_CASE("per-client dirichlet with equal sizes refuses a min_samples it cannot give", "[data][partition]") {
  const Dataset ds = Labelled(1000, 10, false);
  PartitionConfig dir = Kind("dirichlet");
  dir.dirichlet_mode = "per_client";
  dir.min_samples = 50;  // 50 clients of 20 samples each
  CHECK_THROWS_WITH(MakePartition(ds, 50, dir, 1),
                    Contains("data.partition.min_samples: 50 clients x 50 samples each is more than the 1000"));
  dir.min_samples = 20;
  for (const auto& c : MakePartition(ds, 50, dir, 1)) CHECK(c.size() == 20);
}

TEST_CASE("labels (#C=k): a label with no training samples is refused, not dealt as an empty label",
          "[data][partition]") {
  Dataset ds = Labelled(300, 3, false);
  for (int& y : ds.y) ++y;  // labels 1..3: class 0 of 4 has no samples
  ds.num_classes = 4;
  PartitionConfig c2 = Kind("labels");
  c2.labels_per_client = 2;
  // 4 clients: client 0's main label is 0.
  CHECK_THROWS_WITH(MakePartition(ds, 4, c2, 1), Contains("data.partition.labels_per_client: label 0 has no "
                                                          "training samples, but client 0 is to hold it"));
  for (int& y : ds.y) --y;
  ds.num_classes = 3;
  CheckExactCover(MakePartition(ds, 4, c2, 1), 300, 4);
}

TEST_CASE("shards: clients see few labels", "[data][partition]") {
  SECTION("shard size divides the class size: at most shards_per_client labels") {
    const Dataset ds = Labelled(1000, 10, false);  // 100 per class, 100 shards of 10
    const Partition p = MakePartition(ds, 50, Kind("shards"), 3);
    for (const auto& c : p) {
      CHECK(c.size() == 20);
      std::set<int> labels;
      for (int i : c) labels.insert(ds.y[i]);
      CHECK(labels.size() <= 2);
    }
    const auto stats = PartitionStats(ds, p);
    CHECK(stats["labels_per_client"]["max"].get<int>() <= 2);
    CHECK(stats["labels_per_client"]["median"].get<double>() <= 2);
  }
  SECTION("shards straddle class boundaries: each shard spans at most 2 labels") {
    const Dataset ds = Labelled(1000, 10, false);  // 60 shards of 16 or 17 < 100 per class
    const Partition p = MakePartition(ds, 30, Kind("shards"), 3);
    for (const auto& c : p) {
      CHECK((c.size() >= 32 && c.size() <= 34));
      std::set<int> labels;
      for (int i : c) labels.insert(ds.y[i]);
      CHECK(labels.size() <= 4);
    }
  }
  SECTION("more shards than samples") {
    PartitionConfig c = Kind("shards");
    c.shards_per_client = 3;
    CHECK_THROWS_WITH(MakePartition(Labelled(50, 2, true), 20, c, 1), Contains("data.partition.shards_per_client"));
  }
}

TEST_CASE("quantity: skewed sizes summing to n, each at least min_samples", "[data][partition]") {
  const Dataset ds = Labelled(1000, 10, false);
  PartitionConfig q = Kind("quantity");
  q.min_samples = 5;
  q.quantity_sigma = 1.0;
  for (uint64_t seed : {1, 2, 3}) {
    const Partition p = MakePartition(ds, 20, q, seed);
    size_t total = 0, smallest = 1000, largest = 0;
    for (const auto& c : p) {
      total += c.size();
      smallest = std::min(smallest, c.size());
      largest = std::max(largest, c.size());
    }
    CHECK(total == 1000);
    CHECK(smallest >= 5);
    CHECK(largest > 2 * smallest);
  }
  q.quantity_sigma = 0.0;  // equal weights: sizes differ by at most one
  for (const auto& c : MakePartition(ds, 30, q, 1)) CHECK((c.size() == 33 || c.size() == 34));
}

TEST_CASE("Partition errors name the key", "[data][partition]") {
  const Dataset ds = Labelled(100, 2, false);
  CHECK_THROWS_WITH(MakePartition(ds, 500, Kind("iid"), 1),
                    Catch::Matchers::StartsWith("data.num_clients: 500 clients but only 100 training samples"));
  // More clients than samples is allowed where empty clients make sense.
  fedsim::PartitionConfig many = Kind("quantity");
  many.min_samples = 0;
  size_t total = 0, empty = 0;
  for (const auto& c : MakePartition(ds, 500, many, 1)) total += c.size(), empty += c.empty();
  CHECK(total == 100);
  CHECK(empty >= 400);
  CHECK_THROWS_WITH(MakePartition(ds, 10, Kind("natural"), 1), Contains("natural") && Contains("user"));
  Dataset users = ds;
  users.user.assign(100, 0);
  for (int i = 50; i < 100; ++i) users.user[i] = 2;
  CHECK_THROWS_WITH(MakePartition(users, 2, Kind("natural"), 1),
                    Contains("data.num_clients") && Contains("3 natural users"));
  // A user id with no rows gives an empty client, not an error.
  const Partition p = MakePartition(users, 3, Kind("natural"), 1);
  CHECK(p[1].empty());
  PartitionConfig q = Kind("quantity");
  q.min_samples = 11;
  CHECK_THROWS_WITH(MakePartition(ds, 10, q, 1), Contains("data.partition.min_samples"));
}

TEST_CASE("PartitionStats on a hand-made example", "[data][partition]") {
  Dataset ds;
  ds.x = RowMatrix::Zero(6, 1);
  ds.y = {0, 0, 0, 1, 1, 2};  // global label mix (1/2, 1/3, 1/6)
  ds.num_classes = 3;
  // Client label mixes: (1,0,0), (0,1/2,1/2), (0,1,0), and one empty client.
  // TVs: 0.5 * (1/2 + 1/3 + 1/6) = 1/2; 0.5 * (1/2 + 1/6 + 1/3) = 1/2;
  //      0.5 * (1/2 + 2/3 + 1/6) = 2/3; mean over non-empty clients = 5/9.
  const Partition p = {{0, 1, 2}, {3, 5}, {4}, {}};
  const nlohmann::json s = PartitionStats(ds, p);
  CHECK(s["num_clients"].get<int>() == 4);
  CHECK(s["samples_per_client"]["min"].get<int>() == 0);
  CHECK(s["samples_per_client"]["median"].get<double>() == Approx(1.5));  // (1 + 2) / 2
  CHECK(s["samples_per_client"]["max"].get<int>() == 3);
  CHECK(s["samples_per_client"]["mean"].get<double>() == Approx(1.5));
  CHECK(s["labels_per_client"]["min"].get<int>() == 1);
  CHECK(s["labels_per_client"]["median"].get<double>() == Approx(1.0));  // of {1, 2, 1}
  CHECK(s["labels_per_client"]["max"].get<int>() == 2);
  CHECK(s["mean_label_tv"].get<double>() == Approx(5.0 / 9.0));
}

TEST_CASE("PartitionStats: an iid split of balanced data has TV 0", "[data][partition]") {
  Dataset ds;
  ds.x = RowMatrix::Zero(4, 1);
  ds.y = {0, 1, 0, 1};
  ds.num_classes = 2;
  const nlohmann::json s = PartitionStats(ds, {{0, 1}, {2, 3}});
  CHECK(s["mean_label_tv"].get<double>() == Approx(0.0).margin(1e-12));
  CHECK(s["labels_per_client"]["median"].get<double>() == Approx(2.0));
  CHECK(s["samples_per_client"]["median"].get<double>() == Approx(2.0));
}

}  // namespace
}  // namespace fedsim

TEST_CASE("partition: per-client Dirichlet gives every client its size and skews labels", "[data][partition]") {
  fedsim::Dataset d;
  const int n = 20000, classes = 10;
  d.x.resize(n, 1);
  d.y.resize(n);
  for (int i = 0; i < n; ++i) d.y[i] = i % classes;
  d.num_classes = classes;
  fedsim::PartitionConfig cfg;
  cfg.kind = "dirichlet";
  cfg.dirichlet_mode = "per_client";
  cfg.alpha = 0.5;
  // 5,000 clients of 4 samples: the per-class scheme cannot keep every client non-empty here.
  const auto p = fedsim::MakePartition(d, 5000, cfg, 3);
  std::vector<int> seen(n, 0);
  for (const auto& c : p) {
    CHECK(c.size() == 4);
    for (int i : c) seen[i]++;
  }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));
  cfg.alpha = 1000.0;
  const double tv_iid_like = fedsim::PartitionStats(d, fedsim::MakePartition(d, 100, cfg, 3))["mean_label_tv"];
  cfg.alpha = 0.1;
  const double tv_skewed = fedsim::PartitionStats(d, fedsim::MakePartition(d, 100, cfg, 3))["mean_label_tv"];
  CHECK(tv_iid_like < 0.15);
  CHECK(tv_skewed > 0.6);
  cfg.client_sizes = "lognormal";
  const auto q = fedsim::MakePartition(d, 100, cfg, 3);
  size_t total = 0, smallest = n, largest = 0;
  for (const auto& c : q) total += c.size(), smallest = std::min(smallest, c.size()), largest = std::max(largest, c.size());
  CHECK(total == static_cast<size_t>(n));
  CHECK(largest > 3 * smallest);
}
