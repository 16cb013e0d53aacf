#include "secure/secagg.h"

#include <fmt/format.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "secure/prg.h"

namespace fedsim {

static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == 16, "share ciphertext size assumes a 16-byte tag");
static_assert(crypto_scalarmult_BYTES == kSecAggPublicKeyBytes, "X25519 public keys are 32 bytes");

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Words of a masked input processed at a time: the input chunk, the masked
// chunk and one keystream chunk stay in L1 while all masks are added.
constexpr int64_t kMaskChunkWords = 2048;
static_assert(kMaskChunkWords % kChaChaBlockWords == 0, "chunks must start on ChaCha20 block boundaries");

struct KeyPair {
  Seed32 sk{};
  Seed32 pk{};
};

KeyPair MakeKeyPair(const Seed32& sk) {
  KeyPair kp;
  kp.sk = sk;
  crypto_scalarmult_base(kp.pk.data(), kp.sk.data());
  return kp;
}

// KA.agree followed by a hash: BLAKE2b(tag || X25519(my_sk, other_pk) ||
// pk of the lower index || pk of the higher index). Both ends (and the server
// holding a reconstructed my_sk) obtain the same 32 bytes.
Seed32 Agree(char tag, const Seed32& my_sk, int me, const Seed32& my_pk, int other, const Seed32& other_pk) {
  uint8_t shared[crypto_scalarmult_BYTES];
  if (crypto_scalarmult(shared, my_sk.data(), other_pk.data()) != 0)
    throw SecAggError(fmt::format(
        "secure aggregation: X25519 key agreement between clients {} and {} failed (degenerate public key)", me,
        other));
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  const uint8_t t = static_cast<uint8_t>(tag);
  crypto_generichash_update(&st, &t, 1);
  crypto_generichash_update(&st, shared, sizeof shared);
  const Seed32& lo = me < other ? my_pk : other_pk;
  const Seed32& hi = me < other ? other_pk : my_pk;
  crypto_generichash_update(&st, lo.data(), lo.size());
  crypto_generichash_update(&st, hi.data(), hi.size());
  Seed32 out;
  crypto_generichash_final(&st, out.data(), out.size());
  sodium_memzero(shared, sizeof shared);
  return out;
}

// The share ciphertext nonce: both directions of a pair use the same key, so
// the direction is the nonce (each key encrypts one message per direction).
std::array<uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> ShareNonce(int from, int to) {
  std::array<uint8_t, crypto_aead_chacha20poly1305_ietf_NPUBBYTES> n{};
  n[0] = from < to ? 0 : 1;
  return n;
}

using ShareCiphertext = std::array<uint8_t, kSecAggShareCiphertextBytes>;
using SharePlaintext = std::array<uint8_t, kSecAggSharePlaintextBytes>;

void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
void PutShare(uint8_t* p, const ShamirShare& s) {
  for (int e = 0; e < kShamirElements; ++e)
    for (int i = 0; i < 8; ++i) p[8 * e + i] = static_cast<uint8_t>(s.y[e] >> (8 * i));
}
ShamirShare GetShare(const uint8_t* p, uint64_t x) {
  ShamirShare s;
  s.x = x;
  for (int e = 0; e < kShamirElements; ++e)
    for (int i = 0; i < 8; ++i) s.y[e] |= static_cast<uint64_t>(p[8 * e + i]) << (8 * i);
  return s;
}

// A message in the share round: the peer (recipient in an outbox, sender in an
// inbox) and the ciphertext.
struct Envelope {
  int peer = 0;
  ShareCiphertext ct{};
};

// A share revealed to the server in the unmasking round.
struct Reveal {
  int owner = 0;      // whose secret
  bool self = false;  // true: share of b_owner; false: share of s_owner^SK
  ShamirShare share;
};

const char* StepName(int s) { return SecAggStepName(static_cast<SecAggStep>(s)); }

std::vector<int> Members(const std::vector<char>& flags) {
  std::vector<int> m;
  for (size_t i = 0; i < flags.size(); ++i)
    if (flags[i]) m.push_back(static_cast<int>(i));
  return m;
}

}  // namespace

