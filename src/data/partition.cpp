// Partitioners. All randomness comes from DeriveStream(seed, kPartition), so a
// seed gives the same partition on every machine and thread count.
#include "data/partition.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/rng.h"

namespace fedsim {
namespace {

constexpr int kMaxDirichletTries = 1000;

std::vector<int> Iota(int n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

void CheckMinSamples(int n, int num_clients, const PartitionConfig& cfg) {
  if (static_cast<int64_t>(num_clients) * cfg.min_samples > n) {
    throw InputError(
        fmt::format("data.partition.min_samples: {} clients x {} samples each is more than the {} "
                    "training samples",
                    num_clients, cfg.min_samples, n));
  }
}

Partition Iid(int n, int num_clients, Rng& rng) {
  std::vector<int> perm = Iota(n);
  rng.Shuffle(perm.begin(), perm.end());
  Partition p(num_clients);
  for (int k = 0; k < num_clients; ++k) {
    const int64_t lo = static_cast<int64_t>(n) * k / num_clients;
    const int64_t hi = static_cast<int64_t>(n) * (k + 1) / num_clients;
    p[k].assign(perm.begin() + lo, perm.begin() + hi);
  }
  return p;
}

// Dir(alpha) over `m` clients via normalised Gamma(alpha) draws. If every
// draw underflows to 0 (tiny alpha), the limit of Dir(alpha -> 0) is used: all
// mass on one uniformly chosen client.
std::vector<double> DrawDirichlet(double alpha, int m, Rng& rng) {
  std::vector<double> p(m);
  double sum = 0.0;
  for (double& v : p) sum += (v = rng.Gamma(alpha));
  if (sum > 0.0) {
    for (double& v : p) v /= sum;
  } else {
    p[rng.UniformInt(m)] = 1.0;
  }
  return p;
}

// NIID-Bench's label-skew partition (Li, Diao, Chen, He, "Federated Learning on
// Non-IID Data Silos: An Experimental Study", ICDE 2022, partition_data
// "noniid-labeldir"): for each class, shuffle its samples, draw p ~ Dir(alpha)
// over clients, zero the share of clients that already hold n/num_clients
// samples or more (NIID-Bench's balancing step), renormalise and cut the class
// at floor(cumsum(p) * class_size). The whole draw is repeated until every
// client holds min_samples.
Partition Dirichlet(const Dataset& train, int num_clients, const PartitionConfig& cfg, Rng& rng) {
  const int n = train.size();
  CheckMinSamples(n, num_clients, cfg);
  std::vector<std::vector<int>> by_class(std::max(train.num_classes, 1));
  for (int i = 0; i < n; ++i) by_class[train.y[i]].push_back(i);
  const double cap = static_cast<double>(n) / num_clients;

  Partition p(num_clients);
  for (int attempt = 0; attempt < kMaxDirichletTries; ++attempt) {
    for (auto& c : p) c.clear();
    for (std::vector<int>& idx : by_class) {
      rng.Shuffle(idx.begin(), idx.end());
      std::vector<double> prop = DrawDirichlet(cfg.alpha, num_clients, rng);
      double sum = 0.0;
      for (int k = 0; k < num_clients; ++k) {
        if (static_cast<double>(p[k].size()) >= cap) prop[k] = 0.0;
        sum += prop[k];
      }
      if (sum <= 0.0) {
        // Every client below the cap drew a share that underflowed to 0: give
        // the class to one of them, the limit of Dir(alpha -> 0).
        std::vector<int> open;
        for (int k = 0; k < num_clients; ++k) {
          if (static_cast<double>(p[k].size()) < cap) open.push_back(k);
        }
        // Every client at the cap holds all n samples, so this class is
        // empty (a label no sample has): nothing to deal.
        if (open.empty()) continue;
        std::fill(prop.begin(), prop.end(), 0.0);
        prop[open[rng.UniformInt(open.size())]] = 1.0;
        sum = 1.0;
      }
      const double class_size = static_cast<double>(idx.size());
      double cum = 0.0;
      size_t start = 0;
      for (int k = 0; k < num_clients; ++k) {
        cum += prop[k] / sum;
        const size_t end =
            k + 1 == num_clients ? idx.size() : std::min(idx.size(), static_cast<size_t>(cum * class_size));
        if (end > start) p[k].insert(p[k].end(), idx.begin() + start, idx.begin() + end);
        start = std::max(start, end);
      }
    }
    size_t smallest = p[0].size();
    for (const auto& c : p) smallest = std::min(smallest, c.size());
    if (smallest >= static_cast<size_t>(cfg.min_samples)) return p;
  }
  throw InputError(
      fmt::format("data.partition.alpha = {} leaves some client with fewer than "
                  "data.partition.min_samples = {} samples in each of {} tries; raise alpha, lower "
                  "min_samples or num_clients, or set data.partition.dirichlet_mode = \"per_client\"",
                  cfg.alpha, cfg.min_samples, kMaxDirichletTries));
}

std::vector<int64_t> LognormalSizes(int n, int num_clients, const PartitionConfig& cfg, Rng& rng);

// Client-wise label skew (Hsu, Qi, Brown, "Measuring the Effects of
// Non-Identical Data Distribution for Federated Visual Classification", 2019):
// client sizes are fixed first (near-equal, or lognormal for quantity skew);
// client k draws class proportions q_k ~ Dir(alpha * p), p the training label
// distribution, and fills each of its slots with a class drawn from q_k
// restricted to classes that still have samples. Every client gets exactly its
// size, so this scales to populations far larger than the per-class scheme,
// whose minimum-size retries fail when clients hold a handful of samples.
Partition DirichletPerClient(const Dataset& train, int num_clients, const PartitionConfig& cfg, Rng& rng) {
  const int n = train.size();
  const int classes = std::max(train.num_classes, 1);
  std::vector<int64_t> size(num_clients);
  if (cfg.client_sizes == "lognormal") {
    size = LognormalSizes(n, num_clients, cfg, rng);
  } else {
    CheckMinSamples(n, num_clients, cfg);  // the smallest equal size is floor(n / K)
    for (int k = 0; k < num_clients; ++k) {
      size[k] = static_cast<int64_t>(n) * (k + 1) / num_clients - static_cast<int64_t>(n) * k / num_clients;
    }
  }
  std::vector<std::vector<int>> by_class(classes);
  for (int i = 0; i < n; ++i) by_class[train.y[i]].push_back(i);
  for (auto& idx : by_class) rng.Shuffle(idx.begin(), idx.end());
  std::vector<size_t> next(classes, 0);
  std::vector<double> prior(classes);
  for (int c = 0; c < classes; ++c) prior[c] = static_cast<double>(by_class[c].size()) / n;

  Partition p(num_clients);
  std::vector<double> q(classes);
  for (int k = 0; k < num_clients; ++k) {
    double sum = 0.0;
    for (int c = 0; c < classes; ++c) sum += (q[c] = prior[c] > 0 ? rng.Gamma(cfg.alpha * prior[c]) : 0.0);
    if (sum <= 0.0) {
      // All draws underflowed (tiny alpha): the Dir(alpha -> 0) limit, one class.
      std::fill(q.begin(), q.end(), 0.0);
      q[rng.UniformInt(classes)] = 1.0;
    }
    p[k].reserve(static_cast<size_t>(size[k]));
    for (int64_t s = 0; s < size[k]; ++s) {
      double open = 0.0;
      for (int c = 0; c < classes; ++c) open += next[c] < by_class[c].size() ? q[c] : 0.0;
      int chosen = -1;
      if (open > 0.0) {
        double u = rng.Uniform() * open;
        for (int c = 0; c < classes; ++c) {
          if (next[c] >= by_class[c].size() || q[c] == 0.0) continue;
          chosen = c;
          if ((u -= q[c]) < 0.0) break;
        }
      } else {
        // The client's classes are used up: take any class with samples left,
        // uniformly at random.
        std::vector<int> left;
        for (int c = 0; c < classes; ++c) if (next[c] < by_class[c].size()) left.push_back(c);
        chosen = left[rng.UniformInt(left.size())];
      }
      p[k].push_back(by_class[chosen][next[chosen]++]);
    }
  }
  return p;
}

// McMahan et al. (2017): sort by label, cut into equal shards, deal shards.
Partition Shards(const Dataset& train, int num_clients, const PartitionConfig& cfg, Rng& rng) {
  const int n = train.size();
  const int64_t num_shards = static_cast<int64_t>(num_clients) * cfg.shards_per_client;
  if (num_shards > n) {
    throw InputError(
        fmt::format("data.partition.shards_per_client: {} clients x {} shards = {} shards but only {} "
                    "training samples",
                    num_clients, cfg.shards_per_client, num_shards, n));
  }
  std::vector<int> sorted = Iota(n);
  std::stable_sort(sorted.begin(), sorted.end(), [&](int a, int b) { return train.y[a] < train.y[b]; });
  std::vector<int64_t> shard_ids(num_shards);
  std::iota(shard_ids.begin(), shard_ids.end(), int64_t{0});
  rng.Shuffle(shard_ids.begin(), shard_ids.end());
  Partition p(num_clients);
  for (int k = 0; k < num_clients; ++k) {
    for (int s = 0; s < cfg.shards_per_client; ++s) {
      const int64_t shard = shard_ids[static_cast<int64_t>(k) * cfg.shards_per_client + s];
      const int64_t lo = n * shard / num_shards;
      const int64_t hi = n * (shard + 1) / num_shards;
      p[k].insert(p[k].end(), sorted.begin() + lo, sorted.begin() + hi);
    }
  }
  return p;
}

// NIID-Bench's quantity-based label imbalance (#C = k; Li et al., ICDE 2022,
// Sec. IV-A): client i holds label i mod L and k - 1 further distinct labels
// drawn uniformly; each label's samples are shuffled and cut into as many
// near-equal parts as it has holders.
Partition Labels(const Dataset& train, int num_clients, const PartitionConfig& cfg, Rng& rng) {
  const int num_labels = std::max(train.num_classes, 1);
  const int k = cfg.labels_per_client;
  if (k > num_labels) {
    throw InputError(fmt::format("data.partition.labels_per_client: {} labels per client but the data has {}", k,
                                 num_labels));
  }
  std::vector<std::vector<int>> holders(static_cast<size_t>(num_labels));
  for (int i = 0; i < num_clients; ++i) {
    std::vector<int> others;
    for (int l = 0; l < num_labels; ++l) {
      if (l != i % num_labels) others.push_back(l);
    }
    rng.Shuffle(others.begin(), others.end());
    holders[static_cast<size_t>(i % num_labels)].push_back(i);
    for (int j = 0; j < k - 1; ++j) holders[static_cast<size_t>(others[static_cast<size_t>(j)])].push_back(i);
  }
  std::vector<std::vector<int>> by_label(static_cast<size_t>(num_labels));
  for (int r = 0; r < train.size(); ++r) by_label[static_cast<size_t>(train.y[static_cast<size_t>(r)])].push_back(r);
  Partition p(static_cast<size_t>(num_clients));
  for (int l = 0; l < num_labels; ++l) {
    auto& rows = by_label[static_cast<size_t>(l)];
    const auto& h = holders[static_cast<size_t>(l)];
    if (h.empty()) {
      if (rows.empty()) continue;
      throw InputError(fmt::format("data.partition.labels_per_client: label {} ({} samples) is held by no client; "
                                   "use more clients or more labels per client",
                                   l, rows.size()));
    }
    // A holder of a label without samples would get k - 1 labels (or none).
    if (rows.empty()) {
      throw InputError(fmt::format("data.partition.labels_per_client: label {} has no training samples, but client "
                                   "{} is to hold it as one of its {} labels; every class 0..{} needs samples",
                                   l, h.front(), k, num_labels - 1));
    }
    rng.Shuffle(rows.begin(), rows.end());
    const int64_t m = static_cast<int64_t>(rows.size()), parts = static_cast<int64_t>(h.size());
    for (int64_t j = 0; j < parts; ++j) {
      auto& dst = p[static_cast<size_t>(h[static_cast<size_t>(j)])];
      dst.insert(dst.end(), rows.begin() + m * j / parts, rows.begin() + m * (j + 1) / parts);
    }
  }
  return p;
}

// Client sizes: client k gets min_samples plus a share of the remaining
// samples proportional to w_k ~ lognormal(0, sigma), rounded by largest
// remainder so the sizes add up to n exactly.
std::vector<int64_t> LognormalSizes(int n, int num_clients, const PartitionConfig& cfg, Rng& rng) {
  CheckMinSamples(n, num_clients, cfg);
  std::vector<double> w(num_clients);
  double sum = 0.0;
  for (double& v : w) sum += (v = rng.LogNormal(0.0, cfg.quantity_sigma));
  const int64_t rest = n - static_cast<int64_t>(num_clients) * cfg.min_samples;
  std::vector<int64_t> size(num_clients);
  std::vector<double> remainder(num_clients);
  int64_t assigned = 0;
  for (int k = 0; k < num_clients; ++k) {
    const double share = static_cast<double>(rest) * w[k] / sum;
    size[k] = std::min<int64_t>(static_cast<int64_t>(std::floor(share)), rest);
    remainder[k] = share - static_cast<double>(size[k]);
    assigned += size[k];
  }
  std::vector<int> by_remainder = Iota(num_clients);
  std::stable_sort(by_remainder.begin(), by_remainder.end(), [&](int a, int b) { return remainder[a] > remainder[b]; });
  // The floors add up to at most rest (up to rounding); hand out the rest.
  for (int64_t i = 0; assigned < rest; ++i, ++assigned) ++size[by_remainder[i % num_clients]];
  for (int k = 0; assigned > rest; k = (k + 1) % num_clients) {
    if (size[k] > 0) {
      --size[k];
      --assigned;
    }
  }
  for (auto& s : size) s += cfg.min_samples;
  return size;
}

// Quantity skew: lognormal sizes, samples dealt from a random permutation.
Partition Quantity(int n, int num_clients, const PartitionConfig& cfg, Rng& rng) {
  const std::vector<int64_t> size = LognormalSizes(n, num_clients, cfg, rng);
  std::vector<int> perm = Iota(n);
  rng.Shuffle(perm.begin(), perm.end());
  Partition p(num_clients);
  int64_t start = 0;
  for (int k = 0; k < num_clients; ++k) {
    const int64_t end = start + size[k];
    p[k].assign(perm.begin() + start, perm.begin() + end);
    start = end;
  }
  return p;
}

Partition Natural(const Dataset& train, int num_clients) {
  if (train.user.empty()) {
    throw InputError(
        "data.partition.kind: \"natural\" needs data with user ids (data.dataset = \"synthetic\", \"leaf\" or "
        "\"tff_h5\", or a CSV with data.csv.client_column); this dataset has none");
  }
  const int num_users = *std::max_element(train.user.begin(), train.user.end()) + 1;
  if (num_clients != num_users) {
    throw InputError(
        fmt::format("data.num_clients: {} clients but the data has {} natural users "
                    "(data.partition.kind = \"natural\" needs one client per user)",
                    num_clients, num_users));
  }
  Partition p(num_clients);
  for (int i = 0; i < train.size(); ++i) p[train.user[i]].push_back(i);
  return p;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// The q-quantile of sorted v by linear interpolation (numpy's default).
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0.0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// Gini coefficient of sorted non-negative v: sum_i sum_j |v_i - v_j| / (2 n^2 mean)
// = 2 sum_i i v_(i) / (n sum v) - (n + 1) / n, i = 1..n.
double Gini(const std::vector<double>& sorted) {
  const double n = static_cast<double>(sorted.size());
  double sum = 0.0, weighted = 0.0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    sum += sorted[i];
    weighted += static_cast<double>(i + 1) * sorted[i];
  }
  return sum > 0.0 ? 2.0 * weighted / (n * sum) - (n + 1.0) / n : 0.0;
}

// Moves `count` of client k's rows, stratified by label, from rows to test.
void SplitClient(const Dataset& train, std::vector<int>& rows, int64_t count, Rng& rng, std::vector<int>& test) {
  const int classes = std::max(train.num_classes, 1);
  std::vector<std::vector<int>> by_label(static_cast<size_t>(classes));
  for (int r : rows) by_label[static_cast<size_t>(train.y[static_cast<size_t>(r)])].push_back(r);
  const double share = static_cast<double>(count) / static_cast<double>(rows.size());
  std::vector<int64_t> quota(static_cast<size_t>(classes));
  std::vector<double> remainder(static_cast<size_t>(classes));
  int64_t given = 0;
  for (size_t c = 0; c < by_label.size(); ++c) {
    const double exact = share * static_cast<double>(by_label[c].size());
    quota[c] = static_cast<int64_t>(std::floor(exact));
    remainder[c] = exact - static_cast<double>(quota[c]);
    given += quota[c];
  }
  std::vector<int> order = Iota(classes);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return remainder[static_cast<size_t>(a)] > remainder[static_cast<size_t>(b)];
  });
  for (size_t i = 0; given < count && i < order.size(); ++i) {
    const auto c = static_cast<size_t>(order[i]);
    if (quota[c] < static_cast<int64_t>(by_label[c].size())) {
      ++quota[c];
      ++given;
    }
  }
  std::vector<int> keep;
  for (size_t c = 0; c < by_label.size(); ++c) {
    auto& v = by_label[c];
    rng.Shuffle(v.begin(), v.end());
    test.insert(test.end(), v.begin(), v.begin() + quota[c]);
    keep.insert(keep.end(), v.begin() + quota[c], v.end());
  }
  std::sort(test.begin(), test.end());
  std::sort(keep.begin(), keep.end());
  rows = std::move(keep);
}

}  // namespace

