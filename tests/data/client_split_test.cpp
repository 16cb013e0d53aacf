// Clients' own data: a CSV client column, per-client test rows (the data's
// own and data.client_test_fraction), and the partition statistics over them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "test_files.h"

namespace fedsim {
namespace {

using Catch::Matchers::Contains;
using testing::TempDir;
using testing::WriteText;

DataConfig CsvClients(const TempDir& t, int num_clients) {
  WriteText(t.File("train.csv"), "label,client,x1\n0,bob,1.5\n1,alice,2.5\n1,bob,3.5\n0,carol,4.5\n");
  WriteText(t.File("test.csv"), "label,client,x1\n1,alice,9\n0,dave,8\n0,bob,7\n");
  DataConfig c;
  c.dataset = "csv";
  c.path = t.File("train.csv");
  c.csv.test_path = t.File("test.csv");
  c.csv.client_column = 1;
  c.num_clients = num_clients;
  c.partition.kind = "natural";
  return c;
}

TEST_CASE("csv client_column: sorted ids are the clients, test rows carry them", "[data][csv][clients]") {
  TempDir t;
  const FederatedData fd = LoadData(CsvClients(t, 3), 1);
  // alice 0, bob 1, carol 2; dave has no training rows: -1.
  CHECK(fd.train.user == std::vector<int>{1, 0, 1, 2});
  CHECK(fd.train.y == std::vector<int>{0, 1, 1, 0});
  CHECK(fd.train.x == (RowMatrix(4, 1) << 1.5f, 2.5f, 3.5f, 4.5f).finished());
  CHECK(fd.test.user == std::vector<int>{0, -1, 1});
  CHECK(fd.test.x == (RowMatrix(3, 1) << 9, 8, 7).finished());
  CHECK(fd.num_users == 3);
  CHECK_THAT(fd.description, Contains("3 of 3 clients from column 1"));

  const FederatedData two = LoadData(CsvClients(t, 2), 1);  // alice and bob only
  CHECK(two.train.user == std::vector<int>{1, 0, 1});
  CHECK(two.train.x == (RowMatrix(3, 1) << 1.5f, 2.5f, 3.5f).finished());
  CHECK(two.test.user == std::vector<int>{0, 1});
  CHECK(two.test.x == (RowMatrix(2, 1) << 9, 7).finished());

  CHECK_THROWS_WITH(LoadData(CsvClients(t, 4), 1), Contains("4 clients but") && Contains("has 3 distinct client ids"));

  // The natural partition and each client's own test rows.
  DataConfig c = CsvClients(t, 3);
  FederatedData data = LoadData(c, 1);
  Partition p = MakePartition(data.train, 3, c.partition, 1);
  CHECK(p == Partition{{1}, {0, 2}, {3}});
  const ClientTests own = SplitClientTests(data, p, c, 1);
  CHECK_FALSE(own.from_train);
  CHECK(own.rows == Partition{{0}, {2}, {}});
  CHECK(p == Partition{{1}, {0, 2}, {3}});  // training rows untouched

  WriteText(t.File("bad.csv"), "label,client,x1\n0,,1\n");
  c.path = t.File("bad.csv");
  CHECK_THROWS_WITH(LoadData(c, 1), Contains("bad.csv:2: the client id (column 2) is empty"));
}

TEST_CASE("csv client_column with a random hold-out: an id left with no training rows is no client",
          "[data][csv][clients]") {
  // zed has one row; for some seeds the 50% hold-out takes it (or all of a
  // larger client's rows). Every client must still have training rows, and
  // the test rows of an id without any get user -1.
  TempDir t;
  WriteText(t.File("all.csv"), "label,client,x1\n0,amy,1\n1,amy,2\n0,ben,3\n1,ben,4\n0,zed,5\n1,amy,6\n0,ben,7\n");
  DataConfig c = testing::CsvClientColumn(t.File("all.csv"), 0.5, 3);
  int zed_held_out = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    INFO("seed " << seed);
    // As many clients as ids kept training rows: more are refused, naming the count.
    FederatedData fd;
    for (c.num_clients = 3;; --c.num_clients) {
      try {
        fd = LoadData(c, seed);
        break;
      } catch (const InputError& e) {
        CHECK_THAT(e.what(), Contains("distinct client ids"));
        REQUIRE(c.num_clients > 1);
      }
    }
    if (c.num_clients < 3) {
      ++zed_held_out;
      CHECK(std::count(fd.test.user.begin(), fd.test.user.end(), -1) >= 1);  // the dropped ids' rows
    }
    std::vector<int> rows(static_cast<size_t>(c.num_clients), 0);
    for (int u : fd.train.user) {
      REQUIRE(u >= 0);
      REQUIRE(u < c.num_clients);
      ++rows[static_cast<size_t>(u)];
    }
    for (int n : rows) CHECK(n > 0);
  }
  CHECK(zed_held_out > 0);
}

TEST_CASE("client_test_fraction: a seeded split of each client's rows, stratified by label", "[data][clients]") {
  FederatedData data;
  data.train.x = RowMatrix::Zero(13, 1);
  // Rows 0-5 label 0, rows 6-9 label 1; rows 10-12 label 2.
  data.train.y = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2};
  data.train.num_classes = 3;
  DataConfig cfg;
  cfg.partition.kind = "iid";
  cfg.client_test_fraction = 0.3;
  const Partition original{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {10}, {11, 12}};
  Partition p = original;
  const ClientTests t = SplitClientTests(data, p, cfg, 7);
  REQUIRE(t.from_train);
  REQUIRE(t.rows.size() == 3);
  // Client 0: round(0.3 * 10) = 3 test rows; label 0 gives 1.8 -> 2 (larger
  // remainder), label 1 gives 1.2 -> 1.
  const auto& test0 = t.rows[0];
  REQUIRE(test0.size() == 3);
  CHECK(std::count_if(test0.begin(), test0.end(), [](int r) { return r < 6; }) == 2);
  CHECK(std::count_if(test0.begin(), test0.end(), [](int r) { return r >= 6; }) == 1);
  CHECK(std::is_sorted(test0.begin(), test0.end()));
  CHECK(p[0].size() == 7);
  std::vector<int> joined = p[0];
  joined.insert(joined.end(), test0.begin(), test0.end());
  std::sort(joined.begin(), joined.end());
  CHECK(joined == original[0]);
  // Client 1 (one row) keeps it; client 2: round(0.6) = 1 of its 2 rows.
  CHECK(t.rows[1].empty());
  CHECK(p[1] == std::vector<int>{10});
  CHECK(t.rows[2].size() == 1);
  CHECK(p[2].size() == 1);
  // The same seed gives the same split.
  Partition again = original;
  CHECK(SplitClientTests(data, again, cfg, 7).rows == t.rows);
  CHECK(again == p);