const char* SecAggStepName(SecAggStep step) {
  switch (step) {
    case SecAggStep::kAdvertiseKeys: return "AdvertiseKeys";
    case SecAggStep::kShareKeys: return "ShareKeys";
    case SecAggStep::kMaskedInputCollection: return "MaskedInputCollection";
    case SecAggStep::kUnmasking: return "Unmasking";
  }
  return "?";
}

DropoutPlan RandomDropouts(int clients, double probability, SecAggStep step, Rng& rng) {
  if (clients < 0) throw InputError("secure aggregation: RandomDropouts clients must be >= 0");
  if (!(probability >= 0.0 && probability <= 1.0))
    throw InputError(fmt::format("secure aggregation: RandomDropouts probability must be in [0, 1], got {}", probability));
  DropoutPlan plan;
  auto& list = plan.drop_before[static_cast<int>(step)];
  for (int u = 0; u < clients; ++u)
    if (rng.Uniform() < probability) list.push_back(u);
  return plan;
}

DropoutPlan RandomDropouts(int clients, const std::array<double, kSecAggSteps>& per_step, Rng& rng) {
  if (clients < 0) throw InputError("secure aggregation: RandomDropouts clients must be >= 0");
  for (int s = 0; s < kSecAggSteps; ++s)
    if (!(per_step[s] >= 0.0 && per_step[s] <= 1.0))
      throw InputError(fmt::format("secure aggregation: RandomDropouts per_step[{}] ({}) must be in [0, 1], got {}",
                                   s, StepName(s), per_step[s]));
  DropoutPlan plan;
  std::vector<char> online(clients, 1);
  for (int s = 0; s < kSecAggSteps; ++s)
    for (int u = 0; u < clients; ++u)
      if (online[u] && rng.Uniform() < per_step[s]) {
        online[u] = 0;
        plan.drop_before[s].push_back(u);
      }
  return plan;
}

int ValidSecAggNeighbors(int n, int k) {
  if (n <= 1) return 0;
  if (k < 1) throw InputError(fmt::format("secure aggregation: neighbors must be >= 1, got {}", k));
  if (k >= n - 1) return n - 1;
  if (k % 2 != 0) ++k;
  return k >= n - 1 ? n - 1 : k;
}

int DefaultSecAggNeighbors(int n) {
  if (n <= 1) return 0;
  // ceil(2 log2 n) = the least k with 2^k >= n^2, computed exactly.
  const uint64_t n2 = static_cast<uint64_t>(n) * static_cast<uint64_t>(n);
  int k = 0;
  while (k < 63 && (uint64_t{1} << k) < n2) ++k;
  return ValidSecAggNeighbors(n, std::max(k, 1));
}

std::vector<std::vector<int>> SecAggPlusGraph(int n, int k, uint64_t seed) {
  if (n < 0) throw InputError("secure aggregation: graph size must be >= 0");
  if (n <= 1) {
    if (k != 0) throw InputError(fmt::format("secure aggregation: a graph of {} clients has degree 0, got {}", n, k));
    return std::vector<std::vector<int>>(n);
  }
  if (k != ValidSecAggNeighbors(n, k))
    throw InputError(fmt::format("secure aggregation: degree {} is not valid for {} clients (use {})", k, n,
                                 ValidSecAggNeighbors(n, k)));
  std::vector<std::vector<int>> adj(n);
  if (k == n - 1) {
    for (int u = 0; u < n; ++u)
      for (int v = 0; v < n; ++v)
        if (v != u) adj[u].push_back(v);
    return adj;
  }
  std::vector<int> ring(n);  // ring[p] = client at ring position p
  std::iota(ring.begin(), ring.end(), 0);
  Rng rng(seed);
  rng.Shuffle(ring.begin(), ring.end());
  for (int p = 0; p < n; ++p)
    for (int d = 1; d <= k / 2; ++d) {
      const int a = ring[p], b = ring[(p + d) % n];
      adj[a].push_back(b);
      adj[b].push_back(a);
    }
  for (auto& l : adj) std::sort(l.begin(), l.end());
  return adj;
}

struct SecAggSession::State {
  enum class Phase { kCreated, kKeysShared, kCollecting, kFinished, kFailed };

