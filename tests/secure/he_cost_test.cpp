#include <catch2/catch.hpp>

#include "core/error.h"
#include "secure/he_cost.h"
#include "secure/paillier.h"

using namespace fedsim;

TEST_CASE("he cost: RLWE ciphertext sizes and packing", "[secure][he_cost]") {
  HeParams p;  // N = 8192, 4 limbs
  const int64_t dim = 199210;
  const HeRoundCost ckks = Estimate(HeScheme::kCkks, p, dim, 100);
  CHECK(ckks.slots_per_ciphertext == 4096);
  CHECK(ckks.ciphertexts_per_client == 49);
  CHECK(ckks.ciphertext_bytes == 2 * 8192 * 4 * 8);
  CHECK(ckks.bytes_up_per_client == 49 * 524288);
  CHECK(ckks.expansion == Approx(49.0 * 524288 / (4.0 * dim)));
  // Published SEAL timings at the reference point (encode + encrypt, add, decrypt + decode).
  CHECK(ckks.client_encrypt_seconds == Approx(49 * (413 + 2483) * 1e-6));
  CHECK(ckks.server_aggregate_seconds == Approx(99 * 49 * 54.1e-6));
  CHECK(ckks.decrypt_seconds == Approx(49 * (99.4 + 847) * 1e-6));
  const HeRoundCost bfv = Estimate(HeScheme::kBfv, p, dim, 100);
  CHECK(bfv.slots_per_ciphertext == 8192);
  CHECK(bfv.ciphertexts_per_client == 25);
  // Linear in N * limbs and in time_scale.
  HeParams p2 = p;
  p2.limbs = 8;
  p2.time_scale = 2;
  const HeRoundCost ckks2 = Estimate(HeScheme::kCkks, p2, dim, 100);
  CHECK(ckks2.ciphertext_bytes == 2 * ckks.ciphertext_bytes);
  CHECK(ckks2.client_encrypt_seconds == Approx(4 * ckks.client_encrypt_seconds));
  p2.poly_degree = 1000;
  CHECK_THROWS_WITH(Estimate(HeScheme::kCkks, p2, dim, 100), Catch::Contains("poly_degree"));
}

TEST_CASE("he cost: Paillier uses the calibrated implementation", "[secure][he_cost]") {
  HeParams p;
  p.modulus_bits = 1024;
  CHECK_THROWS_WITH(Estimate(HeScheme::kPaillier, p, 1000, 10), Catch::Contains("CalibratePaillier"));
  p.paillier_timings = CalibratePaillier(1024, 2, 5);
  CHECK(p.paillier_timings.encrypt_seconds > 0);
  CHECK(p.paillier_timings.add_seconds > 0);
  CHECK(p.paillier_timings.decrypt_seconds > 0);
  CHECK(p.paillier_timings.add_seconds < p.paillier_timings.encrypt_seconds);
  const int64_t dim = 199210;
  const HeRoundCost c = Estimate(HeScheme::kPaillier, p, dim, 100);
  const PaillierPacking packing = PaillierPacking::For(1024, 16, 100);  // 23-bit slots
  CHECK(c.slots_per_ciphertext == packing.slots);
  CHECK(c.ciphertexts_per_client == (dim + packing.slots - 1) / packing.slots);
  CHECK(c.ciphertext_bytes == 256);
  CHECK(c.client_encrypt_seconds == Approx(c.ciphertexts_per_client * p.paillier_timings.encrypt_seconds));
  CHECK(c.expansion == Approx(static_cast<double>(c.bytes_up_per_client) / (4.0 * dim)));
}
