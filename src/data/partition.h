// Partitioners: assign every training sample to exactly one client.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.h"
#include "data/dataset.h"

namespace fedsim {

// clients[k] = sorted row indices of client k's training samples.
using Partition = std::vector<std::vector<int>>;

// Splits `train` across num_clients clients by cfg.kind:
//  iid       - a random permutation cut into near-equal parts;
//  dirichlet - per class, proportions ~ Dir(alpha) over clients (label skew);
//  shards    - sort by label, cut into num_clients*shards_per_client shards,
//              each client gets shards_per_client random shards;
//  quantity  - client sizes proportional to lognormal(0, quantity_sigma)
//              draws, samples otherwise random;
//  natural   - client k gets the rows whose train.user == k.
// Throws InputError naming the key when the request cannot be met (more
// clients than samples, min_samples unsatisfiable, no user ids for natural).
Partition MakePartition(const Dataset& train, int num_clients, const PartitionConfig& cfg, uint64_t seed);

// Partition statistics recorded in metrics.json under "partition":
// num_clients, samples_per_client {min, median, max}, labels_per_client
// {min, median, max} (distinct labels), mean_label_tv (mean over clients of
// the total-variation distance between the client's label distribution and
// the global training label distribution).
nlohmann::json PartitionStats(const Dataset& train, const Partition& p);

}  // namespace fedsim
