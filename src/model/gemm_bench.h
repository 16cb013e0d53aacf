// The machine's own float32 GEMM rate, measured with Eigen: the ceiling that
// local-training GFLOP/s is compared against in scripts/bench.sh and
// docs/performance.md.
#pragma once

namespace fedsim {

struct GemmRate {
  int threads = 1;
  int size = 0;          // square matrices n x n
  double gflops = 0.0;   // total over all threads
  double seconds = 0.0;  // wall time of the timed repetitions
};

// Each of `threads` threads multiplies its own n x n float matrices
// (Eigen's own threading is off, as in client training), repeated for at
// least min_seconds; reports the total rate. This is the rate available to
// fedsim's parallel-across-clients design.
GemmRate MeasureGemm(int n, int threads, double min_seconds);

}  // namespace fedsim
