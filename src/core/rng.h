// Random streams. Every random draw in fedsim comes from an Rng derived from
// (seed, purpose, round, client) with DeriveStream, so results do not depend on
// thread count, scheduling or the order in which clients are visited.
//
// The generator is xoshiro256** seeded through SplitMix64. Distributions are
// implemented here (not <random>'s), so a seed gives the same numbers with any
// standard library.
//
// Thread-safety: an Rng is a value; never share one between threads.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

#include "core/fmath.h"

namespace fedsim {

// Purposes of random streams. Adding one: append, never renumber (renumbering
// changes every result recorded so far).
enum class Stream : uint64_t {
  kDataGen = 1,     // synthetic data generation
  kPartition = 2,   // partitioners
  kModelInit = 3,   // initial global model
  kCohort = 4,      // cohort sampling, per round
  kLocalTrain = 5,  // client minibatch shuffling, per (round, client)
  kDataSplit = 6,   // train/test splits of generated or CSV data
  kAlgorithm = 7,   // algorithm-specific server draws, per round (e.g. FedGiA's subset)
  kPrivacy = 8,     // DP noise: (round, client) for clients, (round, kServer) for the server; input perturbation
  kSecAgg = 9,      // secure aggregation keys and masks, per round
  kJudge = 10,      // FedGAN's judge classifier: init (0, 0), shuffle of epoch e (e + 1, 0)
  kGanSamples = 11, // FedGAN's latent vectors of the judged and pictured samples (0, 0)
  kSystem = 12,     // simulated devices: (kStatic, client) per client, (round, client) per round
  kBaseline = 13,   // baselines: shards, per-epoch shuffles
  kCompress = 14,   // stochastic upload compression (randk, qsgd), per (round, client)
  kDropout = 15,    // dropout masks of local training, per (round, client), mixed with the step
  kAugment = 16,    // training-time augmentation (data.augment), per (round, client), mixed with step and sample
  kAttack = 17,     // attacks: the malicious set (~0, 0), backdoor samples (~0 - 1, client), gaussian (round, client)
  kRobust = 18,     // robust aggregation: norm_bound's weak-DP noise, per round
  kHoldout = 19,    // data.holdout_clients: which clients never train (static)
  kClientEval = 20, // metrics.client_eval = sample: the clients scored, per round
  kFinetune = 21,   // personalization.finetune_steps: the fine-tuning batches, per (round, client)
  kPersonalize = 22, // Per-FedAvg's adaptation batch before per-client evaluation, per (round, client)
  kAsync = 23,      // event-driven modes: the client drawn for dispatch attempt a (a, 0)
  kAudit = 24,      // privacy audit: canary i's direction (~0, i), its participation in round t (t, i); membership samples (~0 - 1, 0)
};

inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { Seed(seed); }

  void Seed(uint64_t seed) {
    uint64_t sm = seed;
    for (auto& w : s_) w = SplitMix64(sm);
    has_spare_ = false;
  }

  uint64_t NextU64() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

  // Uniform integer in [0, n), unbiased (Lemire's method with rejection).
  uint64_t UniformInt(uint64_t n) {
    if (n <= 1) return 0;
    __uint128_t m = static_cast<__uint128_t>(NextU64()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<__uint128_t>(NextU64()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Standard normal (Marsaglia polar method).
  double Normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * Uniform() - 1.0;
      v = 2.0 * Uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * fm::Log(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }
  double Normal(double mean, double stddev) { return mean + stddev * Normal(); }
  double LogNormal(double mu, double sigma) { return fm::Exp(Normal(mu, sigma)); }

  // Gamma(shape, 1) by Marsaglia & Tsang (2000); shape < 1 via the boost
  // Gamma(a) = Gamma(a + 1) * U^(1/a).
  double Gamma(double shape) {
    if (shape < 1.0) {
      double u;
      do u = Uniform(); while (u == 0.0);
      return Gamma(shape + 1.0) * fm::Pow(u, 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x, v;
      do {
        x = Normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = Uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
      if (fm::Log(u) < 0.5 * x * x + d * (1.0 - v + fm::Log(v))) return d * v;
    }
  }

  // In-place Fisher-Yates shuffle of a random-access range.
  template <class It>
  void Shuffle(It first, It last) {
    const auto n = last - first;
    for (auto i = n - 1; i > 0; --i) {
      const auto j = static_cast<decltype(i)>(UniformInt(static_cast<uint64_t>(i) + 1));
      std::swap(first[i], first[j]);
    }
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// The stream for (seed, purpose, round, client). Distinct tuples give
// statistically independent generators.
inline Rng DeriveStream(uint64_t seed, Stream purpose, uint64_t round = 0, uint64_t client = 0) {
  uint64_t h = seed;
  uint64_t x = SplitMix64(h);
  for (uint64_t part : {static_cast<uint64_t>(purpose), round, client}) {
    h = x ^ (part + 0x632BE59BD9B4E019ULL);
    x = SplitMix64(h);
  }
  return Rng(x);
}

}  // namespace fedsim
