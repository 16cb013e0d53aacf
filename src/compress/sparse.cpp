// The sparse codecs: topk (largest magnitudes) and randk (a random subset),
// and the top-k selection FedSparse shares.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "compress/codecs.h"
#include "compress/compressor.h"
#include "compress/topk.h"
#include "core/error.h"

namespace fedsim {

int64_t TopKCount(double density, int64_t n) {
  const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(density * static_cast<double>(n))));
  return std::min(k, n);
}

void SelectTopK(const float* v, int64_t n, int64_t k, std::vector<int>& index) {
  index.resize(static_cast<size_t>(n));
  std::iota(index.begin(), index.end(), 0);
  // Rank by |v| descending, then by index ascending. For numbers this is
  // exactly fa > fb || (fa == fb && a < b). A NaN compares false with
  // everything, which would break nth_element's strict weak order; it is
  // ranked above every number instead (NaNs among themselves by index).
  auto larger = [v](int a, int b) {
    const float fa = std::fabs(v[a]), fb = std::fabs(v[b]);
    if (fa > fb) return true;
    if (fa < fb) return false;
    if (fa == fb) return a < b;
    const bool na = std::isnan(fa), nb = std::isnan(fb);
    return na != nb ? na : a < b;
  };
  if (k < n) std::nth_element(index.begin(), index.begin() + k, index.end(), larger);
}

int64_t SparsePositionBytes(int64_t k, int64_t n) { return std::min<int64_t>(4 * k, (n + 7) / 8); }

namespace compress_internal {
namespace {

void CheckIndexRange(int64_t n, const char* codec) {
  if (n > INT32_MAX) throw RunError(fmt::format("{}: {} values are more than 32-bit indices can address", codec, n));
}

// Positions first, then the k kept values (float32) in ascending position
// order. Positions: k uint32 indices, ascending, when 4k < ceil(n / 8);
// otherwise an n-bit bitmap (bit i set: entry i kept; LSB first).
class TopKCompressor : public Compressor {
 public:
  explicit TopKCompressor(double density) : density_(density) {}

  void Encode(const float* v, int64_t n, Rng&, std::vector<uint8_t>& out, CompressScratch& s) const override {
    CheckIndexRange(n, "topk");
    const int64_t k = TopKCount(density_, n);
    SelectTopK(v, n, k, s.index);
    std::sort(s.index.begin(), s.index.begin() + k);
    out.assign(static_cast<size_t>(TopKEncodedBytes(k, n)), 0);
    uint8_t* p = out.data();
    if (UseIndices(k, n)) {
      for (int64_t j = 0; j < k; ++j, p += 4) PutU32(p, static_cast<uint32_t>(s.index[static_cast<size_t>(j)]));
    } else {
      for (int64_t j = 0; j < k; ++j) {
        const int i = s.index[static_cast<size_t>(j)];
        p[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
      }
      p += CeilDiv(n, 8);
    }
    for (int64_t j = 0; j < k; ++j, p += 4) PutF32(p, v[s.index[static_cast<size_t>(j)]]);
  }

  void Decode(const std::vector<uint8_t>& in, int64_t n, float* v) const override {
    const int64_t k = TopKCount(density_, n);
    CheckSize(in, TopKEncodedBytes(k, n), "topk", n);
    std::fill(v, v + n, 0.0f);
    const uint8_t* pos = in.data();
    const uint8_t* val = in.data() + SparsePositionBytes(k, n);
    if (UseIndices(k, n)) {
      int64_t last = -1;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t i = GetU32(pos + 4 * j);
        if (i <= last || i >= n) throw RunError(fmt::format("topk: index {} out of order or out of range", i));
        v[i] = GetF32(val + 4 * j);
        last = i;
      }
    } else {
      int64_t j = 0;
      for (int64_t i = 0; i < CeilDiv(n, 8) * 8; ++i) {
        if (!((pos[i / 8] >> (i % 8)) & 1u)) continue;
        if (i >= n || j >= k) throw RunError(fmt::format("topk: the bitmap marks more than {} of {} entries", k, n));
        v[i] = GetF32(val + 4 * j++);
      }
      if (j != k) throw RunError(fmt::format("topk: the bitmap marks {} entries, expected {}", j, k));
    }
  }

