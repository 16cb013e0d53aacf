// The bucketed quantizers: qsgd (stochastic, unbiased) and int8 (nearest).
//
// QSGD follows Alistarh, Grubic, Li, Tomioka & Vojnovic, "QSGD:
// Communication-Efficient SGD via Gradient Quantization and Encoding",
// NeurIPS 2017, Section 3.1: for a vector v (here: one bucket) and s levels,
//   Q_s(v_i) = ||v||_2 * sgn(v_i) * xi_i / s,
// where, with a = |v_i| / ||v||_2 * s and l = floor(a) (0 <= l <= s),
// xi_i = l + 1 with probability a - l and l otherwise, so E[Q_s(v_i)] = v_i.
// s counts the nonzero magnitude levels (a coordinate becomes one of
// 0, 1/s, ..., s/s of the norm). The paper encodes the levels with Elias codes;
// here every coordinate is a fixed-width code of `bits` bits, one sign bit and
// bits - 1 bits of level, so s = 2^(bits-1) - 1 (bits = 8: s = 127; bits = 4:
// s = 7; bits = 2: s = 1, a scaled ternary code). The bucketing (one norm per
// `bucket` coordinates, 512 by default) is the paper's bucketed variant.
//
// Determinism: the norm is summed in double in index order and sent as the
// float32 that is the smallest one >= the double norm (so a <= s); the
// probability a - l is computed in double from that float; one Uniform() is
// drawn per coordinate whatever its value, so the Rng's position afterwards
// depends on n alone.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "compress/codecs.h"
#include "compress/compressor.h"
#include "core/error.h"

