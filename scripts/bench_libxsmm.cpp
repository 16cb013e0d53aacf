// Issue 19's evaluation of small-matrix kernels for the MLPs at FedAvg's
// batch of 10: the five products of one SGD step of a dense layer, in the
// layer engine's layout (W units x fan_in column-major, X fan_in x b), timed
// with Eigen (as fedsim computes them) and with libxsmm's JIT kernels
// (Debian's libxsmm-dev 1.17), and whether libxsmm's results are the same
// bits on the AVX2 and the AVX-512 code paths (what the portable build
// needs: the script runs this twice, once with LIBXSMM_TARGET=hsw, and
// compares the printed hashes). Built and run by scripts/bench_libxsmm.sh;
// not part of fedsim.
//
//   forward      Z  = W X        (units x b)    m = units,  n = b,     k = fan_in
//   weight grad  dW = G X^T      (units x fan_in) m = units, n = fan_in, k = b
//   input grad   dX = W^T G      (fan_in x b)   m = fan_in, n = b,     k = units
#include <libxsmm.h>

#include <Eigen/Core>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Mat = Eigen::MatrixXf;
using Clock = std::chrono::steady_clock;

template <class F>
double Rate(double flop, F&& f, double seconds) {
  f();  // warm-up (and JIT)
  int64_t reps = 0;
  const auto t0 = Clock::now();
  double elapsed = 0.0;
  do {
    for (int i = 0; i < 50; ++i) f();
    reps += 50;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  } while (elapsed < seconds);
  return flop * static_cast<double>(reps) / elapsed * 1e-9;
}

struct Shape {
  const char* what;
  int m, n, k;
  bool trans_a, trans_b;
};

// FNV-1a over the bytes of a result.
uint64_t Hash(const Mat& m) {
  uint64_t h = 1469598103934665603ull;
  const auto* p = reinterpret_cast<const unsigned char*>(m.data());
  for (size_t i = 0; i < static_cast<size_t>(m.size()) * sizeof(float); ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// C = op(A) op(B) with libxsmm for the current target; returns nullptr when
// libxsmm has no kernel for it.
libxsmm_smmfunction Kernel(const Shape& s) {
  const float alpha = 1.0f, beta = 0.0f;
  const int flags = (s.trans_a ? LIBXSMM_GEMM_FLAG_TRANS_A : 0) | (s.trans_b ? LIBXSMM_GEMM_FLAG_TRANS_B : 0);
  const libxsmm_blasint lda = s.trans_a ? s.k : s.m, ldb = s.trans_b ? s.n : s.k, ldc = s.m;
  return libxsmm_smmdispatch(s.m, s.n, s.k, &lda, &ldb, &ldc, &alpha, &beta, &flags, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  libxsmm_init();
  // The 2NN (784-200-200-10) and 784-200-10 at batch 10: every distinct product shape.
  const int b = 10;
  const std::vector<Shape> shapes = {
      {"fwd 784->200", 200, b, 784, false, false},   {"fwd 200->200", 200, b, 200, false, false},
      {"fwd 200->10", 10, b, 200, false, false},     {"dW 784->200", 200, 784, b, false, true},
      {"dW 200->200", 200, 200, b, false, true},     {"dW 200->10", 10, 200, b, false, true},
      {"dX 200->200", 200, b, 200, true, false},     {"dX 200->10", 200, b, 10, true, false},
  };
  std::printf("| product | m x n x k | Eigen GFLOP/s | libxsmm (%s) GFLOP/s | libxsmm / Eigen | same bits as Eigen | result hash |\n",
              libxsmm_get_target_arch());
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const Shape& s : shapes) {
    const int ar = s.trans_a ? s.k : s.m, ac = s.trans_a ? s.m : s.k;
    const int br = s.trans_b ? s.n : s.k, bc = s.trans_b ? s.k : s.n;
    std::srand(7);  // Eigen's Random draws from rand(): the same inputs in every run
    Mat a = Mat::Random(ar, ac), bm = Mat::Random(br, bc), c(s.m, s.n), cx(s.m, s.n);
    const double flop = 2.0 * s.m * s.n * s.k;
    auto eigen = [&] {
      if (s.trans_a) {
        c.noalias() = a.transpose() * bm;
      } else if (s.trans_b) {
        c.noalias() = a * bm.transpose();
      } else {
        c.noalias() = a * bm;
      }
    };
    const double re = Rate(flop, eigen, seconds);
    eigen();
    const libxsmm_smmfunction k = Kernel(s);  // LIBXSMM_TARGET, or this CPU's best
    double rx = 0.0;
    std::string same = "n/a", hash = "-";
    if (k) {
      rx = Rate(flop, [&] { k(a.data(), bm.data(), cx.data()); }, seconds);
      k(a.data(), bm.data(), cx.data());
      same = cx == c ? "yes" : "no";
      hash = std::to_string(Hash(cx));
    }
    if (k) {
      std::printf("| %s | %d x %d x %d | %.1f | %.1f | %.2f | %s | %s |\n", s.what, s.m, s.n, s.k, re, rx, rx / re,
                  same.c_str(), hash.c_str());
    } else {
      std::printf("| %s | %d x %d x %d | %.1f | no kernel | - | n/a | - |\n", s.what, s.m, s.n, s.k, re);
    }
  }
  libxsmm_finalize();
  return 0;
}