  SecAggConfig config;
  DropoutPlan dropouts;
  int n = 0;
  int64_t dim = 0;
  int threads = 1;
  bool plus = false;
  int k = 0;  // degree
  int t = 0;  // threshold
  uint32_t value_mask = 0;
  int64_t value_bytes = 0;
  Seed32 master{};
  Phase phase = Phase::kCreated;

  std::vector<std::vector<int>> holders;  // H(u) = {u} u N(u), increasing
  std::vector<char> online;
  std::vector<char> in_u1, in_u2, expected, submitted;
  std::vector<int> u2;
  std::vector<KeyPair> ckey, skey;
  std::vector<Seed32> bseed;
  std::vector<ShamirShare> own_b;
  std::vector<std::vector<Envelope>> inbox;  // ciphertexts addressed to u, by sender
  // Share-encryption keys each client agreed in ShareKeys, kept for Unmasking:
  // peer_ids[u] increasing, peer_keys[u][i] shared with peer_ids[u][i].
  std::vector<std::vector<int>> peer_ids;
  std::vector<std::vector<Seed32>> peer_keys;
  std::vector<std::vector<uint32_t>> acc;    // per-worker running sums
  std::vector<double> acc_time;              // per-worker server time spent adding
  std::vector<int> record_slot;
  std::vector<std::vector<uint32_t>> masked_inputs;
  std::vector<int64_t> up, down;
  std::vector<double> client_time;
  double server_time = 0.0;

  void ApplyDropouts(int step) {
    for (int c : dropouts.drop_before[step]) online[c] = 0;
    if (dropouts.drops)
      for (int u = 0; u < n; ++u)
        if (online[u] && dropouts.drops(static_cast<SecAggStep>(step), u)) online[u] = 0;
  }

  static int CountIn(const std::vector<int>& list, const std::vector<char>& in) {
    int c = 0;
    for (int v : list) c += in[v] ? 1 : 0;
    return c;
  }

  [[noreturn]] void FailNeighbourhood(int client, int have, int step) {
    phase = Phase::kFailed;
    throw SecAggError(fmt::format(
        "secure aggregation: only {} of {} clients remain in the neighbourhood of client {} after {}, below the "
        "threshold t = {}",
        have, holders[client].size(), client, StepName(step), t));
  }

  // After `step` the members of `in` (`count` of them) must number at least t,
  // and (SecAgg+) each member must still see t of its holder set.
  void CheckSurvivors(int step, const std::vector<char>& in, int count) {
    if (count < t) {
      phase = Phase::kFailed;
      throw SecAggError(fmt::format("secure aggregation: only {} of {} clients remain after {}, below the threshold t = {}",
                                    count, n, StepName(step), t));
    }
    if (!plus) return;
    for (int u = 0; u < n; ++u) {
      if (!in[u]) continue;
      const int c = CountIn(holders[u], in);
      if (c < t) FailNeighbourhood(u, c, step);
    }
  }

  void RequirePhase(Phase want, const char* call) const {
    if (phase == want) return;
    if (phase == Phase::kFailed)
      throw RunError(fmt::format("secure aggregation: {} called on a session that already failed", call));
    throw RunError(fmt::format("secure aggregation: {} called out of order", call));
  }
};