namespace fedsim {
namespace compress_internal {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Round to nearest, ties to even, without depending on the FP rounding mode.
double RoundHalfEven(double x) {
  double r = std::floor(x);
  const double d = x - r;
  if (d > 0.5 || (d == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  return r;
}

// Layout: ceil(n / bucket) float32 norms, then the n codes as one bit stream
// (BitWriter): code = sign << (bits - 1) | level, sign 1 for negative. A
// coordinate whose level is 0 is sent with sign 0. A bucket holding a NaN or
// an Inf, or whose norm overflows float32, is sent as norm NaN with all codes
// 0 and decodes to NaN in every coordinate.
class QsgdCompressor : public Compressor {
 public:
  QsgdCompressor(int bits, int bucket) : bits_(bits), bucket_(bucket), levels_((1u << (bits - 1)) - 1) {}

  void Encode(const float* v, int64_t n, Rng& rng, std::vector<uint8_t>& out, CompressScratch&) const override {
    const int64_t buckets = CeilDiv(n, bucket_);
    out.assign(static_cast<size_t>(PlannedBytes(n)), 0);
    BitWriter codes(out.data() + 4 * buckets);
    for (int64_t b = 0; b < buckets; ++b) {
      const int64_t lo = b * bucket_, hi = std::min<int64_t>(n, lo + bucket_);
      double sum_sq = 0.0;
      for (int64_t i = lo; i < hi; ++i) sum_sq += static_cast<double>(v[i]) * v[i];
      const double norm = std::sqrt(sum_sq);
      float norm32 = static_cast<float>(norm);
      if (static_cast<double>(norm32) < norm) norm32 = std::nextafter(norm32, std::numeric_limits<float>::infinity());
      const bool finite = std::isfinite(norm32);
      PutF32(out.data() + 4 * b, finite ? norm32 : kNaN);
      const double scale = finite && norm32 > 0.0f ? levels_ / static_cast<double>(norm32) : 0.0;
      for (int64_t i = lo; i < hi; ++i) {
        const double u = rng.Uniform();
        uint32_t level = 0;
        if (scale > 0.0) {  // else a zero or non-finite bucket: every level 0
          const double a = std::min(std::fabs(static_cast<double>(v[i])) * scale, static_cast<double>(levels_));
          const double l = std::floor(a);
          level = static_cast<uint32_t>(l) + (u < a - l ? 1u : 0u);
        }
        const uint32_t sign = level > 0 && v[i] < 0.0f ? 1u : 0u;
        codes.Put(sign << (bits_ - 1) | level, bits_);
      }
    }
    codes.Flush();
  }

  void Decode(const std::vector<uint8_t>& in, int64_t n, float* v) const override {
    CheckSize(in, PlannedBytes(n), "qsgd", n);
    const int64_t buckets = CeilDiv(n, bucket_);
    BitReader codes(in.data() + 4 * buckets);
    for (int64_t b = 0; b < buckets; ++b) {
      const float norm32 = GetF32(in.data() + 4 * b);
      const int64_t lo = b * bucket_, hi = std::min<int64_t>(n, lo + bucket_);
      for (int64_t i = lo; i < hi; ++i) {
        const uint32_t code = codes.Get(bits_);
        const uint32_t level = code & levels_;
        const float x = static_cast<float>(static_cast<double>(norm32) * level / levels_);
        v[i] = !std::isfinite(norm32) ? kNaN : (code >> (bits_ - 1)) ? -x : x;
      }
    }
  }

  int64_t PlannedBytes(int64_t n) const override { return 4 * CeilDiv(n, bucket_) + CeilDiv(n * bits_, 8); }
  std::string Describe() const override {
    return fmt::format("qsgd(bits={}, levels={}, bucket={})", bits_, levels_, bucket_);
  }

 private:
  int bits_, bucket_;
  uint32_t levels_;  // s
};

// Layout: ceil(n / bucket) float32 scales, then n int8 codes (two's
// complement). Per bucket scale = max|v| / 127 rounded to float32 (at least
// the smallest subnormal when max|v| > 0), code = v / scale rounded to nearest
// even, clamped to [-127, 127]; decoded value = code * scale. A bucket holding
// a NaN or an Inf is sent as scale NaN with codes 0 and decodes to NaN in
// every coordinate.
class Int8Compressor : public Compressor {
 public:
  explicit Int8Compressor(int bucket) : bucket_(bucket) {}

  void Encode(const float* v, int64_t n, Rng&, std::vector<uint8_t>& out, CompressScratch&) const override {
    const int64_t buckets = CeilDiv(n, bucket_);
    out.assign(static_cast<size_t>(PlannedBytes(n)), 0);
    uint8_t* codes = out.data() + 4 * buckets;
    for (int64_t b = 0; b < buckets; ++b) {
      const int64_t lo = b * bucket_, hi = std::min<int64_t>(n, lo + bucket_);
      float max_abs = 0.0f;
      bool finite = true;
      for (int64_t i = lo; i < hi; ++i) {
        finite = finite && std::isfinite(v[i]);
        max_abs = std::max(max_abs, std::fabs(v[i]));
      }
      if (!finite) {
        PutF32(out.data() + 4 * b, kNaN);
        continue;  // codes stay 0
      }
      float scale = static_cast<float>(static_cast<double>(max_abs) / 127.0);
      if (max_abs > 0.0f && scale == 0.0f) scale = std::numeric_limits<float>::denorm_min();
      PutF32(out.data() + 4 * b, scale);
      if (scale == 0.0f) continue;  // an all-zero bucket
      for (int64_t i = lo; i < hi; ++i) {
        const double q = std::clamp(RoundHalfEven(static_cast<double>(v[i]) / scale), -127.0, 127.0);
        codes[i] = static_cast<uint8_t>(static_cast<int8_t>(q));
      }
    }
  }

  void Decode(const std::vector<uint8_t>& in, int64_t n, float* v) const override {
    CheckSize(in, PlannedBytes(n), "int8", n);
    const int64_t buckets = CeilDiv(n, bucket_);
    const uint8_t* codes = in.data() + 4 * buckets;
    for (int64_t b = 0; b < buckets; ++b) {
      const float scale = GetF32(in.data() + 4 * b);
      const int64_t lo = b * bucket_, hi = std::min<int64_t>(n, lo + bucket_);
      for (int64_t i = lo; i < hi; ++i) {
        const int q = static_cast<int8_t>(codes[i]);
        v[i] = std::isfinite(scale) ? static_cast<float>(q * static_cast<double>(scale)) : kNaN;
      }
    }
  }

  int64_t PlannedBytes(int64_t n) const override { return 4 * CeilDiv(n, bucket_) + n; }
  std::string Describe() const override { return fmt::format("int8(bucket={})", bucket_); }

 private:
  int bucket_;
};

}  // namespace

std::unique_ptr<Compressor> MakeQsgd(int bits, int bucket) { return std::make_unique<QsgdCompressor>(bits, bucket); }
std::unique_ptr<Compressor> MakeInt8(int bucket) { return std::make_unique<Int8Compressor>(bucket); }

}  // namespace compress_internal
}  // namespace fedsim
