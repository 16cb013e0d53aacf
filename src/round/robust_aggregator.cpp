// The buffered aggregator: the round's kept uploads are held (cohort x P
// floats), an omniscient attack may replace the attackers' uploads, and the
// rule of robust.rule combines them (docs/robustness.md):
//
//   mean               sum_k w_k u_k / sum_k w_k, in cohort order (the plain aggregator's bits)
//   median             per coordinate, the median (even n: the mean of the middle two)
//   trimmed_mean       per coordinate, the mean after cutting floor(trim n) values at each end
//   krum               the update whose n - f - 2 nearest neighbours are closest (Blanchard et al. 2017)
//   multikrum          the mean of the m best-scored updates (Blanchard et al. 2017)
//   bulyan             n - 2f updates picked by repeated Krum, then per coordinate the mean of
//                      the n - 4f values nearest their median (El Mhamdi et al. 2018)
//   rfa                the weighted geometric median by smoothed Weiszfeld (Pillutla et al. 2022)
//   centered_clipping  v <- v + mean_k clip_tau(u_k - v), from the last round's aggregate
//                      (Karimireddy et al. 2021)
//   norm_bound         each update scaled to norm <= M, the weighted mean, + N(0, sigma^2)
//                      per coordinate (Sun et al. 2019)
//
// Per-coordinate work is split over threads in spans; the median, the
// trimmed mean and Bulyan sort kLanes coordinates at once with a sorting
// network (the values a sort gives, summed in ascending order); norms are
// one sum per member in coordinate order; the Krum family's distances come
// from a float64 Gram matrix with the ranking checked against its error
// bound (krum_selection.h): the result does not depend on the thread count.
// The rules other than mean, rfa and norm_bound ignore the reports'
// weights. The "robust" record reports the attackers in the cohort, those
// the rule kept (selection rules: selected), the mean L2 norm of benign and
// malicious updates as the server received them, the Krum family's direct
// sums, and the rule's wall time.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "fl/checkpoint.h"
#include "metrics/writer.h"
#include "round/aggregator.h"
#include "round/attack.h"
#include "round/krum_selection.h"

namespace fedsim {
namespace {

constexpr int64_t kSpan = 1 << 14;
// Coordinates sorted at once by the coordinate-wise rules: one AVX-512
// vector of floats per member (100 members: 6.4 KB).
constexpr int kLanes = 16;

// Batcher's odd-even merge sort as a comparator network (Knuth, The Art of
// Computer Programming vol. 3, sec. 5.3.4, exercise 32's iterative form) for
// n values: the comparators (i, j), i < j, of the network for the next power
// of two, less those that touch the padding above n (were it +inf, they
// would leave everything where it is). The same comparisons for every
// coordinate: no data-dependent branches, so they run on all lanes at once.
std::vector<std::pair<int, int>> SortingNetwork(int n) {
  int size = 1;
  while (size < n) size <<= 1;
  std::vector<std::pair<int, int>> net;
  for (int p = 1; p < size; p <<= 1) {
    for (int k = p; k >= 1; k >>= 1) {
      for (int j = k % p; j + k < size; j += 2 * k) {
        for (int i = 0; i < std::min(k, size - j - k); ++i) {
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p) && i + j + k < n) net.emplace_back(i + j, i + j + k);
        }
      }
    }
  }
  return net;
}

// Sorts each lane of `a` (row r, lane l at a[r * kLanes + l]) ascending by
// the network: each comparator swaps rows i and j in the lanes where j's
// value is the smaller (a permutation, so ties and signed zeros are kept as
// they are). Written as selects over whole rows so that it compiles to
// vector compares and blends.
void SortLanes(float* a, const std::vector<std::pair<int, int>>& net) {
  for (const auto& [i, j] : net) {
    float* x = a + static_cast<size_t>(i) * kLanes;
    float* y = a + static_cast<size_t>(j) * kLanes;
    float lo[kLanes], hi[kLanes];
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      const float p = x[l], q = y[l];
      lo[l] = q < p ? q : p;
      hi[l] = q < p ? p : q;
    }
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) {
      x[l] = lo[l];
      y[l] = hi[l];
    }
  }
}

