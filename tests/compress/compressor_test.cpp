// The upload compressors (src/compress/): wire sizes, what each codec keeps,
// its error bound, determinism and what NaN/Inf become, with the expected
// numbers worked out by hand in the comments.
#include <catch2/catch.hpp>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "compress/compressor.h"
#include "compress/topk.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "fl/algorithms.h"

using fedsim::CompressorSettings;
using fedsim::CompressScratch;
using fedsim::CreateCompressor;
using fedsim::Rng;

namespace {

CompressorSettings Settings(const std::string& kind, double density = 0.01, int bits = 8, int bucket = 512) {
  CompressorSettings s;
  s.kind = kind;
  s.density = density;
  s.bits = bits;
  s.bucket = bucket;
  return s;
}

std::vector<uint8_t> Encode(const fedsim::Compressor& c, const std::vector<float>& v, uint64_t seed = 1) {
  Rng rng(seed);
  CompressScratch scratch;
  std::vector<uint8_t> out{1, 2, 3};  // Encode clears what was there
  c.Encode(v.data(), static_cast<int64_t>(v.size()), rng, out, scratch);
  return out;
}

std::vector<float> RoundTrip(const fedsim::Compressor& c, const std::vector<float>& v, uint64_t seed = 1) {
  std::vector<float> back(v.size(), -7.0f);
  c.Decode(Encode(c, v, seed), static_cast<int64_t>(v.size()), back.data());
  return back;
}

float WireF32(const std::vector<uint8_t>& b, size_t at) {
  const uint32_t x = b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (static_cast<uint32_t>(b[at + 3]) << 24);
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint32_t Bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return x;
}

std::vector<float> Ramp(int64_t n) {  // distinct, nonzero, mixed signs
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = (i % 3 == 0 ? -1.0f : 1.0f) * (0.25f + 0.01f * i);
  return v;
}

}  // namespace

TEST_CASE("compress: exact wire sizes for every codec", "[compress]") {
  struct Case {
    CompressorSettings s;
    int64_t n, bytes;
  };
  const std::vector<Case> cases = {
      {Settings("none"), 0, 0},
      {Settings("none"), 5, 20},
      {Settings("none"), 1000, 4000},
      {Settings("float16"), 5, 10},
      {Settings("float16"), 1001, 2002},
      // int8: n bytes + 4 per bucket.
      {Settings("int8"), 5, 5 + 4},
      {Settings("int8"), 1000, 1000 + 2 * 4},
      {Settings("int8"), 1025, 1025 + 3 * 4},  // 512 + 512 + 1
      {Settings("int8", 0.01, 8, 3), 7, 7 + 3 * 4},
      // qsgd: ceil(n bits / 8) + 4 per bucket.
      {Settings("qsgd"), 5, 5 + 4},
      {Settings("qsgd"), 1000, 1000 + 2 * 4},
      {Settings("qsgd", 0.01, 4), 5, 3 + 4},           // 20 bits -> 3 bytes
      {Settings("qsgd", 0.01, 4), 1025, 513 + 3 * 4},  // 4100 bits -> 513 bytes
      {Settings("qsgd", 0.01, 3, 3), 7, 3 + 3 * 4},    // 21 bits -> 3 bytes; buckets 3, 3, 1
      {Settings("qsgd", 0.01, 2, 512), 1, 1 + 4},      // 2 bits -> 1 byte
      {Settings("qsgd", 0.01, 16, 100), 250, 500 + 3 * 4},
      // topk: min(4k, ceil(n / 8)) + 4k with k = max(1, ceil(density n)).
      {Settings("topk"), 5, 1 + 4},              // k = 1; bitmap 1 byte < 4
      {Settings("topk"), 1000, 40 + 40},         // k = 10; indices 40 < bitmap 125
      {Settings("topk"), 3200, 128 + 128},       // k = 32; 128 < 400
      {Settings("topk"), 100000, 4000 + 4000},   // k = 1000; 4000 < 12500
      {Settings("topk", 0.1), 1000, 125 + 400},  // k = 100; bitmap 125 < 400
      {Settings("topk", 0.5), 7, 1 + 16},        // k = ceil(3.5) = 4
      {Settings("topk", 1.0), 9, 2 + 36},        // k = n = 9; bitmap 2 bytes
      {Settings("topk"), 0, 0},
      // randk: 8-byte seed + 4k.
      {Settings("randk"), 5, 8 + 4},
      {Settings("randk"), 1000, 8 + 40},
      {Settings("randk", 0.5), 7, 8 + 16},
  };
  for (const Case& c : cases) {
    auto comp = CreateCompressor(c.s);
    INFO(comp->Describe() << " n=" << c.n);
    CHECK(comp->PlannedBytes(c.n) == c.bytes);
    CHECK(static_cast<int64_t>(Encode(*comp, Ramp(c.n)).size()) == c.bytes);
  }
}

