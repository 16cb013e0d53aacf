#include <catch2/catch.hpp>

#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "secure/paillier.h"

using namespace fedsim;

namespace {

// One 1024-bit key for all tests (key generation dominates their time).
const PaillierKeyPair& Keys() {
  static const PaillierKeyPair keys = PaillierKeyGen(1024, 42);
  return keys;
}

}  // namespace

TEST_CASE("paillier: encrypt, add, decrypt", "[secure][paillier]") {
  const PaillierKeyPair& k = Keys();
  CHECK(mpz_sizeinbase(k.pub.n.get(), 2) == 1024);
  ChaChaStream rng(SeedFromU64(1, "test"));
  BigInt a(123456789), b(987654321), zero(0);
  BigInt ca = PaillierEncrypt(k.pub, a, rng);
  const BigInt ca2 = PaillierEncrypt(k.pub, a, rng);
  CHECK(ca != ca2);  // randomised
  const BigInt cb = PaillierEncrypt(k.pub, b, rng);
  CHECK(PaillierDecrypt(k, ca) == a);
  CHECK(PaillierDecrypt(k, PaillierEncrypt(k.pub, zero, rng)) == zero);
  PaillierAddInPlace(k.pub, ca, cb);
  CHECK(PaillierDecrypt(k, ca) == BigInt(123456789 + 987654321));
  // n - 1 round-trips; n is rejected.
  BigInt big;
  mpz_sub_ui(big.get(), k.pub.n.get(), 1);
  CHECK(PaillierDecrypt(k, PaillierEncrypt(k.pub, big, rng)) == big);
  CHECK_THROWS_AS(PaillierEncrypt(k.pub, k.pub.n, rng), InputError);
}

TEST_CASE("paillier: ciphertexts are 2x the key size", "[secure][paillier]") {
  const PaillierKeyPair& k = Keys();
  ChaChaStream rng(SeedFromU64(2, "test"));
  CHECK(PaillierCiphertextBytes(1024) == 256);
  CHECK(PaillierCiphertextBytes(2048) == 512);
  for (int i = 0; i < 4; ++i) {
    const BigInt c = PaillierEncrypt(k.pub, BigInt(i), rng);
    CHECK(mpz_sizeinbase(c.get(), 2) <= 2048);
    CHECK(PaillierSerialize(k.pub, c).size() == 256u);
  }
}

TEST_CASE("paillier: packed sums across clients are exact", "[secure][paillier]") {
  const PaillierKeyPair& k = Keys();
  const int clients = 6, value_bits = 16;
  const int64_t count = 500;
  const PaillierPacking packing = PaillierPacking::For(1024, value_bits, clients);
  CHECK(packing.slot_bits == 19);
  CHECK(packing.slots == 1023 / 19);
  Rng rng(3);
  std::vector<uint64_t> expect(count, 0);
  PackedCiphertexts acc;
  for (int c = 0; c < clients; ++c) {
    std::vector<uint32_t> v(count);
    for (auto& x : v) x = c == 0 ? 0xFFFFu : static_cast<uint32_t>(rng.UniformInt(1u << value_bits));  // client 0 maxes every slot
    for (int64_t i = 0; i < count; ++i) expect[i] += v[i];
    const PackedCiphertexts ct = EncryptPacked(k.pub, packing, v.data(), count, SeedFromU64(c, "client"));
    CHECK(static_cast<int64_t>(ct.blocks.size()) == packing.Ciphertexts(count));
    AddInPlace(k.pub, packing, acc, ct);
  }
  CHECK(acc.contributions == clients);
  CHECK(DecryptPacked(k, packing, acc) == expect);
  // One more contribution could carry across slots: refused.
  std::vector<uint32_t> one(count, 1);
  CHECK_THROWS_AS(AddInPlace(k.pub, packing, acc, EncryptPacked(k.pub, packing, one.data(), count, Seed32{})),
                  InputError);
}

TEST_CASE("paillier: bad arguments", "[secure][paillier]") {
  CHECK_THROWS_AS(PaillierKeyGen(1001, 1), InputError);
  CHECK_THROWS_AS(PaillierPacking::For(1024, 0, 4), InputError);
  CHECK_THROWS_AS(PaillierPacking::For(40, 32, 1 << 20), InputError);  // a 52-bit slot in 39 bits
  const PaillierPacking packing = PaillierPacking::For(1024, 8, 4);
  const uint32_t v[2] = {1, 256};
  CHECK_THROWS_WITH(EncryptPacked(Keys().pub, packing, v, 2, Seed32{}), Catch::Contains("values[1]"));
}
