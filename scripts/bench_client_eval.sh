#!/usr/bin/env bash
# Per-client evaluation's cost (docs/performance.md): Fashion-MNIST, the 2NN
# (784-200-200-10), N IID clients (every one with at least B = 10 training
# rows, so a fine-tuning step is 10 samples), 20% of each
# client's rows as its own test rows, every client scored every round
# (metrics.client_eval = all), with and without 10 fine-tuning steps; prints
# the median time of one evaluation of all clients (stages.evaluation.
# client_seconds) beside the rest of the round (10 clients' training, the
# central evaluation, the record), its GFLOP/s (the test rows' forward passes, 2 x
# multiply-adds each, plus the fine-tuning steps' training FLOPs) and the
# share of the machine's GEMM rate (fedsim bench-gemm, same threads).
# Usage: scripts/bench_client_eval.sh [--clients N] [--threads T] [--rounds R]
set -euo pipefail
source "$(dirname "$0")/common.sh"

clients=1000
threads="$(nproc)"
rounds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) fedsim_need_value "$@"; clients="$2"; shift 2 ;;
    --threads) fedsim_need_value "$@"; threads="$2"; shift 2 ;;
    --rounds) fedsim_need_value "$@"; rounds="$2"; shift 2 ;;
    *) echo "usage: $0 [--clients N] [--threads T] [--rounds R]" >&2; exit 2 ;;
  esac
done
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
gemm="$("$fedsim" bench-gemm --threads "$threads" 2>/dev/null | grep -o '[0-9.]* GFLOP/s' | tail -1 | cut -d' ' -f1)"
for ft in 0 10; do
  "$fedsim" run "$FEDSIM_ROOT/configs/quickstart.json" --quiet --threads "$threads" --out "$out/ft$ft" \
    --set data.num_clients="$clients" --set data.partition.kind=iid \
    --set data.client_test_fraction=0.2 --set algorithm.clients_per_round=10 --set algorithm.local_epochs=1 \
    --set experiment.rounds="$rounds" --set experiment.target_accuracy=null --set metrics.client_eval=all \
    --set personalization.finetune_steps="$ft"
done
python3 - "$out" "$gemm" "$threads" <<'PY'
import json, statistics, sys
out, gemm, threads = sys.argv[1], float(sys.argv[2] or "nan"), sys.argv[3]
print(f"| fine-tuning steps | clients | test rows | median s per evaluation | rest of the round, median s | GFLOP/s | share of the {threads}-thread GEMM ({gemm:.1f} GFLOP/s) |")
print("|---|---|---|---|---|---|---|")
for ft in (0, 10):
    m = json.load(open(f"{out}/ft{ft}/metrics.json"))
    secs = statistics.median(r["stages"]["evaluation"]["client_seconds"] for r in m["rounds"])
    rest = statistics.median(r["wall_round_seconds"] - r["stages"]["evaluation"]["client_seconds"] for r in m["rounds"])
    rows = m["clients"]["test_rows"]
    clients = m["clients"]["clients_with_tests"]
    macs = sum(a * b for a, b in ((784, 200), (200, 200), (200, 10)))
    flop = rows * 2 * macs  # forward passes over the test rows
    # Fine-tuning: ft steps of min(B, n_k) = 10 samples (every client has
    # at least 10 training rows here: checked) at the model's training FLOPs.
    assert ft == 0 or m["partition"]["samples_per_client"]["min"] >= 10
    flop += clients * ft * 10 * m["model"]["train_flops_per_sample"]
    gf = flop / secs / 1e9
    print(f"| {ft} | {clients} | {rows} | {secs:.3f} | {rest:.3f} | {gf:.1f} | {100 * gf / gemm:.0f}% |")
PY
