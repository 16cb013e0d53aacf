// Deterministic cryptographic randomness for secure/: 32-byte seeds, key
// derivation with keyed BLAKE2b (libsodium crypto_generichash), and ChaCha20
// keystreams (libsodium crypto_stream_chacha20, the original 64-bit-nonce
// variant with a 64-bit block counter, nonce fixed to zero: every seed is used
// for exactly one stream).
//
// Everything here is a pure function of its seed, so a run is reproducible for
// any thread count. Keystream bytes are read as little-endian words (fedsim
// targets little-endian hosts).
//
// Thread-safety: free functions are thread-safe; a ChaChaStream is a value,
// never share one between threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fedsim {

using Seed32 = std::array<uint8_t, 32>;

// Initialises libsodium once (idempotent, thread-safe; also selects the SIMD
// ChaCha20 implementation). Throws RunError if libsodium cannot start.
void EnsureSodium();

// A 32-byte seed for `label` from a 64-bit run seed.
Seed32 SeedFromU64(uint64_t seed, std::string_view label);

// A 32-byte subkey of `key` for (label, a, b): BLAKE2b keyed with `key` over
// label || a || b. Distinct (label, a, b) give independent subkeys.
Seed32 DeriveSeed(const Seed32& key, std::string_view label, uint64_t a = 0, uint64_t b = 0);

// The first 8 bytes of a seed as an integer (to seed a non-cryptographic Rng).
uint64_t SeedPrefixU64(const Seed32& seed);

// A buffered ChaCha20 keystream of `seed`, consumed from the start.
class ChaChaStream {
 public:
  explicit ChaChaStream(const Seed32& seed);
  uint64_t NextU64();
  void Fill(uint8_t* out, size_t n);

 private:
  void Refill();
  Seed32 key_;
  uint64_t next_block_ = 0;  // ChaCha20 block counter of the next refill
  std::array<uint8_t, 512> buf_{};
  size_t pos_;
};

// Number of 32-bit words in one ChaCha20 block.
constexpr int64_t kChaChaBlockWords = 16;

// out[i] += sign * W[offset + i] (mod 2^32) for i in [0, count), where W is the
// keystream of `seed` read as little-endian uint32 words. sign is +1 or -1.
// REQUIRES: offset % kChaChaBlockWords == 0, offset >= 0, count >= 0.
void AddKeystreamWords(const Seed32& seed, int sign, int64_t offset, int64_t count, uint32_t* out);

}  // namespace fedsim
