// The binary data cache: a round trip returns exactly what LoadData returns;
// a stale, damaged, truncated or foreign file is refused with a message.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "test_files.h"

namespace fedsim {
namespace {

using Catch::Matchers::Contains;
using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;
using testing::WriteText;

void CheckSame(const Dataset& a, const Dataset& b) {
  CHECK(a.byte_storage == b.byte_storage);
  CHECK(a.x == b.x);
  CHECK(a.bytes == b.bytes);
  CHECK(a.byte_scale == b.byte_scale);
  CHECK(a.byte_shift == b.byte_shift);
  CHECK(a.y == b.y);
  CHECK(a.user == b.user);
  CHECK(a.num_classes == b.num_classes);
  CHECK(a.shape == b.shape);
  CHECK(a.vocab_size == b.vocab_size);
}

TEST_CASE("data cache: reading it back gives LoadData's result exactly", "[data][cache]") {
  TempDir t;
  // Byte storage with a standardising decode (IDX), and floats with users (CSV with a client column).
  DataConfig idx;
  idx.dataset = "mnist_idx";
  idx.path = std::string(FEDSIM_SOURCE_DIR) + "/datasets/fmnist-sample";
  idx.standardize = true;
  WriteText(t.File("c.csv"), "label,client,a,b\n0,x,1.5,2\n1,y,-3,4.25\n2,x,5,6\n1,z,7,8\n");
  // Seed 9's hold-out takes the only row of one of y and z, and the clients
  // are the ids that keep training rows: two.
  DataConfig csv = testing::CsvClientColumn(t.File("c.csv"), 0.25, 2);
  for (const DataConfig* c : {&idx, &csv}) {
    const FederatedData fd = LoadData(*c, 9);
    WriteDataCache(t.File("cache.bin"), *c, 9, fd);
    DataConfig cached = *c;
    cached.cache = t.File("cache.bin");
    const FederatedData got = LoadData(cached, 9);
    CheckSame(got.train, fd.train);
    CheckSame(got.test, fd.test);
    CHECK(got.num_users == fd.num_users);
    CHECK(got.description == fd.description + " (from the cache " + t.File("cache.bin") + ")");
  }
  CHECK(LoadData(csv, 9).train.user.size() == 3);
}

TEST_CASE("data cache: stale, damaged, truncated and foreign files are refused", "[data][cache]") {
  TempDir t;
  WriteText(t.File("c.csv"), "label,a\n0,1\n1,2\n0,3\n1,4\n0,5\n");
  DataConfig c;
  c.dataset = "csv";
  c.path = t.File("c.csv");
  const std::string file = t.File("cache.bin");
  WriteDataCache(file, c, 1, LoadData(c, 1));
  DataConfig use = c;
  use.cache = file;
  CHECK_NOTHROW(LoadData(use, 1));
  // Keys that act after loading do not make it stale.
  use.partition.kind = "dirichlet";
  use.num_clients = 2;
  use.client_test_fraction = 0.5;
  CHECK_NOTHROW(LoadData(use, 1));

  use.standardize = true;
  CHECK_THROWS_WITH(LoadData(use, 1), Contains("data.cache: " + file + ": stale: it was written for data.standardize "
                                               "= false, this config has true"));
  use.standardize = false;
  CHECK_THROWS_WITH(LoadData(use, 2), Contains("stale: it was written for the data seed = 1, this config has 2"));

  const std::vector<unsigned char> good = ReadBytes(file);
  std::vector<unsigned char> bad = good;
  bad[bad.size() - 10] ^= 0x40;  // a byte of the test features
  WriteBytes(file, bad);
  CHECK_THROWS_WITH(LoadData(use, 1), Contains(file + ": damaged: its CRC-32 does not match"));
  bad.assign(good.begin(), good.end() - 20);
  WriteBytes(file, bad);
  CHECK_THROWS_WITH(LoadData(use, 1), Contains(file + ": damaged or truncated: it ends inside the"));
  bad = good;
  bad[0] = 'X';
  WriteBytes(file, bad);
  CHECK_THROWS_WITH(LoadData(use, 1), Contains(file + ": not a fedsim data cache"));
  std::filesystem::remove(file);
  CHECK_THROWS_WITH(LoadData(use, 1), Contains("data.cache: " + file + ": no such file"));

  WriteBytes(file, good);
  CHECK_NOTHROW(LoadData(use, 1));
  WriteText(t.File("c.csv"), "label,a\n0,1\n1,2\n0,3\n1,4\n0,6\n");  // the source changed
  std::filesystem::last_write_time(t.File("c.csv"), std::filesystem::last_write_time(t.File("c.csv")) +
                                                        std::chrono::seconds(5));
  CHECK_THROWS_WITH(LoadData(use, 1), Contains(t.File("c.csv") + " changed (size or modification time)"));
}

}  // namespace
}  // namespace fedsim
