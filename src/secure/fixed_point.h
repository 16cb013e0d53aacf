// Fixed-point encoding of float vectors for secure aggregation and packed
// homomorphic encryption.
//
// A codec has a modulus of 2^k (k = modulus_bits <= 32; values are stored in
// uint32_t and all sums are taken mod 2^k) and a range R. Each coordinate x is
// clipped to [-R, R] and quantised to
//
//   q = round(x / step) + L,   L = 2^(b-1) - 1,   step = R / L,
//
// an unsigned integer in [0, 2L] = [0, 2^b - 2], where b = value_bits =
// k - ceil(log2(max_clients)). Zero is exactly representable (q = L), and so
// are -R and R.
//
// Overflow headroom: the sum of n <= max_clients codes is at most
// n * (2^b - 2) < 2^(b + ceil(log2 n)) <= 2^k, so it never wraps mod 2^k and
// decodes exactly: sum_x = (S - n * L) * step. Summing more than max_clients
// vectors silently wraps; DecodeSum rejects such a count.
//
// Rounding rules (both deterministic for a given input and Rng state):
//   Encode           round to nearest, ties away from zero (std::round on
//                    x / step); error <= step / 2 for |x| <= R.
//   EncodeStochastic floor(x / step + u), u ~ U[0, 1) from the Rng passed in:
//                    unbiased (E[decode] = clip(x)), error < step.
// NaN inputs are rejected with InputError; +-inf are clipped.
//
// Thread-safety: a codec is an immutable value.
#pragma once

#include <cstdint>

namespace fedsim {

class Rng;

class FixedPointCodec {
 public:
  // REQUIRES (else InputError naming the parameter): 2 <= modulus_bits <= 32,
  // 0 < range < inf, max_clients >= 1, and
  // value_bits = modulus_bits - HeadroomBits(max_clients) >= 2.
  FixedPointCodec(int modulus_bits, double range, int max_clients);

  // ceil(log2(clients)): the bits a sum of `clients` codes needs above b.
  static int HeadroomBits(int clients);

  int modulus_bits() const { return modulus_bits_; }
  int value_bits() const { return value_bits_; }
  int max_clients() const { return max_clients_; }
  double range() const { return range_; }
  double step() const { return step_; }
  uint32_t offset() const { return offset_; }              // L = 2^(b-1) - 1, the code of 0
  uint32_t max_code() const { return 2 * offset_; }        // code of +range
  uint32_t modulus_mask() const { return modulus_mask_; }  // 2^k - 1

  uint32_t Encode(double x) const;
  double Decode(uint32_t code) const;  // REQUIRES: code <= max_code()

  void Encode(const float* x, int64_t n, uint32_t* out) const;
  void EncodeStochastic(const float* x, int64_t n, uint32_t* out, Rng& rng) const;

  // out[i] = decoded sum of `clients` encoded vectors whose elementwise sum
  // mod 2^k is sum[i]. REQUIRES: 0 <= clients <= max_clients().
  void DecodeSum(const uint32_t* sum, int64_t n, int clients, float* out) const;
  double DecodeSum(uint32_t sum, int clients) const;

 private:
  int modulus_bits_;
  int value_bits_;
  int max_clients_;
  double range_;
  double step_;
  double inv_step_;
  uint32_t offset_;
  uint32_t modulus_mask_;
};

}  // namespace fedsim
