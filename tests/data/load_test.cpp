#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "test_files.h"

namespace fedsim {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using testing::TempDir;
using testing::WriteText;

const std::string kSamples = std::string(FEDSIM_SOURCE_DIR) + "/datasets";

DataConfig Csv(const std::string& path) {
  DataConfig c;
  c.dataset = "csv";
  c.path = path;
  return c;
}

TEST_CASE("LoadData csv: seeded hold-out of test_fraction", "[data][load]") {
  DataConfig c = Csv(kSamples + "/sample.csv");
  const FederatedData a = LoadData(c, 1);
  CHECK(a.train.size() == 270);
  CHECK(a.test.size() == 30);
  CHECK(a.train.dim() == 4);
  CHECK(a.train.num_classes == 3);
  CHECK(a.test.num_classes == 3);
  CHECK(a.num_users == 0);
  CHECK_THAT(a.description, StartsWith("csv: 270 train / 30 test, 4 features, 3 classes from "));
  const FederatedData b = LoadData(c, 1);
  const FederatedData other = LoadData(c, 2);
  CHECK(a.test.x == b.test.x);
  CHECK(a.test.y == b.test.y);
  CHECK(a.test.x != other.test.x);

  // The two parts are the file's rows: together they hold every row once.
  const Dataset all = LoadCsv(c.path, 0, true);
  std::vector<float> firsts, parts;
  for (int i = 0; i < all.size(); ++i) firsts.push_back(all.x(i, 0));
  for (const Dataset* ds : {&a.train, &a.test}) {
    for (int i = 0; i < ds->size(); ++i) parts.push_back(ds->x(i, 0));
  }
  std::sort(firsts.begin(), firsts.end());
  std::sort(parts.begin(), parts.end());
  CHECK(firsts == parts);

  c.csv.test_fraction = 1.0;
  CHECK_THROWS_WITH(LoadData(c, 1), Contains("data.csv.test_fraction"));
}

TEST_CASE("LoadData csv: separate test file, class counts agree", "[data][load]") {
  TempDir dir;
  WriteText(dir.File("train.csv"), "y,a\n0,1\n1,2\n0,3\n");
  WriteText(dir.File("test.csv"), "y,a\n3,1\n");
  DataConfig c = Csv(dir.File("train.csv"));
  c.csv.test_path = dir.File("test.csv");
  const FederatedData fd = LoadData(c, 1);
  CHECK(fd.train.size() == 3);
  CHECK(fd.test.size() == 1);
  CHECK(fd.train.num_classes == 4);
  CHECK(fd.test.num_classes == 4);

  WriteText(dir.File("wide.csv"), "y,a,b\n0,1,2\n");
  c.csv.test_path = dir.File("wide.csv");
  CHECK_THROWS_WITH(LoadData(c, 1), StartsWith(dir.File("wide.csv")) && Contains("features"));
  c.csv.test_path = dir.File("absent.csv");
  CHECK_THROWS_WITH(LoadData(c, 1), StartsWith("data.csv.test_path: " + dir.File("absent.csv")));
  CHECK_THROWS_WITH(LoadData(Csv(dir.File("absent.csv")), 1), StartsWith("data.path: " + dir.File("absent.csv")));
}

TEST_CASE("LoadData mnist_idx reads the committed Fashion-MNIST sample", "[data][load]") {
  DataConfig c;
  c.dataset = "mnist_idx";
  c.path = kSamples + "/fmnist-sample";
  FederatedData fd = LoadData(c, 1);
  CHECK(fd.train.size() == 1000);
  CHECK(fd.test.size() == 500);
  CHECK(fd.train.dim() == 784);
  CHECK(fd.train.num_classes == 10);
  CHECK(fd.test.num_classes == 10);
  CHECK(fd.train.byte_storage);
  CHECK(fd.train.FeatureBytes() == 1000u * 784u);
  CHECK(fd.train.Dense().minCoeff() >= 0.0f);
  CHECK(fd.train.Dense().maxCoeff() <= 1.0f);
  CHECK(fd.description == "mnist_idx: 1000 train / 500 test, 784 features, 10 classes from " + c.path);
  // Fashion-MNIST's first training label is 9 (ankle boot), first test label 9.
  CHECK(fd.train.y[0] == 9);
  CHECK(fd.test.y[0] == 9);

  c.max_train_samples = 100;
  c.max_test_samples = 50;
  const FederatedData small = LoadData(c, 1);
  CHECK(small.train.size() == 100);
  CHECK(small.test.size() == 50);
  CHECK(small.train.Dense() == fd.train.Dense().topRows(100));
  CHECK(small.test.y == std::vector<int>(fd.test.y.begin(), fd.test.y.begin() + 50));
}

// An IDX folder: train-* and t10k-* files with the given shapes and labels
// (pixels all zero).
void WriteIdxDir(const TempDir& dir, uint32_t rows, uint32_t cols, const std::vector<unsigned char>& train_labels,
                 uint32_t test_rows, uint32_t test_cols, const std::vector<unsigned char>& test_labels) {
  using testing::IdxImages;
  using testing::IdxLabels;
  using testing::WriteBytes;
  const auto n = static_cast<uint32_t>(train_labels.size()), m = static_cast<uint32_t>(test_labels.size());
  WriteBytes(dir.File("train-images-idx3-ubyte"), IdxImages(n, rows, cols, std::vector<unsigned char>(n * rows * cols)));
  WriteBytes(dir.File("train-labels-idx1-ubyte"), IdxLabels(train_labels));
  WriteBytes(dir.File("t10k-images-idx3-ubyte"),
             IdxImages(m, test_rows, test_cols, std::vector<unsigned char>(m * test_rows * test_cols)));
  WriteBytes(dir.File("t10k-labels-idx1-ubyte"), IdxLabels(test_labels));
}

TEST_CASE("LoadData mnist_idx: test images of another layout, or labels from 1, are refused", "[data][load]") {
  TempDir dir;
  DataConfig c;
  c.dataset = "mnist_idx";
  c.path = dir.path();
  SECTION("the same pixel count in another layout") {
    WriteIdxDir(dir, 8, 8, {0, 1, 2, 0}, 4, 16, {1, 0});
    CHECK_THROWS_WITH(LoadData(c, 1),
                      Contains(dir.path()) && Contains("the test images are 1x4x16 but the training images are 1x8x8"));
    WriteIdxDir(dir, 8, 8, {0, 1, 2, 0}, 8, 8, {1, 0});
    CHECK(LoadData(c, 1).test.size() == 2);
  }
  SECTION("labels 1..26 (EMNIST letters): class 0 would be empty") {
    WriteIdxDir(dir, 2, 2, {1, 26, 3, 2}, 2, 2, {1, 25});
    CHECK_THROWS_WITH(LoadData(c, 1), Contains(dir.path() + ": no image has label 0") &&
                                          Contains("0..26 from the largest label 26") && Contains("shifted"));
    // Label 0 in the test set alone is a class that exists.
    WriteIdxDir(dir, 2, 2, {1, 26, 3, 2}, 2, 2, {0, 25});
    CHECK(LoadData(c, 1).train.num_classes == 27);
  }
}

TEST_CASE("LoadData names a missing data directory", "[data][load]") {
  DataConfig c;
  c.dataset = "fashion_mnist";
  c.path = "/x/y";
  CHECK_THROWS_WITH(LoadData(c, 1),
                    "data.path: /x/y: no such directory (install Debian's dataset-fashion-mnist "
                    "package or set data.path)");
  c.dataset = "mnist_idx";
  CHECK_THROWS_WITH(LoadData(c, 1), StartsWith("data.path: /x/y: no such directory"));
  c.path = "";
  CHECK_THROWS_WITH(LoadData(c, 1), StartsWith("data.path:"));
}

TEST_CASE("LoadData synthetic: truncation keeps user ids with their rows", "[data][load]") {
  DataConfig c;
  c.dataset = "synthetic";
  const FederatedData full = LoadData(c, 3);
  CHECK(full.num_users == 30);
  CHECK_THAT(full.description, StartsWith("synthetic(1, 1), 30 users, seed 3: "));
  int first_user_rows = 0;
  while (full.train.user[first_user_rows] == 0) ++first_user_rows;
  c.max_train_samples = first_user_rows + 1;  // all of user 0 and one row of user 1
  c.max_test_samples = 5;
  const FederatedData cut = LoadData(c, 3);
  REQUIRE(cut.train.size() == first_user_rows + 1);
  CHECK(cut.train.user.size() == cut.train.y.size());
  CHECK(cut.train.user.back() == 1);
  CHECK(cut.num_users == 2);
  CHECK(cut.test.size() == 5);
  CHECK(cut.test.user.size() == 5);
  CHECK(cut.train.x == full.train.x.topRows(first_user_rows + 1));
}

TEST_CASE("Standardize uses the training mean and std", "[data][load]") {
  Dataset train, test;
  train.x.resize(4, 2);
  train.x << 1, 5,  //
      3, 5,         //
      5, 5,         //
      7, 5;         // column 0: mean 4, std sqrt(5); column 1 constant
  test.x.resize(1, 2);
  test.x << 4 + 2 * std::sqrt(5.0f), 6;
  Standardize(train, test);
  CHECK(train.x(0, 0) == Approx(-3 / std::sqrt(5.0)));
  CHECK(train.x(3, 0) == Approx(3 / std::sqrt(5.0)));
  CHECK(train.x.col(1).cwiseAbs().maxCoeff() == 0.0f);
  CHECK(test.x(0, 0) == Approx(2.0));
  CHECK(test.x(0, 1) == Approx(1.0));  // only centred

  DataConfig c = Csv(kSamples + "/sample.csv");
  c.standardize = true;
  const FederatedData fd = LoadData(c, 1);
  for (int j = 0; j < 4; ++j) {
    const Eigen::VectorXd col = fd.train.x.col(j).cast<double>();
    const double mean = col.mean();
    CHECK(mean == Approx(0.0).margin(1e-5));
    CHECK(std::sqrt((col.array() - mean).square().mean()) == Approx(1.0).epsilon(1e-4));
  }
}

TEST_CASE("Standardize folds into the byte decode of image data", "[data][load]") {
  DataConfig c;
  c.dataset = "mnist_idx";
  c.path = kSamples + "/fmnist-sample";
  c.standardize = true;
  const FederatedData fd = LoadData(c, 1);
  REQUIRE(fd.train.byte_storage);
  const RowMatrix x = fd.train.Dense();
  int unit_columns = 0;
  for (int j = 0; j < x.cols(); ++j) {
    const Eigen::VectorXd col = x.col(j).cast<double>();
    const double mean = col.mean();
    const double sd = std::sqrt((col.array() - mean).square().mean());
    CHECK(mean == Approx(0.0).margin(1e-4));
    if (sd > 0.5) {
      CHECK(sd == Approx(1.0).epsilon(1e-3));
      ++unit_columns;
    } else {
      CHECK(sd == 0.0);  // a constant column (all-zero border pixel) is only centred
    }
  }
  CHECK(unit_columns > 700);
  // Gathering rows decodes the same values as Dense().
  const int rows[] = {7, 3};
  std::vector<float> out(2 * 784);
  fd.train.Rows(rows, 2, out.data());
  for (int j = 0; j < 784; ++j) {
    CHECK(out[j] == x(7, j));
    CHECK(out[784 + j] == x(3, j));
  }
}

// The only test that reads the full Debian dataset; skipped when absent.
TEST_CASE("LoadData fashion_mnist from the Debian package", "[data][fmnist]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::is_directory(dir)) {
    WARN("skipped: " << dir << " is absent (install dataset-fashion-mnist)");
    return;
  }
  DataConfig c;
  c.dataset = "fashion_mnist";
  const FederatedData fd = LoadData(c, 1);
  CHECK(fd.description == "fashion_mnist: 60000 train / 10000 test, 784 features, 10 classes from " + dir);
  REQUIRE(fd.train.size() == 60000);
  REQUIRE(fd.test.size() == 10000);
  std::vector<int> counts(10, 0);
  for (int label : fd.train.y) ++counts.at(label);
  for (int n : counts) CHECK(n == 6000);

  // The committed sample is the first rows of the package's files.
  DataConfig s;
  s.dataset = "mnist_idx";
  s.path = kSamples + "/fmnist-sample";
  const FederatedData sample = LoadData(s, 1);
  CHECK(sample.train.Dense() == fd.train.Dense().topRows(1000));
  CHECK(sample.test.Dense() == fd.test.Dense().topRows(500));
  CHECK(sample.train.y == std::vector<int>(fd.train.y.begin(), fd.train.y.begin() + 1000));
}

}  // namespace
}  // namespace fedsim
