#include "data/augment.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/rng.h"

namespace fedsim {

void CheckAugment(const AugmentConfig& cfg, const Dataset& train) {
  if (!AugmentEnabled(cfg)) return;
  if (train.shape.size() != 3 || train.vocab_size > 0) {
    throw InputError(
        "data.augment: random crops and flips need image data with a [C, H, W] shape (IDX, CIFAR, LEAF femnist); "
        "this data has none");
  }
  const int h = train.shape[1], w = train.shape[2];
  if (cfg.padding == "reflect" && (cfg.crop_padding >= h || cfg.crop_padding >= w)) {
    throw InputError(fmt::format("data.augment.crop_padding: reflect padding of {} needs images larger than that; "
                                 "these are {}x{}",
                                 cfg.crop_padding, h, w));
  }
}

uint64_t AugmentStepSeed(uint64_t seed, int round, int client, int64_t step) {
  uint64_t h = DeriveStream(seed, Stream::kAugment, static_cast<uint64_t>(round), static_cast<uint64_t>(client))
                   .NextU64() ^
               (static_cast<uint64_t>(step) * 0x9E3779B97F4A7C15ULL);
  return SplitMix64(h);
}

namespace {

// Index i of a line of n pixels after reflecting about its ends (|shift| < n).
int Reflect(int i, int n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

}  // namespace

void ShiftFlipImage(const float* in, float* out, int c, int h, int w, int dy, int dx, bool flip, bool reflect) {
  for (int ch = 0; ch < c; ++ch) {
    const float* src = in + static_cast<int64_t>(ch) * h * w;
    float* dst = out + static_cast<int64_t>(ch) * h * w;
    for (int y = 0; y < h; ++y) {
      int sy = y + dy;
      const bool row_in = sy >= 0 && sy < h;
      if (!row_in && !reflect) {
        std::fill_n(dst + static_cast<int64_t>(y) * w, w, 0.0f);
        continue;
      }
      sy = Reflect(sy, h);
      for (int x = 0; x < w; ++x) {
        int sx = (flip ? w - 1 - x : x) + dx;
        float v = 0.0f;
        if (sx >= 0 && sx < w) {
          v = src[static_cast<int64_t>(sy) * w + sx];
        } else if (reflect) {
          v = src[static_cast<int64_t>(sy) * w + Reflect(sx, w)];
        }
        dst[static_cast<int64_t>(y) * w + x] = v;
      }
    }
  }
}

void AugmentImages(const AugmentConfig& cfg, const std::vector<int>& shape, float* x, int count, uint64_t step_seed,
                   int64_t first) {
  const int c = shape[0], h = shape[1], w = shape[2];
  const int64_t d = static_cast<int64_t>(c) * h * w;
  const int p = cfg.crop_padding;
  const bool reflect = cfg.padding == "reflect";
  std::vector<float> copy(static_cast<size_t>(d));
  for (int i = 0; i < count; ++i) {
    uint64_t state = step_seed ^ (static_cast<uint64_t>(first + i) * 0xBF58476D1CE4E5B9ULL);
    Rng rng(SplitMix64(state));
    // The crop's offset in the padded image is uniform in [0, 2p]: a shift in [-p, p].
    const int dy = p > 0 ? static_cast<int>(rng.UniformInt(2 * static_cast<uint64_t>(p) + 1)) - p : 0;
    const int dx = p > 0 ? static_cast<int>(rng.UniformInt(2 * static_cast<uint64_t>(p) + 1)) - p : 0;
    const bool flip = cfg.flip && rng.UniformInt(2) == 1;
    if (dy == 0 && dx == 0 && !flip) continue;
    float* row = x + static_cast<int64_t>(i) * d;
    std::copy_n(row, d, copy.data());
    ShiftFlipImage(copy.data(), row, c, h, w, dy, dx, flip, reflect);
  }
}

}  // namespace fedsim