Partition MakePartition(const Dataset& train, int num_clients, const PartitionConfig& cfg, uint64_t seed) {
  const int n = train.size();
  if (num_clients < 1) throw InputError(fmt::format("data.num_clients: {} clients; need at least 1", num_clients));
  if (num_clients > n && (cfg.min_samples > 0 || cfg.kind == "iid" || cfg.kind == "shards")) {
    throw InputError(fmt::format("data.num_clients: {} clients but only {} training samples (a population larger "
                                 "than the data needs data.partition.min_samples = 0 and a dirichlet or quantity "
                                 "partition)",
                                 num_clients, n));
  }
  if (train.next_token && (cfg.kind == "dirichlet" || cfg.kind == "shards" || cfg.kind == "labels")) {
    throw InputError(fmt::format("data.partition.kind: {} splits the data by label, but next-token data has a label "
                                 "per step, not per sample (data.tff_h5.targets = every_step); use natural, iid or "
                                 "quantity",
                                 cfg.kind));
  }
  Rng rng = DeriveStream(seed, Stream::kPartition);
  Partition p;
  if (cfg.kind == "iid") {
    p = Iid(n, num_clients, rng);
  } else if (cfg.kind == "dirichlet") {
    p = cfg.dirichlet_mode == "per_client" ? DirichletPerClient(train, num_clients, cfg, rng)
                                           : Dirichlet(train, num_clients, cfg, rng);
  } else if (cfg.kind == "shards") {
    p = Shards(train, num_clients, cfg, rng);
  } else if (cfg.kind == "quantity") {
    p = Quantity(n, num_clients, cfg, rng);
  } else if (cfg.kind == "labels") {
    p = Labels(train, num_clients, cfg, rng);
  } else if (cfg.kind == "natural") {
    p = Natural(train, num_clients);
  } else {
    throw InputError(fmt::format("data.partition.kind: unknown partitioner \"{}\"", cfg.kind));
  }
  for (auto& c : p) std::sort(c.begin(), c.end());
  return p;
}

