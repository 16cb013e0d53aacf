// The Krum family's selections (krum, multikrum, bulyan; docs/robustness.md)
// and the pairwise squared distances they are made from.
//
// UploadDistances holds ||u_a - u_b||^2 for the members of a round. With
// Method::kGram (what the robust aggregator uses) they come from the Gram
// matrix, d = G_aa + G_bb - 2 G_ab, G = U^T U summed in float64 on Eigen's
// GEMM: one pass of GEMM-rate work instead of n(n-1)/2 separate sums. The
// float uploads' products are exact in float64, so the only error is the
// summation's, which is bounded for every pair (error(a, b)); close updates
// lose digits to cancellation, so a selection never trusts a distance
// further than its bound: where the bound could change a ranking, the rows
// involved are recomputed as direct sums (MakeExact). The result is the
// selection the direct distances (Method::kDirect, one float64 sum in
// coordinate order per pair) give, for any thread count.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <string>
#include <vector>

namespace fedsim {

class UploadDistances {
 public:
  enum class Method { kGram, kDirect };

  // Distances between the columns `cols` of `uploads` (P x N floats),
  // indexed by position in `cols`. REQUIRES: `uploads` outlives this object
  // and is not changed while it is used; the columns are finite.
  UploadDistances(const Eigen::MatrixXf& uploads, std::vector<int> cols, int threads, Method method);

  int size() const { return static_cast<int>(cols_.size()); }
  double operator()(int a, int b) const { return d_(a, b); }
  // A bound on |(*this)(a, b) - the direct sum for (a, b)|; 0 where the
  // direct sum was taken.
  double error(int a, int b) const { return e_(a, b); }
  // Replaces a's distances by direct sums (and those of the members whose
  // upload is bitwise the same as a's, which share them).
  void MakeExact(int a);
  // Pairs whose distance was taken as a direct sum (the Gram path's
  // fallback; n(n - 1)/2 for Method::kDirect).
  int64_t direct_pairs() const { return direct_pairs_; }
  // For each member, the first member whose upload has the same bits (itself
  // if none).
  const std::vector<int>& groups() const { return group_; }

 private:
  double Direct(int a, int b) const;

  const Eigen::MatrixXf& uploads_;
  std::vector<int> cols_;
  int threads_;
  Eigen::MatrixXd d_, e_;
  std::vector<int> group_;  // the lowest position with the same bits (itself if none)
  std::vector<char> exact_;
  int64_t direct_pairs_ = 0;
};

// The positions (ascending) that `rule` keeps, from the distances of n
// members with f = `byzantine`: krum, the one with the smallest sum of
// squared distances to its n - f - 2 nearest others; multikrum, the
// `selected` best-scored (0: n - f); bulyan, n - 2f picked by Krum
// repeatedly, each pick removed, max(1, n' - f - 2) neighbours among the
// n' left. Ties go to the earlier position. May call d.MakeExact.
// REQUIRES: n >= f + 3 (bulyan: n >= 4f + 3).
std::vector<int> KrumSelect(UploadDistances& d, const std::string& rule, int byzantine, int selected);

}  // namespace fedsim
