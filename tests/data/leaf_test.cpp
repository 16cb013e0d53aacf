// LEAF JSON loader: small files written here in LEAF's exact layout, every
// sample, label and client checked by value; hostile files name the file,
// user and sample.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "test_files.h"

namespace fedsim {
namespace {

using Catch::Matchers::Contains;
using nlohmann::json;
using testing::TempDir;
using testing::WriteText;

// A FEMNIST sample: pixel j is k/255 with k = (base + 3 j) mod 256, written
// as Python's json.dump writes a float (shortest round-trip form).
int PixelK(int base, int j) { return (base + 3 * j) % 256; }

std::string FemnistSample(int base, int pixels = 784) {
  std::string s = "[";
  for (int j = 0; j < pixels; ++j) s += fmt::format("{}{}", j ? ", " : "", PixelK(base, j) / 255.0);
  return s + "]";
}

// One user's entry: "name": {"x": [...], "y": [...]}.
std::string User(const std::string& name, const std::vector<std::string>& xs, const std::string& ys) {
  std::string x;
  for (size_t i = 0; i < xs.size(); ++i) x += (i ? ", " : "") + xs[i];
  return fmt::format("\"{}\": {{\"x\": [{}], \"y\": [{}]}}", name, x, ys);
}

// A LEAF file: users, num_samples (as given, not trusted), optional
// hierarchies, user_data.
std::string LeafFile(const std::vector<std::string>& users, const std::string& num_samples,
                     const std::vector<std::string>& entries, bool hierarchies = false) {
  std::string u, d;
  for (size_t i = 0; i < users.size(); ++i) u += fmt::format("{}\"{}\"", i ? ", " : "", users[i]);
  for (size_t i = 0; i < entries.size(); ++i) d += (i ? ", " : "") + entries[i];
  return fmt::format("{{\"users\": [{}], \"num_samples\": [{}], {}\"user_data\": {{{}}}}}", u, num_samples,
                     hierarchies ? "\"hierarchies\": [[\"a\", 1], \"b\"], " : "", d);
}

struct LeafDir {
  TempDir tmp;
  LeafDir() {
    std::filesystem::create_directories(tmp.File("train"));
    std::filesystem::create_directories(tmp.File("test"));
  }
  void Put(const std::string& rel, const std::string& text) const { WriteText(tmp.File(rel), text); }
  std::string path() const { return tmp.path(); }
};

LeafConfig Task(const std::string& task) {
  LeafConfig c;
  c.task = task;
  return c;
}

// Train: a.json holds w2 (2 samples) and w0 (1), with hierarchies; b.json
// holds w1 (1). Test: a.json holds w0 (1) and w9, a user without training
// data (1); b.json holds w1 (2). w2 has no test rows.
void WriteFemnist(const LeafDir& d) {
  d.Put("train/a.json", LeafFile({"w2", "w0"}, "2, 1",
                                 {User("w2", {FemnistSample(10), FemnistSample(20)}, "61, 0"),
                                  User("w0", {FemnistSample(30)}, "5")},
                                 true));
  d.Put("train/b.json", LeafFile({"w1"}, "1", {User("w1", {FemnistSample(40)}, "7")}));
  d.Put("test/a.json", LeafFile({"w0", "w9"}, "1, 1",
                                {User("w0", {FemnistSample(50)}, "3"), User("w9", {FemnistSample(60)}, "2")}));
  d.Put("test/b.json",
        LeafFile({"w1"}, "2", {User("w1", {FemnistSample(70), FemnistSample(80)}, "1, 2")}, true));
  d.Put("test/notes.txt", "not a json file: ignored");
}

void CheckFemnistRow(const Dataset& ds, int row, int base) {
  INFO("row " << row << " base " << base);
  REQUIRE(ds.byte_storage);
  const uint8_t* b = ds.bytes.data() + static_cast<size_t>(row) * 784;
  int bad = 0;
  for (int j = 0; j < 784; ++j) bad += b[j] != PixelK(base, j);
  CHECK(bad == 0);
  std::vector<float> decoded(784);
  ds.Rows(&row, 1, decoded.data());
  CHECK(decoded[1] == Approx(PixelK(base, 1) / 255.0).epsilon(1e-6));
  CHECK(decoded[783] == Approx(PixelK(base, 783) / 255.0).epsilon(1e-6));
}

TEST_CASE("LoadLeaf femnist: files merged, users sorted, per-user test rows kept", "[data][leaf]") {
  LeafDir d;
  WriteFemnist(d);
  const FederatedData fd = LoadLeaf(Task("femnist"), d.path(), 0);
  // Rows in file order (a.json: w2, w2, w0; b.json: w1); clients by sorted
  // name: w0 -> 0, w1 -> 1, w2 -> 2.
  CHECK(fd.train.y == std::vector<int>{61, 0, 5, 7});
  CHECK(fd.train.user == std::vector<int>{2, 2, 0, 1});
  CheckFemnistRow(fd.train, 0, 10);
  CheckFemnistRow(fd.train, 1, 20);
  CheckFemnistRow(fd.train, 2, 30);
  CheckFemnistRow(fd.train, 3, 40);
  // Test: w0 -> 0, w9 has no training data -> -1, w1 -> 1.
  CHECK(fd.test.y == std::vector<int>{3, 2, 1, 2});
  CHECK(fd.test.user == std::vector<int>{0, -1, 1, 1});
  CheckFemnistRow(fd.test, 0, 50);
  CheckFemnistRow(fd.test, 1, 60);
  CheckFemnistRow(fd.test, 2, 70);
  CheckFemnistRow(fd.test, 3, 80);
  for (const Dataset* ds : {&fd.train, &fd.test}) {
    CHECK(ds->num_classes == 62);
    CHECK(ds->shape == std::vector<int>{1, 28, 28});
    CHECK(ds->dim() == 784);
    CHECK(ds->vocab_size == 0);
    CHECK(ds->byte_scale[0] == 1.0f / 255.0f);
    CHECK(ds->byte_shift[0] == 0.0f);
  }
  CHECK(fd.num_users == 3);
  CHECK_THAT(fd.description, Contains("3 of 3 training users") && Contains("1 test-only"));

  // The natural partition: client k holds the rows of user k.
  PartitionConfig pc;
  pc.kind = "natural";
  const Partition p = MakePartition(fd.train, 3, pc, 1);
  CHECK(p == Partition{{2}, {3}, {0, 1}});
}

TEST_CASE("LoadLeaf: the first N users by name, and their test rows only", "[data][leaf]") {
  LeafDir d;
  WriteFemnist(d);
  const FederatedData fd = LoadLeaf(Task("femnist"), d.path(), 2);
  CHECK(fd.train.y == std::vector<int>{5, 7});
  CHECK(fd.train.user == std::vector<int>{0, 1});
  CheckFemnistRow(fd.train, 0, 30);
  CheckFemnistRow(fd.train, 1, 40);
  CHECK(fd.test.y == std::vector<int>{3, 1, 2});
  CHECK(fd.test.user == std::vector<int>{0, 1, 1});
  CheckFemnistRow(fd.test, 0, 50);
  CheckFemnistRow(fd.test, 2, 80);
  CHECK(fd.num_users == 2);
  CHECK_THROWS_WITH(LoadLeaf(Task("femnist"), d.path(), 4),
                    Contains("data.num_clients: 4 clients") && Contains("has 3 training users"));

  // Through LoadData: a natural partition takes num_clients users.
  DataConfig c;
  c.dataset = "leaf";
  c.path = d.path();
  c.num_clients = 2;
  c.partition.kind = "natural";
  const FederatedData via = LoadData(c, 1);
  CHECK(via.train.user == std::vector<int>{0, 1});
  CHECK_THAT(via.description, Contains("leaf: 2 train / 3 test, 784 features, 62 classes from "));
  c.partition.kind = "iid";  // another partitioner pools every user's rows
  CHECK(LoadData(c, 1).train.size() == 4);
}

// LEAF's ALL_LETTERS, typed out again here: a character's id is its index.
const std::string kAlphabet = "\n !\"&'(),-.0123456789:;>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz}";

std::string Line80(const std::string& text) {
  std::string s = text;
  while (s.size() < 80) s += text;
  return s.substr(0, 80);
}

TEST_CASE("LoadLeaf shakespeare: letters as token ids, len(y) counts, not num_samples", "[data][leaf]") {
  LeafDir d;
  const std::string a = Line80("To be, or not to be: that is the question.\n"), b = Line80("[Enter HAMLET] 'Tis 2!");
  const std::string c = Line80("O Romeo, Romeo! wherefore art thou Romeo?");
  d.Put("train/x.json", LeafFile({"THE_TRAGEDY_OF_HAMLET_HAMLET"}, "2",
                                 {User("THE_TRAGEDY_OF_HAMLET_HAMLET", {json(a).dump(), json(b).dump()},
                                       "\"q\", \"}\"")}));
  // The test file overstates num_samples by 79, as LEAF's split does.
  d.Put("test/x.json", LeafFile({"THE_TRAGEDY_OF_HAMLET_HAMLET"}, "80",
                                {User("THE_TRAGEDY_OF_HAMLET_HAMLET", {json(c).dump()}, "\"\\n\"")}));
  const FederatedData fd = LoadLeaf(Task("shakespeare"), d.path(), 0);
  REQUIRE(fd.train.size() == 2);
  REQUIRE(fd.test.size() == 1);
  // 'q' = 53 + 16, '}' = 79, '\n' = 0.
  CHECK(fd.train.y == std::vector<int>{69, 79});
  CHECK(fd.test.y == std::vector<int>{0});
  CHECK(fd.train.user == std::vector<int>{0, 0});
  CHECK(fd.test.user == std::vector<int>{0});
  const std::vector<std::string> texts{a, b, c};
  for (int r = 0; r < 3; ++r) {
    const Dataset& ds = r < 2 ? fd.train : fd.test;
    const int row = r < 2 ? r : 0;
    int bad = 0;
    for (int j = 0; j < 80; ++j) {
      bad += ds.bytes[static_cast<size_t>(row) * 80 + j] != static_cast<uint8_t>(kAlphabet.find(texts[r][j]));
    }
    CHECK(bad == 0);
  }
  // By hand: "To be," -> T = 25 + 19, o = 53 + 14, ' ' = 1, b = 54, e = 57, ',' = 8.
  CHECK(std::vector<int>(fd.train.bytes.begin(), fd.train.bytes.begin() + 6) == std::vector<int>{44, 67, 1, 54, 57, 8});
  for (const Dataset* ds : {&fd.train, &fd.test}) {
    CHECK(ds->byte_storage);
    CHECK(ds->shape == std::vector<int>{80});
    CHECK(ds->vocab_size == 80);
    CHECK(ds->num_classes == 80);
    CHECK(ds->byte_scale[5] == 1.0f);
    CHECK(ds->byte_shift[5] == 0.0f);
  }
  std::vector<float> row(80);
  const int zero = 0;
  fd.train.Rows(&zero, 1, row.data());
  CHECK(row[0] == 44.0f);
}

TEST_CASE("LoadLeaf shakespeare: a character outside the alphabet is an error naming file, user, sample",
          "[data][leaf]") {
  LeafDir d;
  d.Put("train/x.json", LeafFile({"U"}, "2", {User("U", {json(Line80("ab")).dump(), json(Line80("a@b")).dump()},
                                                   "\"a\", \"b\"")}));
  d.Put("test/x.json", LeafFile({}, "", {}));
  CHECK_THROWS_AS(LoadLeaf(Task("shakespeare"), d.path(), 0), InputError);
  CHECK_THROWS_WITH(LoadLeaf(Task("shakespeare"), d.path(), 0),
                    Contains("x.json: user \"U\": x[1], character 1: '@' is not in LEAF's 80-letter alphabet"));
  d.Put("train/x.json", LeafFile({"U"}, "1", {User("U", {json(Line80("ab")).dump()}, "\"ab\"")}));
  CHECK_THROWS_WITH(LoadLeaf(Task("shakespeare"), d.path(), 0), Contains("user \"U\": y[0] is \"ab\""));
  d.Put("train/x.json", LeafFile({"U"}, "1", {User("U", {json("short").dump(), json(Line80("a")).dump()}, "\"a\", \"b\"")}));
  CHECK_THROWS_WITH(LoadLeaf(Task("shakespeare"), d.path(), 0),
                    Contains("x[1] has 80 characters, expected 5 as in the first sample"));
}

// A Sent140 row as LEAF's data_to_json writes it: row[1:] of the CSV.
std::string Tweet(const std::string& text) {
  return json::array({"1467810369", "Mon Apr 06 22:19:45 PDT 2009", "NO_QUERY", "someone", text, "training"}).dump();
}

TEST_CASE("LoadLeaf sent140: LEAF's split_line, a vocabulary built by frequency then word", "[data][leaf]") {
  LeafDir d;
  d.Put("train/a.json", LeafFile({"u1", "u2"}, "2, 1",
                                 {User("u1", {Tweet("I love it!!"), Tweet("love love you")}, "1, 0"),
                                  User("u2", {Tweet("it's ok")}, "1")}));
  d.Put("test/a.json", LeafFile({"u2"}, "1", {User("u2", {Tweet("Love it")}, "0")}));
  LeafConfig c = Task("sent140");
  c.seq_len = 4;
  c.vocab_size = 5;
  // Training words: love 3, ! 2, then once each in byte order: I, it, it's,
  // ok, you. Kept: love 0, ! 1, I 2, it 3, it's 4; unknown (and padding) 5.
  const FederatedData fd = LoadLeaf(c, d.path(), 0);
  const RowMatrix want_train = (RowMatrix(3, 4) << 2, 0, 3, 1,  //
                                0, 0, 5, 5,                     //
                                4, 5, 5, 5)
                                   .finished();
  CHECK(fd.train.x == want_train);
  CHECK(fd.test.x == (RowMatrix(1, 4) << 5, 3, 5, 5).finished());  // "Love" is not "love"
  CHECK(fd.train.y == std::vector<int>{1, 0, 1});
  CHECK(fd.test.y == std::vector<int>{0});
  CHECK(fd.train.user == std::vector<int>{0, 0, 1});
  CHECK(fd.test.user == std::vector<int>{1});
  for (const Dataset* ds : {&fd.train, &fd.test}) {
    CHECK_FALSE(ds->byte_storage);
    CHECK(ds->vocab_size == 6);
    CHECK(ds->shape == std::vector<int>{4});
    CHECK(ds->num_classes == 2);
  }

  // A vocabulary file: one word per line, or GloVe's "word v1 v2 ..." lines.
  WriteText(d.tmp.File("vocab.txt"), "love\nit 0.1 0.2\n\nI\n");
  c.vocab = d.tmp.File("vocab.txt");
  const FederatedData v = LoadLeaf(c, d.path(), 0);
  CHECK(v.train.x.row(0) == (Eigen::RowVectorXf(4) << 2, 0, 1, 3).finished());
  CHECK(v.train.vocab_size == 4);
  // LEAF's embs.json: the "vocab" list (the embeddings are skipped).
  WriteText(d.tmp.File("embs.json"), R"({"emba": [[0.1, 0.2], [0.3, 0.4], [0.0, 0.0]], "vocab": ["love", "it"]})");
  c.vocab = d.tmp.File("embs.json");
  const FederatedData e = LoadLeaf(c, d.path(), 0);
  CHECK(e.train.x.row(0) == (Eigen::RowVectorXf(4) << 2, 0, 1, 2).finished());
  CHECK(e.test.x.row(0) == (Eigen::RowVectorXf(4) << 2, 1, 2, 2).finished());
  CHECK(e.train.vocab_size == 3);

  d.Put("train/a.json", LeafFile({"u1"}, "1", {User("u1", {Tweet("x")}, "4")}));
  CHECK_THROWS_WITH(LoadLeaf(c, d.path(), 0), Contains("user \"u1\": y[0] = 4 is not 0 or 1"));
  d.Put("train/a.json", LeafFile({"u1"}, "1", {User("u1", {R"(["a", "b", "c"])"}, "1")}));
  CHECK_THROWS_WITH(LoadLeaf(c, d.path(), 0), Contains("user \"u1\": x[0] has 3 fields"));
}

TEST_CASE("LoadLeaf synthetic: float vectors, classes from the labels", "[data][leaf]") {
  LeafDir d;
  d.Put("train/s.json", LeafFile({"f_00001", "f_00000"}, "1, 2",
                                 {User("f_00001", {"[0.5, -1.25, 3]"}, "4"),
                                  User("f_00000", {"[1, 2, 3]", "[-0.125, 0, 1e-3]"}, "0, 2")}));
  d.Put("test/s.json", LeafFile({"f_00000"}, "1", {User("f_00000", {"[7, 8, 9]"}, "1")}));
  const FederatedData fd = LoadLeaf(Task("synthetic"), d.path(), 0);
  CHECK(fd.train.x == (RowMatrix(3, 3) << 0.5f, -1.25f, 3, 1, 2, 3, -0.125f, 0, 1e-3f).finished());
  CHECK(fd.train.y == std::vector<int>{4, 0, 2});
  CHECK(fd.train.user == std::vector<int>{1, 0, 0});
  CHECK(fd.test.x == (RowMatrix(1, 3) << 7, 8, 9).finished());
  CHECK(fd.test.user == std::vector<int>{0});
  CHECK(fd.train.num_classes == 5);
  CHECK(fd.test.num_classes == 5);
  CHECK(fd.train.shape.empty());

  d.Put("train/s.json", LeafFile({"a"}, "2", {User("a", {"[1, 2, 3]", "[1, 2]"}, "0, 1")}));
  CHECK_THROWS_WITH(LoadLeaf(Task("synthetic"), d.path(), 0),
                    Contains("s.json: user \"a\": x[1] has 2 features, expected 3 as in the first sample"));
}

TEST_CASE("LoadLeaf: hostile files name the file, user and sample", "[data][leaf]") {
  LeafDir d;
  WriteFemnist(d);
  const std::string train_a = d.tmp.File("train/a.json");
  auto error = [&]() -> std::string {
    try {
      LoadLeaf(Task("femnist"), d.path(), 0);
    } catch (const InputError& e) {
      return e.what();
    }
    return "no error";
  };
  SECTION("malformed JSON: the byte and line") {
    std::string text = LeafFile({"w0"}, "1", {User("w0", {FemnistSample(1)}, "5")});
    d.Put("train/a.json", text.substr(0, text.size() - 10));
    CHECK_THAT(error(), Contains(train_a + ": malformed JSON (byte ") && Contains("line 1"));
    d.Put("train/a.json", "{\"users\": [],\n \"user_data\": {\"w0\": {\"x\": [[0,]]}}}");
    CHECK_THAT(error(), Contains(train_a + ": malformed JSON") && Contains("line 2"));
  }
  SECTION("x and y of different lengths") {
    d.Put("train/a.json", LeafFile({"w0"}, "2", {User("w0", {FemnistSample(1), FemnistSample(2)}, "5")}));
    CHECK_THAT(error(), Contains(train_a + ": user \"w0\": x has 2 samples but y has 1"));
  }
  SECTION("wrong feature count") {
    d.Put("train/a.json", LeafFile({"w0"}, "2", {User("w0", {FemnistSample(1), FemnistSample(2, 783)}, "5, 6")}));
    CHECK_THAT(error(), Contains(train_a + ": user \"w0\": x[1] has 783 features, expected 784"));
  }
  SECTION("a value that is not k/255") {
    std::string s = FemnistSample(0);
    s.replace(1, 1, "0.3");  // pixel 0: 0.3 * 255 = 76.5
    d.Put("train/a.json", LeafFile({"w0"}, "1", {User("w0", {s}, "5")}));
    CHECK_THAT(error(), Contains(train_a + ": user \"w0\": x[0][0] = 0.3 is not a pixel value k/255"));
  }
  SECTION("a label out of range") {
    d.Put("train/a.json", LeafFile({"w0"}, "1", {User("w0", {FemnistSample(1)}, "62")}));
    CHECK_THAT(error(), Contains(train_a + ": user \"w0\": y[0] = 62 is not a class index in [0, 62)"));
  }
  SECTION("a user twice in one split") {
    d.Put("train/b.json", LeafFile({"w0"}, "1", {User("w0", {FemnistSample(1)}, "5")}));
    CHECK_THAT(error(), Contains(d.tmp.File("train/b.json") + ": user \"w0\" appears twice in this split (also in " +
                                 train_a + ")"));
  }
  SECTION("no user_data, or not an object") {
    d.Put("train/a.json", "{\"users\": [\"w0\"], \"num_samples\": [1]}");
    CHECK_THAT(error(), Contains(train_a + ": no \"user_data\" object"));
    d.Put("train/a.json", "[1, 2]");
    CHECK_THAT(error(), Contains(train_a + ": expected a LEAF object"));
  }
  SECTION("a second user_data object names the file, with or without a user read before it") {
    // Before the fix, an empty first object left no user to name and the
    // error read outside the user list (a crash).
    d.Put("train/a.json", "{\"users\": [], \"user_data\": {}, \"user_data\": {}}");
    CHECK(error() == train_a + ": a second \"user_data\" object");
    d.Put("train/a.json", "{\"user_data\": {" + User("w0", {FemnistSample(1)}, "5") + "}, \"user_data\": {}}");
    CHECK(error() == train_a + ": a second \"user_data\" object");
  }
  SECTION("missing test/, no json files") {
    std::filesystem::remove_all(d.tmp.File("test"));
    CHECK_THAT(error(), Contains(d.tmp.File("test") + ": no such directory"));
    std::filesystem::create_directories(d.tmp.File("test"));
    CHECK_THAT(error(), Contains(d.tmp.File("test") + ": no .json files"));
    std::filesystem::remove_all(d.tmp.File("train"));
    CHECK_THAT(error(), Contains(d.tmp.File("train") + ": no such directory"));
  }
  SECTION("celeba is refused") {
    CHECK_THROWS_WITH(LoadLeaf(Task("celeba"), d.path(), 0), Contains("\"celeba\" is not supported"));
  }
}

}  // namespace
}  // namespace fedsim
