#!/usr/bin/env bash
# Effect of algorithm.state_precision = float16 (docs/scaling.md): each
# stateful algorithm's config in configs/algorithms/ (the 2NN on
# Fashion-MNIST, 100 clients, Dirichlet 0.5, 10 per round, 50 rounds) run with
# float32 and with float16 client state; prints final and best test accuracy,
# the largest accuracy difference over the evaluated rounds and the state size.
# Usage: scripts/state_precision.sh [--out DIR] [--threads N] [ALGORITHM...]
#   (default algorithms: feddyn scaffold fedsparse)
set -euo pipefail
source "$(dirname "$0")/common.sh"

out="$FEDSIM_ROOT/runs/state_precision"
threads="$(nproc)"
algos=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    --threads) fedsim_need_value "$@"; threads="$2"; shift 2 ;;
    -*) echo "usage: $0 [--out DIR] [--threads N] [ALGORITHM...]" >&2; exit 2 ;;
    *) algos+=("$1"); shift ;;
  esac
done
[ ${#algos[@]} -eq 0 ] && algos=(feddyn scaffold fedsparse)
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
mkdir -p "$out"
for a in "${algos[@]}"; do
  for p in float32 float16; do
    "$fedsim" run "$FEDSIM_ROOT/configs/algorithms/$a.json" --quiet --threads "$threads" \
      --set algorithm.state_precision="$p" --set experiment.checkpoint_every=0 --out "$out/$a-$p"
  done
done

python3 - "$out" "${algos[@]}" <<'PY'
import json, sys
out, algos = sys.argv[1], sys.argv[2:]
print("| algorithm | final acc float32 | final acc float16 | diff | best acc float32 / float16 | max abs acc diff over eval rounds | state MB float32 / float16 |")
print("|---|---|---|---|---|---|---|")
for a in algos:
    m32 = json.load(open(f"{out}/{a}-float32/metrics.json"))
    m16 = json.load(open(f"{out}/{a}-float16/metrics.json"))
    s32, s16 = m32["summary"], m16["summary"]
    acc = lambda m: [r["test_accuracy"] for r in m["rounds"] if r["test_accuracy"] is not None]
    d = max(abs(x - y) for x, y in zip(acc(m32), acc(m16)))
    print(f"| {a} | {s32['final_test_accuracy']:.4f} | {s16['final_test_accuracy']:.4f} | "
          f"{s16['final_test_accuracy'] - s32['final_test_accuracy']:+.4f} | "
          f"{s32['best_test_accuracy']:.4f} / {s16['best_test_accuracy']:.4f} | {d:.4f} | "
          f"{s32['client_state_bytes'] / 1e6:.1f} / {s16['client_state_bytes'] / 1e6:.1f} |")
PY
