#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "test_files.h"

namespace fedsim {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using testing::IdxImages;
using testing::IdxLabels;
using testing::TempDir;
using testing::WriteBytes;

// 3 images of 2x3 pixels.
const std::vector<unsigned char> kPixels = {0,   255, 51, 102, 1,  2,   //
                                            10,  20,  30, 40,  50, 60,  //
                                            255, 254, 0,  128, 64, 32};
const std::vector<unsigned char> kLabels = {0, 7, 3};

void CheckExample(const Dataset& ds) {
  REQUIRE(ds.size() == 3);
  REQUIRE(ds.dim() == 6);
  CHECK(ds.num_classes == 8);
  CHECK(ds.y == std::vector<int>{0, 7, 3});
  CHECK(ds.user.empty());
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 6; ++j) CHECK(ds.Dense()(i, j) == Approx(kPixels[i * 6 + j] / 255.0).epsilon(1e-6));
  }
  CHECK(ds.Dense()(0, 1) == 1.0f);
  CHECK(ds.Dense()(0, 0) == 0.0f);
}

TEST_CASE("LoadIdx reads plain and gzip files with exact values", "[data][idx]") {
  TempDir dir;
  for (bool gz : {false, true}) {
    const std::string images = dir.File(gz ? "i.gz" : "i"), labels = dir.File(gz ? "l.gz" : "l");
    WriteBytes(images, IdxImages(3, 2, 3, kPixels), gz);
    WriteBytes(labels, IdxLabels(kLabels), gz);
    CheckExample(LoadIdx(images, labels));
  }
  // Mixed: gzip images, plain labels.
  CheckExample(LoadIdx(dir.File("i.gz"), dir.File("l")));
}

TEST_CASE("LoadIdx: num_classes is max label + 1, up to 256", "[data][idx]") {
  TempDir dir;
  WriteBytes(dir.File("i"), IdxImages(3, 2, 3, kPixels));
  WriteBytes(dir.File("l"), IdxLabels({255, 0, 9}));
  const Dataset ds = LoadIdx(dir.File("i"), dir.File("l"));
  CHECK(ds.num_classes == 256);
  CHECK(ds.y == std::vector<int>{255, 0, 9});
}

TEST_CASE("LoadIdx rejects malformed files, naming the file", "[data][idx]") {
  TempDir dir;
  const std::string images = dir.File("train-images-idx3-ubyte.gz");
  const std::string labels = dir.File("train-labels-idx1-ubyte.gz");
  WriteBytes(labels, IdxLabels(kLabels), true);

  SECTION("wrong image magic") {
    WriteBytes(images, IdxImages(3, 2, 3, kPixels, 0x801), true);
    CHECK_THROWS_WITH(LoadIdx(images, labels), StartsWith(images + ":") && Contains("magic 0x00000801"));
  }
  SECTION("wrong label magic") {
    WriteBytes(images, IdxImages(3, 2, 3, kPixels), true);
    WriteBytes(labels, IdxLabels(kLabels, 0x803), true);
    CHECK_THROWS_WITH(LoadIdx(images, labels), StartsWith(labels + ":") && Contains("magic 0x00000803"));
  }
  SECTION("truncated pixel data") {
    std::vector<unsigned char> short_pixels(kPixels.begin(), kPixels.end() - 1);
    WriteBytes(images, IdxImages(3, 2, 3, short_pixels), true);
    CHECK_THROWS_WITH(LoadIdx(images, labels),
                      images + ": truncated: header says 3 images of 2x3 but file holds 17 bytes of pixel data");
  }
  SECTION("trailing bytes") {
    std::vector<unsigned char> long_pixels = kPixels;
    long_pixels.push_back(9);
    WriteBytes(images, IdxImages(3, 2, 3, long_pixels), true);
    CHECK_THROWS_WITH(LoadIdx(images, labels), StartsWith(images + ":") && Contains("1 trailing bytes"));
  }
  SECTION("header cut short") {
    WriteBytes(images, {0, 0, 8, 3, 0, 0}, true);
    CHECK_THROWS_WITH(LoadIdx(images, labels), StartsWith(images + ": truncated"));
  }
  SECTION("zero dimension") {
    WriteBytes(images, IdxImages(3, 0, 3, {}), true);
    CHECK_THROWS_WITH(LoadIdx(images, labels), StartsWith(images + ":") && Contains("positive"));
  }
  SECTION("truncated labels") {
    WriteBytes(images, IdxImages(3, 2, 3, kPixels), true);
    std::vector<unsigned char> lab = IdxLabels(kLabels);
    lab.pop_back();
    WriteBytes(labels, lab, true);
    CHECK_THROWS_WITH(LoadIdx(images, labels),
                      labels + ": truncated: header says 3 labels but file holds 2 bytes of label data");
  }
  SECTION("image and label counts differ") {
    WriteBytes(images, IdxImages(3, 2, 3, kPixels), true);
    WriteBytes(labels, IdxLabels({1, 2}), true);
    CHECK_THROWS_WITH(LoadIdx(images, labels),
                      StartsWith(labels + ":") && Contains("2 labels") && Contains(images + " holds 3 images"));
  }
  SECTION("corrupt gzip stream") {
    // A large, incompressible-ish image so the gzip stream spans many bytes.
    std::vector<unsigned char> pixels(3 * 100 * 100);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>((i * 2654435761u) >> 13);
    WriteBytes(images, IdxImages(3, 100, 100, pixels), true);
    std::vector<unsigned char> gz = testing::ReadBytes(images);
    gz.resize(gz.size() / 2);
    WriteBytes(images, gz);
    CHECK_THROWS_WITH(LoadIdx(images, labels), StartsWith(images + ":"));
  }
  SECTION("missing file") { CHECK_THROWS_WITH(LoadIdx(dir.File("nope"), labels), StartsWith(dir.File("nope") + ":")); }
}

TEST_CASE("LoadIdxDir finds plain, gzip and dotted names", "[data][idx]") {
  TempDir dir;
  SECTION("gzip") {
    WriteBytes(dir.File("t10k-images-idx3-ubyte.gz"), IdxImages(3, 2, 3, kPixels), true);
    WriteBytes(dir.File("t10k-labels-idx1-ubyte.gz"), IdxLabels(kLabels), true);
    CheckExample(LoadIdxDir(dir.path(), "t10k"));
  }
  SECTION("plain") {
    WriteBytes(dir.File("train-images-idx3-ubyte"), IdxImages(3, 2, 3, kPixels));
    WriteBytes(dir.File("train-labels-idx1-ubyte"), IdxLabels(kLabels));
    CheckExample(LoadIdxDir(dir.path(), "train"));
  }
  SECTION("dotted") {
    WriteBytes(dir.File("train-images.idx3-ubyte"), IdxImages(3, 2, 3, kPixels));
    WriteBytes(dir.File("train-labels.idx1-ubyte.gz"), IdxLabels(kLabels), true);
    CheckExample(LoadIdxDir(dir.path(), "train"));
  }
  SECTION("missing labels") {
    WriteBytes(dir.File("train-images-idx3-ubyte"), IdxImages(3, 2, 3, kPixels));
    CHECK_THROWS_WITH(LoadIdxDir(dir.path(), "train"),
                      StartsWith(dir.path() + ":") && Contains("train-labels-idx1-ubyte"));
  }
  SECTION("missing directory") { CHECK_THROWS_AS(LoadIdxDir(dir.File("absent"), "train"), InputError); }
}

}  // namespace
}  // namespace fedsim
