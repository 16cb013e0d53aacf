#include "secure/shamir.h"

#include <string>
#include <unordered_set>

#include "core/error.h"
#include "secure/secure_error.h"

namespace fedsim {

namespace {

constexpr uint64_t kP = kShamirPrime;

uint64_t Reduce(unsigned __int128 v) {
  // v < 2^122: fold the high bits twice (2^61 = 1 mod p).
  uint64_t lo = static_cast<uint64_t>(v & kP);
  uint64_t hi = static_cast<uint64_t>(v >> 61);
  uint64_t r = lo + hi;  // < 2^62
  r = (r & kP) + (r >> 61);
  return r >= kP ? r - kP : r;
}

uint64_t AddMod(uint64_t a, uint64_t b) {
  const uint64_t r = a + b;
  return r >= kP ? r - kP : r;
}

uint64_t SubMod(uint64_t a, uint64_t b) { return a >= b ? a - b : a + kP - b; }

uint64_t MulMod(uint64_t a, uint64_t b) { return Reduce(static_cast<unsigned __int128>(a) * b); }

uint64_t PowMod(uint64_t a, uint64_t e) {
  uint64_t r = 1;
  while (e > 0) {
    if (e & 1) r = MulMod(r, a);
    a = MulMod(a, a);
    e >>= 1;
  }
  return r;
}

uint64_t InvMod(uint64_t a) { return PowMod(a, kP - 2); }  // REQUIRES: a != 0

// A uniform field element from the stream (rejects the single value p).
uint64_t DrawElement(ChaChaStream& stream) {
  for (;;) {
    const uint64_t v = stream.NextU64() & kP;
    if (v < kP) return v;
  }
}

void CheckPoints(const std::vector<uint64_t>& xs, const char* what) {
  std::unordered_set<uint64_t> seen;
  seen.reserve(xs.size() * 2);
  for (uint64_t x : xs) {
    if (x == 0 || x >= kP)
      throw InputError(std::string("shamir: ") + what + " point " + std::to_string(x) + " is outside [1, 2^61 - 1)");
    if (!seen.insert(x).second)
      throw InputError(std::string("shamir: ") + what + " point " + std::to_string(x) + " appears twice");
  }
}

}  // namespace

ShamirElements ShamirEncodeSecret(const ShamirSecret& secret) {
  ShamirElements e{};
  for (int i = 0; i < kShamirSecretBytes; ++i)
    e[i / kShamirChunkBytes] |= static_cast<uint64_t>(secret[i]) << (8 * (i % kShamirChunkBytes));
  return e;
}

std::vector<ShamirShare> ShamirSplit(const ShamirSecret& secret, int threshold, const std::vector<uint64_t>& xs,
                                     const Seed32& seed) {
  if (threshold < 1 || static_cast<size_t>(threshold) > xs.size())
    throw InputError("shamir: threshold must be in [1, " + std::to_string(xs.size()) + "] (the number of shares), got " +
                     std::to_string(threshold));
  CheckPoints(xs, "share");
  const ShamirElements s = ShamirEncodeSecret(secret);
  // coeff[e][d] is the coefficient of x^(d+1) of element e's polynomial.
  ChaChaStream stream(seed);
  std::vector<std::array<uint64_t, kShamirElements>> coeff(threshold - 1);
  for (auto& c : coeff)
    for (auto& v : c) v = DrawElement(stream);
  std::vector<ShamirShare> shares(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    const uint64_t x = xs[i];
    ShamirShare& sh = shares[i];
    sh.x = x;
    // Horner: ((c_{t-1} x + c_{t-2}) x + ... + c_1) x + s.
    ShamirElements acc{};
    for (int d = threshold - 2; d >= 0; --d)
      for (int e = 0; e < kShamirElements; ++e) acc[e] = AddMod(MulMod(acc[e], x), coeff[d][e]);
    for (int e = 0; e < kShamirElements; ++e) sh.y[e] = AddMod(MulMod(acc[e], x), s[e]);
  }
  return shares;
}

ShamirElements ShamirInterpolate(const std::vector<ShamirShare>& shares) {
  if (shares.empty()) throw InputError("shamir: cannot interpolate from zero shares");
  std::vector<uint64_t> xs(shares.size());
  for (size_t i = 0; i < shares.size(); ++i) xs[i] = shares[i].x;
  CheckPoints(xs, "share");
  // lambda_i = prod_{j != i} x_j / (x_j - x_i); the denominators are inverted
  // together (Montgomery's trick) so the cost is O(t^2) multiplications.
  const size_t t = shares.size();
  std::vector<uint64_t> num(t, 1), den(t, 1);
  for (size_t i = 0; i < t; ++i) {
    for (size_t j = 0; j < t; ++j) {
      if (j == i) continue;
      num[i] = MulMod(num[i], xs[j]);
      den[i] = MulMod(den[i], SubMod(xs[j], xs[i]));
    }
  }
  std::vector<uint64_t> prefix(t + 1, 1);
  for (size_t i = 0; i < t; ++i) prefix[i + 1] = MulMod(prefix[i], den[i]);
  uint64_t inv = InvMod(prefix[t]);
  std::vector<uint64_t> inv_den(t);
  for (size_t i = t; i-- > 0;) {
    inv_den[i] = MulMod(inv, prefix[i]);
    inv = MulMod(inv, den[i]);
  }
  ShamirElements out{};
  for (size_t i = 0; i < t; ++i) {
    const uint64_t lambda = MulMod(num[i], inv_den[i]);
    for (int e = 0; e < kShamirElements; ++e) out[e] = AddMod(out[e], MulMod(lambda, shares[i].y[e]));
  }
  return out;
}

ShamirSecret ShamirReconstruct(const std::vector<ShamirShare>& shares, int threshold) {
  if (threshold < 1) throw InputError("shamir: threshold must be >= 1, got " + std::to_string(threshold));
  if (shares.size() < static_cast<size_t>(threshold))
    throw InputError("shamir: " + std::to_string(shares.size()) + " shares given, threshold is " +
                     std::to_string(threshold));
  const std::vector<ShamirShare> first(shares.begin(), shares.begin() + threshold);
  const ShamirElements e = ShamirInterpolate(first);
  ShamirSecret secret{};
  for (int k = 0; k < kShamirElements; ++k) {
    const int bytes = k + 1 < kShamirElements ? kShamirChunkBytes
                                              : kShamirSecretBytes - kShamirChunkBytes * (kShamirElements - 1);
    if (e[k] >> (8 * bytes) != 0)
      throw SecAggError("shamir: the shares do not interpolate to a valid secret (a share is corrupt or they "
                        "belong to different secrets)");
    for (int b = 0; b < bytes; ++b) secret[k * kShamirChunkBytes + b] = static_cast<uint8_t>(e[k] >> (8 * b));
  }
  return secret;
}

}  // namespace fedsim
