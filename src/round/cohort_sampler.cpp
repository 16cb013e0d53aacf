#include "round/cohort_sampler.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"

namespace fedsim {

int CohortSize(const AlgorithmConfig& cfg, int num_clients) {
  if (cfg.client_fraction) {
    return std::clamp(static_cast<int>(std::lround(*cfg.client_fraction * num_clients)), 1, num_clients);
  }
  return cfg.clients_per_round;
}

std::vector<int> SampleCohort(int n, int k, Rng& rng) {
  // Partial Fisher-Yates over the population.
  std::vector<int> ids(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = i;
  for (int i = 0; i < k; ++i) {
    const int j = i + static_cast<int>(rng.UniformInt(static_cast<uint64_t>(n - i)));
    std::swap(ids[static_cast<size_t>(i)], ids[static_cast<size_t>(j)]);
  }
  ids.resize(static_cast<size_t>(k));
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<int> HoldoutClients(double holdout_clients, int num_clients, uint64_t seed) {
  const int h = HoldoutCount(holdout_clients, num_clients);
  if (h <= 0) return {};
  Rng rng = DeriveStream(seed, Stream::kHoldout);
  return SampleCohort(num_clients, h, rng);
}

std::vector<int> TrainingClients(const std::vector<int>& holdout, int num_clients) {
  std::vector<int> pool;
  size_t h = 0;
  for (int c = 0; c < num_clients; ++c) {
    if (h < holdout.size() && holdout[h] == c) {
      ++h;
    } else {
      pool.push_back(c);
    }
  }
  return pool;
}

CohortSampler::CohortSampler(const AlgorithmConfig& cfg, int num_clients, int cohort_size, double over_selection,
                             uint64_t seed, std::vector<int> pool)
    : num_clients_(pool.empty() ? num_clients : static_cast<int>(pool.size())),
      cohort_size_(cohort_size),
      poisson_(cfg.sampling == "poisson"),
      over_select_(over_selection > 0.0),
      rate_(cfg.sampling_rate),
      seed_(seed),
      pool_(std::move(pool)) {
  sample_size_ = over_select_ ? std::min(num_clients_, static_cast<int>(std::ceil((1.0 + over_selection) * cohort_size)))
                              : cohort_size;
  sampling_rate_ = poisson_ ? rate_ : static_cast<double>(cohort_size) / num_clients_;
}

std::vector<int> CohortSampler::Sample(int round) const {
  Rng rng = DeriveStream(seed_, Stream::kCohort, static_cast<uint64_t>(round));
  std::vector<int> sampled;
  if (!poisson_) {
    sampled = SampleCohort(num_clients_, sample_size_, rng);
  } else {
    for (int c = 0; c < num_clients_; ++c) {
      if (rng.Uniform() < rate_) sampled.push_back(c);
    }
  }
  if (!pool_.empty()) {
    for (int& c : sampled) c = pool_[static_cast<size_t>(c)];  // increasing: the pool is sorted
  }
  return sampled;
}

}  // namespace fedsim
