#include "round/krum_selection.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/parallel.h"

namespace fedsim {
namespace {

// Coordinates per block of the Gram product (a block of 100 uploads in
// float64 is 3.3 MB), and the number of partial Gram matrices: block s is
// added to partial s % kSlots, the blocks of a partial in order, and the
// partials are summed in order, so the sums never depend on which thread
// took which block. Eigen's own threading is off (EIGEN_DONT_PARALLELIZE):
// each product runs on one thread with the same summation order every time.
constexpr int64_t kBlock = 4096;
constexpr int64_t kSlots = 8;
// The unit roundoff of float64.
constexpr double kU = 0x1p-53;

// gamma_k = k u / (1 - k u): the relative error bound of a sum of k
// non-negative terms in float64 (Higham, Accuracy and Stability of
// Numerical Algorithms, 2002, sec. 3.1), whatever the summation order.
double Gamma(double k) { return k * kU / (1.0 - k * kU); }

}  // namespace

double UploadDistances::Direct(int a, int b) const {
  const float* x = uploads_.col(cols_[static_cast<size_t>(a)]).data();
  const float* y = uploads_.col(cols_[static_cast<size_t>(b)]).data();
  double s = 0.0;
  for (Eigen::Index c = 0; c < uploads_.rows(); ++c) {
    const double t = static_cast<double>(x[c]) - static_cast<double>(y[c]);
    s += t * t;
  }
  return s;
}

UploadDistances::UploadDistances(const Eigen::MatrixXf& uploads, std::vector<int> cols, int threads, Method method)
    : uploads_(uploads), cols_(std::move(cols)), threads_(std::max(1, threads)) {
  const int n = size();
  d_ = Eigen::MatrixXd::Zero(n, n);
  e_ = Eigen::MatrixXd::Zero(n, n);
  group_.resize(static_cast<size_t>(n));
  std::iota(group_.begin(), group_.end(), 0);
  exact_.assign(static_cast<size_t>(n), 0);
  if (method == Method::kDirect) {
    std::vector<std::pair<int, int>> pairs;
    for (int a = 0; a < n; ++a) {
      for (int b = a + 1; b < n; ++b) pairs.emplace_back(a, b);
    }
    ParallelFor(static_cast<int64_t>(pairs.size()), threads_, [&](int64_t k, int) {
      const auto [a, b] = pairs[static_cast<size_t>(k)];
      d_(a, b) = d_(b, a) = Direct(a, b);
    });
    direct_pairs_ = static_cast<int64_t>(pairs.size());
    exact_.assign(static_cast<size_t>(n), 1);
    return;
  }

  // G = U^T U in float64, lower triangle (a symmetric rank update per block).
  const int64_t p = uploads.rows();
  const int64_t blocks = (p + kBlock - 1) / kBlock;
  const int64_t slots = std::max<int64_t>(1, std::min(kSlots, blocks));
  std::vector<Eigen::MatrixXd> partial(static_cast<size_t>(slots), Eigen::MatrixXd::Zero(n, n));
  std::vector<Eigen::MatrixXd> work(static_cast<size_t>(threads_));
  ParallelFor(slots, threads_, [&](int64_t s, int t) {
    Eigen::MatrixXd& x = work[static_cast<size_t>(t)];
    if (x.rows() != kBlock || x.cols() != n) x.resize(kBlock, n);
    for (int64_t blk = s; blk < blocks; blk += slots) {
      const int64_t lo = blk * kBlock, rows = std::min(kBlock, p - lo);
      for (int k = 0; k < n; ++k) {
        x.col(k).head(rows) = uploads.col(cols_[static_cast<size_t>(k)]).segment(lo, rows).cast<double>();
      }
      partial[static_cast<size_t>(s)].selfadjointView<Eigen::Lower>().rankUpdate(x.topRows(rows).transpose());
    }
  });
  Eigen::MatrixXd g = partial[0];
  for (size_t s = 1; s < partial.size(); ++s) g += partial[s];

  // d = G_aa + G_bb - 2 G_ab, clamped at 0 (the true distance is), with a
  // bound on its distance from the direct sum. The products of floats are
  // exact in float64, so each G entry is off its true value by at most
  // gamma_p sum_c |u_ac u_bc| <= gamma_p |u_a| |u_b| (Cauchy-Schwarz): the
  // combination by (2 gamma_p + 6u)(G_aa + G_bb), with 1% to spare for
  // G_aa and G_bb being computed values themselves. The direct sum is off
  // the true distance by at most gamma_{p+2} of it. Both bounds are for the
  // worst case; the typical error is about sqrt(p) times smaller.
  const double gp = Gamma(static_cast<double>(p)), gd = Gamma(static_cast<double>(p) + 2.0);
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < a; ++b) {
      const double norms = g(a, a) + g(b, b);
      const double x = std::max(0.0, norms - 2.0 * g(a, b));
      const double gram_err = 1.01 * (2.0 * gp + 6.0 * kU) * norms;
      d_(a, b) = d_(b, a) = x;
      e_(a, b) = e_(b, a) = gram_err + gd * (x + gram_err);
    }
  }
  // Members whose uploads are the same bits (ALIE and IPM attackers send one
  // vector between them) are at distance 0, exactly as the direct sum says,
  // and share every other distance: candidates are the pairs whose distance
  // could be 0, checked bit for bit.
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < a; ++b) {
      if (group_[static_cast<size_t>(b)] != b || d_(a, b) > e_(a, b)) continue;
      const float* x = uploads.col(cols_[static_cast<size_t>(a)]).data();
      const float* y = uploads.col(cols_[static_cast<size_t>(b)]).data();
      if (std::memcmp(x, y, static_cast<size_t>(p) * sizeof(float)) == 0) {
        group_[static_cast<size_t>(a)] = b;
        break;
      }
    }
  }
  const Eigen::MatrixXd d0 = d_, e0 = e_;
  for (int a = 0; a < n; ++a) {
    for (int b = 0; b < n; ++b) {
      const int ra = group_[static_cast<size_t>(a)], rb = group_[static_cast<size_t>(b)];
      d_(a, b) = ra == rb ? 0.0 : d0(ra, rb);
      e_(a, b) = ra == rb ? 0.0 : e0(ra, rb);
    }
  }
}