TEST_CASE("compress: topk keeps the largest magnitudes, ties to the lower index", "[compress]") {
  // |v| = 1, 3, 3, 0.5, 3, 2, 0, 3: four entries tie at 3 (indices 1, 2, 4, 7);
  // k = 0.375 * 8 = 3 keeps 1, 2 and 4.
  const std::vector<float> v = {1.0f, -3.0f, 3.0f, 0.5f, -3.0f, 2.0f, 0.0f, 3.0f};
  auto topk = CreateCompressor(Settings("topk", 0.375));
  const std::vector<uint8_t> wire = Encode(*topk, v);
  // n = 8: a 1-byte bitmap beats 3 indices; bits 1, 2, 4 -> 0b00010110.
  REQUIRE(wire.size() == 1 + 3 * 4);
  CHECK(wire[0] == 0x16);
  CHECK(WireF32(wire, 1) == -3.0f);
  CHECK(WireF32(wire, 5) == 3.0f);
  CHECK(WireF32(wire, 9) == -3.0f);
  CHECK(RoundTrip(*topk, v) == std::vector<float>{0, -3.0f, 3.0f, 0, -3.0f, 0, 0, 0});

  // Index form: n = 100, k = 2; 8 index bytes < a 13-byte bitmap. Three
  // entries tie at |5|; indices 10 and 40 are kept, sent ascending.
  std::vector<float> w(100, 0.0f);
  w[70] = 5.0f;
  w[10] = 5.0f;
  w[40] = -5.0f;
  w[3] = 4.0f;
  auto top2 = CreateCompressor(Settings("topk", 0.02));
  const std::vector<uint8_t> b = Encode(*top2, w);
  REQUIRE(b.size() == 8 + 8);
  CHECK(std::vector<uint8_t>(b.begin(), b.begin() + 8) == std::vector<uint8_t>{10, 0, 0, 0, 40, 0, 0, 0});
  CHECK(WireF32(b, 8) == 5.0f);
  CHECK(WireF32(b, 12) == -5.0f);
  std::vector<float> expect(100, 0.0f);
  expect[10] = 5.0f;
  expect[40] = -5.0f;
  CHECK(RoundTrip(*top2, w) == expect);

  // k is at least 1 and at most n.
  CHECK(fedsim::TopKCount(1e-9, 10) == 1);
  CHECK(fedsim::TopKCount(1.0, 10) == 10);
  CHECK(fedsim::TopKCount(0.5, 0) == 0);
}

TEST_CASE("compress: SelectTopK ranks a NaN above every number and stays a total order", "[compress]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> v = {1.0f, nan, -inf, 2.0f, nan, 0.0f};
  std::vector<int> index;
  fedsim::SelectTopK(v.data(), 6, 3, index);
  std::vector<int> kept(index.begin(), index.begin() + 3);
  std::sort(kept.begin(), kept.end());
  CHECK(kept == std::vector<int>{1, 2, 4});  // the two NaNs, then -Inf
  // topk sends them as they are.
  auto topk = CreateCompressor(Settings("topk", 0.5));
  const std::vector<float> back = RoundTrip(*topk, v);
  CHECK(std::isnan(back[1]));
  CHECK(std::isnan(back[4]));
  CHECK(back[2] == -inf);
  CHECK(back[0] == 0.0f);
  CHECK(back[3] == 0.0f);
}

