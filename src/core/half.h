// IEEE 754 binary16 ("half") conversion, written out so that every build and
// machine rounds the same way (no F16C dependence). Used to store per-client
// algorithm state compactly (algorithm.state_precision = float16).
//
// FloatToHalf rounds to nearest, ties to even, with gradual underflow
// (subnormal halves down to 2^-24; magnitudes below 2^-25 become a signed
// zero, exactly 2^-25 rounds to zero as the even neighbour). Choice for
// overflow: a finite float whose rounded magnitude would exceed the largest
// half, 65504, saturates to +-65504 instead of becoming infinite, so a large
// but finite state never turns into Inf/NaN in the next round. Infinities stay
// infinite; a NaN stays a (quiet) NaN with its sign. HalfToFloat is exact.
#pragma once

#include <cstdint>
#include <cstring>

namespace fedsim {

constexpr uint16_t kHalfMaxFinite = 0x7bff;  // 65504

inline uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // Inf or NaN
    if (ax == 0x7f800000u) return sign | 0x7c00u;
    return static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));  // quiet NaN, top payload bits
  }
  // 65520 = 65504 + half an ulp: from here on round-to-nearest would give Inf.
  if (ax >= 0x477ff000u) return sign | kHalfMaxFinite;
  if (ax < 0x38800000u) {  // below 2^-14, the smallest normal half
    if (ax <= 0x33000000u) return sign;  // <= 2^-25: rounds to zero
    // value = m * 2^(e - 150) with the implicit bit; in units of 2^-24 that
    // is m >> (126 - e), rounded to nearest even. The result may be 0x400,
    // the smallest normal, which is also the right encoding.
    const uint32_t e = ax >> 23;
    const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t h = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits.
  uint32_t h = (ax - 0x38000000u) >> 13;
  const uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry moves into the exponent correctly
  return static_cast<uint16_t>(sign | h);
}

inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  const uint32_t m = h & 0x3ffu;
  uint32_t x;
  if (e == 0) {
    if (m == 0) {
      x = sign;
    } else {
      // Subnormal: normalise m * 2^-24.
      int shift = 0;
      uint32_t mm = m;
      while ((mm & 0x400u) == 0) {
        mm <<= 1;
        ++shift;
      }
      x = sign | ((113u - static_cast<uint32_t>(shift)) << 23) | ((mm & 0x3ffu) << 13);
    }
  } else if (e == 31) {
    x = sign | 0x7f800000u | (m << 13);
  } else {
    x = sign | ((e + 112u) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &x, sizeof(f));
  return f;
}

// Bulk conversions of n values.
inline void FloatsToHalves(const float* in, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = FloatToHalf(in[i]);
}
inline void HalvesToFloats(const uint16_t* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = HalfToFloat(in[i]);
}

}  // namespace fedsim
