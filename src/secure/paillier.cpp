#include "secure/paillier.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "secure/fixed_point.h"
#include "secure/secure_error.h"

namespace fedsim {

static_assert(sizeof(unsigned long) == 8, "slot extraction uses mpz_get_ui for up to 64-bit slots");

namespace {

// A uniform integer of `bits` bits (leading bits may be zero) from the stream.
void RandomBits(mpz_ptr out, int bits, ChaChaStream& rng) {
  std::vector<uint8_t> buf((bits + 7) / 8);
  rng.Fill(buf.data(), buf.size());
  mpz_import(out, buf.size(), 1, 1, 0, 0, buf.data());
  mpz_fdiv_r_2exp(out, out, static_cast<mp_bitcnt_t>(bits));
}

// A prime of exactly `bits` bits with its top two bits set.
void RandomPrime(mpz_ptr out, int bits, ChaChaStream& rng) {
  for (;;) {
    RandomBits(out, bits, rng);
    mpz_setbit(out, static_cast<mp_bitcnt_t>(bits - 1));
    mpz_setbit(out, static_cast<mp_bitcnt_t>(bits - 2));
    mpz_setbit(out, 0);
    mpz_nextprime(out, out);
    if (mpz_sizeinbase(out, 2) == static_cast<size_t>(bits)) return;
  }
}

// h = L_p(g^(p-1) mod p^2)^-1 mod p with L_p(x) = (x - 1) / p.
void CrtFactor(mpz_ptr h, mpz_srcptr g, mpz_srcptr p, mpz_srcptr p_squared) {
  BigInt pm1, x;
  mpz_sub_ui(pm1.get(), p, 1);
  mpz_powm(x.get(), g, pm1.get(), p_squared);
  mpz_sub_ui(x.get(), x.get(), 1);
  mpz_divexact(x.get(), x.get(), p);
  if (mpz_invert(h, x.get(), p) == 0) throw RunError("paillier: key generation produced a non-invertible CRT factor");
}

// m_p = L_p(c^(p-1) mod p^2) h_p mod p.
void DecryptModPrime(mpz_ptr out, mpz_srcptr c, mpz_srcptr p, mpz_srcptr p_squared, mpz_srcptr h) {
  BigInt pm1;
  mpz_sub_ui(pm1.get(), p, 1);
  mpz_powm(out, c, pm1.get(), p_squared);
  mpz_sub_ui(out, out, 1);
  mpz_divexact(out, out, p);
  mpz_mul(out, out, h);
  mpz_mod(out, out, p);
}

}  // namespace

PaillierKeyPair PaillierKeyGen(int modulus_bits, uint64_t seed) {
  if (modulus_bits < 128 || modulus_bits > 16384 || modulus_bits % 2 != 0)
    throw InputError(fmt::format("paillier: modulus_bits must be even and in [128, 16384], got {}", modulus_bits));
  ChaChaStream rng(SeedFromU64(seed, "fedsim/paillier/keygen"));
  PaillierKeyPair k;
  PaillierPrivateKey& s = k.priv;
  PaillierPublicKey& pub = k.pub;
  const int half = modulus_bits / 2;
  BigInt phi, pm1, qm1, gcd;
  for (;;) {
    RandomPrime(s.p.get(), half, rng);
    RandomPrime(s.q.get(), half, rng);
    if (s.p == s.q) continue;
    mpz_mul(pub.n.get(), s.p.get(), s.q.get());
    mpz_sub_ui(pm1.get(), s.p.get(), 1);
    mpz_sub_ui(qm1.get(), s.q.get(), 1);
    mpz_mul(phi.get(), pm1.get(), qm1.get());
    mpz_gcd(gcd.get(), pub.n.get(), phi.get());
    if (mpz_cmp_ui(gcd.get(), 1) == 0 && mpz_sizeinbase(pub.n.get(), 2) == static_cast<size_t>(modulus_bits)) break;
  }
  pub.modulus_bits = modulus_bits;
  mpz_mul(pub.n_squared.get(), pub.n.get(), pub.n.get());
  mpz_mul(s.p_squared.get(), s.p.get(), s.p.get());
  mpz_mul(s.q_squared.get(), s.q.get(), s.q.get());
  BigInt g;
  mpz_add_ui(g.get(), pub.n.get(), 1);
  CrtFactor(s.hp.get(), g.get(), s.p.get(), s.p_squared.get());
  CrtFactor(s.hq.get(), g.get(), s.q.get(), s.q_squared.get());
  if (mpz_invert(s.q_inv_mod_p.get(), s.q.get(), s.p.get()) == 0)
    throw RunError("paillier: key generation produced primes that are not coprime");
  return k;
}

int64_t PaillierCiphertextBytes(int modulus_bits) { return 2 * ((static_cast<int64_t>(modulus_bits) + 7) / 8); }

BigInt PaillierEncrypt(const PaillierPublicKey& pub, const BigInt& m, ChaChaStream& rng) {
  if (mpz_sgn(m.get()) < 0 || mpz_cmp(m.get(), pub.n.get()) >= 0)
    throw InputError("paillier: plaintext must be in [0, n)");
  BigInt r, gcd;
  for (;;) {
    RandomBits(r.get(), pub.modulus_bits, rng);
    if (mpz_sgn(r.get()) == 0 || mpz_cmp(r.get(), pub.n.get()) >= 0) continue;
    mpz_gcd(gcd.get(), r.get(), pub.n.get());
    if (mpz_cmp_ui(gcd.get(), 1) == 0) break;
  }
  BigInt c, gm;
  mpz_powm(c.get(), r.get(), pub.n.get(), pub.n_squared.get());  // r^n mod n^2
  mpz_mul(gm.get(), m.get(), pub.n.get());                       // g^m = 1 + m n mod n^2 for g = n + 1
  mpz_add_ui(gm.get(), gm.get(), 1);
  mpz_mul(c.get(), c.get(), gm.get());
  mpz_mod(c.get(), c.get(), pub.n_squared.get());
  return c;
}

void PaillierAddInPlace(const PaillierPublicKey& pub, BigInt& acc, const BigInt& ct) {
  mpz_mul(acc.get(), acc.get(), ct.get());
  mpz_mod(acc.get(), acc.get(), pub.n_squared.get());
}

BigInt PaillierDecrypt(const PaillierKeyPair& keys, const BigInt& c) {
  const PaillierPrivateKey& s = keys.priv;
  if (mpz_sgn(c.get()) <= 0 || mpz_cmp(c.get(), keys.pub.n_squared.get()) >= 0)
    throw InputError("paillier: ciphertext must be in [1, n^2)");
  BigInt mp, mq, m;
  DecryptModPrime(mp.get(), c.get(), s.p.get(), s.p_squared.get(), s.hp.get());
  DecryptModPrime(mq.get(), c.get(), s.q.get(), s.q_squared.get(), s.hq.get());
  // m = m_q + q ((m_p - m_q) q^-1 mod p)
  mpz_sub(m.get(), mp.get(), mq.get());
  mpz_mul(m.get(), m.get(), s.q_inv_mod_p.get());
  mpz_mod(m.get(), m.get(), s.p.get());
  mpz_mul(m.get(), m.get(), s.q.get());
  mpz_add(m.get(), m.get(), mq.get());
  return m;
}

std::vector<uint8_t> PaillierSerialize(const PaillierPublicKey& pub, const BigInt& c) {
  const size_t width = static_cast<size_t>(PaillierCiphertextBytes(pub.modulus_bits));
  std::vector<uint8_t> out(width, 0);
  const size_t used = (mpz_sizeinbase(c.get(), 2) + 7) / 8;
  if (mpz_sgn(c.get()) < 0 || used > width) throw InputError("paillier: ciphertext does not fit the key size");
  size_t written = 0;
  if (mpz_sgn(c.get()) != 0) mpz_export(out.data() + (width - used), &written, 1, 1, 0, 0, c.get());
  return out;
}

PaillierPacking PaillierPacking::For(int modulus_bits, int value_bits, int max_clients) {
  if (value_bits < 1 || value_bits > 32)
    throw InputError(fmt::format("paillier packing: value_bits must be in [1, 32], got {}", value_bits));
  if (max_clients < 1)
    throw InputError(fmt::format("paillier packing: max_clients must be >= 1, got {}", max_clients));
  PaillierPacking p;
  p.value_bits = value_bits;
  p.max_clients = max_clients;
  p.slot_bits = value_bits + FixedPointCodec::HeadroomBits(max_clients);
  if (p.slot_bits > 64)
    throw InputError(fmt::format("paillier packing: slots of {} bits (value_bits + headroom) exceed 64", p.slot_bits));
  p.slots = (modulus_bits - 1) / p.slot_bits;
  if (p.slots < 1)
    throw InputError(fmt::format("paillier packing: modulus_bits = {} holds no {}-bit slot", modulus_bits, p.slot_bits));
  return p;
}

PackedCiphertexts EncryptPacked(const PaillierPublicKey& pub, const PaillierPacking& packing, const uint32_t* values,
                                int64_t count, const Seed32& seed) {
  if (count < 0) throw InputError("paillier: count must be >= 0");
  if (packing.slots < 1 || packing.slots * static_cast<int64_t>(packing.slot_bits) > pub.modulus_bits - 1)
    throw InputError("paillier: packing does not match the key (use PaillierPacking::For with its modulus_bits)");
  const uint64_t limit = uint64_t{1} << packing.value_bits;
  for (int64_t i = 0; i < count; ++i)
    if (values[i] >= limit)
      throw InputError(fmt::format("paillier: values[{}] = {} does not fit in value_bits = {}", i, values[i],
                                   packing.value_bits));
  ChaChaStream rng(seed);
  PackedCiphertexts out;
  out.count = count;
  out.contributions = 1;
  const int64_t blocks = packing.Ciphertexts(count);
  out.blocks.reserve(blocks);
  BigInt m;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t first = b * packing.slots;
    const int64_t last = std::min(count, first + packing.slots);
    mpz_set_ui(m.get(), 0);
    for (int64_t i = last; i-- > first;) {  // slot j = i - first holds bits [j s, (j + 1) s)
      mpz_mul_2exp(m.get(), m.get(), static_cast<mp_bitcnt_t>(packing.slot_bits));
      mpz_add_ui(m.get(), m.get(), values[i]);
    }
    out.blocks.push_back(PaillierEncrypt(pub, m, rng));
  }
  return out;
}

