#include "secure/he_cost.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/fmath.h"
#include "secure/paillier.h"

namespace fedsim {

namespace {

// One measured parameter set of Microsoft SEAL 4.1.0 `sealbench`, native build
// without Intel HEXL, Apple M1 Pro (MacBook Pro 14" 2021), microseconds per
// operation, SEAL's default 128-bit coeff_modulus for N (3/5/9/16 primes, so
// 2/4/8/15 limbs in a fresh ciphertext). Source: node-seal README,
// "Performance" table, column "Native (No HEXL)"
// (https://github.com/s0l0ist/node-seal#performance); rows
// "n=N / log(q)=... / {BFV,CKKS} / {EncodeBatch|EncodeDouble, EncryptPublic,
// EvaluateAddCt, Decrypt, DecodeBatch|DecodeDouble}".
struct SealPoint {
  int n;
  int limbs;
  double encode_us, encrypt_us, add_us, decrypt_us, decode_us;
};

constexpr SealPoint kSealBfv[] = {
    {4096, 2, 24.3, 778, 16.1, 178, 33.5},
    {8192, 4, 52.2, 2062, 60.8, 648, 68.8},
    {16384, 8, 114, 6435, 278, 2584, 147},
    {32768, 15, 256, 27071, 993, 9906, 321},
};
constexpr SealPoint kSealCkks[] = {
    {4096, 2, 129, 903, 14.7, 26.0, 200},
    {8192, 4, 413, 2483, 54.1, 99.4, 847},
    {16384, 8, 1444, 8211, 224, 392, 4305},
    {32768, 15, 6769, 32572, 912, 1494, 21918},
};

template <size_t K>
const SealPoint& Nearest(const SealPoint (&table)[K], int n) {
  const SealPoint* best = &table[0];
  for (const SealPoint& p : table)
    if (std::fabs(fm::Log(static_cast<double>(p.n) / n)) < std::fabs(fm::Log(static_cast<double>(best->n) / n)))
      best = &p;
  return *best;
}

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

const char* HeSchemeName(HeScheme scheme) {
  switch (scheme) {
    case HeScheme::kPaillier: return "paillier";
    case HeScheme::kBfv: return "bfv";
    case HeScheme::kCkks: return "ckks";
  }
  return "?";
}

PaillierTimings CalibratePaillier(int modulus_bits, int samples, uint64_t seed) {
  if (samples < 1) throw InputError(fmt::format("paillier calibration: samples must be >= 1, got {}", samples));
  const PaillierKeyPair keys = PaillierKeyGen(modulus_bits, seed);
  const PaillierPacking packing = PaillierPacking::For(modulus_bits, 16, 1024);
  // `samples` full plaintexts of pseudo-random 16-bit codes.
  std::vector<uint32_t> values(static_cast<size_t>(packing.slots) * samples);
  uint32_t x = 12345;
  for (auto& v : values) v = (x = x * 1103515245u + 12345u) >> 16;
  PaillierTimings t;
  t.modulus_bits = modulus_bits;
  Clock::time_point t0 = Clock::now();
  PackedCiphertexts a =
      EncryptPacked(keys.pub, packing, values.data(), static_cast<int64_t>(values.size()), SeedFromU64(seed, "calib"));
  t.encrypt_seconds = Since(t0) / samples;
  const PackedCiphertexts b = a;
  const int adds = std::max(samples, 64);
  t0 = Clock::now();
  for (int i = 0; i < adds; ++i) PaillierAddInPlace(keys.pub, a.blocks[i % samples], b.blocks[i % samples]);
  t.add_seconds = Since(t0) / adds;
  t0 = Clock::now();
  const std::vector<uint64_t> sums = DecryptPacked(keys, packing, b);
  t.decrypt_seconds = Since(t0) / samples;
  if (sums.size() != values.size()) throw RunError("paillier calibration: decryption returned the wrong length");
  return t;
}

HeRoundCost Estimate(HeScheme scheme, const HeParams& params, int64_t dim, int clients) {
  if (dim < 1) throw InputError(fmt::format("he cost: dim must be >= 1, got {}", dim));
  if (clients < 1) throw InputError(fmt::format("he cost: clients must be >= 1, got {}", clients));
  HeRoundCost c;
  double enc_s = 0, add_s = 0, dec_s = 0;
  if (scheme == HeScheme::kPaillier) {
    const PaillierTimings& pt = params.paillier_timings;
    if (!(pt.encrypt_seconds > 0) || pt.modulus_bits != params.modulus_bits)
      throw InputError(fmt::format(
          "he cost: params.paillier_timings must come from CalibratePaillier({}) (have timings for {} bits)",
          params.modulus_bits, pt.modulus_bits));
    const PaillierPacking packing = PaillierPacking::For(params.modulus_bits, params.value_bits, clients);
    c.slots_per_ciphertext = packing.slots;
    c.ciphertext_bytes = PaillierCiphertextBytes(params.modulus_bits);
    enc_s = pt.encrypt_seconds;
    add_s = pt.add_seconds;
    dec_s = pt.decrypt_seconds;
  } else {
    const int n = params.poly_degree;
    if (n < 1024 || n > 65536 || (n & (n - 1)) != 0)
      throw InputError(fmt::format("he cost: params.poly_degree must be a power of two in [1024, 65536], got {}", n));
    if (params.limbs < 1 || params.limbs > 64)
      throw InputError(fmt::format("he cost: params.limbs must be in [1, 64], got {}", params.limbs));
    if (!(params.time_scale > 0) || !std::isfinite(params.time_scale))
      throw InputError(fmt::format("he cost: params.time_scale must be > 0, got {}", params.time_scale));
    const SealPoint& ref = scheme == HeScheme::kBfv ? Nearest(kSealBfv, n) : Nearest(kSealCkks, n);
    const double scale = params.time_scale * (static_cast<double>(n) * params.limbs) /
                         (static_cast<double>(ref.n) * ref.limbs) * 1e-6;
    c.slots_per_ciphertext = scheme == HeScheme::kBfv ? n : n / 2;
    c.ciphertext_bytes = 2 * static_cast<int64_t>(n) * params.limbs * 8;
    enc_s = (ref.encode_us + ref.encrypt_us) * scale;
    add_s = ref.add_us * scale;
    dec_s = (ref.decrypt_us + ref.decode_us) * scale;
  }
  c.ciphertexts_per_client = (dim + c.slots_per_ciphertext - 1) / c.slots_per_ciphertext;
  c.bytes_up_per_client = c.ciphertexts_per_client * c.ciphertext_bytes;
  c.client_encrypt_seconds = c.ciphertexts_per_client * enc_s;
  c.server_aggregate_seconds = static_cast<double>(clients - 1) * c.ciphertexts_per_client * add_s;
  c.decrypt_seconds = c.ciphertexts_per_client * dec_s;
  c.expansion = static_cast<double>(c.bytes_up_per_client) / (4.0 * static_cast<double>(dim));
  return c;
}

}  // namespace fedsim