TEST_CASE("compress: topk's size and selection are FedSparse's", "[compress][fedsparse]") {
  for (const auto& [k, n] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {1, 5}, {3, 8}, {10, 1000}, {100, 1000}, {1992, 199210}, {31, 1000}, {32, 1000}, {0, 7}}) {
    INFO("k=" << k << " n=" << n);
    CHECK(fedsim::FedSparse::EncodedBytes(k, n, false) == fedsim::TopKEncodedBytes(k, n));
  }
  for (const double density : {0.001, 0.01, 0.1, 0.37, 1.0}) {
    for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{199210}}) {
      auto topk = CreateCompressor(Settings("topk", density));
      const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(density * n)));
      INFO("density=" << density << " n=" << n);
      CHECK(topk->PlannedBytes(n) == fedsim::FedSparse::EncodedBytes(k, n, false));
    }
  }
  // The same entries as FedSparse's error-feedback step from a zero residual.
  const std::vector<float> v = Ramp(500);
  Eigen::VectorXf residual = Eigen::VectorXf::Zero(500), sent(500);
  std::vector<int> index;
  const int64_t bytes = fedsim::FedSparse::SparsifyWithFeedback(residual, v.data(), 25, false, sent.data(), index);
  auto topk = CreateCompressor(Settings("topk", 0.05));  // k = 25
  const std::vector<float> back = RoundTrip(*topk, v);
  CHECK(std::vector<float>(sent.data(), sent.data() + 500) == back);
  CHECK(bytes == topk->PlannedBytes(500));
}

TEST_CASE("compress: randk keeps k distinct coordinates with their values, from the seed alone", "[compress]") {
  const int64_t n = 1000;
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i + 1);  // nonzero, identifies its index
  auto randk = CreateCompressor(Settings("randk", 0.05));            // k = 50
  const std::vector<float> back = RoundTrip(*randk, v, 7);
  int kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (back[i] != 0.0f) {
      ++kept;
      CHECK(back[i] == v[i]);  // unscaled
    }
  }
  CHECK(kept == 50);
  // The same stream gives the same bytes; another stream another subset.
  CHECK(Encode(*randk, v, 7) == Encode(*randk, v, 7));
  CHECK(RoundTrip(*randk, v, 8) != back);
  // The wire starts with the seed, the stream's first NextU64; Encode draws
  // nothing else from the stream.
  Rng a(7), b(7);
  CompressScratch s;
  std::vector<uint8_t> wire;
  randk->Encode(v.data(), n, a, wire, s);
  uint64_t seed = 0;
  for (int i = 0; i < 8; ++i) seed |= static_cast<uint64_t>(wire[i]) << (8 * i);
  CHECK(seed == b.NextU64());
  CHECK(a.NextU64() == b.NextU64());

  // Every coordinate is kept with probability k / n: n = 10, k = 3, 4000
  // draws; each count is Binomial(4000, 0.3): mean 1200, sd 29; allow 5 sd.
  auto r3 = CreateCompressor(Settings("randk", 0.3));
  const std::vector<float> ones(10, 1.0f);
  std::vector<int> count(10, 0);
  Rng rng(11);
  std::vector<float> dec(10);
  for (int t = 0; t < 4000; ++t) {
    r3->Encode(ones.data(), 10, rng, wire, s);
    r3->Decode(wire, 10, dec.data());
    int nnz = 0;
    for (int i = 0; i < 10; ++i) {
      count[i] += dec[i] != 0.0f;
      nnz += dec[i] != 0.0f;
    }
    REQUIRE(nnz == 3);
  }
  for (int i = 0; i < 10; ++i) CHECK(std::abs(count[i] - 1200) <= 145);
}

