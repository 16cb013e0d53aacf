// The MPI implementation of Comm (compiled only with FEDSIM_MPI). Large
// buffers are moved in pieces of at most kPiece bytes, since MPI counts are
// ints.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "core/comm.h"
#include "core/error.h"

namespace fedsim {
namespace {

constexpr int64_t kPiece = int64_t{1} << 30;
constexpr int kTagBytes = 1, kTagColumns = 2;

void Check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw RunError(std::string("MPI: ") + what + " failed");
}

class MpiComm final : public Comm {
 public:
  MpiComm() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      // Only the thread that created the Comm calls MPI (OpenMP threads never do).
      Check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_ = true;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiComm() override {
    if (owns_) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void Broadcast(void* data, int64_t bytes, int root) override {
    char* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += kPiece) {
      const int n = static_cast<int>(std::min(kPiece, bytes - off));
      Check(MPI_Bcast(p + off, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
  }

  std::vector<std::string> Gather(const std::string& mine, int root) override {
    if (rank_ != root) {
      Send(mine.data(), static_cast<int64_t>(mine.size()), root);
      return {};
    }
    std::vector<std::string> all(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) {
      if (r == root) {
        all[static_cast<size_t>(r)] = mine;
      } else {
        Receive(all[static_cast<size_t>(r)], r);
      }
    }
    return all;
  }

  void AllMax(int* values, int n) override {
    Check(MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  }
  void AllSum(int64_t* values, int n) override {
    Check(MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }

  void GatherColumns(const float* mine, int64_t len, float* dest,
                     const std::vector<std::vector<int64_t>>& where) override {
    if (len <= 0) return;
    if (len > INT_MAX) throw RunError("MPI: an upload of more than 2^31 floats cannot be sent as one column");
    MPI_Datatype column;
    Check(MPI_Type_contiguous(static_cast<int>(len), MPI_FLOAT, &column), "MPI_Type_contiguous");
    MPI_Type_commit(&column);
    if (rank_ != 0) {
      const auto& mycols = where[static_cast<size_t>(rank_)];
      // Columns in pieces, so that no count exceeds an int.
      const int64_t per = std::max<int64_t>(1, kPiece / (len * static_cast<int64_t>(sizeof(float))));
      for (size_t k = 0; k < mycols.size(); k += static_cast<size_t>(per)) {
        const int n = static_cast<int>(std::min<int64_t>(per, static_cast<int64_t>(mycols.size() - k)));
        Check(MPI_Send(mine + static_cast<int64_t>(k) * len, n, column, 0, kTagColumns, MPI_COMM_WORLD), "MPI_Send");
      }
    } else {
      // Each sender's columns land straight in their places: one indexed
      // datatype per message, one receive per sender and piece.
      std::vector<MPI_Request> requests;
      std::vector<MPI_Datatype> types;
      for (int r = 1; r < size_; ++r) {
        const auto& cols = where[static_cast<size_t>(r)];
        const int64_t per = std::max<int64_t>(1, kPiece / (len * static_cast<int64_t>(sizeof(float))));
        for (size_t k = 0; k < cols.size(); k += static_cast<size_t>(per)) {
          const int n = static_cast<int>(std::min<int64_t>(per, static_cast<int64_t>(cols.size() - k)));
          std::vector<MPI_Aint> displ(static_cast<size_t>(n));
          for (int j = 0; j < n; ++j) {
            displ[static_cast<size_t>(j)] =
                static_cast<MPI_Aint>(cols[k + static_cast<size_t>(j)] * len * static_cast<int64_t>(sizeof(float)));
          }
          MPI_Datatype placed;
          Check(MPI_Type_create_hindexed_block(n, 1, displ.data(), column, &placed), "MPI_Type_create_hindexed_block");
          MPI_Type_commit(&placed);
          types.push_back(placed);
          requests.emplace_back();
          Check(MPI_Irecv(dest, 1, placed, r, kTagColumns, MPI_COMM_WORLD, &requests.back()), "MPI_Irecv");
        }
      }
      Check(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
      for (auto& t : types) MPI_Type_free(&t);
    }
    MPI_Type_free(&column);
  }

  [[noreturn]] void Abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  void Send(const char* data, int64_t bytes, int to) {
    Check(MPI_Send(&bytes, 1, MPI_INT64_T, to, kTagBytes, MPI_COMM_WORLD), "MPI_Send");
    for (int64_t off = 0; off < bytes; off += kPiece) {
      const int n = static_cast<int>(std::min(kPiece, bytes - off));
      Check(MPI_Send(data + off, n, MPI_BYTE, to, kTagBytes, MPI_COMM_WORLD), "MPI_Send");
    }
  }
  void Receive(std::string& out, int from) {
    int64_t bytes = 0;
    Check(MPI_Recv(&bytes, 1, MPI_INT64_T, from, kTagBytes, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    out.resize(static_cast<size_t>(bytes));
    for (int64_t off = 0; off < bytes; off += kPiece) {
      const int n = static_cast<int>(std::min(kPiece, bytes - off));
      Check(MPI_Recv(out.data() + off, n, MPI_BYTE, from, kTagBytes, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    }
  }

  int rank_ = 0, size_ = 1;
  bool owns_ = false;
};

}  // namespace

std::unique_ptr<Comm> OpenMpiComm() { return std::make_unique<MpiComm>(); }

}  // namespace fedsim
