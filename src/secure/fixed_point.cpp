#include "secure/fixed_point.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "core/rng.h"

namespace fedsim {

namespace {

[[noreturn]] void ThrowNaN(int64_t i) {
  throw InputError("fixed point: x[" + std::to_string(i) + "] is NaN and cannot be encoded");
}

}  // namespace

int FixedPointCodec::HeadroomBits(int clients) {
  if (clients < 1) throw InputError("fixed point: clients must be >= 1, got " + std::to_string(clients));
  int bits = 0;
  while ((int64_t{1} << bits) < clients) ++bits;
  return bits;
}

FixedPointCodec::FixedPointCodec(int modulus_bits, double range, int max_clients)
    : modulus_bits_(modulus_bits), max_clients_(max_clients), range_(range) {
  if (modulus_bits < 2 || modulus_bits > 32)
    throw InputError("fixed point: modulus_bits must be in [2, 32], got " + std::to_string(modulus_bits));
  if (!(range > 0.0) || !std::isfinite(range))
    throw InputError("fixed point: range must be finite and > 0, got " + std::to_string(range));
  if (max_clients < 1)
    throw InputError("fixed point: max_clients must be >= 1, got " + std::to_string(max_clients));
  value_bits_ = modulus_bits - HeadroomBits(max_clients);
  if (value_bits_ < 2)
    throw InputError("fixed point: modulus_bits = " + std::to_string(modulus_bits) + " leaves " +
                     std::to_string(value_bits_) + " value bits after the " +
                     std::to_string(HeadroomBits(max_clients)) + " headroom bits that a sum of max_clients = " +
                     std::to_string(max_clients) + " needs; at least 2 are required");
  offset_ = (uint32_t{1} << (value_bits_ - 1)) - 1;
  step_ = range / static_cast<double>(offset_);
  inv_step_ = static_cast<double>(offset_) / range;
  modulus_mask_ = modulus_bits == 32 ? 0xFFFFFFFFu : ((uint32_t{1} << modulus_bits) - 1);
}

uint32_t FixedPointCodec::Encode(double x) const {
  if (std::isnan(x)) throw InputError("fixed point: x is NaN and cannot be encoded");
  const double l = static_cast<double>(offset_);
  double u = std::round(x * inv_step_);
  if (u > l) u = l;
  if (u < -l) u = -l;
  return static_cast<uint32_t>(static_cast<int64_t>(u) + offset_);
}

double FixedPointCodec::Decode(uint32_t code) const {
  return (static_cast<double>(code) - static_cast<double>(offset_)) * step_;
}

void FixedPointCodec::Encode(const float* x, int64_t n, uint32_t* out) const {
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) ThrowNaN(i);
    out[i] = Encode(static_cast<double>(x[i]));
  }
}

void FixedPointCodec::EncodeStochastic(const float* x, int64_t n, uint32_t* out, Rng& rng) const {
  const double l = static_cast<double>(offset_);
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) ThrowNaN(i);
    double v = static_cast<double>(x[i]) * inv_step_;
    if (v > l) v = l;
    if (v < -l) v = -l;
    double u = std::floor(v + rng.Uniform());
    if (u > l) u = l;
    out[i] = static_cast<uint32_t>(static_cast<int64_t>(u) + offset_);
  }
}

double FixedPointCodec::DecodeSum(uint32_t sum, int clients) const {
  const uint32_t s = sum & modulus_mask_;
  const int64_t centred = static_cast<int64_t>(s) - static_cast<int64_t>(clients) * offset_;
  return static_cast<double>(centred) * step_;
}

void FixedPointCodec::DecodeSum(const uint32_t* sum, int64_t n, int clients, float* out) const {
  if (clients < 0 || clients > max_clients_)
    throw InputError("fixed point: clients must be in [0, max_clients = " + std::to_string(max_clients_) +
                     "], got " + std::to_string(clients));
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(DecodeSum(sum[i], clients));
}

}  // namespace fedsim
