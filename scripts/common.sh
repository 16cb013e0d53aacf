# Shared by scripts/*.sh: installing what fedsim needs and building it.
# Source it; do not run it.

FEDSIM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FEDSIM_BUILD="${FEDSIM_BUILD:-$FEDSIM_ROOT/build}"

# Debian packages fedsim builds and tests with. libopenmpi-dev and openmpi-bin
# (mpirun) give the MPI backend (CMake's FEDSIM_MPI turns on when MPI is
# found) and its test; without them fedsim builds and runs as one process.
# libhdf5-dev reads TFF/FedML's federated HDF5 files (FEDSIM_HDF5 turns on when
# pkg-config finds hdf5-serial); without it data.dataset = "tff_h5" is refused.
FEDSIM_BUILD_DEPS=(g++ make cmake pkg-config libeigen3-dev libcli11-dev nlohmann-json3-dev libfmt-dev catch2
  zlib1g-dev libsodium-dev libgmp-dev libopenmpi-dev openmpi-bin libhdf5-dev)

# Installs the given Debian packages that are not installed yet.
fedsim_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "fedsim: installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "fedsim: need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configures and builds fedsim (Release) into $FEDSIM_BUILD. Extra arguments
# go to the configure step. Only the fedsim binary is built, not the tests,
# unless the arguments include -DFEDSIM_BUILD_TESTS=ON (scripts/test.sh).
fedsim_build() {
  cmake -S "$FEDSIM_ROOT" -B "$FEDSIM_BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  local target=(--target fedsim)
  case " $* " in *" -DFEDSIM_BUILD_TESTS=ON "*) target=() ;; esac
  cmake --build "$FEDSIM_BUILD" -j"$(nproc)" "${target[@]}"
}

# True when DIR/metrics.json exists and says the run completed (for scripts
# that reuse finished runs, so an interrupted table resumes).
fedsim_completed() {
  [ -f "$1/metrics.json" ] &&
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["summary"]["status"] != "completed")' \
      "$1/metrics.json"
}