// |z - u|^2 in double, one sum in coordinate order.
double SquaredDistance(const float* u, const Eigen::VectorXd& z) {
  double s = 0.0;
  for (Eigen::Index c = 0; c < z.size(); ++c) {
    const double x = z[c] - u[c];
    s += x * x;
  }
  return s;
}

class RobustAggregator : public Aggregator {
 public:
  RobustAggregator(const Config& cfg, int64_t upload_size, int threads, const AttackPlan* plan)
      : cfg_(cfg.robust),
        attack_(cfg.attack),
        seed_(cfg.experiment.seed),
        p_(upload_size),
        threads_(threads),
        plan_(plan && plan->active() ? plan : nullptr),
        acc_(upload_size) {
    if (cfg_.rule == "centered_clipping") center_ = Eigen::VectorXd::Zero(upload_size);
  }

  std::string name() const override { return cfg_.rule; }

  void Begin(int round, int cohort) override {
    round_ = round;
    if (buffer_.cols() != cohort) buffer_.resize(p_, cohort);
  }

  void AddBlock(const Eigen::MatrixXf& uploads, int b0, int nb, const std::vector<ClientReport>& reports,
                const std::vector<char>& keep) override {
    for (int i = 0; i < nb; ++i) {
      if (keep[static_cast<size_t>(b0 + i)]) buffer_.col(b0 + i) = uploads.col(i);
    }
  }

  AggregateResult Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) override;

  void Save(CheckpointWriter& w) const override {
    if (center_.size() > 0) w.F64("robust/center", center_.data(), center_.size());
  }
  void Load(const CheckpointReader& r) override {
    // A branch from a run with another rule starts from a zero center.
    if (center_.size() > 0 && r.Has("robust/center")) {
      const std::vector<double> c = r.F64("robust/center", p_);
      center_ = Eigen::Map<const Eigen::VectorXd>(c.data(), p_);
    }
  }

 private:
  // Parallel over spans of coordinates: fn(lo, hi).
  template <class Fn>
  void Coordinates(Fn fn) const {
    ParallelFor((p_ + kSpan - 1) / kSpan, threads_, [&](int64_t s, int) { fn(s * kSpan, std::min(p_, (s + 1) * kSpan)); });
  }
  // Copies coordinates [c0, c0 + w) of the uploads of members `m` into
  // `a`, one row of kLanes per member (lanes past w: 0).
  void Load(int64_t c0, int w, const std::vector<int>& m, std::vector<float>& a) const {
    for (size_t k = 0; k < m.size(); ++k) {
      const float* src = buffer_.col(m[k]).data() + c0;
      float* dst = a.data() + k * kLanes;
      for (int l = 0; l < kLanes; ++l) dst[l] = l < w ? src[l] : 0.0f;
    }
  }
  double L2(const Eigen::Ref<const Eigen::VectorXd>& v) const { return std::sqrt(v.squaredNorm()); }
  void NeedAtLeast(int n, int need, const char* why) const {
    if (n < need) {
      throw InputError(fmt::format("robust.byzantine: robust.rule={} needs at least {} updates in a round ({}); "
                                   "this round has {} (raise algorithm.clients_per_round or lower robust.byzantine)",
                                   cfg_.rule, need, why, n));
    }
  }

  RobustConfig cfg_;
  AttackConfig attack_;
  uint64_t seed_;
  int64_t p_;
  int threads_;
  const AttackPlan* plan_;
  int round_ = 0;
  Eigen::MatrixXf buffer_;  // column i: cohort member i's upload (kept members only)
  Eigen::VectorXd acc_;
  Eigen::VectorXd center_;  // centered_clipping: the last aggregate
};

