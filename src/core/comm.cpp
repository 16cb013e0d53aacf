#include "core/comm.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace fedsim {

#ifdef FEDSIM_MPI
std::unique_ptr<Comm> OpenMpiComm();  // comm_mpi.cpp
#endif

namespace {

// Processes the launcher says it started (0: not started by an MPI launcher).
// OpenMPI's mpirun sets OMPI_COMM_WORLD_SIZE; MPICH's hydra and Slurm's PMI2
// set PMI_SIZE; PMIx launchers (OpenMPI 5, srun --mpi=pmix) set PMIX_RANK.
int LauncherSize() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    if (const char* v = std::getenv(name)) return std::max(1, std::atoi(v));
  }
  return std::getenv("PMIX_RANK") ? 1 : 0;
}

}  // namespace

void SerialComm::Abort(int code) { std::_Exit(code); }

bool HaveMpi() {
#ifdef FEDSIM_MPI
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Comm> OpenWorldComm() {
  const int launched = LauncherSize();
#ifdef FEDSIM_MPI
  if (launched > 0) return OpenMpiComm();
#else
  if (launched > 1) {
    throw InputError("started as one of " + std::to_string(launched) +
                     " MPI processes, but this fedsim was built without MPI (FEDSIM_MPI=OFF); every process would run "
                     "the whole experiment. Rebuild with libopenmpi-dev installed, or run one process");
  }
#endif
  return std::make_unique<SerialComm>();
}

void Agree(Comm& comm, int code, const std::string& message) {
  if (comm.size() == 1) {
    if (code != 0) throw AgreedError(code, 0, message);
    return;
  }
  // [any failure, size - lowest failing rank]: one max-reduction finds both.
  int v[2] = {code != 0 ? 1 : 0, code != 0 ? comm.size() - comm.rank() : 0};
  comm.AllMax(v, 2);
  if (v[0] == 0) return;
  const int first = comm.size() - v[1];
  int first_code = code;
  std::string first_message = message;
  BroadcastValue(comm, first_code, first);
  BroadcastString(comm, first_message, first);
  throw AgreedError(first_code, first, first_message);
}

void BroadcastString(Comm& comm, std::string& s, int root) {
  int64_t n = static_cast<int64_t>(s.size());
  BroadcastValue(comm, n, root);
  s.resize(static_cast<size_t>(n));
  comm.Broadcast(s.data(), n, root);
}

}  // namespace fedsim