ClientTests SplitClientTests(const FederatedData& data, Partition& p, const DataConfig& cfg, uint64_t seed) {
  ClientTests t;
  const int k_max = static_cast<int>(p.size());
  if (cfg.client_test_fraction > 0.0) {
    t.from_train = true;
    t.rows.resize(p.size());
    for (int k = 0; k < k_max; ++k) {
      auto& rows = p[static_cast<size_t>(k)];
      const auto n = static_cast<int64_t>(rows.size());
      const int64_t count = std::min<int64_t>(n - 1, std::llround(cfg.client_test_fraction * static_cast<double>(n)));
      if (count <= 0) continue;
      Rng rng = DeriveStream(seed, Stream::kDataSplit, 1, static_cast<uint64_t>(k));
      SplitClient(data.train, rows, count, rng, t.rows[static_cast<size_t>(k)]);
    }
  } else if (cfg.partition.kind == "natural" && !data.test.user.empty()) {
    t.rows.resize(p.size());
    for (int r = 0; r < data.test.size(); ++r) {
      const int u = data.test.user[static_cast<size_t>(r)];
      if (u >= 0 && u < k_max) t.rows[static_cast<size_t>(u)].push_back(r);
    }
  }
  return t;
}

// Clients with no samples count in samples_per_client but are left out of
// labels_per_client and mean_label_tv, whose label distribution is undefined.
nlohmann::json PartitionStats(const Dataset& train, const Partition& p, const ClientTests* tests) {
  const int num_classes = std::max(train.num_classes, 1);
  // The labels of a row: its label, or for next-token data every non-pad
  // target of its steps (the distribution the model is trained to predict).
  std::vector<float> row(train.next_token ? static_cast<size_t>(train.dim()) : 0);
  auto add_labels = [&](int r, std::vector<double>& hist) {
    if (!train.next_token) {
      hist[static_cast<size_t>(train.y[static_cast<size_t>(r)])] += 1.0;
      return 1.0;
    }
    train.Rows(&r, 1, row.data());
    double n = 0.0;
    for (size_t t = 1; t < row.size(); ++t) {
      const int id = static_cast<int>(row[t]);
      if (id == train.pad_id || id < 0 || id >= num_classes) continue;
      hist[static_cast<size_t>(id)] += 1.0;
      n += 1.0;
    }
    return n;
  };
  std::vector<double> global(num_classes, 0.0);
  double global_n = 0.0;
  for (int r = 0; r < train.size(); ++r) global_n += add_labels(r, global);
  if (global_n > 0.0) {
    for (double& g : global) g /= global_n;
  }

  std::vector<double> sizes, label_counts;
  double tv_sum = 0.0, size_sum = 0.0;
  std::vector<double> hist(num_classes);
  for (const auto& client : p) {
    sizes.push_back(static_cast<double>(client.size()));
    size_sum += static_cast<double>(client.size());
    if (client.empty()) continue;
    std::fill(hist.begin(), hist.end(), 0.0);
    double n = 0.0;
    for (int i : client) n += add_labels(i, hist);
    if (n == 0.0) continue;
    int distinct = 0;
    double tv = 0.0;
    for (int c = 0; c < num_classes; ++c) {
      distinct += hist[c] > 0.0;
      tv += std::abs(hist[c] / n - global[c]);
    }
    label_counts.push_back(distinct);
    tv_sum += 0.5 * tv;
  }
  auto min_of = [](const std::vector<double>& v) { return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end()); };
  auto max_of = [](const std::vector<double>& v) { return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()); };

  nlohmann::json j;
  j["num_clients"] = p.size();
  j["samples_per_client"] = {{"min", static_cast<int64_t>(min_of(sizes))},
                             {"median", Median(sizes)},
                             {"max", static_cast<int64_t>(max_of(sizes))},
                             {"mean", sizes.empty() ? 0.0 : size_sum / static_cast<double>(sizes.size())}};
  j["labels_per_client"] = {{"min", static_cast<int64_t>(min_of(label_counts))},
                            {"median", Median(label_counts)},
                            {"max", static_cast<int64_t>(max_of(label_counts))}};
  j["mean_label_tv"] = label_counts.empty() ? 0.0 : tv_sum / static_cast<double>(label_counts.size());
  std::sort(sizes.begin(), sizes.end());
  j["samples_per_client"]["p10"] = Quantile(sizes, 0.1);
  j["samples_per_client"]["p90"] = Quantile(sizes, 0.9);
  j["samples_per_client"]["gini"] = Gini(sizes);
  if (tests != nullptr && !tests->rows.empty()) {
    std::vector<double> t;
    double total = 0.0;
    for (const auto& c : tests->rows) {
      t.push_back(static_cast<double>(c.size()));
      total += static_cast<double>(c.size());
    }
    std::sort(t.begin(), t.end());
    j["test_samples_per_client"] = {{"min", static_cast<int64_t>(t.front())},
                                    {"median", Median(t)},
                                    {"max", static_cast<int64_t>(t.back())},
                                    {"total", static_cast<int64_t>(total)},
                                    {"from", tests->from_train ? "client_test_fraction" : "test_set"}};
  }
  return j;
}

nlohmann::json DataStats(const DataConfig& cfg, uint64_t data_seed, uint64_t seed) {
  FederatedData data = LoadData(cfg, data_seed);
  Partition p = MakePartition(data.train, cfg.num_clients, cfg.partition, seed);
  const ClientTests tests = SplitClientTests(data, p, cfg, seed);
  nlohmann::json d = {{"description", data.description},
                      {"train_samples", data.train.size()},
                      {"test_samples", data.test.size()},
                      {"num_features", data.train.dim()},
                      {"num_classes", data.train.num_classes},
                      {"shape", data.train.shape},
                      {"vocab_size", data.train.vocab_size},
                      {"next_token", data.train.next_token},
                      {"feature_bytes", data.train.FeatureBytes() + data.test.FeatureBytes()}};
  return {{"data", d}, {"partition", PartitionStats(data.train, p, &tests)}};
}

}  // namespace fedsim