AggregateResult RobustAggregator::Finish(std::vector<ClientReport>& reports, std::vector<char>& keep) {
  const auto t0 = std::chrono::steady_clock::now();
  AggregateResult res;
  res.sum = &acc_;
  res.member_bytes_up.resize(reports.size());
  const int64_t upload_bytes = p_ * static_cast<int64_t>(sizeof(float));
  for (size_t i = 0; i < reports.size(); ++i) {
    res.member_bytes_up[i] = reports[i].bytes_up >= 0 ? reports[i].bytes_up : upload_bytes;
    res.bytes_up += res.member_bytes_up[i];
  }
  // The kept members, and which of them attack this round.
  std::vector<int> m;
  std::vector<char> bad(reports.size(), 0);
  for (size_t i = 0; i < reports.size(); ++i) {
    if (!keep[i]) continue;
    m.push_back(static_cast<int>(i));
    bad[i] = plan_ && plan_->acting(round_) && plan_->malicious(reports[i].client);
  }
  double alie_z = 0.0;
  if (plan_ && plan_->omniscient()) alie_z = ApplyOmniscientAttack(attack_, buffer_, bad, keep, threads_);
  const int n = static_cast<int>(m.size());
  acc_.setZero();
  std::vector<char> included(reports.size(), 0);  // what the rule's aggregate draws on
  int64_t direct_pairs = -1;                      // Krum family: distances taken as direct sums
  for (int i : m) included[static_cast<size_t>(i)] = 1;
  const std::string& rule = cfg_.rule;
  // Members' norms (after any attack), one sum each in coordinate order.
  std::vector<double> norms(static_cast<size_t>(n));
  ParallelFor(n, threads_, [&](int64_t k, int) {
    norms[static_cast<size_t>(k)] = std::sqrt(buffer_.col(m[static_cast<size_t>(k)]).cast<double>().squaredNorm());
  });

  if (n == 0) {
    // Nothing to aggregate: the server pipeline does not release.
  } else if (rule == "mean" || rule == "norm_bound") {
    std::vector<double> scale(static_cast<size_t>(n), 1.0);
    if (rule == "norm_bound") {
      for (int k = 0; k < n; ++k) {
        const double nk = norms[static_cast<size_t>(k)];
        if (nk > cfg_.clip_norm) scale[static_cast<size_t>(k)] = cfg_.clip_norm / nk;
      }
    }
    for (int i : m) res.denominator += reports[static_cast<size_t>(i)].weight;
    Coordinates([&](int64_t lo, int64_t hi) {
      for (int k = 0; k < n; ++k) {
        const double w = reports[static_cast<size_t>(m[static_cast<size_t>(k)])].weight * scale[static_cast<size_t>(k)];
        // The mean keeps the plain aggregator's arithmetic: w * u, summed member by member.
        acc_.segment(lo, hi - lo) += w * buffer_.col(m[static_cast<size_t>(k)]).segment(lo, hi - lo).cast<double>();
      }
    });
    if (rule == "norm_bound" && cfg_.noise_std > 0.0) {
      Rng rng = DeriveStream(seed_, Stream::kRobust, static_cast<uint64_t>(round_), 0);
      for (int64_t c = 0; c < p_; ++c) acc_[c] += res.denominator * cfg_.noise_std * rng.Normal();
    }
  } else if (rule == "median" || rule == "trimmed_mean") {
    // ⌊β n⌋ of the decimal β: 0.29 × 100 is 28.999999999999996 in doubles,
    // so the product is nudged up by a relative 1e-9 before the floor.
    const int cut = rule == "median" ? 0 : static_cast<int>(std::floor(cfg_.trim * n * (1.0 + 1e-9)));
    if (n - 2 * cut < 1) NeedAtLeast(n, 2 * cut + 1, "trimmed_mean keeps at least one value per coordinate");
    // Each coordinate's n values sorted by the network, kLanes coordinates
    // at a time: the median and the kept values as a sort gives them, and
    // the trimmed sum in ascending order.
    const std::vector<std::pair<int, int>> net = SortingNetwork(n);
    Coordinates([&](int64_t lo, int64_t hi) {
      std::vector<float> a(static_cast<size_t>(n) * kLanes);
      for (int64_t c0 = lo; c0 < hi; c0 += kLanes) {
        const int w = static_cast<int>(std::min<int64_t>(kLanes, hi - c0));
        Load(c0, w, m, a);
        SortLanes(a.data(), net);
        for (int l = 0; l < w; ++l) {
          auto v = [&](int k) { return a[static_cast<size_t>(k) * kLanes + static_cast<size_t>(l)]; };
          if (rule == "median") {
            acc_[c0 + l] = n % 2 ? v(n / 2) : 0.5 * (static_cast<double>(v(n / 2 - 1)) + v(n / 2));
          } else {
            double s = 0.0;
            for (int k = cut; k < n - cut; ++k) s += v(k);
            acc_[c0 + l] = s / (n - 2 * cut);
          }
        }
      }
    });
    res.denominator = 1.0;
  } else if (rule == "krum" || rule == "multikrum" || rule == "bulyan") {
    const int f = cfg_.byzantine;
    if (rule == "bulyan") {
      NeedAtLeast(n, 4 * f + 3, "bulyan needs n >= 4f + 3");
    } else {
      NeedAtLeast(n, f + 3, "krum scores n - f - 2 >= 1 neighbours");
    }
    std::vector<int> cols(m.begin(), m.end());
    UploadDistances d(buffer_, cols, threads_, UploadDistances::Method::kGram);
    const std::vector<int> chosen = KrumSelect(d, rule, f, cfg_.selected);  // indices into m, ascending
    direct_pairs = d.direct_pairs();
    std::fill(included.begin(), included.end(), 0);
    for (int k : chosen) included[static_cast<size_t>(m[static_cast<size_t>(k)])] = 1;
    const int theta = static_cast<int>(chosen.size());
    if (rule != "bulyan") {
      Coordinates([&](int64_t lo, int64_t hi) {
        for (int k : chosen) acc_.segment(lo, hi - lo) += buffer_.col(m[static_cast<size_t>(k)]).segment(lo, hi - lo).cast<double>();
      });
      res.denominator = theta;
    } else {
      const int beta = theta - 2 * f;
      std::vector<int> members(static_cast<size_t>(theta));
      for (int t = 0; t < theta; ++t)
        members[static_cast<size_t>(t)] = m[static_cast<size_t>(chosen[static_cast<size_t>(t)])];
      const std::vector<std::pair<int, int>> net = SortingNetwork(theta);
      Coordinates([&](int64_t lo, int64_t hi) {
        std::vector<float> a(static_cast<size_t>(theta) * kLanes), v(static_cast<size_t>(theta));
        for (int64_t c0 = lo; c0 < hi; c0 += kLanes) {
          const int w = static_cast<int>(std::min<int64_t>(kLanes, hi - c0));
          Load(c0, w, members, a);
          SortLanes(a.data(), net);
          for (int l = 0; l < w; ++l) {
            for (int t = 0; t < theta; ++t)
              v[static_cast<size_t>(t)] = a[static_cast<size_t>(t) * kLanes + static_cast<size_t>(l)];
            const double med = theta % 2 ? v[static_cast<size_t>(theta / 2)]
                                         : 0.5 * (static_cast<double>(v[static_cast<size_t>(theta / 2 - 1)]) +
                                                  v[static_cast<size_t>(theta / 2)]);
            // The beta values nearest the median, nearest first, ties to the
            // smaller value (the order a stable sort by |v - med| gives): the
            // sorted values merged outward from the median.
            auto dist = [&](int i) { return std::abs(v[static_cast<size_t>(i)] - med); };
            int left = static_cast<int>(std::lower_bound(v.begin(), v.end(), med) - v.begin()) - 1, right = left + 1;
            int taken = 0;
            double s = 0.0;
            while (taken < beta) {
              if (left >= 0 && (right >= theta || dist(left) <= dist(right))) {
                // Equal distances on the left are equal in the sort's order: lowest index first.
                int first = left;
                while (first > 0 && dist(first - 1) == dist(left)) --first;
                for (int i = first; i <= left && taken < beta; ++i, ++taken) s += v[static_cast<size_t>(i)];
                left = first - 1;
              } else {
                s += v[static_cast<size_t>(right++)];
                ++taken;
              }
            }
            acc_[c0 + l] = s / beta;
          }
        }
      });
      res.denominator = 1.0;
    }
  } else if (rule == "rfa") {
    // Smoothed Weiszfeld from the weighted mean: z <- sum_k b_k u_k / sum_k b_k,
    // b_k = w_k / max(nu, |z - u_k|).
    double wsum = 0.0;
    for (int i : m) wsum += reports[static_cast<size_t>(i)].weight;
    std::vector<double> b(static_cast<size_t>(n));
    for (int k = 0; k < n; ++k) b[static_cast<size_t>(k)] = reports[static_cast<size_t>(m[static_cast<size_t>(k)])].weight;
    for (int it = 0; it <= cfg_.iterations; ++it) {
      if (it > 0) {
        const Eigen::VectorXd z = acc_;
        ParallelFor(n, threads_, [&](int64_t k, int) {
          const double s = SquaredDistance(buffer_.col(m[static_cast<size_t>(k)]).data(), z);
          b[static_cast<size_t>(k)] = reports[static_cast<size_t>(m[static_cast<size_t>(k)])].weight /
                                      std::max(cfg_.nu, std::sqrt(s));
        });
        wsum = std::accumulate(b.begin(), b.end(), 0.0);
      }
      Coordinates([&](int64_t lo, int64_t hi) {
        auto seg = acc_.segment(lo, hi - lo);
        seg.setZero();
        for (int k = 0; k < n; ++k) seg += b[static_cast<size_t>(k)] * buffer_.col(m[static_cast<size_t>(k)]).segment(lo, hi - lo).cast<double>();
        seg /= wsum;
      });
    }
    res.denominator = 1.0;
  } else if (rule == "centered_clipping") {
    // v <- v + (1/n) sum_k clip_tau(u_k - v), from the last round's aggregate.
    Eigen::VectorXd v = center_;
    std::vector<double> scale(static_cast<size_t>(n));
    for (int it = 0; it < cfg_.iterations; ++it) {
      ParallelFor(n, threads_, [&](int64_t k, int) {
        const double r = std::sqrt(SquaredDistance(buffer_.col(m[static_cast<size_t>(k)]).data(), v));
        scale[static_cast<size_t>(k)] = r > cfg_.clip_norm ? cfg_.clip_norm / r : 1.0;
      });
      Coordinates([&](int64_t lo, int64_t hi) {
        Eigen::VectorXd step = Eigen::VectorXd::Zero(hi - lo);
        for (int k = 0; k < n; ++k) {
          step += scale[static_cast<size_t>(k)] *
                  (buffer_.col(m[static_cast<size_t>(k)]).segment(lo, hi - lo).cast<double>() - v.segment(lo, hi - lo));
        }
        v.segment(lo, hi - lo) += step / n;
      });
    }
    acc_ = v;
    center_ = v;
    res.denominator = 1.0;
  } else {
    throw InputError(fmt::format("robust.rule: unknown rule \"{}\"", rule));
  }

  // The record: attackers in the cohort and in the aggregate, and norms.
  int64_t bad_n = 0, bad_in = 0, good_n = 0;
  double bad_norm = 0.0, good_norm = 0.0;
  for (int k = 0; k < n; ++k) {
    const size_t i = static_cast<size_t>(m[static_cast<size_t>(k)]);
    if (bad[i]) {
      ++bad_n;
      bad_in += included[i];
      bad_norm += norms[static_cast<size_t>(k)];
    } else {
      ++good_n;
      good_norm += norms[static_cast<size_t>(k)];
    }
  }
  int64_t in = 0;
  for (char c : included) in += c;
  res.record = {{"rule", rule},
                {"updates", n},
                {"included", in},
                {"malicious", bad_n},
                {"malicious_included", bad_in},
                {"benign_norm", NullableNumber(good_n ? good_norm / good_n : NAN)},
                {"malicious_norm", NullableNumber(bad_n ? bad_norm / bad_n : NAN)}};
  if (direct_pairs >= 0) res.record["direct_distances"] = direct_pairs;
  if (plan_ && attack_.kind == "alie") res.record["alie_z"] = alie_z;
  // The rule's own time (the attack's replacement included), for the benchmark.
  res.record["wall_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.record_key = "robust";
  return res;
}

}  // namespace

std::unique_ptr<Aggregator> MakeRobustAggregator(const Config& cfg, int64_t upload_size, int threads,
                                                 const AttackPlan* plan) {
  return std::make_unique<RobustAggregator>(cfg, upload_size, threads, plan);
}

}  // namespace fedsim
