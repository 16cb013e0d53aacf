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

CohortSampler::CohortSampler(const AlgorithmConfig& cfg, int num_clients, int cohort_size, double over_selection,
                             uint64_t seed)
    : num_clients_(num_clients),
      cohort_size_(cohort_size),
      poisson_(cfg.sampling == "poisson"),
      over_select_(over_selection > 0.0),
      rate_(cfg.sampling_rate),
      seed_(seed) {
  sample_size_ = over_select_ ? std::min(num_clients, static_cast<int>(std::ceil((1.0 + over_selection) * cohort_size)))
                              : cohort_size;
  sampling_rate_ = poisson_ ? rate_ : static_cast<double>(cohort_size) / num_clients;
}

std::vector<int> CohortSampler::Sample(int round) const {
  Rng rng = DeriveStream(seed_, Stream::kCohort, static_cast<uint64_t>(round));
  if (!poisson_) return SampleCohort(num_clients_, sample_size_, rng);
  std::vector<int> sampled;
  for (int c = 0; c < num_clients_; ++c) {
    if (rng.Uniform() < rate_) sampled.push_back(c);
  }
  return sampled;
}

}  // namespace fedsim