  // Statistics: training sizes 7, 1, 1; test rows 3, 0, 1.
  const auto stats = PartitionStats(data.train, p, &t);
  CHECK(stats["test_samples_per_client"]["min"] == 0);
  CHECK(stats["test_samples_per_client"]["median"] == 1.0);
  CHECK(stats["test_samples_per_client"]["max"] == 3);
  CHECK(stats["test_samples_per_client"]["total"] == 4);
  CHECK(stats["test_samples_per_client"]["from"] == "client_test_fraction");
  CHECK_FALSE(PartitionStats(data.train, p).contains("test_samples_per_client"));
}

TEST_CASE("PartitionStats: quantiles and Gini of the client sizes", "[data][partition]") {
  Dataset train;
  train.x = RowMatrix::Zero(16, 1);
  train.y.assign(16, 0);
  train.num_classes = 1;
  // Sizes 10, 1, 3, 2 (sorted 1, 2, 3, 10).
  Partition p(4);
  for (int r = 0; r < 10; ++r) p[0].push_back(r);
  p[1] = {10};
  p[2] = {11, 12, 13};
  p[3] = {14, 15};
  const auto s = PartitionStats(train, p)["samples_per_client"];
  CHECK(s["min"] == 1);
  CHECK(s["max"] == 10);
  CHECK(s["median"] == 2.5);
  CHECK(s["p10"].get<double>() == Approx(1.3));  // position 0.3 between 1 and 2
  CHECK(s["p90"].get<double>() == Approx(7.9));  // position 2.7 between 3 and 10
  // Sum of |n_i - n_j| over ordered pairs = 56, / (2 * 4^2 * mean 4) = 0.4375.
  CHECK(s["gini"].get<double>() == Approx(0.4375));
  Partition equal{{0, 1}, {2, 3}};
  CHECK(PartitionStats(train, equal)["samples_per_client"]["gini"].get<double>() == Approx(0.0).margin(1e-15));
}

}  // namespace
}  // namespace fedsim
