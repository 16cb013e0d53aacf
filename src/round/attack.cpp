#include "round/attack.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/fmath.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "privacy/input_perturbation.h"
#include "round/cohort_sampler.h"

namespace fedsim {
namespace {

// Stream indices of kAttack besides (round, client) for gaussian updates.
constexpr uint64_t kSetStream = ~uint64_t{0};          // (kSetStream, 0): the malicious set
constexpr uint64_t kBackdoorStream = ~uint64_t{0} - 1;  // (kBackdoorStream, client): its triggered rows

// Coordinates per task of the per-coordinate statistics.
constexpr int64_t kSpan = 1 << 14;

// The value the trigger's pixels get: the brightest byte, or the largest
// training feature (float storage).
float TriggerValue(const Dataset& train) {
  return train.byte_storage || train.x.size() == 0 ? 255.0f : train.x.maxCoeff();
}

void StampTriggerValue(Dataset& ds, int row, int size, float value) {
  const int c = ds.shape[0], h = ds.shape[1], w = ds.shape[2];
  const size_t base = static_cast<size_t>(row) * static_cast<size_t>(ds.dim());
  for (int ch = 0; ch < c; ++ch) {
    for (int y = h - size; y < h; ++y) {
      for (int x = w - size; x < w; ++x) {
        const size_t at = base + static_cast<size_t>((ch * h + y) * w + x);
        if (ds.byte_storage) {
          ds.bytes[at] = static_cast<uint8_t>(value);
        } else {
          ds.x.data()[at] = value;
        }
      }
    }
  }
}

void CheckImage(const Dataset& ds, const AttackConfig& cfg) {
  if (ds.shape.size() != 3 || ds.vocab_size > 0) {
    throw InputError("attack.kind: backdoor stamps a pixel trigger and needs image data (a dataset with an image "
                     "shape, such as fashion_mnist, mnist_idx or cifar10)");
  }
  if (cfg.trigger_size > std::min(ds.shape[1], ds.shape[2])) {
    throw InputError(fmt::format("attack.trigger_size: {} does not fit the {}x{} images", cfg.trigger_size,
                                 ds.shape[1], ds.shape[2]));
  }
}

void CheckTarget(const AttackConfig& cfg, int classes) {
  const bool uses_target = cfg.kind == "backdoor" || (cfg.kind == "label_flip" && cfg.mapping == "all_to_one");
  if (uses_target && cfg.target >= classes) {
    throw InputError(fmt::format("attack.target: {} is not a label of this data ({} classes)", cfg.target, classes));
  }
}

// Copies rows `src` of `from` to the end of `to` (same storage and width).
void AppendRows(Dataset& to, const Dataset& from, const std::vector<int>& src, const std::vector<int>& labels) {
  const size_t d = static_cast<size_t>(from.dim());
  const size_t n0 = static_cast<size_t>(to.size()), add = src.size();
  if (from.byte_storage) {
    to.bytes.resize((n0 + add) * d);
    for (size_t i = 0; i < add; ++i) {
      std::copy_n(from.bytes.data() + static_cast<size_t>(src[i]) * d, d, to.bytes.data() + (n0 + i) * d);
    }
  } else {
    to.x.conservativeResize(static_cast<Eigen::Index>(n0 + add), Eigen::NoChange);
    for (size_t i = 0; i < add; ++i) to.x.row(static_cast<Eigen::Index>(n0 + i)) = from.x.row(src[i]);
  }
  for (size_t i = 0; i < add; ++i) {
    to.y.push_back(labels[i]);
    if (!to.user.empty()) to.user.push_back(from.user[static_cast<size_t>(src[i])]);
  }
}

}  // namespace

AttackPlan::AttackPlan(const AttackConfig& cfg, int num_clients, uint64_t seed, const std::vector<int>& pool)
    : cfg_(cfg) {
  flag_.assign(static_cast<size_t>(num_clients), 0);
  if (cfg.kind == "none") return;
  if (cfg.count > 0 && cfg.fraction > 0.0) {
    throw InputError("attack.count: set attack.count or attack.fraction, not both");
  }
  const int trainers = pool.empty() ? num_clients : static_cast<int>(pool.size());
  int count = cfg.count;
  if (cfg.fraction > 0.0) count = std::max(1, static_cast<int>(std::lround(cfg.fraction * trainers)));
  if (count == 0) {
    throw InputError(fmt::format("attack.kind: {} needs attackers: set attack.count or attack.fraction", cfg.kind));
  }
  if (count > trainers) {
    throw InputError(fmt::format("attack.count: {} attackers in a population of {} clients{}", count, trainers,
                                 pool.empty() ? "" : " that train (data.holdout_clients are not in it)"));
  }
  Rng rng = DeriveStream(seed, Stream::kAttack, kSetStream, 0);
  malicious_ = SampleCohort(trainers, count, rng);
  if (!pool.empty()) {
    for (int& c : malicious_) c = pool[static_cast<size_t>(c)];
  }
  std::sort(malicious_.begin(), malicious_.end());
  for (int c : malicious_) flag_[static_cast<size_t>(c)] = 1;
}

void CheckAttackAndRobust(const Config& cfg, UploadKind kind, bool server_reads_reports) {
  const AttackConfig& a = cfg.attack;
  const std::string& rule = cfg.robust.rule;
  const bool attack = a.kind != "none", robust = rule != "mean";
  if (!attack) {
    for (const auto& [key, set] : {std::pair<const char*, bool>{"attack.count", a.count > 0},
                                   {"attack.fraction", a.fraction > 0.0}}) {
      if (set) throw InputError(fmt::format("{}: attackers need an attack (set attack.kind)", key));
    }
  }
  if (!attack && !robust) return;
  const std::string key = attack ? "attack.kind" : "robust.rule";
  const std::string what = attack ? "attack.kind=" + a.kind : "robust.rule=" + rule;
  // Every encryption scheme, run (paillier) or cost-modelled (paillier_model,
  // bfv, ckks), stands for a server that sees only the sum.
  if (cfg.secure_aggregation.enabled || cfg.encryption.scheme != "none") {
    throw InputError(fmt::format("{}: {} needs each client's upload at the server (the robust rules and the attack "
                                 "figures read them); {} shows the server only their sum",
                                 key, what,
                                 cfg.secure_aggregation.enabled ? "secure_aggregation.enabled"
                                                                : "encryption.scheme=" + cfg.encryption.scheme));
  }
  if (robust && cfg.privacy.mode == "central") {
    throw InputError(fmt::format("robust.rule: {} cannot be combined with privacy.mode=central, whose noise is "
                                 "calibrated to the plain sum of clipped updates",
                                 rule));
  }
  const bool delta = kind == UploadKind::kModelDelta || kind == UploadKind::kGradient;
  if (!delta || (robust && server_reads_reports)) {
    throw InputError(fmt::format("{}: {} works on model-delta or gradient uploads that the server only averages; "
                                 "algorithm.name={} uploads {}{}",
                                 key, what, cfg.algorithm.name, UploadKindName(kind),
                                 server_reads_reports ? " and its server step reads each client's report" : ""));
  }
  if (a.kind == "scaling" && a.boost == 1.0) {
    throw InputError("attack.boost: attack.kind=scaling multiplies an honest update by attack.boost; set it to a "
                     "value other than 1");
  }
  if ((a.kind == "alie" || a.kind == "ipm") && a.boost != 1.0) {
    throw InputError(fmt::format("attack.boost: attack.kind={} sets the malicious update from the benign ones; "
                                 "attack.boost does not apply",
                                 a.kind));
  }
}

void StampTrigger(Dataset& ds, int row, int trigger_size) {
  StampTriggerValue(ds, row, trigger_size, TriggerValue(ds));
}

PoisonedTraining PoisonTraining(const Dataset& train, const Partition& partition, const AttackPlan& plan,
                                uint64_t seed, const InputPerturbationConfig* perturbation, double delta) {
  const AttackConfig& cfg = plan.config();
  CheckTarget(cfg, train.num_classes);
  const bool backdoor = cfg.kind == "backdoor";
  if (backdoor) CheckImage(train, cfg);
  PoisonedTraining out{train, partition};
  std::vector<int> src, labels, triggered;  // triggered: positions in src
  for (int c : plan.clients()) {
    std::vector<int>& rows = out.partition[static_cast<size_t>(c)];
    const int n = static_cast<int>(rows.size());
    std::vector<int> chosen;  // positions within rows that are replaced
    if (backdoor) {
      const int k = std::min(n, static_cast<int>(std::lround(cfg.poison_ratio * n)));
      Rng rng = DeriveStream(seed, Stream::kAttack, kBackdoorStream, static_cast<uint64_t>(c));
      chosen = SampleCohort(n, k, rng);
      std::sort(chosen.begin(), chosen.end());
    } else {
      chosen.resize(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) chosen[static_cast<size_t>(i)] = i;
    }
    for (int pos : chosen) {
      const int r = rows[static_cast<size_t>(pos)];
      const int y = train.y[static_cast<size_t>(r)];
      int label = cfg.target;
      if (cfg.kind == "label_flip" && cfg.mapping == "reverse") label = train.num_classes - 1 - y;
      rows[static_cast<size_t>(pos)] = train.size() + static_cast<int>(src.size());
      if (backdoor) triggered.push_back(static_cast<int>(src.size()));
      src.push_back(r);
      labels.push_back(label);
    }
    std::sort(rows.begin(), rows.end());
  }
  AppendRows(out.train, train, src, labels);
  const float value = TriggerValue(train);
  for (int i : triggered) StampTriggerValue(out.train, train.size() + i, cfg.trigger_size, value);
  if (perturbation) PerturbTrainingData(out.train, out.partition, *perturbation, delta, seed);
  return out;
}

Dataset TriggeredTestSet(const Dataset& test, const AttackConfig& cfg) {
  CheckImage(test, cfg);
  CheckTarget(cfg, test.num_classes);
  Dataset out;
  out.byte_storage = test.byte_storage;
  out.byte_scale = test.byte_scale;
  out.byte_shift = test.byte_shift;
  out.num_classes = test.num_classes;
  out.shape = test.shape;
  if (!test.byte_storage) out.x.resize(0, test.dim());
  std::vector<int> src;
  for (int r = 0; r < test.size(); ++r) {
    if (test.y[static_cast<size_t>(r)] != cfg.target) src.push_back(r);
  }
  AppendRows(out, test, src, std::vector<int>(src.size(), cfg.target));
  out.user.clear();
  const float value = TriggerValue(test);
  for (int r = 0; r < out.size(); ++r) StampTriggerValue(out, r, cfg.trigger_size, value);
  return out;
}

namespace {

class AttackTransform : public UploadTransform {
 public:
  AttackTransform(const AttackPlan& plan, uint64_t seed) : plan_(plan), seed_(seed) {}
  std::string name() const override { return "attack"; }