SecAggSession::SecAggSession(const SecAggConfig& config, int clients, int64_t dim, const DropoutPlan& dropouts,
                             uint64_t seed, int threads)
    : s_(std::make_unique<State>()) {
  EnsureSodium();
  State& S = *s_;
  if (clients < 1) throw InputError(fmt::format("secure aggregation: clients must be >= 1, got {}", clients));
  if (clients > INT32_MAX - 1) throw InputError("secure aggregation: too many clients");
  if (dim < 1) throw InputError(fmt::format("secure aggregation: dim must be >= 1, got {}", dim));
  if (config.bits < 1 || config.bits > 32)
    throw InputError(fmt::format("secure aggregation: config.bits must be in [1, 32], got {}", config.bits));
  if (!(config.threshold_fraction >= 0.0 && config.threshold_fraction <= 1.0))
    throw InputError(fmt::format("secure aggregation: config.threshold_fraction must be in [0, 1], got {}",
                                 config.threshold_fraction));
  if (config.neighbors < 0)
    throw InputError(fmt::format("secure aggregation: config.neighbors must be >= 0, got {}", config.neighbors));
  const int n = clients;
  S.record_slot.assign(n, -1);
  for (size_t r = 0; r < config.record_masked_inputs.size(); ++r) {
    const int c = config.record_masked_inputs[r];
    if (c < 0 || c >= n)
      throw InputError(
          fmt::format("secure aggregation: config.record_masked_inputs names client {}, but there are {}", c, n));
    if (S.record_slot[c] >= 0)
      throw InputError(fmt::format("secure aggregation: config.record_masked_inputs names client {} twice", c));
    S.record_slot[c] = static_cast<int>(r);
  }
  for (int st = 0; st < kSecAggSteps; ++st)
    for (int c : dropouts.drop_before[st])
      if (c < 0 || c >= n)
        throw InputError(fmt::format("secure aggregation: dropouts.drop_before[{}] names client {}, but there are {}",
                                     StepName(st), c, n));
  S.config = config;
  S.dropouts = dropouts;
  S.n = n;
  S.dim = dim;
  S.threads = ResolveThreads(threads);
  S.value_mask = config.bits == 32 ? 0xFFFFFFFFu : ((uint32_t{1} << config.bits) - 1);
  S.value_bytes = (config.bits + 7) / 8;
  S.master = SeedFromU64(seed, "fedsim/secagg/v1");
  S.plus = config.plus;
  S.k = S.plus ? ValidSecAggNeighbors(n, config.neighbors > 0 ? config.neighbors : DefaultSecAggNeighbors(n)) : n - 1;
  S.holders.resize(n);
  std::vector<std::vector<int>> adj;
  if (S.plus) adj = SecAggPlusGraph(n, S.k, SeedPrefixU64(DeriveSeed(S.master, "graph")));
  for (int u = 0; u < n; ++u) {
    if (S.plus) {
      S.holders[u] = std::move(adj[u]);
      S.holders[u].insert(std::lower_bound(S.holders[u].begin(), S.holders[u].end(), u), u);
    } else {
      S.holders[u].resize(n);
      std::iota(S.holders[u].begin(), S.holders[u].end(), 0);
    }
  }
  const int m = S.k + 1;
  S.t = std::min(m, static_cast<int>(std::floor(config.threshold_fraction * m)) + 1);
  S.online.assign(n, 1);
  S.up.assign(n, 0);
  S.down.assign(n, 0);
  S.client_time.assign(n, 0.0);
}

SecAggSession::~SecAggSession() = default;
SecAggSession::SecAggSession(SecAggSession&&) noexcept = default;
SecAggSession& SecAggSession::operator=(SecAggSession&&) noexcept = default;

int SecAggSession::clients() const { return s_->n; }
int64_t SecAggSession::dim() const { return s_->dim; }
int SecAggSession::threshold() const { return s_->t; }
int SecAggSession::neighbors() const { return s_->k; }

