#include "model/gemm_bench.h"

#include <omp.h>

#include <Eigen/Core>
#include <chrono>

namespace fedsim {

GemmRate MeasureGemm(int n, int threads, double min_seconds) {
  using Clock = std::chrono::steady_clock;
  GemmRate r;
  r.threads = threads;
  r.size = n;
  int reps = 1;
  for (;;) {
    const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
    {
      Eigen::MatrixXf a = Eigen::MatrixXf::Constant(n, n, 0.5f), b = Eigen::MatrixXf::Constant(n, n, 0.25f),
                      c(n, n);
      c.noalias() = a * b;  // warm-up: page in and pack once
#pragma omp barrier
      for (int i = 0; i < reps; ++i) c.noalias() = a * b;
    }
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (s >= min_seconds || reps > (1 << 20)) {
      // The timed loop includes one warm-up product per thread; count it.
      r.seconds = s;
      r.gflops = 2.0 * n * n * static_cast<double>(n) * (reps + 1) * threads / s / 1e9;
      return r;
    }
    reps *= 2;
  }
}

}  // namespace fedsim
