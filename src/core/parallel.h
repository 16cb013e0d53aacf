// The one parallel-for in fedsim. Iterations run on OpenMP threads; an
// exception thrown by any iteration is captured, the remaining iterations are
// skipped, and the first exception (lowest iteration index) is rethrown on the
// calling thread after the region ends. Nothing escapes an OpenMP region.
//
// fn(i, thread_id): thread_id is in [0, threads) and indexes per-thread
// workspaces. Scheduling is dynamic; results must not depend on which thread
// ran which iteration (write to per-iteration slots, reduce in index order).
#pragma once

#include <omp.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>

namespace fedsim {

template <class Fn>
void ParallelFor(int64_t n, int threads, Fn&& fn) {
  if (n <= 0) return;
  if (threads <= 1 || n == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  std::exception_ptr error;
  int64_t error_index = INT64_MAX;
  std::mutex mu;
  std::atomic<bool> failed{false};
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    try {
      fn(i, omp_get_thread_num());
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (i < error_index) {
        error_index = i;
        error = std::current_exception();
      }
      failed.store(true, std::memory_order_relaxed);
    }
  }
  if (error) std::rethrow_exception(error);
}

// Number of threads to use when the user asked for `requested` (0 = all cores).
inline int ResolveThreads(int requested) {
  return requested > 0 ? requested : omp_get_max_threads();
}

}  // namespace fedsim