void SecAggSession::ShareKeys() {
  State& S = *s_;
  S.RequirePhase(State::Phase::kCreated, "ShareKeys");
  S.phase = State::Phase::kFailed;  // until this call completes
  const int n = S.n;
  const int t = S.t;

  // ---- Round 0: AdvertiseKeys ----------------------------------------------
  S.ApplyDropouts(0);
  const std::vector<int> u1 = Members(S.online);
  S.ckey.resize(n);
  S.skey.resize(n);
  ParallelFor(static_cast<int64_t>(u1.size()), S.threads, [&](int64_t i, int) {
    const int u = u1[i];
    const Clock::time_point t0 = Clock::now();
    S.ckey[u] = MakeKeyPair(DeriveSeed(S.master, "c_sk", static_cast<uint64_t>(u)));
    S.skey[u] = MakeKeyPair(DeriveSeed(S.master, "s_sk", static_cast<uint64_t>(u)));
    S.client_time[u] += Since(t0);
    S.up[u] += 2 * kSecAggPublicKeyBytes;
  });
  S.in_u1 = S.online;
  {
    const Clock::time_point t0 = Clock::now();
    S.CheckSurvivors(0, S.in_u1, static_cast<int>(u1.size()));
    // The server sends each client the keys of its neighbours that advertised.
    for (int u : u1)
      S.down[u] += (State::CountIn(S.holders[u], S.in_u1) - 1) * (kSecAggClientIdBytes + 2 * kSecAggPublicKeyBytes);
    S.server_time += Since(t0);
  }

  // ---- Round 1: ShareKeys --------------------------------------------------
  S.ApplyDropouts(1);
  S.u2 = Members(S.online);
  S.bseed.resize(n);
  S.own_b.resize(n);
  S.inbox.assign(n, {});
  S.peer_ids.assign(n, {});
  S.peer_keys.assign(n, {});
  std::vector<std::vector<Envelope>> outbox(n);
  ParallelFor(static_cast<int64_t>(S.u2.size()), S.threads, [&](int64_t i, int) {
    const int u = S.u2[i];
    const Clock::time_point t0 = Clock::now();
    S.bseed[u] = DeriveSeed(S.master, "b", static_cast<uint64_t>(u));
    std::vector<int> recipients;
    for (int v : S.holders[u])
      if (S.in_u1[v]) recipients.push_back(v);
    std::vector<uint64_t> xs(recipients.size());
    for (size_t j = 0; j < recipients.size(); ++j) xs[j] = static_cast<uint64_t>(recipients[j]) + 1;
    const std::vector<ShamirShare> sh_s =
        ShamirSplit(S.skey[u].sk, t, xs, DeriveSeed(S.master, "shamir_s", static_cast<uint64_t>(u)));
    const std::vector<ShamirShare> sh_b =
        ShamirSplit(S.bseed[u], t, xs, DeriveSeed(S.master, "shamir_b", static_cast<uint64_t>(u)));
    auto& out = outbox[u];
    out.reserve(recipients.size());
    for (size_t j = 0; j < recipients.size(); ++j) {
      const int v = recipients[j];
      if (v == u) {
        S.own_b[u] = sh_b[j];  // u's own share of s_u^SK is never needed: it is only used if u drops
        continue;
      }
      const Seed32 key = Agree('E', S.ckey[u].sk, u, S.ckey[u].pk, v, S.ckey[v].pk);
      S.peer_ids[u].push_back(v);
      S.peer_keys[u].push_back(key);
      SharePlaintext pt;
      PutU32(pt.data(), static_cast<uint32_t>(u));
      PutU32(pt.data() + 4, static_cast<uint32_t>(v));
      PutShare(pt.data() + 8, sh_s[j]);
      PutShare(pt.data() + 8 + kShamirShareWireBytes, sh_b[j]);
      Envelope env;
      env.peer = v;
      unsigned long long clen = 0;
      const auto nonce = ShareNonce(u, v);
      crypto_aead_chacha20poly1305_ietf_encrypt(env.ct.data(), &clen, pt.data(), pt.size(), nullptr, 0, nullptr,
                                                nonce.data(), key.data());
      sodium_memzero(pt.data(), pt.size());
      out.push_back(env);
    }
    S.up[u] += static_cast<int64_t>(out.size()) * (kSecAggClientIdBytes + kSecAggShareCiphertextBytes);
    S.client_time[u] += Since(t0);
  });
  S.in_u2 = S.online;
  {
    const Clock::time_point t0 = Clock::now();
    // The server routes each ciphertext to its recipient, in sender order.
    for (int u : S.u2) {
      for (const Envelope& e : outbox[u]) S.inbox[e.peer].push_back(Envelope{u, e.ct});
      std::vector<Envelope>().swap(outbox[u]);
    }
    S.CheckSurvivors(1, S.in_u2, static_cast<int>(S.u2.size()));
    for (int u : S.u2)
      S.down[u] += static_cast<int64_t>(S.inbox[u].size()) * (kSecAggClientIdBytes + kSecAggShareCiphertextBytes);
    S.server_time += Since(t0);
  }
  S.phase = State::Phase::kKeysShared;
}

