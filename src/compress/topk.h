// Top-k selection and the size of a top-k encoding, shared by the topk
// compressor (compress/sparse.cpp) and FedSparse (fl/fedsparse.cpp), so the
// two always keep the same entries and count the same bytes.
#pragma once

#include <cstdint>
#include <vector>

namespace fedsim {

// k = max(1, ceil(density * n)), at most n (0 when n = 0): the number of
// entries a density keeps. REQUIRES: 0 < density <= 1.
int64_t TopKCount(double density, int64_t n);

// Puts the indices of the k entries of v[0..n) with the largest |v| into
// index[0..k), in no particular order; index has n entries afterwards (the
// rest are the other indices). Ties in |v| go to the lower index, so the kept
// set is a function of v alone. A NaN ranks above every number (it is kept
// first, so a diverged update shows in what is sent instead of hiding).
// REQUIRES: 0 <= k <= n < 2^31. `index` is caller-owned scratch, reused.
void SelectTopK(const float* v, int64_t n, int64_t k, std::vector<int>& index);

// Bytes of the positions of k kept entries out of n: k 32-bit indices or an
// n-bit bitmap, whichever is smaller: min(4k, ceil(n / 8)).
int64_t SparsePositionBytes(int64_t k, int64_t n);

// Wire size of a top-k encoding: positions plus k float32 values.
inline int64_t TopKEncodedBytes(int64_t k, int64_t n) { return SparsePositionBytes(k, n) + 4 * k; }

}  // namespace fedsim