  int64_t PlannedBytes(int64_t n) const override { return TopKEncodedBytes(TopKCount(density_, n), n); }
  std::string Describe() const override { return fmt::format("topk(density={})", density_); }

 private:
  static bool UseIndices(int64_t k, int64_t n) { return 4 * k < CeilDiv(n, 8); }
  double density_;
};

// Marks a uniformly random k-subset of [0, n) in `mask` (bit i of word i / 64),
// drawn from Rng(seed) by Floyd's algorithm: one UniformInt per kept entry.
void RandomSubset(uint64_t seed, int64_t n, int64_t k, std::vector<uint64_t>& mask) {
  mask.assign(static_cast<size_t>(CeilDiv(n, 64)), 0);
  Rng rng(seed);
  for (int64_t j = n - k; j < n; ++j) {
    int64_t t = static_cast<int64_t>(rng.UniformInt(static_cast<uint64_t>(j) + 1));
    if ((mask[static_cast<size_t>(t / 64)] >> (t % 64)) & 1u) t = j;
    mask[static_cast<size_t>(t / 64)] |= uint64_t{1} << (t % 64);
  }
}

// Calls f(i, j) for the j-th set bit i of mask, in ascending i.
template <class F>
void ForEachSet(const std::vector<uint64_t>& mask, F f) {
  int64_t j = 0;
  for (size_t w = 0; w < mask.size(); ++w) {
    for (uint64_t bits = mask[w]; bits != 0; bits &= bits - 1) {
      f(static_cast<int64_t>(w) * 64 + __builtin_ctzll(bits), j++);
    }
  }
}

// A uint64 seed, then the k kept values (float32) in ascending position
// order. The positions are not sent: Encode draws the seed from the client's
// stream and both sides rebuild the subset from Rng(seed). Values are sent
// unscaled, so the decoded vector is a biased estimate (E = k/n * v); randk
// is meant to be used with error feedback, which resends what it drops.
class RandKCompressor : public Compressor {
 public:
  explicit RandKCompressor(double density) : density_(density) {}

  void Encode(const float* v, int64_t n, Rng& rng, std::vector<uint8_t>& out, CompressScratch& s) const override {
    CheckIndexRange(n, "randk");
    const int64_t k = TopKCount(density_, n);
    const uint64_t seed = rng.NextU64();
    RandomSubset(seed, n, k, s.mask);
    out.assign(static_cast<size_t>(8 + 4 * k), 0);
    PutU64(out.data(), seed);
    uint8_t* val = out.data() + 8;
    ForEachSet(s.mask, [&](int64_t i, int64_t j) { PutF32(val + 4 * j, v[i]); });
  }

  void Decode(const std::vector<uint8_t>& in, int64_t n, float* v) const override {
    CheckIndexRange(n, "randk");
    const int64_t k = TopKCount(density_, n);
    CheckSize(in, 8 + 4 * k, "randk", n);
    std::vector<uint64_t> mask;
    RandomSubset(GetU64(in.data()), n, k, mask);
    std::fill(v, v + n, 0.0f);
    const uint8_t* val = in.data() + 8;
    ForEachSet(mask, [&](int64_t i, int64_t j) { v[i] = GetF32(val + 4 * j); });
  }

  int64_t PlannedBytes(int64_t n) const override { return 8 + 4 * TopKCount(density_, n); }
  std::string Describe() const override { return fmt::format("randk(density={})", density_); }

 private:
  double density_;
};

}  // namespace

std::unique_ptr<Compressor> MakeTopK(double density) { return std::make_unique<TopKCompressor>(density); }
std::unique_ptr<Compressor> MakeRandK(double density) { return std::make_unique<RandKCompressor>(density); }

}  // namespace compress_internal
}  // namespace fedsim
