// A round's cohort split over the processes of a distributed run
// (core/comm.h), and what those processes exchange in a round.
//
// With per-client state (FedDyn, SCAFFOLD, FedSparse, FedGiA) client k is
// trained by rank k % R, the rank that holds its state
// (ClientStateStore::Owns), so no state ever moves between ranks; without,
// the i-th member of a block goes to rank i % R, which balances the ranks'
// shares of every block to within one client. The round
// loop trains the cohort block by block; in each block every rank trains its
// own members (threads within the rank), then Gather brings every member's
// upload, report and keep flag to rank 0, which aggregates them
// in cohort order exactly as one process would. Rank 0 alone runs the secure
// protocol, the server noise, the privacy accountant and the evaluation; it
// sends the server step's input to every rank (ShareServerInput), and every
// rank runs the identical ServerUpdate, so all hold the same global model and
// server state. EndRound agrees on divergence and on signals.
//
// With one process every call is a no-op or a view: the serial run does
// exactly what it did before this class existed.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <string>
#include <vector>

#include "core/comm.h"
#include "fl/algorithm.h"

namespace fedsim {

class CohortExchange {
 public:
  // by_client: place members by client id (algorithms with client state).
  CohortExchange(Comm& comm, int64_t upload_size, bool by_client)
      : comm_(comm), upload_size_(upload_size), by_client_(by_client) {}
  bool root() const { return comm_.root(); }

  // Starts the block of cohort positions [b0, b0 + nb); returns the block
  // positions (0-based within the block, increasing) this rank trains.
  const std::vector<int>& Plan(const std::vector<int>& cohort, size_t b0, int nb);
  // Whether this rank trains block position i (after Plan).
  bool Mine(int i) const { return mine_flag_[static_cast<size_t>(i)] != 0; }
  // Where this rank writes the upload of its k-th member of the block: rank 0
  // its column in `uploads` (column = block position), another rank a column
  // of its own buffer. Thread-safe for distinct k.
  float* Column(int k, Eigen::MatrixXf& uploads) {
    return root() ? uploads.col(mine_[static_cast<size_t>(k)]).data() : local_.col(k).data();
  }
  // Collective: rank 0 receives the other ranks' members of the block: their
  // uploads into `uploads`, and reports and keep flags into the arrays given
  // (indexed by block position).
  void Gather(Eigen::MatrixXf& uploads, ClientReport* reports, char* keep);

  // Collective: rank 0's decision to run the server step (`apply`) and, if
  // so, its input (the mean upload and the kept reports) on every rank.
  void ShareServerInput(bool& apply, Eigen::VectorXf& mean_upload, std::vector<ClientReport>& kept);
  // Collective, once per round: rank 0's verdict "diverged" becomes every
  // rank's, and `signal` becomes the largest signal any rank received.
  void EndRound(std::string& status, int& signal);
  // Collective: the sum of `v` over ranks.
  int64_t Sum(int64_t v);

  // Bytes this rank sent to / received from others so far (payload only).
  int64_t bytes_sent() const { return sent_; }
  int64_t bytes_received() const { return received_; }

 private:
  // What travels with each upload.
  struct MemberResult {
    ClientReport report;
    int64_t keep;
  };
  Comm& comm_;
  int64_t upload_size_;
  bool by_client_;
  std::vector<int> mine_;                      // this rank's block positions
  std::vector<char> mine_flag_;                // per block position
  std::vector<std::vector<int64_t>> where_;    // per rank: its block positions
  Eigen::MatrixXf local_;                      // ranks != 0: their members' uploads
  int64_t sent_ = 0, received_ = 0;
};

}  // namespace fedsim
