// Communication between the processes of one run. A run is either one process
// (SerialComm) or R MPI ranks started by mpirun (comm_mpi.cpp, compiled only
// with FEDSIM_MPI). The round loop talks to this interface only; with one
// process every collective is a copy or nothing, so the serial run does no
// extra work.
//
// Thread-safety: a Comm is used from the thread that created it (MPI is
// initialised with MPI_THREAD_FUNNELED); never call it inside ParallelFor.
// Every method except rank(), size() and Abort() is collective: all ranks call
// it in the same order with matching arguments, or the run deadlocks.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace fedsim {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool root() const { return rank() == 0; }

  // Copies `bytes` bytes at `data` on rank `root` into `data` on every rank.
  virtual void Broadcast(void* data, int64_t bytes, int root) = 0;
  // Rank `root` receives every rank's bytes, indexed by rank (its own
  // included); the other ranks get an empty vector.
  virtual std::vector<std::string> Gather(const std::string& mine, int root) = 0;
  // Element-wise maximum / sum over ranks, in place, on every rank.
  virtual void AllMax(int* values, int n) = 0;
  virtual void AllSum(int64_t* values, int n) = 0;
  // Moves float columns of length `len` to rank 0. Rank r != 0 sends its
  // where[r].size() columns, stored one after another at `mine`; rank 0
  // writes rank r's k-th column to dest + where[r][k] * len. where[0] is
  // ignored (rank 0's own columns are already in place). Every rank passes
  // the same `where`; `dest` is used on rank 0 only, `mine` on the others.
  virtual void GatherColumns(const float* mine, int64_t len, float* dest,
                             const std::vector<std::vector<int64_t>>& where) = 0;
  // Ends every process of the run with `code` (MPI_Abort); for failures one
  // rank meets alone, where the others would wait for it forever.
  [[noreturn]] virtual void Abort(int code) = 0;
};

// One process: rank 0 of 1.
class SerialComm final : public Comm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void Broadcast(void*, int64_t, int) override {}
  std::vector<std::string> Gather(const std::string& mine, int) override { return {mine}; }
  void AllMax(int*, int) override {}
  void AllSum(int64_t*, int) override {}
  void GatherColumns(const float*, int64_t, float*, const std::vector<std::vector<int64_t>>&) override {}
  [[noreturn]] void Abort(int code) override;
};

// The communicator of this process: MPI_COMM_WORLD when fedsim was built with
// MPI and started by an MPI launcher (mpirun, srun), otherwise a SerialComm.
// MPI is initialised here and finalised when the object is destroyed. Throws
// InputError when a launcher started several processes but this build has no
// MPI (each would run the whole experiment into the same directory).
std::unique_ptr<Comm> OpenWorldComm();

// True when this build includes the MPI backend.
bool HaveMpi();

// A failure every rank agreed on (see Agree): thrown on every rank, with the
// exit class (2 input error, 1 run error), the lowest failing rank and its
// message.
class AgreedError : public std::runtime_error {
 public:
  AgreedError(int code, int rank, const std::string& message)
      : std::runtime_error(message), code_(code), rank_(rank) {}
  int code() const { return code_; }
  int failed_rank() const { return rank_; }

 private:
  int code_, rank_;
};

// Collective: every rank reports its outcome (code 0 = fine, else the exit
// class and `message`). If any rank failed, every rank throws AgreedError
// with the code and message of the lowest failing rank; otherwise returns.
void Agree(Comm& comm, int code, const std::string& message);

// Broadcast helpers for values, vectors of trivially copyable T and strings.
template <class T>
void BroadcastValue(Comm& comm, T& v, int root = 0) {
  comm.Broadcast(&v, static_cast<int64_t>(sizeof(T)), root);
}
template <class T>
void BroadcastVector(Comm& comm, std::vector<T>& v, int root = 0) {
  int64_t n = static_cast<int64_t>(v.size());
  BroadcastValue(comm, n, root);
  v.resize(static_cast<size_t>(n));
  comm.Broadcast(v.data(), n * static_cast<int64_t>(sizeof(T)), root);
}
void BroadcastString(Comm& comm, std::string& s, int root = 0);

}  // namespace fedsim
