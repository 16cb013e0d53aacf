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

// Each client's own test rows, for per-client evaluation.
struct ClientTests {
  // true: rows index the training set (split off the client's training rows
  // by data.client_test_fraction); false: rows index the test set (the data's
  // own per-client test rows, test.user, under the natural partition).
  bool from_train = false;
  Partition rows;  // rows[k]: sorted rows of client k's test samples; empty: none
};

// With cfg.client_test_fraction > 0: moves round(fraction * n_k) of each
// client's n_k training rows (at most n_k - 1) out of p[k] into its test rows,
// stratified by label (each label gives its share, largest remainders
// rounded up, ties to the smaller label), the rows of a label chosen by a
// shuffle from (seed, kDataSplit, 1, k). Else, under the natural partition of
// data whose test rows carry user ids, client k's test rows are those with
// test.user == k. Else none.
ClientTests SplitClientTests(const FederatedData& data, Partition& p, const DataConfig& cfg, uint64_t seed);

// Partition statistics recorded in metrics.json under "partition":
// num_clients, samples_per_client {min, p10, median, p90, max, mean, gini}
// (quantiles by linear interpolation; Gini coefficient of the client sizes),
// labels_per_client {min, median, max} (distinct labels), mean_label_tv (mean
// over clients of the total-variation distance between the client's label
// distribution and the global training label distribution); with per-client
// test rows, test_samples_per_client {min, median, max, total, from}.
nlohmann::json PartitionStats(const Dataset& train, const Partition& p, const ClientTests* tests = nullptr);

// `fedsim data stats`: loads cfg's data (data_seed feeds generators and random
// splits, as in a run), partitions it with seed and splits the per-client test
// rows as a run does, and returns {"data": {description, train_samples,
// test_samples, num_features, num_classes, shape, vocab_size, feature_bytes},
// "partition": PartitionStats with the client tests}.
nlohmann::json DataStats(const DataConfig& cfg, uint64_t data_seed, uint64_t seed);

}  // namespace fedsim
