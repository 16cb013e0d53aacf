#!/usr/bin/env bash
# Sets up fedsim on a Debian 12 machine, builds it and runs the whole test
# suite (unit tests and end-to-end CLI tests) with ctest. The dependencies
# include OpenMPI (libopenmpi-dev, openmpi-bin), so the build has the MPI
# backend and ctest runs the MPI equivalence test (mpirun -np 2 and 3).
# Usage: scripts/test.sh [--sanitize] [extra ctest options, e.g. -R config]
#   --sanitize  build in build-asan with address and undefined-behaviour
#               sanitizers (-DFEDSIM_SANITIZE=ON, RelWithDebInfo) and run the
#               suite there; any sanitizer report fails the test that hit it.
set -euo pipefail
source "$(dirname "$0")/common.sh"

sanitize=0
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --sanitize) sanitize=1 ;;
    *) ctest_args+=("$arg") ;;
  esac
done

# python3: the end-to-end tests read the result JSON with it.
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 python3-matplotlib dataset-fashion-mnist
if [ "$sanitize" -eq 1 ]; then
  FEDSIM_BUILD="${FEDSIM_ASAN_BUILD:-$FEDSIM_ROOT/build-asan}"
  # Later -D options override fedsim_build's -DCMAKE_BUILD_TYPE=Release.
  fedsim_build -DFEDSIM_BUILD_TESTS=ON -DFEDSIM_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  # detect_leaks: LeakSanitizer reports at exit fail the process.
  # halt_on_error: the first UB report aborts (exit non-zero) instead of
  # printing and carrying on, so ctest sees it.
  export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
else
  fedsim_build -DFEDSIM_BUILD_TESTS=ON
fi
cd "$FEDSIM_BUILD"
ctest --output-on-failure -j"$(nproc)" ${ctest_args[@]+"${ctest_args[@]}"}
