// Training-time augmentation of image batches (data.augment): random crop
// after zero or reflect padding, and random horizontal flip, as NIID-Bench and
// most CIFAR papers train (torchvision's RandomCrop(size, padding) and
// RandomHorizontalFlip). Each sample's draw comes from (seed, kAugment, round,
// client), the local step and the sample's position in the step's batch, so
// a run is the same for any thread count. Applied to training batches only.
#pragma once

#include <cstdint>
#include <vector>

#include "core/config.h"
#include "data/dataset.h"

namespace fedsim {

inline bool AugmentEnabled(const AugmentConfig& cfg) { return cfg.crop_padding > 0 || cfg.flip; }

// Throws InputError naming data.augment when cfg is on and the data is not
// images ({C, H, W} shape) or the padding is too large for reflection.
void CheckAugment(const AugmentConfig& cfg, const Dataset& train);

// The seed of one local step's draws: (seed, kAugment, round, client) mixed with the step.
uint64_t AugmentStepSeed(uint64_t seed, int round, int client, int64_t step);

// out (C x H x W) = in shifted by (dy, dx) and, if flip, mirrored left-right:
// out(c, y, x) = in(c, y + dy, x' + dx) with x' = W - 1 - x when flipped, else
// x; a source outside the image is 0 (zero padding) or mirrored about the
// edge without repeating it (reflect, torch's "reflect"). REQUIRES: out != in.
void ShiftFlipImage(const float* in, float* out, int c, int h, int w, int dy, int dx, bool flip, bool reflect);

// Augments `count` decoded rows of x (each C*H*W floats, shape {C, H, W}) in
// place; row i uses the draw of sample position first + i of the step.
void AugmentImages(const AugmentConfig& cfg, const std::vector<int>& shape, float* x, int count, uint64_t step_seed,
                   int64_t first);

}  // namespace fedsim
