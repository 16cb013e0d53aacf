// The sample grid and its PGM encoding, parsed back byte by byte.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/image.h"

namespace {

// A minimal P5 reader: header fields separated by single whitespace, maxval 255.
fedsim::GreyImage ParsePgm(const std::string& bytes) {
  std::istringstream in(bytes);
  std::string magic;
  int w = 0, h = 0, maxval = 0;
  in >> magic >> w >> h >> maxval;
  REQUIRE(magic == "P5");
  REQUIRE(maxval == 255);
  in.get();  // the single whitespace after maxval
  fedsim::GreyImage img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w) * static_cast<size_t>(h));
  in.read(reinterpret_cast<char*>(img.pixels.data()), static_cast<std::streamsize>(img.pixels.size()));
  REQUIRE(in.gcount() == static_cast<std::streamsize>(img.pixels.size()));
  REQUIRE(in.peek() == EOF);  // nothing after the pixels
  return img;
}

}  // namespace

TEST_CASE("image: tiles samples into a padded grid and writes a parseable PGM", "[metrics][image]") {
  // Three 2x3 images in a grid of 2 columns with 1 pixel of padding:
  // width 2*3 + 3*1 = 9, height 2 rows of images: 2*2 + 3*1 = 7.
  std::vector<float> imgs(3 * 6);
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 6; ++i) imgs[static_cast<size_t>(k * 6 + i)] = static_cast<float>(k * 6 + i) / 17.0f;
  imgs[0] = -0.5f;  // clamped to 0
  imgs[7] = 2.0f;   // clamped to 1
  const fedsim::GreyImage g = fedsim::TileImages(imgs.data(), 3, 2, 3, 2, 1);
  CHECK(g.width == 9);
  CHECK(g.height == 7);
  auto at = [&](int x, int y) { return static_cast<int>(g.pixels[static_cast<size_t>(y * g.width + x)]); };
  CHECK(at(0, 0) == 128);  // border
  CHECK(at(1, 1) == 0);    // image 0, pixel (0, 0): clamped
  CHECK(at(2, 1) == static_cast<int>(std::lround(255.0 * 1 / 17)));
  CHECK(at(3, 2) == static_cast<int>(std::lround(255.0 * 5 / 17)));   // image 0, pixel (row 1, col 2)
  CHECK(at(4, 1) == 128);                                               // padding between columns
  CHECK(at(5, 1) == static_cast<int>(std::lround(255.0 * 6 / 17)));   // image 1, pixel (0, 0)
  CHECK(at(6, 1) == 255);                                               // image 1, pixel (0, 1): clamped
  CHECK(at(1, 4) == static_cast<int>(std::lround(255.0 * 12 / 17)));  // image 2 starts the second row
  CHECK(at(5, 4) == 128);                                               // no fourth image: border grey

  const std::string path = (std::filesystem::temp_directory_path() / "fedsim_image_test.pgm").string();
  fedsim::WritePgm(path, g);
  std::ifstream f(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  CHECK(bytes.rfind("P5\n9 7\n255\n", 0) == 0);
  const fedsim::GreyImage back = ParsePgm(bytes);
  CHECK(back.width == 9);
  CHECK(back.height == 7);
  CHECK(back.pixels == g.pixels);
  std::remove(path.c_str());
}