TEST_CASE("compress: qsgd by hand", "[compress]") {
  // bits = 5: s = 15. v = (3, -4): norm 5, a = (9, 12) are whole levels, so
  // the result is exact whatever the draws.
  auto q5 = CreateCompressor(Settings("qsgd", 0.01, 5, 512));
  CHECK(q5->Describe() == "qsgd(bits=5, levels=15, bucket=512)");
  const std::vector<float> v = {3.0f, -4.0f};
  // Wire: norm 5.0f = 0x40a00000, then codes 9 = 0b01001 and
  // 1 << 4 | 12 = 0b11100 = 28 in bits 0-4 and 5-9:
  // byte 0 = 9 | (28 & 7) << 5 = 0x89, byte 1 = 28 >> 3 = 3.
  CHECK(Encode(*q5, v) == std::vector<uint8_t>{0x00, 0x00, 0xa0, 0x40, 0x89, 0x03});
  CHECK(RoundTrip(*q5, v) == v);
  // bits = 2: s = 1, each coordinate becomes 0 or +-norm.
  auto q2 = CreateCompressor(Settings("qsgd", 0.01, 2, 4));
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    const std::vector<float> back = RoundTrip(*q2, {3.0f, -4.0f, 0.0f, 0.0f}, seed);
    CHECK((back[0] == 0.0f || back[0] == 5.0f));
    CHECK((back[1] == 0.0f || back[1] == -5.0f));
    CHECK(back[2] == 0.0f);
    CHECK(back[3] == 0.0f);
  }
  // The zero vector: norms 0, every code 0, decodes to +0.
  auto q8 = CreateCompressor(Settings("qsgd", 0.01, 8, 3));
  const std::vector<uint8_t> zero = Encode(*q8, std::vector<float>(7, 0.0f));
  CHECK(zero == std::vector<uint8_t>(3 * 4 + 7, 0));
  for (float x : RoundTrip(*q8, std::vector<float>(7, 0.0f))) CHECK(Bits(x) == 0u);
}

TEST_CASE("compress: qsgd is unbiased and lands on multiples of norm / s", "[compress]") {
  // n = 10 in buckets of 4, 4, 2; bits = 3: s = 3.
  const std::vector<float> v = {0.3f, -1.2f, 0.7f, 2.5f, -0.05f, 0.9f, -0.4f, 0.0f, 1.1f, -0.6f};
  const int s = 3, bucket = 4, n = 10, trials = 20000;
  auto q = CreateCompressor(Settings("qsgd", 0.01, 3, bucket));
  std::vector<double> norm(3, 0.0);
  for (int i = 0; i < n; ++i) norm[i / bucket] += static_cast<double>(v[i]) * v[i];
  for (double& x : norm) x = std::sqrt(x);
  std::vector<double> sum(n, 0.0);
  Rng rng(2024);
  CompressScratch scratch;
  std::vector<uint8_t> wire;
  std::vector<float> dec(n);
  for (int t = 0; t < trials; ++t) {
    q->Encode(v.data(), n, rng, wire, scratch);
    q->Decode(wire, n, dec.data());
    for (int i = 0; i < n; ++i) {
      const double step = WireF32(wire, 4 * static_cast<size_t>(i / bucket)) / s;  // the norm as sent, / s
      const double level = dec[i] / step;
      if (t < 200) {  // every value is a whole number of steps in [-s, s], with v's sign
        REQUIRE(std::abs(level - std::round(level)) < 1e-5);
        REQUIRE(std::abs(level) <= s + 1e-5);
        REQUIRE(level * v[i] >= 0.0);
      }
      sum[i] += dec[i];
    }
  }
  // Each decoded coordinate takes two adjacent levels, so its variance is at
  // most step^2 / 4; the mean of `trials` draws is within 5 sd of v_i.
  for (int i = 0; i < n; ++i) {
    const double step = norm[i / bucket] / s;
    const double tol = 5.0 * step / 2.0 / std::sqrt(static_cast<double>(trials));
    INFO("i=" << i << " mean " << sum[i] / trials << " v " << v[i] << " tol " << tol);
    CHECK(std::abs(sum[i] / trials - v[i]) <= tol);
  }
  // qsgd draws exactly one Uniform per coordinate.
  Rng a(5), b(5);
  q->Encode(v.data(), n, a, wire, scratch);
  for (int i = 0; i < n; ++i) b.Uniform();
  CHECK(a.NextU64() == b.NextU64());
}