std::vector<int> SecAggSession::OpenInputCollection() {
  State& S = *s_;
  S.RequirePhase(State::Phase::kKeysShared, "OpenInputCollection");
  S.ApplyDropouts(2);
  S.expected = S.online;
  S.submitted.assign(S.n, 0);
  S.acc.assign(S.threads, {});
  S.acc_time.assign(S.threads, 0.0);
  S.masked_inputs.assign(S.config.record_masked_inputs.size(), {});
  S.phase = State::Phase::kCollecting;
  return Members(S.expected);
}

void SecAggSession::SubmitInput(int client, const uint32_t* input, int worker) {
  State& S = *s_;
  S.RequirePhase(State::Phase::kCollecting, "SubmitInput");
  if (client < 0 || client >= S.n || !S.expected[client])
    throw InputError(fmt::format("secure aggregation: client {} is not expected to submit an input", client));
  if (S.submitted[client]) throw InputError(fmt::format("secure aggregation: client {} submitted twice", client));
  if (input == nullptr) throw InputError(fmt::format("secure aggregation: input of client {} is null", client));
  if (worker < 0 || worker >= S.threads)
    throw InputError(fmt::format("secure aggregation: worker must be in [0, {}), got {}", S.threads, worker));
  const int u = client;
  const int64_t dim = S.dim;
  const uint32_t value_mask = S.value_mask;
  // Reject out-of-range values before anything is sent or added.
  uint32_t out_of_range = 0;
  for (int64_t j = 0; j < dim; ++j) out_of_range |= input[j] & ~value_mask;
  if (out_of_range != 0) {
    int64_t j = 0;
    while ((input[j] & ~value_mask) == 0) ++j;
    throw InputError(fmt::format("secure aggregation: input of client {}: value [{}] = {} does not fit in config.bits = {}",
                                 u, j, input[j], S.config.bits));
  }
  const Clock::time_point t0 = Clock::now();
  double server_part = 0.0;
  // Masks: the self mask, then one pairwise mask per neighbour that shared keys
  // (exactly the senders of u's inbox).
  std::vector<std::pair<Seed32, int>> masks;
  masks.reserve(S.inbox[u].size() + 1);
  masks.emplace_back(S.bseed[u], +1);
  for (const Envelope& e : S.inbox[u]) {
    const int v = e.peer;
    masks.emplace_back(Agree('M', S.skey[u].sk, u, S.skey[u].pk, v, S.skey[v].pk), u < v ? +1 : -1);
  }
  std::vector<uint32_t>& sum = S.acc[worker];
  if (sum.empty()) sum.assign(dim, 0);
  std::vector<uint32_t>* record = nullptr;
  if (S.record_slot[u] >= 0) {
    record = &S.masked_inputs[S.record_slot[u]];
    record->resize(dim);
  }
  alignas(64) uint32_t y[kMaskChunkWords];
  for (int64_t off = 0; off < dim; off += kMaskChunkWords) {
    const int64_t len = std::min(kMaskChunkWords, dim - off);
    std::copy(input + off, input + off + len, y);
    for (const auto& [mseed, sign] : masks) AddKeystreamWords(mseed, sign, off, len, y);
    for (int64_t j = 0; j < len; ++j) y[j] &= value_mask;
    if (record) std::copy(y, y + len, record->data() + off);
    // Server side: add the received chunk into its running sum.
    const Clock::time_point ts = Clock::now();
    uint32_t* s = sum.data() + off;
    for (int64_t j = 0; j < len; ++j) s[j] += y[j];
    server_part += Since(ts);
  }
  S.up[u] += dim * S.value_bytes;
  S.acc_time[worker] += server_part;
  S.client_time[u] += Since(t0) - server_part;
  S.submitted[u] = 1;
}

