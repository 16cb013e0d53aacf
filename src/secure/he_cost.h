// Cost model for homomorphically encrypted aggregation: what one round costs
// when every client encrypts its dim-value update, the server adds the
// ciphertexts, and the key holder decrypts the sum.
//
//   Paillier  ciphertext = 2 * modulus_bits bits; values packed
//             PaillierPacking::For(modulus_bits, value_bits, clients).slots per
//             ciphertext; per-op times measured on this machine with this
//             library's real implementation (CalibratePaillier).
//   BFV       N slots per ciphertext (batching), ciphertext = 2 N limbs 8 bytes.
//   CKKS      N/2 slots per ciphertext, ciphertext = 2 N limbs 8 bytes.
//             limbs = RNS primes of the ciphertext modulus at the level where
//             fresh ciphertexts live (SEAL: all coeff_modulus primes but the
//             special one).
//
// BFV/CKKS per-op times are published measurements of Microsoft SEAL 4.1.0's
// own benchmark (sealbench, native, no Intel HEXL, Apple M1 Pro, SEAL's default
// 128-bit coeff_modulus), taken from the table in the node-seal README
// (github.com/s0l0ist/node-seal, "Performance", column "Native (No HEXL)").
// For parameters other than the measured ones, times are scaled linearly in
// N * limbs from the measured point with the nearest N; multiply by
// time_scale to account for a slower or faster machine.
//
// Thread-safety: Estimate is a pure function; CalibratePaillier generates a
// key and times operations (single-threaded).
#pragma once

#include <cstdint>

namespace fedsim {

enum class HeScheme { kPaillier, kBfv, kCkks };
const char* HeSchemeName(HeScheme scheme);

// Seconds per operation of the real Paillier implementation (one ciphertext).
struct PaillierTimings {
  int modulus_bits = 0;
  double encrypt_seconds = 0;  // pack + encrypt one plaintext
  double add_seconds = 0;      // one homomorphic addition
  double decrypt_seconds = 0;  // decrypt + unpack one ciphertext
};

// Measures encrypt/add/decrypt of full packed plaintexts with a fresh key of
// modulus_bits, averaged over `samples` (>= 1) operations of each kind.
PaillierTimings CalibratePaillier(int modulus_bits = 2048, int samples = 8, uint64_t seed = 1);

struct HeParams {
  // Paillier: key size; must match paillier_timings.modulus_bits. Default 2048.
  int modulus_bits = 2048;
  // Paillier: bits of each fixed-point value before headroom. Default 16.
  int value_bits = 16;
  // Paillier: from CalibratePaillier (required for Paillier estimates).
  PaillierTimings paillier_timings;
  // BFV/CKKS: ring dimension N, a power of two in [1024, 65536]. Default 8192.
  int poly_degree = 8192;
  // BFV/CKKS: 64-bit RNS limbs of a fresh ciphertext. Default 4 (SEAL's
  // default 218-bit modulus for N = 8192 has 5 primes, one special).
  int limbs = 4;
  // BFV/CKKS: factor applied to the published timings. Default 1.
  double time_scale = 1.0;
};

struct HeRoundCost {
  int64_t slots_per_ciphertext = 0;
  int64_t ciphertexts_per_client = 0;
  int64_t ciphertext_bytes = 0;
  int64_t bytes_up_per_client = 0;       // ciphertexts_per_client * ciphertext_bytes
  double client_encrypt_seconds = 0;     // per client: encode + encrypt its vector
  double server_aggregate_seconds = 0;   // (clients - 1) * ciphertexts additions
  double decrypt_seconds = 0;            // decrypt + decode the aggregate
  double expansion = 0;                  // bytes_up_per_client / (4 * dim), vs float32
};

// REQUIRES (else InputError naming the parameter): dim >= 1, clients >= 1, and
// valid params for the scheme.
HeRoundCost Estimate(HeScheme scheme, const HeParams& params, int64_t dim, int clients);

}  // namespace fedsim
