#!/usr/bin/env bash
# Sets up fedsim on a Debian 12 machine and runs the quickstart experiment:
# FedAvg, the 2NN (784-200-200-10 MLP), Fashion-MNIST, 100 IID clients,
# 10 per round, E=5, B=10, lr 0.01, 20 rounds.
# Usage: scripts/quickstart.sh [extra fedsim run options, e.g. --threads 2]
set -euo pipefail
source "$(dirname "$0")/common.sh"

fedsim_install "${FEDSIM_BUILD_DEPS[@]}" dataset-fashion-mnist
fedsim_build >/dev/null
out="$FEDSIM_ROOT/runs/quickstart"
"$FEDSIM_BUILD/fedsim" run "$FEDSIM_ROOT/configs/quickstart.json" --out "$out" "$@"
echo
echo "Metrics: $out/metrics.json (per round: $out/rounds.jsonl; keys in docs/metrics.md)"
