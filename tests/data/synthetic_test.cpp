#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/dataset.h"
#include "data/partition.h"

namespace fedsim {
namespace {

SyntheticConfig Synth(double alpha, double beta, bool iid = false) {
  SyntheticConfig c;
  c.alpha = alpha;
  c.beta = beta;
  c.iid = iid;
  return c;
}

// Mean TV distance between each user's training label distribution and the
// pooled one.
double MeanUserLabelTv(const FederatedData& fd) {
  PartitionConfig natural;
  natural.kind = "natural";
  const Partition p = MakePartition(fd.train, fd.num_users, natural, 7);
  return PartitionStats(fd.train, p)["mean_label_tv"].get<double>();
}

TEST_CASE("GenerateSynthetic: shapes, users and the 90/10 split", "[data][synthetic]") {
  for (uint64_t seed : {1, 2, 3}) {
    for (bool iid : {false, true}) {
      const FederatedData fd = GenerateSynthetic(Synth(0.5, 0.5, iid), seed);
      REQUIRE(fd.num_users == 30);
      for (const Dataset* ds : {&fd.train, &fd.test}) {
        CHECK(ds->dim() == 60);
        CHECK(ds->num_classes == 10);
        REQUIRE(static_cast<int>(ds->x.rows()) == ds->size());
        REQUIRE(static_cast<int>(ds->user.size()) == ds->size());
        CHECK(std::all_of(ds->y.begin(), ds->y.end(), [](int label) { return label >= 0 && label < 10; }));
        CHECK(ds->x.allFinite());
        // Rows are grouped by user, users in increasing order.
        CHECK(std::is_sorted(ds->user.begin(), ds->user.end()));
      }
      std::vector<int> train_count(30, 0), test_count(30, 0);
      for (int u : fd.train.user) ++train_count.at(u);
      for (int u : fd.test.user) ++test_count.at(u);
      for (int k = 0; k < 30; ++k) {
        const int n = train_count[k] + test_count[k];
        CHECK(n >= 50);
        CHECK(train_count[k] == static_cast<int>(0.9 * n));
      }
    }
  }
}

TEST_CASE("GenerateSynthetic honours num_users, num_features, num_classes", "[data][synthetic]") {
  SyntheticConfig c = Synth(1, 1);
  c.num_users = 5;
  c.num_features = 7;
  c.num_classes = 3;
  const FederatedData fd = GenerateSynthetic(c, 11);
  CHECK(fd.num_users == 5);
  CHECK(fd.train.dim() == 7);
  CHECK(fd.test.dim() == 7);
  CHECK(fd.train.num_classes == 3);
  CHECK(*std::max_element(fd.train.y.begin(), fd.train.y.end()) < 3);
  CHECK(fd.train.user.back() == 4);
}

TEST_CASE("GenerateSynthetic is deterministic per seed", "[data][synthetic]") {
  const FederatedData a = GenerateSynthetic(Synth(1, 1), 42);
  const FederatedData b = GenerateSynthetic(Synth(1, 1), 42);
  const FederatedData c = GenerateSynthetic(Synth(1, 1), 43);
  CHECK(a.train.x == b.train.x);
  CHECK(a.train.y == b.train.y);
  CHECK(a.test.x == b.test.x);
  CHECK(a.train.user == b.train.user);
  const bool differs = a.train.size() != c.train.size() || a.train.x != c.train.x;
  CHECK(differs);
}

// In the IID variant v = 0, so each feature is N(0, j^-1.2) across all users.
TEST_CASE("GenerateSynthetic iid: feature j has mean 0 and variance j^-1.2", "[data][synthetic]") {
  SyntheticConfig c = Synth(0, 0, true);
  c.num_users = 200;  // ~40k samples: tight moments
  const FederatedData fd = GenerateSynthetic(c, 5);
  const Eigen::MatrixXd x = fd.train.x.cast<double>();
  const double n = static_cast<double>(x.rows());
  REQUIRE(n > 10000);
  for (int j : {0, 1, 9, 59}) {
    const double want_var = std::pow(j + 1.0, -1.2);
    const double mean = x.col(j).mean();
    const double var = (x.col(j).array() - mean).square().sum() / n;
    CHECK(std::abs(mean) < 5.0 * std::sqrt(want_var / n));
    CHECK(var == Approx(want_var).epsilon(0.05));
  }
}

// Heterogeneous users (alpha = beta = 1) have label distributions far from the
// pooled one; IID users differ from it only by sampling noise.
TEST_CASE("GenerateSynthetic: IID users' label histograms agree more than Synthetic(1,1)'s", "[data][synthetic]") {
  double iid_sum = 0.0, non_iid_sum = 0.0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    const double iid = MeanUserLabelTv(GenerateSynthetic(Synth(1, 1, true), seed));
    const double non_iid = MeanUserLabelTv(GenerateSynthetic(Synth(1, 1), seed));
    CHECK(iid < non_iid);
    iid_sum += iid;
    non_iid_sum += non_iid;
  }
  CHECK(non_iid_sum > 1.5 * iid_sum);
}

}  // namespace
}  // namespace fedsim
