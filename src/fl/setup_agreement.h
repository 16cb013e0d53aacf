// Failures before the round loop of a distributed run (core/comm.h). Ranks
// that failed and ranks that did not meet at the same agreement points
// (Agree), so a failure on any rank ends every rank with AgreedError instead
// of leaving the others waiting in a collective. After Close, a failure is
// one rank's alone (the CLI then aborts the run with its exit code). With one
// process every call is cheap and a failure is rethrown unchanged.
#pragma once

#include <memory>
#include <string>

#include "core/comm.h"
#include "fl/checkpoint.h"

namespace fedsim {

class SetupAgreement {
 public:
  explicit SetupAgreement(Comm& comm) : comm_(comm) {}
  // Every rank reached this point fine so far (throws AgreedError if not).
  void Point() {
    if (open_) Agree(comm_, 0, "");
  }
  // The last point: from here on failures are not agreed.
  void Close() {
    Point();
    open_ = false;
  }
  // This rank failed: joins the next agreement point, which throws
  // AgreedError on every rank. Returns (to rethrow) with one process or
  // after Close.
  void Fail(int code, const std::string& message) {
    if (open_ && comm_.size() > 1) Agree(comm_, code, message);
  }

 private:
  Comm& comm_;
  bool open_ = true;
};

// Rank 0 reads and checks the checkpoint at `path` (an agreement point
// follows), then every rank gets its bytes, so the other ranks need no access
// to the output directory. Throws InputError (rank 0) as CheckpointReader.
std::unique_ptr<CheckpointReader> ReadCheckpoint(const std::string& path, Comm& comm, SetupAgreement& setup);

}  // namespace fedsim
