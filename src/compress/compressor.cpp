// The compressor registry and the two dense float codecs (none, float16).
// The sparse codecs are in sparse.cpp, the quantizers in quantize.cpp.
#include "compress/compressor.h"

#include <fmt/format.h>

#include <cmath>

#include "compress/codecs.h"
#include "core/error.h"
#include "core/half.h"

namespace fedsim {
namespace compress_internal {

void CheckSize(const std::vector<uint8_t>& in, int64_t expected, const std::string& codec, int64_t n) {
  if (static_cast<int64_t>(in.size()) != expected) {
    throw RunError(fmt::format("{}: an encoding of {} values has {} bytes, got {}", codec, n, expected, in.size()));
  }
}

}  // namespace compress_internal

namespace {

using compress_internal::CheckSize;
using compress_internal::GetF32;
using compress_internal::PutF32;

// float32 as is: 4n bytes, little-endian. NaN and Inf pass through.
class NoCompression : public Compressor {
 public:
  void Encode(const float* v, int64_t n, Rng&, std::vector<uint8_t>& out, CompressScratch&) const override {
    out.assign(static_cast<size_t>(PlannedBytes(n)), 0);
    for (int64_t i = 0; i < n; ++i) PutF32(&out[static_cast<size_t>(4 * i)], v[i]);
  }
  void Decode(const std::vector<uint8_t>& in, int64_t n, float* v) const override {
    CheckSize(in, PlannedBytes(n), "none", n);
    for (int64_t i = 0; i < n; ++i) v[i] = GetF32(&in[static_cast<size_t>(4 * i)]);
  }
  int64_t PlannedBytes(int64_t n) const override { return 4 * n; }
  std::string Describe() const override { return "none"; }
};

// IEEE binary16 per coordinate (core/half.h: round to nearest even, finite
// magnitudes above 65504 saturate to +-65504, Inf and NaN kept).
class Float16 : public Compressor {
 public:
  void Encode(const float* v, int64_t n, Rng&, std::vector<uint8_t>& out, CompressScratch&) const override {
    out.assign(static_cast<size_t>(PlannedBytes(n)), 0);
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t h = FloatToHalf(v[i]);
      out[static_cast<size_t>(2 * i)] = static_cast<uint8_t>(h);
      out[static_cast<size_t>(2 * i + 1)] = static_cast<uint8_t>(h >> 8);
    }
  }
  void Decode(const std::vector<uint8_t>& in, int64_t n, float* v) const override {
    CheckSize(in, PlannedBytes(n), "float16", n);
    for (int64_t i = 0; i < n; ++i) {
      const size_t at = static_cast<size_t>(2 * i);
      v[i] = HalfToFloat(static_cast<uint16_t>(in[at] | (in[at + 1] << 8)));
    }
  }
  int64_t PlannedBytes(int64_t n) const override { return 2 * n; }
  std::string Describe() const override { return "float16"; }
};

}  // namespace

std::unique_ptr<Compressor> CreateCompressor(const CompressorSettings& s) {
  // Every key is checked whatever the kind, so a bad value is caught even
  // before a sweep switches to the kind that reads it.
  if (!(s.density > 0.0 && s.density <= 1.0)) {
    throw InputError(fmt::format("compression.density: must be in (0, 1], got {}", s.density));
  }
  if (s.bits < 2 || s.bits > 16) {
    throw InputError(fmt::format("compression.bits: must be an integer in [2, 16] (sign included), got {}", s.bits));
  }
  if (s.bucket < 1) throw InputError(fmt::format("compression.bucket: must be at least 1, got {}", s.bucket));
  if (s.kind == "none") return std::make_unique<NoCompression>();
  if (s.kind == "float16") return std::make_unique<Float16>();
  if (s.kind == "int8") return compress_internal::MakeInt8(s.bucket);
  if (s.kind == "qsgd") return compress_internal::MakeQsgd(s.bits, s.bucket);
  if (s.kind == "topk") return compress_internal::MakeTopK(s.density);
  if (s.kind == "randk") return compress_internal::MakeRandK(s.density);
  throw InputError(fmt::format(
      "compression.kind: unknown compressor \"{}\" (expected none, topk, randk, qsgd, float16 or int8)", s.kind));
}

}  // namespace fedsim
