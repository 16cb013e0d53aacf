// An in-process stand-in for MPI in tests: R ranks as R std::threads sharing
// memory, each with a ThreadComm. Collectives meet at a barrier, exchange
// pointers, copy, and meet again, with the same semantics as comm_mpi.cpp,
// so the distributed round loop can be tested without MPI (and under the
// sanitizers).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/comm.h"

namespace fedsim::testing {

class ThreadWorld {
 public:
  explicit ThreadWorld(int ranks) : ranks_(ranks), slots_(static_cast<size_t>(ranks), nullptr) {}
  int ranks() const { return ranks_; }
  // Blocks until every rank has arrived. Throws once a rank has failed
  // (Break), so a test whose ranks disagree fails instead of hanging, as
  // MPI_Abort ends the other ranks of a real run.
  void Barrier() {
    std::unique_lock<std::mutex> lock(mu_);
    if (broken_) throw std::runtime_error("another rank failed");
    const int64_t gen = generation_;
    if (++arrived_ == ranks_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen || broken_; });
      if (generation_ == gen) throw std::runtime_error("another rank failed");
    }
  }
  void Break() {
    std::lock_guard<std::mutex> lock(mu_);
    broken_ = true;
    cv_.notify_all();
  }
  const void*& slot(int rank) { return slots_[static_cast<size_t>(rank)]; }

 private:
  int ranks_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  int64_t generation_ = 0;
  bool broken_ = false;
  std::vector<const void*> slots_;
};

class ThreadComm final : public Comm {
 public:
  ThreadComm(ThreadWorld& world, int rank) : w_(world), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return w_.ranks(); }
  void Broadcast(void* data, int64_t bytes, int root) override {
    w_.slot(rank_) = data;
    w_.Barrier();
    if (rank_ != root && bytes > 0) std::memcpy(data, w_.slot(root), static_cast<size_t>(bytes));
    w_.Barrier();
  }
  std::vector<std::string> Gather(const std::string& mine, int root) override {
    w_.slot(rank_) = &mine;
    w_.Barrier();
    std::vector<std::string> all;
    if (rank_ == root) {
      for (int r = 0; r < size(); ++r) all.push_back(*static_cast<const std::string*>(w_.slot(r)));
    }
    w_.Barrier();
    return all;
  }
  void AllMax(int* v, int n) override {
    Reduce(v, n, [](int a, int b) { return std::max(a, b); });
  }
  void AllSum(int64_t* v, int n) override {
    Reduce(v, n, [](int64_t a, int64_t b) { return a + b; });
  }
  void GatherColumns(const float* mine, int64_t len, float* dest,
                     const std::vector<std::vector<int64_t>>& where) override {
    w_.slot(rank_) = mine;
    w_.Barrier();
    if (rank_ == 0) {
      for (int r = 1; r < size(); ++r) {
        const float* src = static_cast<const float*>(w_.slot(r));
        const auto& cols = where[static_cast<size_t>(r)];
        for (size_t k = 0; k < cols.size(); ++k) {
          std::memcpy(dest + cols[k] * len, src + static_cast<int64_t>(k) * len,
                      sizeof(float) * static_cast<size_t>(len));
        }
      }
    }
    w_.Barrier();
  }
  [[noreturn]] void Abort(int code) override { std::terminate(); }

 private:
  template <class T, class Op>
  void Reduce(T* v, int n, Op op) {
    w_.slot(rank_) = v;
    w_.Barrier();
    const T* first = static_cast<const T*>(w_.slot(0));
    std::vector<T> out(first, first + n);
    for (int r = 1; r < size(); ++r) {
      const T* other = static_cast<const T*>(w_.slot(r));
      for (int i = 0; i < n; ++i) out[static_cast<size_t>(i)] = op(out[static_cast<size_t>(i)], other[i]);
    }
    w_.Barrier();
    std::copy(out.begin(), out.end(), v);
  }
  ThreadWorld& w_;
  int rank_;
};

// Runs fn(comm) on `ranks` threads, one ThreadComm each; returns each rank's
// exception (null if none).
inline std::vector<std::exception_ptr> RunRanks(int ranks, const std::function<void(Comm&)>& fn) {
  ThreadWorld world(ranks);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r) {
    threads.emplace_back([&, r] {
      ThreadComm comm(world, r);
      try {
        fn(comm);
      } catch (const fedsim::AgreedError&) {
        // Every rank throws it at the same agreement point: nobody waits.
        errors[static_cast<size_t>(r)] = std::current_exception();
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
        world.Break();
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

}  // namespace fedsim::testing