SecAggResult SecAggSession::Finish() {
  State& S = *s_;
  S.RequirePhase(State::Phase::kCollecting, "Finish");
  S.phase = State::Phase::kFailed;  // until this call completes
  const int n = S.n;
  const int t = S.t;
  const int64_t dim = S.dim;
  // Expected clients that never submitted dropped during MaskedInputCollection.
  for (int u = 0; u < n; ++u)
    if (!S.submitted[u]) S.online[u] = 0;
  const std::vector<char> in_u3 = S.submitted;
  const std::vector<int> u3 = Members(in_u3);
  std::vector<uint32_t> total(dim, 0);
  {
    const Clock::time_point t0 = Clock::now();
    S.CheckSurvivors(2, in_u3, static_cast<int>(u3.size()));
    for (const auto& a : S.acc)
      if (!a.empty())
        for (int64_t j = 0; j < dim; ++j) total[j] += a[j];
    // Each survivor learns which of the peers whose shares it holds survived.
    for (int u : u3) {
      int c = 0;
      for (const Envelope& e : S.inbox[u]) c += in_u3[e.peer] ? 1 : 0;
      S.down[u] += c * kSecAggClientIdBytes;
    }
    S.server_time += Since(t0);
  }
  for (double s : S.acc_time) S.server_time += s;

  // ---- Round 3: Unmasking --------------------------------------------------
  S.ApplyDropouts(3);
  const std::vector<int> u5 = Members(S.online);
  if (static_cast<int>(u5.size()) < t)
    throw SecAggError(fmt::format("secure aggregation: only {} of {} clients remain after {}, below the threshold t = {}",
                                  u5.size(), n, StepName(3), t));
  std::vector<std::vector<Reveal>> reveals(n);
  ParallelFor(static_cast<int64_t>(u5.size()), S.threads, [&](int64_t i, int) {
    const int u = u5[i];
    const Clock::time_point t0 = Clock::now();
    auto& out = reveals[u];
    out.reserve(S.inbox[u].size() + 1);
    for (const Envelope& e : S.inbox[u]) {
      const int v = e.peer;
      // u sent shares to v in ShareKeys (v holds u's shares whenever u holds
      // v's), so the key agreed then is cached.
      const auto& ids = S.peer_ids[u];
      const auto it = std::lower_bound(ids.begin(), ids.end(), v);
      const Seed32 key = it != ids.end() && *it == v ? S.peer_keys[u][it - ids.begin()]
                                                      : Agree('E', S.ckey[u].sk, u, S.ckey[u].pk, v, S.ckey[v].pk);
      SharePlaintext pt;
      unsigned long long plen = 0;
      const auto nonce = ShareNonce(v, u);
      if (crypto_aead_chacha20poly1305_ietf_decrypt(pt.data(), &plen, nullptr, e.ct.data(), e.ct.size(), nullptr, 0,
                                                    nonce.data(), key.data()) != 0 ||
          plen != pt.size())
        throw SecAggError(fmt::format(
            "secure aggregation: client {} could not authenticate the encrypted shares from client {}", u, v));
      if (GetU32(pt.data()) != static_cast<uint32_t>(v) || GetU32(pt.data() + 4) != static_cast<uint32_t>(u))
        throw SecAggError(fmt::format(
            "secure aggregation: the shares client {} received from client {} are addressed wrongly", u, v));
      // Never both for the same owner: b for survivors, s^SK for the dropped.
      const bool self = in_u3[v] != 0;
      const uint8_t* at = pt.data() + 8 + (self ? kShamirShareWireBytes : 0);
      out.push_back(Reveal{v, self, GetShare(at, static_cast<uint64_t>(u) + 1)});
      sodium_memzero(pt.data(), pt.size());
    }
    out.push_back(Reveal{u, true, S.own_b[u]});  // u survived MaskedInputCollection
    S.up[u] += static_cast<int64_t>(out.size()) * (kSecAggClientIdBytes + kShamirShareWireBytes);
    S.client_time[u] += Since(t0);
  });

  // Server: collect the shares, reconstruct, remove the remaining masks.
  const Clock::time_point unmask_start = Clock::now();
  std::vector<std::vector<ShamirShare>> shares_b(n), shares_s(n);
  for (int u : u5)
    for (Reveal& r : reveals[u]) (r.self ? shares_b : shares_s)[r.owner].push_back(r.share);
  std::vector<std::vector<Reveal>>().swap(reveals);
  // Tasks: (v, true) = remove v's self mask; (v, false) = v dropped after
  // sharing keys: remove the pairwise masks between v and the survivors.
  std::vector<std::pair<int, bool>> tasks;
  for (int v : u3) tasks.emplace_back(v, true);
  for (int v : S.u2) {
    if (in_u3[v]) continue;
    bool needed = false;
    for (const Envelope& e : S.inbox[v]) needed = needed || in_u3[e.peer];
    if (needed) tasks.emplace_back(v, false);
  }
  for (const auto& [v, self] : tasks) {
    const int have = static_cast<int>((self ? shares_b : shares_s)[v].size());
    if (have < t) S.FailNeighbourhood(v, have, 3);
  }
  for (auto& a : S.acc) std::fill(a.begin(), a.end(), 0u);
  ParallelFor(static_cast<int64_t>(tasks.size()), S.threads, [&](int64_t i, int tid) {
    const auto [v, self] = tasks[i];
    std::vector<uint32_t>& a = S.acc[tid];
    if (a.empty()) a.assign(dim, 0);
    if (self) {
      const ShamirSecret b = ShamirReconstruct(shares_b[v], t);
      AddKeystreamWords(b, -1, 0, dim, a.data());
      return;
    }
    const ShamirSecret sk = ShamirReconstruct(shares_s[v], t);
    Seed32 pk;
    crypto_scalarmult_base(pk.data(), sk.data());
    if (sodium_memcmp(pk.data(), S.skey[v].pk.data(), pk.size()) != 0)
      throw SecAggError(fmt::format(
          "secure aggregation: the key reconstructed for dropped client {} does not match its public key", v));
    // Survivor w added (w < v ? +1 : -1) * PRG(s_wv); subtract it.
    for (const Envelope& e : S.inbox[v]) {
      const int w = e.peer;
      if (!in_u3[w]) continue;
      const Seed32 seed = Agree('M', sk, v, S.skey[v].pk, w, S.skey[w].pk);
      AddKeystreamWords(seed, w < v ? -1 : +1, 0, dim, a.data());
    }
  });
  for (const auto& a : S.acc)
    if (!a.empty())
      for (int64_t j = 0; j < dim; ++j) total[j] += a[j];
  for (int64_t j = 0; j < dim; ++j) total[j] &= S.value_mask;
  S.server_time += Since(unmask_start);

  // ---- Result ---------------------------------------------------------------
  SecAggResult result;
  result.sum = std::move(total);
  result.survivors = u3;
  result.dropped = n - static_cast<int>(u3.size());
  result.recovered =
      static_cast<int>(std::count_if(tasks.begin(), tasks.end(), [](const auto& tk) { return !tk.second; }));
  result.threshold = t;
  result.neighbors = S.k;
  for (int u = 0; u < n; ++u) {
    result.bytes_up += S.up[u];
    result.bytes_down += S.down[u];
    result.client_seconds += S.client_time[u];
  }
  result.client_bytes_up = S.up;
  result.client_bytes_down = S.down;
  result.server_seconds = S.server_time;
  result.masked_inputs = std::move(S.masked_inputs);
  std::vector<std::vector<uint32_t>>().swap(S.acc);
  for (auto& keys : S.peer_keys) sodium_memzero(keys.data(), keys.size() * sizeof(Seed32));
  S.phase = State::Phase::kFinished;
  return result;
}

SecAggResult RunSecAgg(const SecAggConfig& config, const std::vector<const uint32_t*>& inputs, int64_t dim,
                       const DropoutPlan& dropouts, uint64_t seed, int threads) {
  if (inputs.empty()) throw InputError("secure aggregation: inputs is empty (no clients)");
  if (inputs.size() > static_cast<size_t>(INT32_MAX) - 1) throw InputError("secure aggregation: too many inputs");
  for (size_t u = 0; u < inputs.size(); ++u)
    if (inputs[u] == nullptr) throw InputError(fmt::format("secure aggregation: inputs[{}] is null", u));
  SecAggSession session(config, static_cast<int>(inputs.size()), dim, dropouts, seed, threads);
  session.ShareKeys();
  const std::vector<int> senders = session.OpenInputCollection();
  ParallelFor(static_cast<int64_t>(senders.size()), ResolveThreads(threads),
              [&](int64_t i, int worker) { session.SubmitInput(senders[i], inputs[senders[i]], worker); });
  return session.Finish();
}

}  // namespace fedsim
