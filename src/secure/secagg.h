// Secure aggregation, simulated in one process with real cryptography:
//
//   SecAgg   Bonawitz et al., "Practical Secure Aggregation for
//            Privacy-Preserving Machine Learning", CCS 2017 (the
//            honest-but-curious protocol: rounds AdvertiseKeys, ShareKeys,
//            MaskedInputCollection, Unmasking; no signatures / consistency
//            round).
//   SecAgg+  Bell et al., "Secure Single-Server Aggregation with
//            (Poly)Logarithmic Overhead", CCS 2020: the same rounds, but each
//            client masks with, and secret-shares to, only its neighbours in a
//            sparse k-regular graph (a Harary graph H(k, n) over a random
//            relabelling of the clients).
//
// Per run, each client u generates two X25519 key pairs (c_u for encrypting
// shares, s_u for masking seeds) and a self-mask seed b_u; shares b_u and
// s_u^SK t-of-|H(u)| (Shamir, shamir.h) with its holder set H(u) = {u} u N(u)
// (N(u) = everyone else for SecAgg), each share sent encrypted under
// ChaCha20-Poly1305 with a key agreed from c_u and c_v; and sends
//
//   y_u = x_u + PRG(b_u) + sum_{v in N(u), v alive after ShareKeys}
//                          (u < v ? +1 : -1) * PRG(s_uv)            (mod 2^bits)
//
// with s_uv = BLAKE2b(X25519(s_u^SK, s_v^PK) || pk_min || pk_max) and PRG =
// ChaCha20 read as uint32 words. The server sums y_u over the survivors, has
// the remaining clients reveal shares of b_u (survivors) or s_u^SK (clients
// that dropped after ShareKeys), reconstructs them, removes the self masks and
// the dangling pairwise masks, and obtains exactly sum_{u in survivors} x_u
// mod 2^bits. If at any step fewer than the threshold t clients (of the run,
// or of a neighbourhood that is needed) remain, RunSecAgg throws SecAggError
// and returns nothing.
//
// Determinism: every key, seed and share polynomial is derived from the run
// seed and the client index, and the sum is exact modular arithmetic, so the
// result is bitwise identical for any thread count. Timings are wall clock.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "secure/secure_error.h"
#include "secure/shamir.h"

namespace fedsim {

class Rng;

enum class SecAggStep : int {
  kAdvertiseKeys = 0,
  kShareKeys = 1,
  kMaskedInputCollection = 2,
  kUnmasking = 3,
};
constexpr int kSecAggSteps = 4;
const char* SecAggStepName(SecAggStep step);

// Protocol parameters. Inputs are already quantised (fixed_point.h).
struct SecAggConfig {
  // k: inputs, masks and the sum live in Z_{2^bits}; 1..32. Default 32.
  int bits = 32;
  // Run SecAgg+ (sparse neighbourhoods) instead of SecAgg. Default false.
  bool plus = false;
  // SecAgg+ only: neighbours each client masks with and shares to (the graph
  // degree). 0 = DefaultSecAggNeighbors(n) = ceil(2 log2 n) rounded up to even.
  // Rounded by ValidSecAggNeighbors. Default 0.
  int neighbors = 0;
  // Threshold t = min(m, floor(threshold_fraction * m) + 1), m = the holder
  // set size (n for SecAgg, neighbors + 1 for SecAgg+); 0.5 gives a strict
  // majority. In [0, 1]. Default 0.5.
  double threshold_fraction = 0.5;
  // Clients whose masked input y_u (exactly as the server receives it) is
  // copied into SecAggResult::masked_inputs, for tests and audits. Default none.
  std::vector<int> record_masked_inputs;
};

// Which clients drop out, and when. A client that drops before step s sends
// nothing in step s or later (it completed the steps before s). Indices are
// into RunSecAgg's inputs.
struct DropoutPlan {
  std::array<std::vector<int>, kSecAggSteps> drop_before;
  // Optional: asked, on the calling thread in increasing client order, for
  // every client still online before each step; true = it drops now.
  std::function<bool(SecAggStep step, int client)> drops;
};

// Each client independently drops just before `step` with `probability`.
DropoutPlan RandomDropouts(int clients, double probability, SecAggStep step, Rng& rng);
// Before each step s, each client still online drops with probability
// per_step[s] (so a client survives all steps with prod (1 - p_s)).
DropoutPlan RandomDropouts(int clients, const std::array<double, kSecAggSteps>& per_step, Rng& rng);

struct SecAggResult {
  std::vector<uint32_t> sum;       // sum of the survivors' inputs mod 2^bits; dim values
  std::vector<int> survivors;      // clients whose inputs are in sum (sent a masked input), increasing
  int dropped = 0;                 // clients not among the survivors
  int recovered = 0;               // dropped clients whose pairwise masks were removed by reconstructing s_u^SK
  int threshold = 0;               // t
  int neighbors = 0;               // graph degree: n - 1 for SecAgg
  int64_t bytes_up = 0;            // all clients, all steps
  int64_t bytes_down = 0;
  std::vector<int64_t> client_bytes_up;    // per client (index as inputs)
  std::vector<int64_t> client_bytes_down;
  double client_seconds = 0;       // client computation, summed over clients
  double server_seconds = 0;       // server computation (wall time of its phases)
  std::vector<std::vector<uint32_t>> masked_inputs;  // per config.record_masked_inputs; empty if that client never sent
};

// One aggregation, run round by round so that inputs can be streamed in as
// clients finish their local work (rounds AdvertiseKeys and ShareKeys do not
// depend on the inputs):
//
//   SecAggSession s(config, n, dim, dropouts, seed, threads);
//   s.ShareKeys();                                  // AdvertiseKeys, ShareKeys
//   for (int u : s.OpenInputCollection())           // in parallel, any order
//     s.SubmitInput(u, x_u, worker);                //   MaskedInputCollection
//   SecAggResult r = s.Finish();                    // Unmasking
//
// Dropouts planned before a round are applied when it starts; a client that
// OpenInputCollection listed but that never calls SubmitInput is treated as
// having dropped before MaskedInputCollection (e.g. it missed a deadline).
// Each step throws SecAggError when too few clients remain; after an error the
// session is unusable and no sum is produced.
//
// Thread-safety: ShareKeys, OpenInputCollection and Finish run on one thread
// (they parallelise internally over `threads`). SubmitInput may be called
// concurrently for distinct clients, each concurrent caller passing a distinct
// worker in [0, threads) (e.g. ParallelFor's thread id). The session keeps only
// per-worker running sums: memory is O(threads * dim), not O(clients * dim).
class SecAggSession {
 public:
  // Throws InputError for bad arguments (naming them). threads <= 0 means all
  // cores. The dropout plan is copied.
  SecAggSession(const SecAggConfig& config, int clients, int64_t dim, const DropoutPlan& dropouts, uint64_t seed,
                int threads = 1);
  ~SecAggSession();
  SecAggSession(SecAggSession&&) noexcept;
  SecAggSession& operator=(SecAggSession&&) noexcept;

