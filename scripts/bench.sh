#!/usr/bin/env bash
# The documented local-training benchmark (docs/performance.md):
# FedAvg on Fashion-MNIST, 100 IID clients, 10 per round, E=5, B=10, lr 0.01,
# 5 rounds, for the 2NN (784-200-200-10) and a 784-200-10 MLP, and the CNN of
# McMahan et al. (E=1, B=64, 2 rounds). Reports the
# median seconds per round, peak RSS, local-training samples/s and GFLOP/s,
# beside this machine's float32 GEMM rate measured in the same run.
# Usage: scripts/bench.sh [--threads N] [--out DIR]
set -euo pipefail
source "$(dirname "$0")/common.sh"

threads="$(nproc)"
out="$FEDSIM_ROOT/runs/bench"
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) fedsim_need_value "$@"; threads="$2"; shift 2 ;;
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    *) echo "usage: scripts/bench.sh [--threads N] [--out DIR]" >&2; exit 2 ;;
  esac
done

fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
mkdir -p "$out"

"$fedsim" bench-gemm --threads 1 --size 512 --seconds 2 --json > "$out/gemm1.json"
"$fedsim" bench-gemm --threads "$threads" --size 512 --seconds 2 --json > "$out/gemmN.json"
"$fedsim" run "$FEDSIM_ROOT/configs/bench_2nn.json" --threads "$threads" --quiet --out "$out/2nn"
"$fedsim" run "$FEDSIM_ROOT/configs/bench_2nn.json" --threads "$threads" --quiet --out "$out/mlp200" \
  --set model.hidden=[200] --set experiment.name=bench_mlp200
# The CNN of McMahan et al. on batches of 64, one local epoch, 2 rounds.
"$fedsim" run "$FEDSIM_ROOT/configs/bench_2nn.json" --threads "$threads" --quiet --out "$out/cnn" \
  --set model.kind=cnn_mcmahan --set model.hidden=[] --set algorithm.batch_size=64 --set algorithm.local_epochs=1 \
  --set experiment.rounds=2 --set experiment.name=bench_cnn

python3 - "$out" "$threads" <<'PY'
import json, statistics, sys
out, threads = sys.argv[1], int(sys.argv[2])
g1 = json.load(open(f"{out}/gemm1.json"))["gflops"]
gn = json.load(open(f"{out}/gemmN.json"))["gflops"]
print(f"float32 GEMM (Eigen, 512x512): {g1:.1f} GFLOP/s on 1 thread, {gn:.1f} GFLOP/s on {threads} threads")
print()
print(f"| model | params | median s/round | peak RSS MiB | samples/s | GFLOP/s | % of {threads}-thread GEMM | final acc |")
print("|---|---|---|---|---|---|---|---|")
for name in ["2nn", "mlp200", "cnn"]:
    m = json.load(open(f"{out}/{name}/metrics.json"))
    s = m["summary"]
    med = statistics.median(r["wall_round_seconds"] for r in m["rounds"])
    print(f"| {m['model']['description'].split(' (')[0]} | {m['model']['num_params']} | {med:.3f} | "
          f"{s['peak_rss_mib']:.0f} | {s['wall_train_samples_per_second']:.0f} | {s['wall_train_gflops']:.1f} | "
          f"{100 * s['wall_train_gflops'] / gn:.0f}% | {s['final_test_accuracy']:.4f} |")
PY
