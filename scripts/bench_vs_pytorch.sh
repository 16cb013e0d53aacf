#!/usr/bin/env bash
# fedsim's presets and old model kinds against the same models in PyTorch
# (issue 19, item 5; docs/performance.md "Model presets against PyTorch").
# Installs Debian's python3-torch (CPU) and runs scripts/bench_models.sh
# --pytorch: for every model and thread count, the GEMM rate, fedsim's local
# epochs (`fedsim bench-model`) and PyTorch's (scripts/bench_torch_models.py:
# the same layer shapes and parameter count, batch size and
# torch.set_num_threads, data already in tensors, a plain torch.optim.SGD
# loop) run back to back so that both see the same load; prints both
# samples/s, the ratio and each side's peak RSS.
# Usage: scripts/bench_vs_pytorch.sh [--threads "1 2"] [--seconds S] [--samples N]
#                                    [--models "kind ..."] [--out DIR]
set -euo pipefail
source "$(dirname "$0")/common.sh"
fedsim_install python3-torch libopenblas0-openmp
exec "$FEDSIM_ROOT/scripts/bench_models.sh" --pytorch --out "$FEDSIM_ROOT/runs/bench_vs_pytorch" "$@"