  void Apply(ClientUpload& u) const override {
    if (!plan_.acting(u.round) || !plan_.malicious(u.client)) return;
    const AttackConfig& cfg = plan_.config();
    Eigen::Map<Eigen::VectorXf> v(u.values, u.size);
    if (cfg.kind == "sign_flip") {
      v = -v;
    } else if (cfg.kind == "gaussian") {
      Rng rng = DeriveStream(seed_, Stream::kAttack, static_cast<uint64_t>(u.round), static_cast<uint64_t>(u.client));
      for (int64_t j = 0; j < u.size; ++j) v[j] = static_cast<float>(cfg.sigma * rng.Normal());
    }
    if (cfg.boost != 1.0) v *= static_cast<float>(cfg.boost);
  }

 private:
  const AttackPlan& plan_;
  uint64_t seed_;
};

// Phi(x), the standard normal CDF.
double NormalCdf(double x) { return 0.5 * fm::Erfc(-x / std::sqrt(2.0)); }

}  // namespace

std::unique_ptr<UploadTransform> MakeAttackTransform(const AttackPlan& plan, uint64_t seed) {
  return std::make_unique<AttackTransform>(plan, seed);
}

double AlieZMax(int n, int m) {
  if (m <= 0) return 0.0;
  // s, the benign updates the attackers must win over, is at least 1: a round
  // whose attackers hold a majority (s <= 0 in Baruch et al.'s formula, which
  // then has no z) keeps the z of s = 1, the formula's largest, rather than
  // falling to 0 and sending the benign mean.
  const int s = std::max(1, n / 2 + 1 - m);
  const double p = static_cast<double>(n - s) / static_cast<double>(n);
  if (p <= 0.5) return 0.0;
  // Phi^{-1}(p) by bisection: Phi is monotone, and 200 halvings of [0, 40]
  // reach the last bit of a double.
  double lo = 0.0, hi = 40.0;
  for (int i = 0; i < 200 && hi - lo > 0.0; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid == lo || mid == hi) break;
    (NormalCdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double ApplyOmniscientAttack(const AttackConfig& cfg, Eigen::MatrixXf& uploads, const std::vector<char>& malicious,
                             const std::vector<char>& kept, int threads) {
  std::vector<int> benign, bad;
  for (size_t i = 0; i < malicious.size(); ++i) {
    if (!kept[i]) continue;
    (malicious[i] ? bad : benign).push_back(static_cast<int>(i));
  }
  if (bad.empty() || benign.empty()) return 0.0;
  const bool alie = cfg.kind == "alie";
  const int n = static_cast<int>(benign.size() + bad.size());
  const double z = alie ? (cfg.z ? *cfg.z : AlieZMax(n, static_cast<int>(bad.size()))) : 0.0;
  const int64_t p = uploads.rows();
  const double nb = static_cast<double>(benign.size());
  ParallelFor((p + kSpan - 1) / kSpan, threads, [&](int64_t s, int) {
    const int64_t lo = s * kSpan, hi = std::min(p, lo + kSpan);
    for (int64_t j = lo; j < hi; ++j) {
      double sum = 0.0;
      for (int i : benign) sum += uploads(j, i);
      const double mean = sum / nb;
      double value = -cfg.epsilon * mean;
      if (alie) {
        double ss = 0.0;
        for (int i : benign) ss += (uploads(j, i) - mean) * (uploads(j, i) - mean);
        value = mean - z * std::sqrt(ss / nb);
      }
      for (int i : bad) uploads(j, i) = static_cast<float>(value);
    }
  });
  return z;
}

}  // namespace fedsim
