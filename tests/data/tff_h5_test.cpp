// TFF/FedML federated HDF5 loader: files written here with the HDF5 C API in
// TFF's exact layout (/examples/<client>/<field>), every sample, label and
// client checked against hand-computed values; bad files named with the
// dataset path. Without HDF5 the dataset is refused.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "tff_h5_files.h"
#include "test_files.h"

namespace fedsim {
namespace {

using Catch::Matchers::Contains;
using testing::TempDir;

DataConfig TffConfig(const std::string& dir, const std::string& task, int num_clients = 0) {
  DataConfig cfg;
  cfg.dataset = "tff_h5";
  cfg.path = dir;
  cfg.tff_h5.task = task;
  cfg.partition.kind = "natural";
  cfg.num_clients = num_clients;
  return cfg;
}

#ifdef FEDSIM_HDF5

using testing::H5Writer;

// Token ids in TFF's vocabulary (index in CHAR_VOCAB + 1), by hand.
constexpr int kA = 64, kB = 42, kX = 6, kD = 1, kQ = 68, kZ = 48, kPad = 0, kOov = 87, kBos = 88, kEos = 89;

std::vector<int> Row(const Dataset& ds, int r) {
  std::vector<float> x(static_cast<size_t>(ds.dim()));
  ds.Rows(&r, 1, x.data());
  return std::vector<int>(x.begin(), x.end());
}

// 80 - k pads followed by the given tokens.
std::vector<int> Window(const std::vector<int>& tail) {
  std::vector<int> w(80 - tail.size(), kPad);
  w.insert(w.end(), tail.begin(), tail.end());
  return w;
}

TEST_CASE("tff_h5 shakespeare: TFF's ids, one sample per token after bos, clients sorted", "[data][tff_h5]") {
  TempDir t;
  testing::WriteShakespeareFiles(t.path());
  const FederatedData fd = LoadData(TffConfig(t.path(), "shakespeare", 3), 1);
  const Dataset& tr = fd.train;
  // a_role: "ab" -> 3 samples, "x" -> 2; b_role: 12 characters -> 13; c_role: 100 -> 101.
  REQUIRE(tr.size() == 5 + 13 + 101);
  CHECK(fd.num_users == 3);
  CHECK(tr.dim() == 80);
  CHECK(tr.shape == std::vector<int>{80});
  CHECK(tr.vocab_size == 90);
  CHECK(tr.num_classes == 90);
  CHECK(tr.byte_storage);
  // a_role first (sorted by id), its snippets in file order.
  CHECK(Row(tr, 0) == Window({kBos}));
  CHECK(tr.y[0] == kA);
  CHECK(Row(tr, 1) == Window({kBos, kA}));
  CHECK(tr.y[1] == kB);
  CHECK(Row(tr, 2) == Window({kBos, kA, kB}));
  CHECK(tr.y[2] == kEos);
  CHECK(Row(tr, 3) == Window({kBos}));
  CHECK(tr.y[3] == kX);
  CHECK(Row(tr, 4) == Window({kBos, kX}));
  CHECK(tr.y[4] == kEos);
  for (int r = 0; r < 5; ++r) CHECK(tr.user[r] == 0);
  for (int r = 5; r < 18; ++r) CHECK(tr.user[r] == 1);
  // b_role's "hello world!": h e l l o ' ' w o r l d ! -> the last character is '!' (id 79).
  CHECK(tr.y[5] == 2);       // 'h'
  CHECK(tr.y[16] == 79);     // '!'
  CHECK(tr.y[17] == kEos);
  // c_role "abab...": sample j predicts token j; the window is the 80 tokens before it.
  const int c0 = 18;
  for (int r = c0; r < tr.size(); ++r) CHECK(tr.user[r] == 2);
  std::vector<int> w79(1, kBos);  // j = 80: bos and characters 0..78
  for (int i = 0; i < 79; ++i) w79.push_back(i % 2 == 0 ? kA : kB);
  CHECK(Row(tr, c0 + 79) == w79);
  CHECK(tr.y[c0 + 79] == kB);  // character 79
  std::vector<int> w80;        // j = 81: characters 0..79, bos has left the window
  for (int i = 0; i < 80; ++i) w80.push_back(i % 2 == 0 ? kA : kB);
  CHECK(Row(tr, c0 + 80) == w80);
  CHECK(tr.y[c0 + 80] == kA);
  std::vector<int> wlast;  // j = 101: characters 20..99, then eos
  for (int i = 20; i < 100; ++i) wlast.push_back(i % 2 == 0 ? kA : kB);
  CHECK(Row(tr, tr.size() - 1) == wlast);
  CHECK(tr.y.back() == kEos);

  // Test: a_role "d" (2), c_role "q}" (3; '}' is out of vocabulary), z_only "zz" (3, no client).
  const Dataset& te = fd.test;
  REQUIRE(te.size() == 8);
  CHECK(te.user == std::vector<int>{0, 0, 2, 2, 2, -1, -1, -1});
  CHECK(te.y == std::vector<int>{kD, kEos, kQ, kOov, kEos, kZ, kZ, kEos});
  CHECK(Row(te, 4) == Window({kBos, kQ, kOov}));
  CHECK_THAT(fd.description, Contains("3 of 3 training clients") && Contains("4 / 3 snippets") &&
                                 Contains("1 out-of-vocabulary bytes"));

  // The natural partition: one client per id, in sorted order.
  const Partition p = MakePartition(tr, 3, PartitionConfig{}, 1);
  CHECK(p[0].size() == 5);
  CHECK(p[1].size() == 13);
  CHECK(p[2].size() == 101);
}

TEST_CASE("tff_h5 shakespeare every_step: TFF's windows of 81 ids, every target predicted", "[data][tff_h5]") {
  TempDir t;
  testing::WriteShakespeareFiles(t.path());
  DataConfig cfg = TffConfig(t.path(), "shakespeare", 3);
  cfg.tff_h5.targets = "every_step";
  const FederatedData fd = LoadData(cfg, 1);
  const Dataset& tr = fd.train;
  // a_role: "ab" -> [bos a b eos] and "x" -> [bos x eos], one row each; b_role: 14 ids, one row;
  // c_role: 102 ids -> rows of 81 and 21 (+ 60 pads).
  REQUIRE(tr.size() == 5);
  CHECK(tr.next_token);
  CHECK(tr.pad_id == kPad);
  CHECK(tr.dim() == 81);
  CHECK(tr.shape == std::vector<int>{81});
  CHECK(tr.num_classes == 90);
  CHECK(tr.user == std::vector<int>{0, 0, 1, 2, 2});
  auto padded = [](std::vector<int> ids) {
    ids.resize(81, kPad);
    return ids;
  };
  CHECK(Row(tr, 0) == padded({kBos, kA, kB, kEos}));
  CHECK(Row(tr, 1) == padded({kBos, kX, kEos}));
  // y: a row's first target.
  CHECK(tr.y == std::vector<int>{kA, kX, 2, kA, kB});
  std::vector<int> c_first{kBos};
  for (int i = 0; i < 80; ++i) c_first.push_back(i % 2 == 0 ? kA : kB);
  CHECK(Row(tr, 3) == c_first);
  std::vector<int> c_second;  // characters 80..99, eos, pads
  for (int i = 80; i < 100; ++i) c_second.push_back(i % 2 == 0 ? kA : kB);
  c_second.push_back(kEos);
  CHECK(Row(tr, 4) == padded(c_second));
  const Dataset& te = fd.test;
  REQUIRE(te.size() == 3);
  CHECK(te.user == std::vector<int>{0, 2, -1});
  CHECK(Row(te, 1) == padded({kBos, kQ, kOov, kEos}));
  CHECK_THAT(fd.description, Contains("rows of 80 + 1 ids, every step predicted"));

  // sequence_length cuts shorter windows: c_role's 102 ids in rows of 11.
  cfg.tff_h5.sequence_length = 10;
  const FederatedData short_rows = LoadData(cfg, 1);
  CHECK(short_rows.train.dim() == 11);
  CHECK(short_rows.train.size() == 1 + 1 + 2 + 10);  // a_role 1 + 1, b_role 14 ids -> 2, c_role 102 -> 10
  // Label-based partitions are refused on next-token data.
  PartitionConfig dir;
  dir.kind = "dirichlet";
  CHECK_THROWS_WITH(MakePartition(tr, 3, dir, 1), Contains("data.partition.kind: dirichlet splits the data by label"));
}

TEST_CASE("tff_h5 stackoverflow: TFF's word ids, bos/eos, the cut at L words, the counted vocabulary",
          "[data][tff_h5]") {
  TempDir t;
  testing::WriteStackOverflowFiles(t.path());
  DataConfig cfg = TffConfig(t.path(), "stackoverflow", 3);
  cfg.tff_h5.vocab_size = 3;
  cfg.tff_h5.sequence_length = 4;
  const FederatedData fd = LoadData(cfg, 1);
  const Dataset& tr = fd.train;
  // Clients using each word: the 2, cat 2, every other word (the empty one too) 1; ties in byte order, so the
  // vocabulary is cat = 1, the = 2, "" = 3; oov 4, bos 5, eos 6.
  constexpr int kCat = 1, kThe = 2, kEmpty = 3, kOovW = 4, kBosW = 5, kEosW = 6;
  REQUIRE(tr.size() == 5);
  CHECK(tr.next_token);
  CHECK(tr.vocab_size == 7);
  CHECK(tr.num_classes == 7);
  CHECK(tr.dim() == 5);
  CHECK(tr.shape == std::vector<int>{5});
  CHECK(!tr.byte_storage);
  CHECK(tr.user == std::vector<int>{0, 0, 1, 1, 2});
  CHECK(Row(tr, 0) == std::vector<int>{kBosW, kThe, kThe, kOovW, kEosW});     // u1 "the the dog"
  CHECK(Row(tr, 1) == std::vector<int>{kBosW, kCat, kEmpty, kOovW, kEosW});   // u1 "cat  dog"
  CHECK(Row(tr, 2) == std::vector<int>{kBosW, kThe, kCat, kOovW, kEosW});     // u2 "the cat sat"
  CHECK(Row(tr, 3) == std::vector<int>{kBosW, kOovW, kOovW, kOovW, kOovW});   // u2 cut at 4 words: no eos
  CHECK(Row(tr, 4) == std::vector<int>{kBosW, kEosW, 0, 0, 0});               // u3 "": no words
  CHECK(tr.y == std::vector<int>{kThe, kCat, kThe, kOovW, kEosW});
  const Dataset& te = fd.test;
  REQUIRE(te.size() == 2);
  CHECK(te.user == std::vector<int>{0, -1});
  CHECK(Row(te, 0) == std::vector<int>{kBosW, kOovW, kOovW, kEosW, 0});  // u1 "dog unknownword"
  CHECK(Row(te, 1) == std::vector<int>{kBosW, kCat, kEosW, 0, 0});       // zz "cat"
  CHECK_THAT(fd.description, Contains("vocabulary of 3 words (counted over 3 clients)") &&
                                 Contains("5 / 2 sentences"));
  // Kept training words: 3 + 3 + 3 + 4 = 13, of which dog, dog, sat and a..d are out of the vocabulary (7).
  CHECK_THAT(fd.description, Contains("53.85% of the kept training words out of it"));

  // Partition statistics count every non-pad target as a label: u1's targets 2 2 4 6 | 1 3 4 6 (5 distinct ids),
  // u2's 2 1 4 6 | 4 4 4 4 (4), u3's 6 (1).
  const nlohmann::json st = PartitionStats(tr, MakePartition(tr, 3, PartitionConfig{}, 1), nullptr);
  CHECK(st["labels_per_client"]["min"] == 1);
  CHECK(st["labels_per_client"]["median"] == 4.0);
  CHECK(st["labels_per_client"]["max"] == 5);

  // TFF's defaults: 20 words, eos only after fewer than 20.
  DataConfig dflt = TffConfig(t.path(), "stackoverflow", 3);
  dflt.tff_h5.vocab_size = 3;
  const Dataset long_rows = LoadData(dflt, 1).train;
  CHECK(long_rows.dim() == 21);
  std::vector<int> cut(21, kOovW);  // bos and 20 of the 22 words a..v, all out of vocabulary
  cut[0] = kBosW;
  CHECK(Row(long_rows, 3) == cut);

  // A word-count file: its first vocab_size words, in its order.
  testing::WriteText(t.path() + "/counts.txt", "cat 10\nthe\t7\ndog 3\nsat 1\n");
  cfg.tff_h5.vocab = "counts.txt";
  const FederatedData from_file = LoadData(cfg, 1);
  CHECK(Row(from_file.train, 0) == std::vector<int>{kBosW, 2, 2, 3, kEosW});  // the the dog
  CHECK_THAT(from_file.description, Contains("from counts.txt"));
  cfg.tff_h5.vocab_size = 5;
  CHECK_THROWS_WITH(LoadData(cfg, 1), Contains("counts.txt: 4 words, fewer than data.tff_h5.vocab_size = 5"));
  testing::WriteText(t.path() + "/bad.txt", "cat 10\nthe seven\n");
  cfg.tff_h5.vocab = "bad.txt";
  cfg.tff_h5.vocab_size = 2;
  CHECK_THROWS_WITH(LoadData(cfg, 1), Contains("bad.txt: line 2: expected 'word count'"));
  testing::WriteText(t.path() + "/twice.txt", "cat 10\ncat 7\n");
  cfg.tff_h5.vocab = "twice.txt";
  CHECK_THROWS_WITH(LoadData(cfg, 1), Contains("twice.txt: line 2: \"cat\" is listed twice"));
  cfg.tff_h5.vocab = "";
  cfg.tff_h5.targets = "last";
  CHECK_THROWS_WITH(LoadData(cfg, 1), Contains("data.tff_h5.targets: \"last\" is not a framing of stackoverflow"));
  // The token keys belong to the token tasks, the vocabulary keys to stackoverflow.
  DataConfig emnist = TffConfig(t.path(), "emnist", 1);
  emnist.tff_h5.targets = "every_step";
  CHECK_THROWS_WITH(LoadData(emnist, 1), Contains("data.tff_h5.targets: only the token tasks"));
  DataConfig sh = TffConfig(t.path(), "shakespeare", 1);
  sh.tff_h5.vocab_size = 50;
  CHECK_THROWS_WITH(LoadData(sh, 1), Contains("data.tff_h5.vocab_size: only stackoverflow has a word vocabulary"));
}

TEST_CASE("tff_h5: data.num_clients takes the first ids; more than there are is an error", "[data][tff_h5]") {
  TempDir t;
  testing::WriteShakespeareFiles(t.path());
  const FederatedData fd = LoadData(TffConfig(t.path(), "shakespeare", 2), 1);
  CHECK(fd.num_users == 2);
  CHECK(fd.train.size() == 5 + 13);
  // Only a_role's test rows: c_role is not kept, z_only is left out with it.
  CHECK(fd.test.user == std::vector<int>{0, 0});
  CHECK_THROWS_WITH(LoadData(TffConfig(t.path(), "shakespeare", 4), 1),
                    Contains("data.num_clients: 4 clients but") && Contains("has 3 clients with training examples"));
  // Another partitioner pools every client's rows.
  DataConfig pooled = TffConfig(t.path(), "shakespeare", 5);
  pooled.partition.kind = "iid";
  CHECK(LoadData(pooled, 1).train.size() == 119);
}

TEST_CASE("tff_h5 emnist: pixels as bytes k/255, labels, shape; digits; a non-k/255 pixel keeps floats",
          "[data][tff_h5]") {
  TempDir t;
  testing::WriteEmnistFiles(t.path());
  const FederatedData fd = LoadData(TffConfig(t.path(), "emnist", 2), 1);
  const Dataset& tr = fd.train;
  REQUIRE(tr.size() == 5);
  CHECK(tr.byte_storage);
  CHECK(tr.shape == std::vector<int>{1, 28, 28});
  CHECK(tr.num_classes == 62);
  // f0000_00 (examples 2, 3, 4) sorts before f0001_01 (0, 1).
  const std::vector<int> ids{2, 3, 4, 0, 1};
  CHECK(tr.user == std::vector<int>{0, 0, 0, 1, 1});
  for (int r = 0; r < 5; ++r) {
    INFO("row " << r);
    CHECK(tr.y[r] == testing::EmnistLabel(ids[r], 62));
    int bad = 0;
    for (int j = 0; j < 784; ++j) bad += tr.bytes[static_cast<size_t>(r) * 784 + j] != (3 * ids[r] + j) % 256;
    CHECK(bad == 0);
  }
  std::vector<float> row(784);
  int r3 = 3;
  tr.Rows(&r3, 1, row.data());
  CHECK(row[5] == Approx(testing::EmnistPixel(0, 5)));
  REQUIRE(fd.test.size() == 1);
  CHECK(fd.test.user[0] == 0);
  CHECK(fd.test.y[0] == testing::EmnistLabel(10, 62));

  TempDir d;
  testing::WriteEmnistFiles(d.path(), "fed_emnist_digitsonly", 10);
  const FederatedData digits = LoadData(TffConfig(d.path(), "emnist_digits", 2), 1);
  CHECK(digits.train.num_classes == 10);
  CHECK(digits.train.y[0] == testing::EmnistLabel(2, 10));
  // The 62-class files read as digits: a label >= 10 is an error naming the dataset.
  DataConfig wrong = TffConfig(d.path(), "emnist_digits", 2);
  wrong.tff_h5.train_file = t.File("fed_emnist_train.h5");
  CHECK_THROWS_WITH(LoadData(wrong, 1), Contains(t.File("fed_emnist_train.h5") + ": /examples/f0000_00/label: label "
                                                                                  "11 of example 0 is not in [0, 10)"));

  TempDir f;
  testing::WriteEmnistFiles(f.path());  // the test file; the training file is replaced
  {
    H5Writer w(f.File("fed_emnist_train.h5"));
    std::vector<float> px(2 * 784, 1.0f);
    px[784 + 7] = 0.5f;  // not k/255
    w.Floats("c", "pixels", {2, 28, 28}, px);
    w.Ints("c", "label", {2}, {1, 2}, H5T_STD_I32LE);
  }
  const FederatedData fl = LoadData(TffConfig(f.path(), "emnist", 1), 1);
  CHECK_FALSE(fl.train.byte_storage);
  REQUIRE(fl.train.size() == 2);
  CHECK(fl.train.x(0, 0) == 1.0f);
  CHECK(fl.train.x(1, 7) == 0.5f);
  CHECK(fl.train.x(1, 8) == 1.0f);
  // The test file's pixels are all k/255, yet both splits share one storage,
  // so standardisation (which needs that) works.
  CHECK_FALSE(fl.test.byte_storage);
  const FederatedData bytes = LoadData(TffConfig(t.path(), "emnist", 1), 1);
  REQUIRE(bytes.test.byte_storage);
  REQUIRE(fl.test.size() == bytes.test.size());
  CHECK((fl.test.x - bytes.test.Dense()).cwiseAbs().maxCoeff() <= 1e-7f);
  DataConfig standardized = TffConfig(f.path(), "emnist", 1);
  standardized.standardize = true;
  CHECK_NOTHROW(LoadData(standardized, 1));
}

TEST_CASE("tff_h5 cifar100: HWC bytes to CHW, fine and coarse labels, ids sorted as strings; test clients central",
          "[data][tff_h5]") {
  TempDir t;
  testing::WriteCifar100Files(t.path());
  for (const std::string labels : {"fine", "coarse"}) {
    DataConfig cfg = TffConfig(t.path(), "cifar100", 4);
    cfg.cifar100.labels = labels;
    const FederatedData fd = LoadData(cfg, 1);
    const Dataset& tr = fd.train;
    REQUIRE(tr.size() == 6);
    CHECK(tr.shape == std::vector<int>{3, 32, 32});
    CHECK(tr.num_classes == (labels == "fine" ? 100 : 20));
    // Clients "0", "1", "10", "2": examples 0, 1 | 2 | 3 | 4, 5.
    const std::vector<int> ids{0, 1, 2, 3, 4, 5};
    CHECK(tr.user == std::vector<int>{0, 0, 1, 2, 3, 3});
    for (int r = 0; r < 6; ++r) {
      INFO("row " << r << " labels " << labels);
      CHECK(tr.y[r] == (labels == "fine" ? testing::CifarFine(ids[r]) : testing::CifarCoarse(ids[r])));
      int bad = 0;
      for (int c = 0; c < 3; ++c) {
        for (int h = 0; h < 32; ++h) {
          for (int w = 0; w < 32; ++w) {
            const size_t at = static_cast<size_t>(r) * 3072 + c * 1024 + h * 32 + w;
            bad += tr.bytes[at] != testing::CifarPixel(ids[r], h, w, c);
          }
        }
      }
      CHECK(bad == 0);
    }
    // The test file's clients are another population: central test rows only,
    // even where an id ("0", "10") is also a training id.
    CHECK(fd.test.user == std::vector<int>{-1, -1});
    CHECK(fd.test.y[1] == (labels == "fine" ? testing::CifarFine(21) : testing::CifarCoarse(21)));
  }
  // A subset of the training clients keeps the whole central test set.
  const FederatedData sub = LoadData(TffConfig(t.path(), "cifar100", 2), 1);
  CHECK(sub.train.size() == 3);
  CHECK(sub.test.size() == 2);
}

TEST_CASE("tff_h5: bad files are errors naming the file and the dataset path", "[data][tff_h5]") {
  TempDir t;
  testing::WriteShakespeareFiles(t.path());
  const std::string train = t.File("shakespeare_train.h5");
  auto load = [&] { return LoadData(TffConfig(t.path(), "shakespeare", 3), 1); };

  SECTION("a missing test file") {
    std::filesystem::remove(t.File("shakespeare_test.h5"));
    CHECK_THROWS_AS(load(), InputError);
    CHECK_THROWS_WITH(load(), Contains("data.tff_h5.test_file: " + t.File("shakespeare_test.h5") + ": no such file"));
  }
  SECTION("not an HDF5 file") {
    testing::WriteText(train, "not hdf5\n");
    CHECK_THROWS_WITH(load(), Contains(train + ": not an HDF5 file"));
  }
  SECTION("no /examples") {
    { H5Writer w(train, false); }
    CHECK_THROWS_WITH(load(), Contains(train + ": no group /examples"));
  }
  SECTION("a client without the task's field") {
    {
      H5Writer w(train);
      w.Strings("a_role", "text", {"ab"}, false);
    }
    CHECK_THROWS_WITH(load(), Contains(train + ": /examples/a_role/snippets: no such dataset"));
  }
  SECTION("a field of the wrong type") {
    {
      H5Writer w(train);
      w.Floats("a_role", "snippets", {2}, {1.0f, 2.0f});
    }
    CHECK_THROWS_WITH(load(), Contains(train + ": /examples/a_role/snippets: not strings"));
  }
  SECTION("a field of the wrong shape, and labels that do not match the examples") {
    TempDir e;
    testing::WriteEmnistFiles(e.path());
    const std::string etrain = e.File("fed_emnist_train.h5");
    {
      H5Writer w(etrain);
      w.Floats("f", "pixels", {1, 28, 27}, std::vector<float>(28 * 27, 0.0f));
      w.Ints("f", "label", {1}, {3});
    }
    CHECK_THROWS_WITH(LoadData(TffConfig(e.path(), "emnist", 1), 1),
                      Contains(etrain + ": /examples/f/pixels: shape [1, 28, 27], expected [n, 28, 28]"));
    {
      H5Writer w(etrain);
      w.Floats("f", "pixels", {1, 28, 28}, std::vector<float>(784, 0.0f));
      w.Ints("f", "label", {2}, {3, 4});
    }
    CHECK_THROWS_WITH(LoadData(TffConfig(e.path(), "emnist", 1), 1),
                      Contains(etrain + ": /examples/f/label: 2 labels for 1 examples"));
    {
      H5Writer w(etrain);
      w.Floats("f", "pixels", {1, 28, 28}, std::vector<float>(784, 2.0f));
      w.Ints("f", "label", {1}, {3});
    }
    CHECK_THROWS_WITH(LoadData(TffConfig(e.path(), "emnist", 1), 1),
                      Contains(etrain + ": /examples/f/pixels: example 0, pixel 0: 2 is not in [0, 1]"));
    {
      H5Writer w(etrain);  // labels as [n, 1] are read too
      w.Floats("f", "pixels", {1, 28, 28}, std::vector<float>(784, 0.0f));
      w.Ints("f", "label", {1, 1}, {3});
    }
    CHECK(LoadData(TffConfig(e.path(), "emnist", 1), 1).train.y == std::vector<int>{3});
  }
  SECTION("a stackoverflow file whose tokens are not strings") {
    testing::WriteStackOverflowFiles(t.path());
    {
      H5Writer w(t.File("stackoverflow_train.h5"));
      w.Floats("u1", "tokens", {1}, {1.0f});
    }
    CHECK_THROWS_WITH(LoadData(TffConfig(t.path(), "stackoverflow", 1), 1),
                      Contains(t.File("stackoverflow_train.h5") + ": /examples/u1/tokens: not strings"));
  }
}

TEST_CASE("tff_h5: explicit file keys, absolute or relative to data.path", "[data][tff_h5]") {
  TempDir t;
  testing::WriteShakespeareFiles(t.path());
  std::filesystem::rename(t.File("shakespeare_train.h5"), t.File("tr.h5"));
  DataConfig cfg = TffConfig("", "shakespeare", 3);
  cfg.tff_h5.train_file = t.File("tr.h5");
  cfg.tff_h5.test_file = t.File("shakespeare_test.h5");
  CHECK(LoadData(cfg, 1).train.size() == 119);
  cfg = TffConfig(t.path(), "shakespeare", 3);
  cfg.tff_h5.train_file = "tr.h5";
  CHECK(LoadData(cfg, 1).train.size() == 119);
}

#else

TEST_CASE("tff_h5: a build without HDF5 refuses the dataset", "[data][tff_h5]") {
  TempDir t;
  CHECK_THROWS_AS(LoadData(TffConfig(t.path(), "shakespeare", 3), 1), InputError);
  CHECK_THROWS_WITH(LoadData(TffConfig(t.path(), "shakespeare", 3), 1), Contains("needs fedsim built with HDF5"));
}

#endif

}  // namespace
}  // namespace fedsim
