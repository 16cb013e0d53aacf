#include "secure/secure_sum.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <mutex>

#include "core/error.h"
#include "core/rng.h"
#include "secure/fixed_point.h"
#include "secure/he_cost.h"
#include "secure/paillier.h"
#include "secure/prg.h"
#include "secure/secagg.h"

namespace fedsim {

struct SecureSum::State {
  SecureAggregationConfig sa;
  EncryptionConfig he;
  int64_t dim = 0;
  int threads = 1;
  uint64_t seed = 0;
  bool secagg = false, paillier = false, model = false;
  std::unique_ptr<FixedPointCodec> codec;
  std::vector<std::vector<uint32_t>> codes;  // per worker

  // SecAgg round state.
  std::unique_ptr<SecAggSession> session;
  std::vector<char> wants;
  SecAggResult result;

  // Paillier.
  std::unique_ptr<PaillierKeyPair> keys;
  std::unique_ptr<PaillierPacking> packing;
  std::vector<PackedCiphertexts> acc;  // per worker
  std::vector<double> encrypt_seconds;  // per worker
  std::vector<int> submitted;           // cohort indices, per worker then merged
  std::vector<std::vector<int>> submitted_by_worker;
  int round = 0, cohort = 0;
  double server_seconds = 0.0;
  int64_t bytes_up = 0, bytes_down = 0;
  PaillierTimings timings;
};

namespace {
using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
}  // namespace

SecureSum::SecureSum(const SecureAggregationConfig& sa, const EncryptionConfig& he, int64_t dim, int max_cohort,
                     int threads, uint64_t seed)
    : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.sa = sa;
  s.he = he;
  s.dim = dim;
  s.threads = std::max(1, threads);
  s.seed = seed;
  s.secagg = sa.enabled;
  s.paillier = he.scheme == "paillier";
  s.model = he.scheme == "paillier_model" || he.scheme == "bfv" || he.scheme == "ckks";
  const int clients = std::max(1, max_cohort);
  if (s.secagg) {
    if (FixedPointCodec::HeadroomBits(clients) + 2 > sa.bits) {
      throw InputError(fmt::format("secure_aggregation.bits: {} bits leave no room for the sum of {} clients",
                                   sa.bits, clients));
    }
    s.codec = std::make_unique<FixedPointCodec>(sa.bits, sa.range, clients);
  } else if (s.paillier) {
    const int headroom = FixedPointCodec::HeadroomBits(clients);
    if (he.value_bits + headroom > 32) {
      // The real path packs 32-bit codes: more would silently drop value bits
      // (and disagree with paillier_model's estimate for the same keys).
      throw InputError(fmt::format("encryption.value_bits: {} value bits and {} bits of headroom for a cohort of {} "
                                   "exceed the 32-bit codes encryption.scheme=paillier packs; use at most {}",
                                   he.value_bits, headroom, clients, 32 - headroom));
    }
    const int modulus_bits = he.value_bits + headroom;
    s.codec = std::make_unique<FixedPointCodec>(modulus_bits, he.range, clients);
    s.packing = std::make_unique<PaillierPacking>(PaillierPacking::For(he.key_bits, s.codec->value_bits(), clients));
    s.keys = std::make_unique<PaillierKeyPair>(PaillierKeyGen(he.key_bits, SplitMix64(seed)));
  }
  if (s.model && he.scheme == "paillier_model") s.timings = CalibratePaillier(he.key_bits, 4, seed);
  s.codes.assign(static_cast<size_t>(s.threads), std::vector<uint32_t>(static_cast<size_t>(dim)));
}

SecureSum::~SecureSum() = default;

bool SecureSum::protocol() const { return s_->secagg || s_->paillier; }
bool SecureSum::Protocol(const SecureAggregationConfig& sa, const EncryptionConfig& he) {
  return sa.enabled || he.scheme == "paillier";
}
bool SecureSum::active() const { return protocol() || s_->model; }

void SecureSum::BeginRound(int round, int cohort) {
  State& s = *s_;
  s.round = round;
  s.cohort = cohort;
  s.server_seconds = 0.0;
  s.bytes_up = s.bytes_down = 0;
  s.result = SecAggResult();
  s.submitted_by_worker.assign(static_cast<size_t>(s.threads), {});
  if (s.secagg) {
    Rng rng = DeriveStream(s.seed, Stream::kSecAgg, static_cast<uint64_t>(round));
    std::array<double, kSecAggSteps> per_step{};
    for (size_t i = 1; i < per_step.size(); ++i) per_step[i] = s.sa.dropout_rate;
    const DropoutPlan plan = RandomDropouts(cohort, per_step, rng);
    SecAggConfig cfg;
    cfg.bits = s.sa.bits;
    cfg.plus = s.sa.protocol == "secagg_plus";
    cfg.neighbors = s.sa.neighbors;
    cfg.threshold_fraction = s.sa.threshold_fraction;
    s.wants.assign(static_cast<size_t>(cohort), 0);
    // A round with nobody in it (every sampled client offline) is an empty
    // sum: no protocol runs, nothing is sent.
    if (cohort > 0) {
      s.session = std::make_unique<SecAggSession>(cfg, cohort, s.dim, plan, rng.NextU64(), s.threads);
      s.session->ShareKeys();
      for (int u : s.session->OpenInputCollection()) s.wants[static_cast<size_t>(u)] = 1;
    }
  } else if (s.paillier) {
    s.acc.assign(static_cast<size_t>(s.threads), PackedCiphertexts());
    s.encrypt_seconds.assign(static_cast<size_t>(s.threads), 0.0);
  }
}

bool SecureSum::Wants(int index) const {
  return s_->secagg ? s_->wants[static_cast<size_t>(index)] != 0 : s_->paillier;
}

