// data.augment: shifts, flips and padding checked pixel by pixel; the random
// draws cover every crop offset, flip about half the images and repeat for a
// seed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"
#include "data/augment.h"

namespace fedsim {
namespace {

using Catch::Matchers::Contains;

// Channel 0 is 1..9 row by row, channel 1 is 11..19.
std::vector<float> Image() {
  std::vector<float> v;
  for (int c = 0; c < 2; ++c) {
    for (int i = 1; i <= 9; ++i) v.push_back(static_cast<float>(10 * c + i));
  }
  return v;
}

std::vector<float> Shift(int dy, int dx, bool flip, bool reflect) {
  const std::vector<float> in = Image();
  std::vector<float> out(in.size(), -1.0f);
  ShiftFlipImage(in.data(), out.data(), 2, 3, 3, dy, dx, flip, reflect);
  return out;
}

std::vector<float> Plus10(std::vector<float> c0) {
  std::vector<float> both = c0;
  for (float v : c0) both.push_back(v == 0.0f ? 0.0f : v + 10.0f);
  return both;
}

TEST_CASE("ShiftFlipImage: out(y, x) = in(y + dy, x' + dx), zero or reflected outside", "[data][augment]") {
  CHECK(Shift(0, 0, false, false) == Image());
  CHECK(Shift(1, 0, false, false) == Plus10({4, 5, 6, 7, 8, 9, 0, 0, 0}));
  CHECK(Shift(0, -1, false, false) == Plus10({0, 1, 2, 0, 4, 5, 0, 7, 8}));
  CHECK(Shift(0, 0, true, false) == Plus10({3, 2, 1, 6, 5, 4, 9, 8, 7}));
  // Flipped, then shifted: x' = 2 - x, source column x' + 1.
  CHECK(Shift(0, 1, true, false) == Plus10({0, 3, 2, 0, 6, 5, 0, 9, 8}));
  // Reflect about the edge without repeating it: row -1 -> 1, column 3 -> 1.
  CHECK(Shift(-1, 1, false, true) == Plus10({5, 6, 5, 2, 3, 2, 5, 6, 5}));
}

TEST_CASE("AugmentImages: every crop offset in [-p, p]^2, flips about half, the same for a seed", "[data][augment]") {
  AugmentConfig cfg;
  cfg.crop_padding = 1;
  cfg.flip = true;
  const std::vector<int> shape{2, 3, 3};
  const int n = 2000;
  std::vector<float> x;
  for (int i = 0; i < n; ++i) {
    const auto img = Image();
    x.insert(x.end(), img.begin(), img.end());
  }
  std::vector<float> again = x;
  AugmentImages(cfg, shape, x.data(), n, 12345, 0);
  AugmentImages(cfg, shape, again.data(), n, 12345, 0);
  CHECK(x == again);

  // Each output must be one of the 18 (dy, dx, flip) images; all 18 appear.
  std::set<std::tuple<int, int, bool>> seen;
  int flipped = 0, unmatched = 0;
  for (int i = 0; i < n; ++i) {
    const std::vector<float> got(x.begin() + i * 18, x.begin() + (i + 1) * 18);
    bool found = false;
    for (int dy = -1; dy <= 1 && !found; ++dy) {
      for (int dx = -1; dx <= 1 && !found; ++dx) {
        for (bool flip : {false, true}) {
          if (Shift(dy, dx, flip, false) == got) {
            seen.insert({dy, dx, flip});
            flipped += flip;
            found = true;
            break;
          }
        }
      }
    }
    unmatched += !found;
  }
  CHECK(unmatched == 0);
  CHECK(seen.size() == 18);
  CHECK(flipped > 900);
  CHECK(flipped < 1100);

  // Another step seed or sample position draws differently; off is the identity.
  std::vector<float> other(x.size());
  for (int i = 0; i < n; ++i) std::copy_n(Image().begin(), 18, other.begin() + i * 18);
  AugmentImages(cfg, shape, other.data(), n, 12346, 0);
  CHECK(other != x);
  std::vector<float> shifted(x.size());
  for (int i = 0; i < n; ++i) std::copy_n(Image().begin(), 18, shifted.begin() + i * 18);
  AugmentImages(cfg, shape, shifted.data() + 18, n - 1, 12345, 1);  // positions 1..n-1
  CHECK(std::vector<float>(shifted.begin() + 18, shifted.end()) == std::vector<float>(x.begin() + 18, x.end()));
  AugmentConfig off;
  std::vector<float> same = Image();
  AugmentImages(off, shape, same.data(), 1, 12345, 0);
  CHECK(same == Image());
}

TEST_CASE("CheckAugment: image data only, reflect padding smaller than the image", "[data][augment]") {
  AugmentConfig cfg;
  cfg.flip = true;
  Dataset table;
  CHECK_THROWS_WITH(CheckAugment(cfg, table), Contains("data.augment: random crops and flips need image data"));
  Dataset tokens;
  tokens.shape = {80};
  tokens.vocab_size = 80;
  CHECK_THROWS_AS(CheckAugment(cfg, tokens), InputError);
  Dataset images;
  images.shape = {3, 4, 4};
  CHECK_NOTHROW(CheckAugment(cfg, images));
  cfg.crop_padding = 4;
  cfg.padding = "reflect";
  CHECK_THROWS_WITH(CheckAugment(cfg, images), Contains("data.augment.crop_padding: reflect padding of 4"));
  cfg.padding = "zero";
  CHECK_NOTHROW(CheckAugment(cfg, images));
}

}  // namespace
}  // namespace fedsim
