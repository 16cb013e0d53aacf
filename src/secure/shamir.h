// t-of-n Shamir secret sharing of 32-byte secrets over the prime field
// GF(p), p = 2^61 - 1 (a Mersenne prime: products fit in 128 bits and reduce
// with shifts).
//
// A secret is split into kShamirElements = 5 field elements of 7 bytes (56
// bits) each, little-endian; each element is shared with its own random
// polynomial of degree t - 1, all evaluated at the same point x. A share is
// therefore (x, y[0..4]); on the wire it is 5 * 8 = 40 bytes (x is implied by
// who holds it). Polynomial coefficients come from a ChaCha20 stream of a
// caller-supplied 32-byte seed, so splitting is reproducible.
//
// Security: any t - 1 shares are independent of the secret (uniform field
// elements); t shares determine it.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "secure/prg.h"

namespace fedsim {

constexpr uint64_t kShamirPrime = (uint64_t{1} << 61) - 1;
constexpr int kShamirSecretBytes = 32;
constexpr int kShamirChunkBytes = 7;
constexpr int kShamirElements = (kShamirSecretBytes + kShamirChunkBytes - 1) / kShamirChunkBytes;  // 5
constexpr int kShamirShareWireBytes = kShamirElements * 8;                                          // 40

using ShamirSecret = std::array<uint8_t, kShamirSecretBytes>;
using ShamirElements = std::array<uint64_t, kShamirElements>;

struct ShamirShare {
  uint64_t x = 0;    // evaluation point, in [1, p)
  ShamirElements y{};  // the 5 polynomials evaluated at x
};

// The secret as field elements (what interpolation at 0 returns).
ShamirElements ShamirEncodeSecret(const ShamirSecret& secret);

// One share per point in `xs`, any `threshold` of which reconstruct `secret`.
// REQUIRES (else InputError): 1 <= threshold <= xs.size(); points distinct,
// in [1, p).
std::vector<ShamirShare> ShamirSplit(const ShamirSecret& secret, int threshold, const std::vector<uint64_t>& xs,
                                     const Seed32& seed);

// Lagrange interpolation at 0 of the polynomial through exactly the given
// shares (all of them). With fewer shares than the threshold the result is
// unrelated to the secret. REQUIRES: at least one share, distinct points.
ShamirElements ShamirInterpolate(const std::vector<ShamirShare>& shares);

// Reconstructs the secret from the first `threshold` of `shares`.
// Throws InputError if there are fewer than `threshold` shares or points
// repeat; throws SecAggError if the interpolated elements are not a valid
// encoding (some share was wrong).
ShamirSecret ShamirReconstruct(const std::vector<ShamirShare>& shares, int threshold);

}  // namespace fedsim
