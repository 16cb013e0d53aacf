#!/usr/bin/env bash
# Sets up fedsim on a Debian 12 machine, builds it and runs the whole test
# suite (unit tests and end-to-end CLI tests) with ctest.
# Usage: scripts/test.sh [extra ctest options, e.g. -R config]
set -euo pipefail
source "$(dirname "$0")/common.sh"

# python3: the end-to-end tests read the result JSON with it.
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build -DFEDSIM_BUILD_TESTS=ON
cd "$FEDSIM_BUILD"
ctest --output-on-failure -j"$(nproc)" "$@"
