#!/usr/bin/env bash
# The portable build's speed against the native build (issue 25;
# docs/performance.md#the-portable-build): scripts/bench.sh (the 2NN, the
# 784-200-10 MLP and McMahan's CNN, whole FedAvg rounds) and
# `fedsim bench-model` for an LSTM and a GroupNorm ResNet, with each build,
# alternating builds so a change in the machine's load hits both alike.
# Usage: scripts/bench_portable.sh [--threads N] [--repeats R] [--out DIR]
#   builds build/ (portable, the default) and build-native/
#   (-DFEDSIM_PORTABLE=OFF, -march=native) if needed.
set -euo pipefail
source "$(dirname "$0")/common.sh"
threads="$(nproc)"
repeats=2
out="$FEDSIM_ROOT/runs/bench-portable"
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) fedsim_need_value "$@"; threads="$2"; shift 2 ;;
    --repeats) fedsim_need_value "$@"; repeats="$2"; shift 2 ;;
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "bench_portable.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
portable_build="$FEDSIM_ROOT/build"
native_build="$FEDSIM_ROOT/build-native"
FEDSIM_BUILD="$portable_build" fedsim_build -DFEDSIM_PORTABLE=ON >/dev/null
FEDSIM_BUILD="$native_build" fedsim_build -DFEDSIM_PORTABLE=OFF -DFEDSIM_NATIVE=ON >/dev/null
mkdir -p "$out"

for r in $(seq 1 "$repeats"); do
  for kind in native portable; do
    dir="$out/$kind-$r"
    build="$portable_build"
    [ "$kind" = native ] && build="$native_build"
    [ -f "$dir/done" ] && continue
    FEDSIM_BUILD="$build" "$FEDSIM_ROOT/scripts/bench.sh" --threads "$threads" --out "$dir" > "$dir.txt"
    for model in leaf_shakespeare_lstm resnet20_gn; do
      "$build/fedsim" bench-model --model "$model" --batch 10 --samples 200 --threads "$threads" --seconds 5 \
        --json > "$dir/$model.json"
    done
    touch "$dir/done"
  done
done

python3 - "$out" "$repeats" <<'PY'
import json, statistics, sys
out, repeats = sys.argv[1], int(sys.argv[2])
def runs(kind, what):
    vals = []
    for r in range(1, repeats + 1):
        d = f"{out}/{kind}-{r}"
        if what in ("2nn", "mlp200", "cnn"):
            m = json.load(open(f"{d}/{what}/metrics.json"))
            vals.append(statistics.median(x["wall_round_seconds"] for x in m["rounds"]))
        elif what.startswith("gemm"):
            vals.append(json.load(open(f"{d}/{what}.json"))["gflops"])
        else:
            vals.append(1.0 / json.load(open(f"{d}/{what}.json"))["samples_per_second"])
    return min(vals) if not what.startswith("gemm") else max(vals)
rows = [("float32 GEMM 512, 1 thread (GFLOP/s)", "gemm1"), ("float32 GEMM 512, all threads (GFLOP/s)", "gemmN"),
        ("2NN round, s", "2nn"), ("784-200-10 MLP round, s", "mlp200"), ("McMahan CNN round (E=1, B=64), s", "cnn"),
        ("leaf_shakespeare_lstm, s per 1,000 samples", "leaf_shakespeare_lstm"),
        ("resnet20_gn, s per 1,000 samples", "resnet20_gn")]
print("| measure | native | portable | portable / native |")
print("|---|---|---|---|")
for label, what in rows:
    n, p = runs("native", what), runs("portable", what)
    if not what.startswith("gemm"):
        if what not in ("2nn", "mlp200", "cnn"):
            n, p = 1000 * n, 1000 * p
    print(f"| {label} | {n:.3f} | {p:.3f} | {p / n:.2f} |")
PY
