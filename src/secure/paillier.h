// The Paillier cryptosystem (Paillier, EUROCRYPT 1999) on GMP, with
// BatchCrypt-style packing of several fixed-point values per plaintext (Zhang
// et al., "BatchCrypt", USENIX ATC 2020).
//
//   keys      n = p q with p, q random primes of modulus_bits / 2 bits (top two
//             bits set, so n has exactly modulus_bits bits); g = n + 1.
//   encrypt   c = (1 + m n) r^n mod n^2, r uniform in Z_n^* (from a ChaCha20
//             stream of a caller seed: reproducible).
//   add       c1 c2 mod n^2 encrypts m1 + m2 mod n.
//   decrypt   CRT: m_p = L_p(c^(p-1) mod p^2) h_p mod p (h_p = L_p(g^(p-1)
//             mod p^2)^-1, L_p(x) = (x - 1) / p), likewise for q, then CRT.
//
// Packing: a plaintext holds `slots` values of `slot_bits` bits each,
// m = sum_j v_j 2^(j slot_bits). Each value is a code of value_bits bits
// (e.g. FixedPointCodec codes); slot_bits = value_bits + ceil(log2
// max_clients) leaves headroom so that the sum of up to max_clients packed
// plaintexts never carries across slots; slots * slot_bits <= modulus_bits - 1
// keeps every packed sum below n. A ciphertext is 2 * modulus_bits bits on the
// wire.
//
// Thread-safety: keys are immutable after generation and may be shared by
// threads; ciphertexts are values.
#pragma once

#include <gmp.h>

#include <cstdint>
#include <vector>

#include "secure/prg.h"

namespace fedsim {

// An owning GMP integer (mpz_t with value semantics).
class BigInt {
 public:
  BigInt() { mpz_init(v_); }
  explicit BigInt(unsigned long x) { mpz_init_set_ui(v_, x); }
  BigInt(const BigInt& o) { mpz_init_set(v_, o.v_); }
  BigInt(BigInt&& o) noexcept {
    mpz_init(v_);
    mpz_swap(v_, o.v_);
  }
  BigInt& operator=(const BigInt& o) {
    if (this != &o) mpz_set(v_, o.v_);
    return *this;
  }
  BigInt& operator=(BigInt&& o) noexcept {
    mpz_swap(v_, o.v_);
    return *this;
  }
  ~BigInt() { mpz_clear(v_); }
  mpz_ptr get() { return v_; }
  mpz_srcptr get() const { return v_; }
  bool operator==(const BigInt& o) const { return mpz_cmp(v_, o.v_) == 0; }
  bool operator!=(const BigInt& o) const { return !(*this == o); }

 private:
  mpz_t v_;
};

struct PaillierPublicKey {
  int modulus_bits = 0;
  BigInt n;
  BigInt n_squared;
};

struct PaillierPrivateKey {
  BigInt p, q;
  BigInt p_squared, q_squared;
  BigInt hp, hq;        // L_p(g^(p-1) mod p^2)^-1 mod p, likewise for q
  BigInt q_inv_mod_p;   // for the CRT recombination
};

struct PaillierKeyPair {
  PaillierPublicKey pub;
  PaillierPrivateKey priv;
};

// Generates a key pair. REQUIRES (else InputError): modulus_bits even and in
// [128, 16384] (128 is only for tests; 2048 is the usual 112-bit security
// level). Deterministic in seed.
PaillierKeyPair PaillierKeyGen(int modulus_bits = 2048, uint64_t seed = 1);

// Bytes of one serialised ciphertext: 2 * ceil(modulus_bits / 8).
int64_t PaillierCiphertextBytes(int modulus_bits);

// Encrypts m (0 <= m < n, else InputError) with randomness from `rng`.
BigInt PaillierEncrypt(const PaillierPublicKey& pub, const BigInt& m, ChaChaStream& rng);
// acc <- acc * ct mod n^2 (plaintexts add mod n).
void PaillierAddInPlace(const PaillierPublicKey& pub, BigInt& acc, const BigInt& ct);
BigInt PaillierDecrypt(const PaillierKeyPair& keys, const BigInt& c);
// Fixed-width big-endian encoding, PaillierCiphertextBytes long.
std::vector<uint8_t> PaillierSerialize(const PaillierPublicKey& pub, const BigInt& c);

// How values are packed into plaintexts.
struct PaillierPacking {
  int value_bits = 0;   // bits of each input value
  int slot_bits = 0;    // value_bits + ceil(log2 max_clients)
  int slots = 0;        // values per plaintext
  int max_clients = 0;  // most packed vectors that may be added together

  // REQUIRES (else InputError): 1 <= value_bits <= 32, max_clients >= 1,
  // slot_bits <= 64 and at least one slot fits in modulus_bits - 1 bits.
  static PaillierPacking For(int modulus_bits, int value_bits, int max_clients);
  int64_t Ciphertexts(int64_t count) const { return (count + slots - 1) / slots; }
};

// A packed encrypted vector (or a sum of them).
struct PackedCiphertexts {
  std::vector<BigInt> blocks;  // Ciphertexts(count) ciphertexts
  int64_t count = 0;           // values packed
  int contributions = 0;       // packed vectors summed into this one
};

// Encrypts values[0..count) (each < 2^value_bits, else InputError), packing
// `packing.slots` per ciphertext, randomness from ChaCha20(seed).
PackedCiphertexts EncryptPacked(const PaillierPublicKey& pub, const PaillierPacking& packing, const uint32_t* values,
                                int64_t count, const Seed32& seed);
// acc += ct. An empty acc (no blocks) becomes a copy of ct. Throws InputError
// if the counts differ or the sum would exceed packing.max_clients
// contributions (slots could carry).
void AddInPlace(const PaillierPublicKey& pub, const PaillierPacking& packing, PackedCiphertexts& acc,
                const PackedCiphertexts& ct);
// The slot-wise sums (count values, each < 2^slot_bits).
std::vector<uint64_t> DecryptPacked(const PaillierKeyPair& keys, const PaillierPacking& packing,
                                    const PackedCiphertexts& ct);

}  // namespace fedsim