void UploadDistances::MakeExact(int a) {
  const int r = group_[static_cast<size_t>(a)];
  if (exact_[static_cast<size_t>(r)]) return;
  const int n = size();
  std::vector<int> todo;  // the other groups' first members whose distance to r is not direct yet
  for (int b = 0; b < n; ++b) {
    if (group_[static_cast<size_t>(b)] == b && b != r && e_(r, b) > 0.0) todo.push_back(b);
  }
  std::vector<double> v(todo.size());
  ParallelFor(static_cast<int64_t>(todo.size()), threads_,
              [&](int64_t k, int) { v[static_cast<size_t>(k)] = Direct(r, todo[static_cast<size_t>(k)]); });
  direct_pairs_ += static_cast<int64_t>(todo.size());
  for (size_t k = 0; k < todo.size(); ++k) {
    for (int i = 0; i < n; ++i) {
      if (group_[static_cast<size_t>(i)] != r) continue;
      for (int j = 0; j < n; ++j) {
        if (group_[static_cast<size_t>(j)] != todo[k]) continue;
        d_(i, j) = d_(j, i) = v[k];
        e_(i, j) = e_(j, i) = 0.0;
      }
    }
  }
  for (int i = 0; i < n; ++i) {
    if (group_[static_cast<size_t>(i)] == r) exact_[static_cast<size_t>(i)] = 1;
  }
}

namespace {

// The positions of `set` holding its `m` best Krum scores (best first; ties
// to the earlier position), the same as the direct distances give. Scores
// are computed with a bound from the distances' bounds; wherever a member
// of the top m and one outside could swap within their bounds, both are
// made exact and the scores recomputed. Two members of one bit-identical
// group have the same score in both methods, so their order is certain.
std::vector<int> TopByKrumScore(UploadDistances& d, const std::vector<int>& set, int f, int m,
                                const std::vector<int>& group) {
  const int n = static_cast<int>(set.size());
  const int k = std::min(std::max(1, n - f - 2), n - 1);
  std::vector<double> score(static_cast<size_t>(n)), bound(static_cast<size_t>(n)), row;
  std::vector<int> order(static_cast<size_t>(n));
  for (;;) {
    for (int a = 0; a < n; ++a) {
      row.clear();
      double worst = 0.0;
      for (int b = 0; b < n; ++b) {
        if (b == a) continue;
        row.push_back(d(set[static_cast<size_t>(a)], set[static_cast<size_t>(b)]));
        worst = std::max(worst, d.error(set[static_cast<size_t>(a)], set[static_cast<size_t>(b)]));
      }
      std::partial_sort(row.begin(), row.begin() + k, row.end());
      const double s = std::accumulate(row.begin(), row.begin() + k, 0.0);
      score[static_cast<size_t>(a)] = s;
      // The k smallest of values each within `worst` of the direct ones are
      // within k * worst of theirs; both sums round by gamma_k at most.
      bound[static_cast<size_t>(a)] = worst == 0.0 ? 0.0 : k * worst + 2.0 * Gamma(k) * (s + k * worst);
    }
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return score[static_cast<size_t>(a)] < score[static_cast<size_t>(b)]; });
    std::vector<int> unsure;
    for (int i = 0; i < m; ++i) {
      const int a = order[static_cast<size_t>(i)];
      for (int j = m; j < n; ++j) {
        const int b = order[static_cast<size_t>(j)];
        const double ba = bound[static_cast<size_t>(a)], bb = bound[static_cast<size_t>(b)];
        if (ba + bb == 0.0) continue;
        if (group[static_cast<size_t>(set[static_cast<size_t>(a)])] ==
            group[static_cast<size_t>(set[static_cast<size_t>(b)])])
          continue;
        if (score[static_cast<size_t>(b)] - score[static_cast<size_t>(a)] > ba + bb) continue;
        if (ba > 0.0) unsure.push_back(a);
        if (bb > 0.0) unsure.push_back(b);
      }
    }
    if (unsure.empty()) break;
    for (int a : unsure) d.MakeExact(set[static_cast<size_t>(a)]);
  }
  order.resize(static_cast<size_t>(m));
  return order;
}

}  // namespace

std::vector<int> KrumSelect(UploadDistances& d, const std::string& rule, int byzantine, int selected) {
  const int n = d.size();
  std::vector<int> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  const std::vector<int>& group = d.groups();
  std::vector<int> chosen;
  if (rule == "krum") {
    chosen = TopByKrumScore(d, all, byzantine, 1, group);
  } else if (rule == "multikrum") {
    chosen = TopByKrumScore(d, all, byzantine, selected > 0 ? std::min(selected, n) : n - byzantine, group);
  } else {  // bulyan
    std::vector<int> left = all;
    for (int t = 0; t < n - 2 * byzantine; ++t) {
      const int best = TopByKrumScore(d, left, byzantine, 1, group)[0];
      chosen.push_back(left[static_cast<size_t>(best)]);
      left.erase(left.begin() + best);
    }
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace fedsim