TEST_CASE("compress: float16 within 2^-11 relative, saturating at 65504", "[compress]") {
  auto h = CreateCompressor(Settings("float16"));
  std::vector<float> v;
  for (int e = -14; e <= 15; ++e) {
    for (float m : {1.0f, 1.1f, 1.337f, 1.5f, 1.999f}) v.push_back((e % 2 ? -1.0f : 1.0f) * std::ldexp(m, e));
  }
  const std::vector<float> back = RoundTrip(*h, v);
  for (size_t i = 0; i < v.size(); ++i) {
    INFO(v[i]);
    CHECK(std::abs(back[i] - v[i]) <= std::ldexp(std::abs(v[i]), -11));
  }
  // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: to even, 1.
  CHECK(RoundTrip(*h, {1.0f + std::ldexp(1.0f, -11), 1e6f, -1e6f}) == std::vector<float>{1.0f, 65504.0f, -65504.0f});
  CHECK(Encode(*h, {1.0f, -2.0f}) == std::vector<uint8_t>{0x00, 0x3c, 0x00, 0xc0});
}

TEST_CASE("compress: int8 by hand and within scale / 2", "[compress]") {
  // Bucket of 4: max |v| = 127 -> scale 1; codes 127, RNE(-63.5) = -64,
  // RNE(0.5) = 0, RNE(1.5) = 2.
  auto q4 = CreateCompressor(Settings("int8", 0.01, 8, 4));
  const std::vector<float> v = {127.0f, -63.5f, 0.5f, 1.5f};
  CHECK(Encode(*q4, v) == std::vector<uint8_t>{0x00, 0x00, 0x80, 0x3f, 0x7f, 0xc0, 0x00, 0x02});
  CHECK(RoundTrip(*q4, v) == std::vector<float>{127.0f, -64.0f, 0.0f, 2.0f});

  // A ramp over 3 buckets of 100 (the last one short), magnitudes from 1e-3 to 1e2.
  auto q = CreateCompressor(Settings("int8", 0.01, 8, 100));
  std::vector<float> w(250);
  for (int i = 0; i < 250; ++i) w[i] = std::sin(0.37f * i) * std::pow(10.0f, -3.0f + 5.0f * i / 250.0f);
  const std::vector<uint8_t> wire = Encode(*q, w);
  const std::vector<float> back = RoundTrip(*q, w);
  for (int i = 0; i < 250; ++i) {
    float max_abs = 0.0f;
    for (int j = i / 100 * 100; j < std::min(250, i / 100 * 100 + 100); ++j)
      max_abs = std::max(max_abs, std::abs(w[j]));
    const float scale = WireF32(wire, 4 * static_cast<size_t>(i / 100));
    CHECK(scale == static_cast<float>(max_abs / 127.0));
    // scale / 2 from rounding, plus the float32 rounding of code * scale.
    CHECK(std::abs(back[i] - w[i]) <= scale / 2 + std::ldexp(std::abs(w[i]), -23));
  }
}

TEST_CASE("compress: the same stream gives the same bytes, from any thread", "[compress]") {
  for (const std::string kind : {"none", "float16", "int8", "qsgd", "topk", "randk"}) {
    auto c = CreateCompressor(Settings(kind, 0.1, 4, 64));
    const std::vector<float> v = Ramp(1000);
    INFO(kind);
    CHECK(Encode(*c, v, 99) == Encode(*c, v, 99));
    const std::vector<float> a = RoundTrip(*c, v, 99), b = RoundTrip(*c, v, 99);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    // One shared compressor, a scratch per thread, a stream per vector.
    const int jobs = 32;
    std::vector<std::vector<uint8_t>> par(jobs), ser(jobs);
    std::vector<CompressScratch> scratch(4);
    fedsim::ParallelFor(jobs, 4, [&](int64_t j, int t) {
      Rng rng(1000 + j);
      const std::vector<float> x = Ramp(200 + 37 * j);
      c->Encode(x.data(), static_cast<int64_t>(x.size()), rng, par[j], scratch[t]);
    });
    for (int j = 0; j < jobs; ++j) ser[j] = Encode(*c, Ramp(200 + 37 * j), 1000 + j);
    CHECK(par == ser);
  }
  // The deterministic codecs leave the stream untouched.
  for (const std::string kind : {"none", "float16", "int8", "topk"}) {
    auto c = CreateCompressor(Settings(kind));
    Rng a(3), b(3);
    CompressScratch s;
    std::vector<uint8_t> out;
    const std::vector<float> v = Ramp(50);
    c->Encode(v.data(), 50, a, out, s);
    CHECK(a.NextU64() == b.NextU64());
  }
}