void AddInPlace(const PaillierPublicKey& pub, const PaillierPacking& packing, PackedCiphertexts& acc,
                const PackedCiphertexts& ct) {
  if (acc.blocks.empty() && acc.contributions == 0) {
    acc = ct;
    return;
  }
  if (acc.count != ct.count || acc.blocks.size() != ct.blocks.size())
    throw InputError(fmt::format("paillier: cannot add packed vectors of {} and {} values", acc.count, ct.count));
  if (acc.contributions + ct.contributions > packing.max_clients)
    throw InputError(fmt::format(
        "paillier: adding would sum {} vectors, more than the {} the packing's headroom allows (slots would carry)",
        acc.contributions + ct.contributions, packing.max_clients));
  for (size_t b = 0; b < acc.blocks.size(); ++b) PaillierAddInPlace(pub, acc.blocks[b], ct.blocks[b]);
  acc.contributions += ct.contributions;
}

std::vector<uint64_t> DecryptPacked(const PaillierKeyPair& keys, const PaillierPacking& packing,
                                    const PackedCiphertexts& ct) {
  if (static_cast<int64_t>(ct.blocks.size()) != packing.Ciphertexts(ct.count))
    throw InputError("paillier: packed ciphertext has the wrong number of blocks for its count");
  std::vector<uint64_t> out(ct.count);
  BigInt slot;
  for (size_t b = 0; b < ct.blocks.size(); ++b) {
    BigInt m = PaillierDecrypt(keys, ct.blocks[b]);
    const int64_t first = static_cast<int64_t>(b) * packing.slots;
    const int64_t last = std::min(ct.count, first + packing.slots);
    for (int64_t i = first; i < last; ++i) {
      mpz_fdiv_r_2exp(slot.get(), m.get(), static_cast<mp_bitcnt_t>(packing.slot_bits));
      out[i] = static_cast<uint64_t>(mpz_get_ui(slot.get()));
      mpz_fdiv_q_2exp(m.get(), m.get(), static_cast<mp_bitcnt_t>(packing.slot_bits));
    }
    if (mpz_sgn(m.get()) != 0)
      throw SecAggError("paillier: decrypted plaintext has bits above its last slot (wrong key or corrupted sum)");
  }
  return out;
}

}  // namespace fedsim
