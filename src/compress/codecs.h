// Internal to src/compress/: the codec factories CreateCompressor calls, and
// the little-endian byte and bit writers every wire format uses. Not for use
// outside this folder.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "compress/compressor.h"

namespace fedsim {
namespace compress_internal {

std::unique_ptr<Compressor> MakeTopK(double density);
std::unique_ptr<Compressor> MakeRandK(double density);
std::unique_ptr<Compressor> MakeQsgd(int bits, int bucket);
std::unique_ptr<Compressor> MakeInt8(int bucket);

// Throws RunError unless in.size() == expected (a Decode given bytes that are
// not an encoding of the length it was told).
void CheckSize(const std::vector<uint8_t>& in, int64_t expected, const std::string& codec, int64_t n);

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Byte order on the wire is little-endian whatever the host's.
inline void PutU32(uint8_t* p, uint32_t x) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(x >> (8 * i));
}
inline uint32_t GetU32(const uint8_t* p) {
  uint32_t x = 0;
  for (int i = 0; i < 4; ++i) x |= static_cast<uint32_t>(p[i]) << (8 * i);
  return x;
}
inline void PutU64(uint8_t* p, uint64_t x) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(x >> (8 * i));
}
inline uint64_t GetU64(const uint8_t* p) {
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i) x |= static_cast<uint64_t>(p[i]) << (8 * i);
  return x;
}
inline void PutF32(uint8_t* p, float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  PutU32(p, x);
}
inline float GetF32(const uint8_t* p) {
  const uint32_t x = GetU32(p);
  float f;
  std::memcpy(&f, &x, sizeof(f));
  return f;
}

// Fixed-width codes packed into a bit stream, least significant bit first:
// code i occupies stream bits [i * width, (i + 1) * width), and stream bit b
// is bit (b % 8) of byte b / 8. The last byte is padded with zero bits.
class BitWriter {
 public:
  explicit BitWriter(uint8_t* p) : p_(p) {}
  void Put(uint32_t code, int width) {  // REQUIRES: width <= 32, code < 2^width
    acc_ |= static_cast<uint64_t>(code) << filled_;
    filled_ += width;
    while (filled_ >= 8) {
      *p_++ = static_cast<uint8_t>(acc_);
      acc_ >>= 8;
      filled_ -= 8;
    }
  }
  void Flush() {
    if (filled_ > 0) *p_++ = static_cast<uint8_t>(acc_);
    acc_ = 0;
    filled_ = 0;
  }

 private:
  uint8_t* p_;
  uint64_t acc_ = 0;
  int filled_ = 0;
};

class BitReader {
 public:
  explicit BitReader(const uint8_t* p) : p_(p) {}
  uint32_t Get(int width) {  // REQUIRES: width <= 32
    while (filled_ < width) {
      acc_ |= static_cast<uint64_t>(*p_++) << filled_;
      filled_ += 8;
    }
    const uint32_t code = static_cast<uint32_t>(acc_ & ((uint64_t{1} << width) - 1));
    acc_ >>= width;
    filled_ -= width;
    return code;
  }

 private:
  const uint8_t* p_;
  uint64_t acc_ = 0;
  int filled_ = 0;
};

}  // namespace compress_internal
}  // namespace fedsim