void SecureSum::Submit(int index, const float* upload, int worker) {
  State& s = *s_;
  uint32_t* codes = s.codes[static_cast<size_t>(worker)].data();
  s.codec->Encode(upload, s.dim, codes);
  if (s.secagg) {
    s.session->SubmitInput(index, codes, worker);
  } else if (s.paillier) {
    const auto t = Clock::now();
    const Seed32 seed = DeriveSeed(SeedFromU64(s.seed, "paillier"), "client", static_cast<uint64_t>(s.round),
                                   static_cast<uint64_t>(index));
    PackedCiphertexts ct = EncryptPacked(s.keys->pub, *s.packing, codes, s.dim, seed);
    s.encrypt_seconds[static_cast<size_t>(worker)] += Since(t);
    AddInPlace(s.keys->pub, *s.packing, s.acc[static_cast<size_t>(worker)], ct);
  }
  s.submitted_by_worker[static_cast<size_t>(worker)].push_back(index);
}

std::vector<int> SecureSum::Finish(Eigen::VectorXd& sum) {
  State& s = *s_;
  std::vector<int> included;
  std::vector<uint32_t> total(static_cast<size_t>(s.dim));
  if (s.secagg) {
    // An empty round ran no protocol: nothing is included and its figures
    // stay as BeginRound zeroed them.
    if (s.session) {
      s.result = s.session->Finish();
      s.session.reset();
      included = s.result.survivors;
      total = s.result.sum;
      s.bytes_up = s.result.bytes_up;
      s.bytes_down = s.result.bytes_down;
      s.server_seconds = s.result.server_seconds;
    }
  } else {
    const auto t = Clock::now();
    PackedCiphertexts acc;
    for (const auto& a : s.acc) {
      if (!a.blocks.empty()) AddInPlace(s.keys->pub, *s.packing, acc, a);
    }
    for (const auto& w : s.submitted_by_worker) included.insert(included.end(), w.begin(), w.end());
    std::sort(included.begin(), included.end());
    if (!included.empty()) {
      const std::vector<uint64_t> sums = DecryptPacked(*s.keys, *s.packing, acc);
      for (int64_t i = 0; i < s.dim; ++i) total[static_cast<size_t>(i)] = static_cast<uint32_t>(sums[static_cast<size_t>(i)]);
    }
    s.server_seconds = Since(t);
    s.bytes_up = static_cast<int64_t>(included.size()) * s.packing->Ciphertexts(s.dim) *
                 PaillierCiphertextBytes(s.he.key_bits);
  }
  sum.setZero(s.dim);
  if (!included.empty()) {
    std::vector<float> decoded(static_cast<size_t>(s.dim));
    s.codec->DecodeSum(total.data(), s.dim, static_cast<int>(included.size()), decoded.data());
    for (int64_t i = 0; i < s.dim; ++i) sum[i] = decoded[static_cast<size_t>(i)];
  }
  return included;
}

int64_t SecureSum::RoundBytesUp() const { return s_->bytes_up; }
int64_t SecureSum::RoundBytesDown() const { return s_->bytes_down; }

nlohmann::json SecureSum::RoundMetrics() const {
  const State& s = *s_;
  if (s.secagg) {
    return {{"protocol", s.sa.protocol},
            {"bytes_up", s.result.bytes_up},
            {"bytes_down", s.result.bytes_down},
            {"dropped", s.result.dropped},
            {"recovered", s.result.recovered},
            {"threshold", s.result.threshold},
            {"neighbors", s.result.neighbors},
            {"wall_client_seconds", s.result.client_seconds},
            {"wall_server_seconds", s.result.server_seconds}};
  }
  if (s.paillier) {
    double enc = 0.0;
    for (double e : s.encrypt_seconds) enc += e;
    return {{"scheme", "paillier"},
            {"key_bits", s.he.key_bits},
            {"slots_per_ciphertext", s.packing->slots},
            {"ciphertexts_per_client", s.packing->Ciphertexts(s.dim)},
            {"bytes_up", s.bytes_up},
            {"expansion", static_cast<double>(s.packing->Ciphertexts(s.dim) * PaillierCiphertextBytes(s.he.key_bits)) /
                              (4.0 * static_cast<double>(s.dim))},
            {"wall_client_encrypt_seconds", enc},
            {"wall_server_seconds", s.server_seconds}};
  }
  return nullptr;
}

nlohmann::json SecureSum::ModelledCost(int clients) const {
  const State& s = *s_;
  if (!s.model || clients < 1) return nullptr;
  HeParams p;
  p.modulus_bits = s.he.key_bits;
  p.value_bits = s.he.value_bits;
  p.paillier_timings = s.timings;
  p.poly_degree = s.he.poly_degree;
  p.limbs = s.he.limbs;
  p.time_scale = s.he.time_scale;
  const HeScheme scheme = s.he.scheme == "bfv" ? HeScheme::kBfv : s.he.scheme == "ckks" ? HeScheme::kCkks : HeScheme::kPaillier;
  const HeRoundCost c = Estimate(scheme, p, s.dim, clients);
  return {{"scheme", s.he.scheme},
          {"slots_per_ciphertext", c.slots_per_ciphertext},
          {"ciphertexts_per_client", c.ciphertexts_per_client},
          {"ciphertext_bytes", c.ciphertext_bytes},
          {"bytes_up_per_client", c.bytes_up_per_client},
          {"bytes_up", c.bytes_up_per_client * clients},
          {"expansion", c.expansion},
          {"client_encrypt_seconds", c.client_encrypt_seconds},
          {"server_aggregate_seconds", c.server_aggregate_seconds},
          {"decrypt_seconds", c.decrypt_seconds}};
}

}  // namespace fedsim