  int clients() const;
  int64_t dim() const;
  int threshold() const;  // t
  int neighbors() const;  // graph degree (clients - 1 for SecAgg)

  // Rounds AdvertiseKeys and ShareKeys.
  void ShareKeys();
  // Starts MaskedInputCollection; returns the clients that must submit their
  // input (they shared keys and did not drop before this round), increasing.
  std::vector<int> OpenInputCollection();
  // Client `client` masks `input` (dim values in [0, 2^bits), read only during
  // the call) and sends it; the server adds it to its running sum.
  // REQUIRES: client listed by OpenInputCollection, not yet submitted;
  // 0 <= worker < threads, distinct among concurrent callers.
  void SubmitInput(int client, const uint32_t* input, int worker = 0);
  // Closes MaskedInputCollection and runs Unmasking.
  SecAggResult Finish();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// The whole protocol on inputs held in memory. inputs[u] points to dim values
// in [0, 2^bits) of client u (not owned, read only). threads <= 0 means all
// cores. Throws InputError for bad arguments (naming them), SecAggError if the
// protocol cannot complete.
SecAggResult RunSecAgg(const SecAggConfig& config, const std::vector<const uint32_t*>& inputs, int64_t dim,
                       const DropoutPlan& dropouts, uint64_t seed, int threads = 1);

// ceil(2 log2 n), rounded up to even, capped at n - 1 (0 for n <= 1).
int DefaultSecAggNeighbors(int n);
// The degree actually used for a request of k >= 1: n - 1 if k >= n - 1 (the
// complete graph); otherwise k rounded up to even (a Harary graph H(k, n) is
// k-regular for even k and any n), and n - 1 if that reaches n - 1.
int ValidSecAggNeighbors(int n, int k);
// SecAgg+ communication graph: the Harary graph H(k, n) (each node joined to
// the k/2 nearest on each side of a ring) over a random permutation of the n
// clients drawn from `seed`. Returns each client's neighbours, increasing,
// excluding itself. REQUIRES: k == ValidSecAggNeighbors(n, k).
std::vector<std::vector<int>> SecAggPlusGraph(int n, int k, uint64_t seed);

// Bytes on the wire per message (see docs/secure-aggregation-notes.md).
constexpr int64_t kSecAggClientIdBytes = 4;
constexpr int64_t kSecAggPublicKeyBytes = 32;
constexpr int64_t kSecAggSharePlaintextBytes =
    2 * kSecAggClientIdBytes + 2 * kShamirShareWireBytes;  // u || v || share of s_u^SK || share of b_u
constexpr int64_t kSecAggShareCiphertextBytes = kSecAggSharePlaintextBytes + 16;  // + Poly1305 tag

}  // namespace fedsim