TEST_CASE("compress: NaN and Inf inputs do not crash and give the documented values", "[compress]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // Bucket 0 (entries 0-3) holds a NaN and bucket 1 (4-7) an Inf; bucket 2 is finite.
  const std::vector<float> v = {1.0f, nan, 2.0f, 3.0f, -inf, 1.0f, 0.5f, 0.25f, 1.0f, -2.0f};
  // none and float16 carry NaN and Inf through.
  for (const std::string kind : {"none", "float16"}) {
    const std::vector<float> back = RoundTrip(*CreateCompressor(Settings(kind)), v);
    CHECK(std::isnan(back[1]));
    CHECK(back[4] == -inf);
    CHECK(back[0] == 1.0f);
  }
  // int8 and qsgd: a bucket with a NaN or an Inf decodes to NaN throughout;
  // the other buckets are unaffected.
  for (const std::string kind : {"int8", "qsgd"}) {
    INFO(kind);
    const std::vector<float> back = RoundTrip(*CreateCompressor(Settings(kind, 0.01, 8, 4)), v);
    for (int i = 0; i < 8; ++i) CHECK(std::isnan(back[i]));
    CHECK(std::isfinite(back[8]));
    CHECK(std::isfinite(back[9]));
    CHECK(back[9] < 0.0f);
  }
  // qsgd: finite values whose norm overflows float32 are sent as NaN too.
  const std::vector<float> huge = {3e38f, 3e38f};
  for (float x : RoundTrip(*CreateCompressor(Settings("qsgd")), huge)) CHECK(std::isnan(x));
  // topk keeps NaNs first, then the largest magnitudes (Inf among them).
  const std::vector<float> back = RoundTrip(*CreateCompressor(Settings("topk", 0.2)), v);  // k = 2
  CHECK(std::isnan(back[1]));
  CHECK(back[4] == -inf);
  CHECK(back[9] == 0.0f);
  // randk sends the chosen values as they are.
  const std::vector<float> all = RoundTrip(*CreateCompressor(Settings("randk", 1.0)), v);
  CHECK(std::isnan(all[1]));
  CHECK(all[4] == -inf);
}

TEST_CASE("compress: bad settings name their key; bad encodings are refused", "[compress]") {
  auto message = [](const CompressorSettings& s) {
    try {
      CreateCompressor(s);
    } catch (const fedsim::InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message(Settings("zip")), Catch::Contains("compression.kind") && Catch::Contains("zip"));
  CHECK_THAT(message(Settings("topk", 0.0)), Catch::Contains("compression.density"));
  CHECK_THAT(message(Settings("topk", 1.5)), Catch::Contains("compression.density"));
  CHECK_THAT(message(Settings("randk", std::nan(""))), Catch::Contains("compression.density"));
  CHECK_THAT(message(Settings("qsgd", 0.01, 1)), Catch::Contains("compression.bits"));
  CHECK_THAT(message(Settings("qsgd", 0.01, 17)), Catch::Contains("compression.bits"));
  CHECK_THAT(message(Settings("int8", 0.01, 8, 0)), Catch::Contains("compression.bucket"));
  CHECK(message(Settings("none")) == "no error");

  CHECK(CreateCompressor(Settings("topk", 0.25))->Describe() == "topk(density=0.25)");
  CHECK(CreateCompressor(Settings("int8"))->Describe() == "int8(bucket=512)");
  CHECK(CreateCompressor(Settings("qsgd"))->Describe() == "qsgd(bits=8, levels=127, bucket=512)");

  std::vector<float> out(10);
  for (const std::string kind : {"none", "float16", "int8", "qsgd", "topk", "randk"}) {
    auto c = CreateCompressor(Settings(kind, 0.5));
    std::vector<uint8_t> wire = Encode(*c, Ramp(10));
    wire.push_back(0);
    INFO(kind);
    CHECK_THROWS_AS(c->Decode(wire, 10, out.data()), fedsim::RunError);
  }
  // topk: an index past n.
  auto top = CreateCompressor(Settings("topk", 0.01));  // n = 100: k = 1, one 4-byte index
  std::vector<uint8_t> wire = Encode(*top, Ramp(100));
  wire[0] = 200;
  std::vector<float> big(100);
  CHECK_THROWS_AS(top->Decode(wire, 100, big.data()), fedsim::RunError);
}
