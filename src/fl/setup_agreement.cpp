#include "fl/setup_agreement.h"

namespace fedsim {

std::unique_ptr<CheckpointReader> ReadCheckpoint(const std::string& path, Comm& comm, SetupAgreement& setup) {
  std::unique_ptr<CheckpointReader> r;
  if (comm.root()) r = std::make_unique<CheckpointReader>(path);
  setup.Point();
  if (comm.size() == 1) return r;
  std::string bytes = comm.root() ? r->bytes() : std::string();
  BroadcastString(comm, bytes);
  if (!comm.root()) r = std::make_unique<CheckpointReader>(path, std::move(bytes));
  return r;
}

}  // namespace fedsim
