// Upload compressors: lossy or lossless encodings of a client's model delta
// into real bytes, whose count is what the client sends (bytes_up). Created by
// name from CreateCompressor; the wire formats are in docs/compression-notes.md.
//
//   kind      bytes for a length-n vector                 error
//   none      4n                                          exact (float32)
//   float16   2n                                          relative 2^-11 (IEEE half)
//   int8      n + 4 ceil(n / bucket)                      |err| <= scale / 2 per bucket
//   qsgd      ceil(n bits / 8) + 4 ceil(n / bucket)       unbiased, stochastic (QSGD)
//   topk      min(4k, ceil(n / 8)) + 4k                   the n - k smallest |v| dropped
//   randk     8 + 4k                                      n - k random entries dropped (biased)
// with k = max(1, ceil(density * n)), at most n.
//
// Thread-safety: a Compressor is immutable after creation; one object is
// shared by every client thread. Each thread passes its own CompressScratch
// and its own Rng.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"

namespace fedsim {

// Filled from the config keys compression.* by the caller. Every field is
// checked by CreateCompressor, whichever kind uses it.
struct CompressorSettings {
  // none | topk | randk | qsgd | float16 | int8. Default: none.
  std::string kind = "none";
  // topk/randk: fraction of coordinates kept, in (0, 1];
  // k = max(1, ceil(density * n)). Default: 0.01.
  double density = 0.01;
  // qsgd: bits per coordinate including the sign, 2..16; levels
  // s = 2^(bits-1) - 1. Default: 8 (s = 127).
  int bits = 8;
  // qsgd/int8: coordinates per bucket, each bucket with its own float32 norm
  // (qsgd) or scale (int8); >= 1. Default: 512.
  int bucket = 512;
};

// Per-thread working memory for Encode, reused across calls so that encoding
// does not allocate once it has grown. One per client thread, never shared.
struct CompressScratch {
  std::vector<int> index;      // topk: the candidate order
  std::vector<uint64_t> mask;  // randk: the chosen coordinates, one bit each
};

// One codec. Stateless: the encoding is a function of the input vector and
// the Rng's state alone, so a client's bytes do not depend on which thread
// encodes it or when.
class Compressor {
 public:
  virtual ~Compressor() = default;
  // Encodes v[0..n) into `out` (cleared first; its size afterwards is the
  // wire size in bytes, always PlannedBytes(n)). rng: the client's own stream
  // for this round; the stochastic codecs (randk, qsgd) draw from it, the
  // others leave it untouched. NaN and Inf inputs never crash; what each codec
  // makes of them is in docs/compression-notes.md.
  // REQUIRES: n >= 0; n < 2^31 for topk and randk.
  virtual void Encode(const float* v, int64_t n, Rng& rng, std::vector<uint8_t>& out,
                      CompressScratch& scratch) const = 0;
  // Decodes an encoding of a length-n vector made by this compressor (same
  // settings) into v[0..n); every coordinate is written. Throws RunError when
  // `in` cannot be such an encoding (wrong size, an index out of range).
  virtual void Decode(const std::vector<uint8_t>& in, int64_t n, float* v) const = 0;
  // Bytes Encode produces for a length-n vector. Every codec here has a size
  // that depends on n alone, so the simulated system can plan with it.
  virtual int64_t PlannedBytes(int64_t n) const = 0;
  // The codec and its settings, e.g. "qsgd(bits=8, levels=127, bucket=512)".
  virtual std::string Describe() const = 0;
};

// The compressor `settings` name. Throws InputError naming the key
// (compression.kind, .density, .bits or .bucket) for a bad setting.
std::unique_ptr<Compressor> CreateCompressor(const CompressorSettings& settings);

}  // namespace fedsim
