#!/usr/bin/env bash
# Paired comparison by branching (docs/architecture.md#branching-a-run): does
# 2-bit QSGD from round 11 on change FedAvg's accuracy on the 2NN
# (configs/quickstart.json)? For each seed, one 10-round trunk and two
# branches from its checkpoint (compression off / qsgd 2-bit) to round 20;
# beside them, independent 20-round runs of both settings. Prints the final
# accuracies, the per-seed paired differences and the unpaired spread.
# Usage: scripts/paired_branches.sh [--seeds N] [--out DIR] [--threads N]
set -euo pipefail
source "$(dirname "$0")/common.sh"

seeds=3
out="$FEDSIM_ROOT/runs/paired"
threads="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) fedsim_need_value "$@"; seeds="$2"; shift 2 ;;
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    --threads) fedsim_need_value "$@"; threads="$2"; shift 2 ;;
    *) echo "usage: $0 [--seeds N] [--out DIR] [--threads N]" >&2; exit 2 ;;
  esac
done
case "$seeds" in ''|*[!0-9]*|0) echo "$0: --seeds expects a positive integer, got '$seeds'" >&2; exit 2 ;; esac

fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
cfg="$FEDSIM_ROOT/configs/quickstart.json"
qsgd=(--set compression.kind=qsgd --set compression.bits=2)
run() { "$fedsim" run "$cfg" --threads "$threads" --quiet "$@" >/dev/null; }
for s in $(seq 1 "$seeds"); do
  run --set experiment.seed="$s" --set experiment.rounds=10 --out "$out/trunk-s$s"
  run --set experiment.seed="$s" --from "$out/trunk-s$s/checkpoint.bin" --out "$out/branch-none-s$s"
  run --set experiment.seed="$s" "${qsgd[@]}" --from "$out/trunk-s$s/checkpoint.bin" --out "$out/branch-qsgd-s$s"
  run --set experiment.seed="$s" --out "$out/full-none-s$s"
  run --set experiment.seed="$s" "${qsgd[@]}" --out "$out/full-qsgd-s$s"
done

python3 - "$out" "$seeds" <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], int(sys.argv[2])
acc = lambda n: json.load(open(f"{out}/{n}/metrics.json"))["summary"]["final_test_accuracy"]
print("| seed | branch: none | branch: qsgd 2-bit | paired difference | full run: none | full run: qsgd 2-bit |")
print("|---|---|---|---|---|---|")
paired, full_none, full_q = [], [], []
for s in range(1, seeds + 1):
    bn, bq, fn, fq = acc(f"branch-none-s{s}"), acc(f"branch-qsgd-s{s}"), acc(f"full-none-s{s}"), acc(f"full-qsgd-s{s}")
    paired.append((bq - bn) * 100)
    full_none.append(fn * 100)
    full_q.append(fq * 100)
    print(f"| {s} | {bn:.4f} | {bq:.4f} | {paired[-1]:+.2f} | {fn:.4f} | {fq:.4f} |")
sd = lambda v: statistics.stdev(v) if len(v) > 1 else float("nan")
print()
print(f"paired differences (points): mean {statistics.mean(paired):+.2f}, std {sd(paired):.2f}")
print(f"independent runs (points): none {statistics.mean(full_none):.2f} ± {sd(full_none):.2f}, "
      f"qsgd 2-bit {statistics.mean(full_q):.2f} ± {sd(full_q):.2f}; difference of means "
      f"{statistics.mean(full_q) - statistics.mean(full_none):+.2f}")
PY
