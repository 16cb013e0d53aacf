// CIFAR-10/100 binary loader: records written here in the archive's exact
// layout, every label and pixel checked; truncated and wrong files named with
// the record.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "test_files.h"

namespace fedsim {
namespace {

using Catch::Matchers::Contains;
using testing::TempDir;
using testing::WriteBytes;

// Pixel j of image `id`: (id * 7 + j) mod 256; the red plane is j < 1024.
uint8_t Pixel(int id, int j) { return static_cast<uint8_t>((id * 7 + j) % 256); }

std::vector<unsigned char> Record(const std::vector<int>& labels, int id) {
  std::vector<unsigned char> r(labels.begin(), labels.end());
  for (int j = 0; j < 3072; ++j) r.push_back(Pixel(id, j));
  return r;
}

// A CIFAR-10 file of records with the given labels; image ids from first_id.
std::vector<unsigned char> Cifar10File(const std::vector<int>& labels, int first_id) {
  std::vector<unsigned char> f;
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto r = Record({labels[i]}, first_id + static_cast<int>(i));
    f.insert(f.end(), r.begin(), r.end());
  }
  return f;
}

void CheckImage(const Dataset& ds, int row, int id) {
  INFO("row " << row << " image " << id);
  int bad = 0;
  for (int j = 0; j < 3072; ++j) bad += ds.bytes[static_cast<size_t>(row) * 3072 + j] != Pixel(id, j);
  CHECK(bad == 0);
}

void WriteCifar10(const TempDir& t) {
  // data_batch_b holds images 10 b + 0, 10 b + 1 with labels b, 9 - b.
  for (int b = 1; b <= 5; ++b) {
    WriteBytes(t.File(fmt::format("data_batch_{}.bin", b)), Cifar10File({b, 9 - b}, 10 * b));
  }
  WriteBytes(t.File("test_batch.bin"), Cifar10File({3, 0, 9}, 100));
}

TEST_CASE("LoadCifar cifar10: batches 1..5 in order, test_batch, bytes as stored", "[data][cifar]") {
  TempDir t;
  WriteCifar10(t);
  const FederatedData fd = LoadCifar("cifar10", t.path(), "fine");
  CHECK(fd.train.y == std::vector<int>{1, 8, 2, 7, 3, 6, 4, 5, 5, 4});
  for (int b = 1; b <= 5; ++b) {
    CheckImage(fd.train, 2 * (b - 1), 10 * b);
    CheckImage(fd.train, 2 * (b - 1) + 1, 10 * b + 1);
  }
  CHECK(fd.test.y == std::vector<int>{3, 0, 9});
  for (int i = 0; i < 3; ++i) CheckImage(fd.test, i, 100 + i);
  for (const Dataset* ds : {&fd.train, &fd.test}) {
    CHECK(ds->byte_storage);
    CHECK(ds->shape == std::vector<int>{3, 32, 32});
    CHECK(ds->dim() == 3072);
    CHECK(ds->num_classes == 10);
    CHECK(ds->user.empty());
  }
  // Decoded to [0, 1]: image 100, pixel 1025 (green plane, row 0, column 1) = (700 + 1025) mod 256 = 189.
  std::vector<float> row(3072);
  const int first = 0;
  fd.test.Rows(&first, 1, row.data());
  CHECK(row[1025] == Approx(189.0 / 255.0));

  // Every partitioner takes it; e.g. Dirichlet over 2 clients keeps every row once.
  PartitionConfig pc;
  pc.kind = "dirichlet";
  pc.min_samples = 0;
  const Partition p = MakePartition(fd.train, 2, pc, 3);
  CHECK(p[0].size() + p[1].size() == 10);

  DataConfig c;
  c.dataset = "cifar10";
  c.path = t.path();
  CHECK_THAT(LoadData(c, 1).description, Contains("cifar10: 10 train / 3 test, 3072 features, 10 classes from "));
}

TEST_CASE("LoadCifar cifar100: fine or coarse labels", "[data][cifar]") {
  TempDir t;
  std::vector<unsigned char> train, test;
  for (const auto& r : {Record({19, 99}, 1), Record({0, 42}, 2), Record({7, 0}, 3)}) {
    train.insert(train.end(), r.begin(), r.end());
  }
  test = Record({5, 55}, 4);
  WriteBytes(t.File("train.bin"), train);
  WriteBytes(t.File("test.bin"), test);
  const FederatedData fine = LoadCifar("cifar100", t.path(), "fine");
  CHECK(fine.train.y == std::vector<int>{99, 42, 0});
  CHECK(fine.test.y == std::vector<int>{55});
  CHECK(fine.train.num_classes == 100);
  for (int i = 0; i < 3; ++i) CheckImage(fine.train, i, i + 1);
  CheckImage(fine.test, 0, 4);
  const FederatedData coarse = LoadCifar("cifar100", t.path(), "coarse");
  CHECK(coarse.train.y == std::vector<int>{19, 0, 7});
  CHECK(coarse.test.y == std::vector<int>{5});
  CHECK(coarse.train.num_classes == 20);
  CHECK(coarse.train.bytes == fine.train.bytes);
}

TEST_CASE("LoadCifar: truncated and wrong files name the file and record", "[data][cifar]") {
  TempDir t;
  WriteCifar10(t);
  const std::string b3 = t.File("data_batch_3.bin");
  SECTION("a truncated last record") {
    std::vector<unsigned char> f = Cifar10File({1, 2}, 0);
    f.resize(f.size() - 100);
    WriteBytes(b3, f);
    CHECK_THROWS_WITH(LoadCifar("cifar10", t.path(), "fine"),
                      Contains(b3 + ": record 2 is truncated: 2973 of its 3073 bytes"));
  }
  SECTION("CIFAR-100 records read as CIFAR-10: a wrong record size") {
    WriteBytes(b3, Record({1, 2}, 0));  // 3074 bytes
    CHECK_THROWS_WITH(LoadCifar("cifar10", t.path(), "fine"), Contains(b3 + ": record 2 is truncated: 1 of its 3073"));
  }
  SECTION("a label out of range") {
    WriteBytes(b3, Cifar10File({1, 10}, 0));
    CHECK_THROWS_WITH(LoadCifar("cifar10", t.path(), "fine"), Contains(b3 + ": record 2: label 10 is not below 10"));
  }
  SECTION("missing and empty files, a missing folder") {
    std::filesystem::remove(t.File("test_batch.bin"));
    CHECK_THROWS_WITH(LoadCifar("cifar10", t.path(), "fine"), Contains(t.File("test_batch.bin") + ": no such file"));
    WriteBytes(b3, {});
    CHECK_THROWS_WITH(LoadCifar("cifar10", t.path(), "fine"), Contains(b3 + ": empty file"));
    CHECK_THROWS_WITH(LoadCifar("cifar10", t.File("nowhere"), "fine"), Contains("cifar-10-batches-bin"));
  }
  SECTION("CIFAR-100's fine label out of range") {
    WriteBytes(t.File("train.bin"), Record({3, 100}, 0));
    WriteBytes(t.File("test.bin"), Record({3, 1}, 0));
    CHECK_THROWS_WITH(LoadCifar("cifar100", t.path(), "fine"),
                      Contains(t.File("train.bin") + ": record 1: label 100 is not below 100"));
  }
}

}  // namespace
}  // namespace fedsim
