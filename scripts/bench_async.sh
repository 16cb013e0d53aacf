#!/usr/bin/env bash
# The event loop's own cost (docs/performance.md, "Asynchronous FL"): FedBuff
# over 100,000 clients (Fashion-MNIST, per-client Dirichlet 0.5 with lognormal
# sizes and min_samples 0, as bench_million.sh; most clients hold a few
# images), 1,000 training at once, a server step every 100 updates, softmax,
# E = 1, B = 10, lognormal devices with dropout 0.05 and diurnal availability,
# 200 server steps, no evaluation before the end. Prints the events processed
# per wall second of the event loop and the split of each step's wall time
# between the event loop, training (with its GFLOP/s and share of the
# machine's GEMM rate, fedsim bench-gemm at the same threads) and the rest
# (aggregation, server step, records). A FedAsync row (1,000 at once, 2,000
# steps) shows the loop with one update per step.
# Usage: scripts/bench_async.sh [--out DIR] [--threads N]
set -euo pipefail
source "$(dirname "$0")/common.sh"

out="$FEDSIM_ROOT/runs/bench_async"
threads="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    --threads) fedsim_need_value "$@"; threads="$2"; shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--threads N]" >&2; exit 2 ;;
  esac
done
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
mkdir -p "$out"
base=(run --quiet --set data.dataset=fashion_mnist --set data.standardize=true --set data.partition.kind=dirichlet
      --set data.partition.alpha=0.5 --set data.partition.dirichlet_mode=per_client
      --set data.partition.client_sizes=lognormal --set data.partition.min_samples=0 --set data.num_clients=100000
      --set model.kind=softmax --set algorithm.batch_size=10 --set algorithm.lr=0.05
      --set experiment.checkpoint_every=0 --set async.concurrency=1000
      --set system.compute.gflops=0.002 --set system.compute.sigma=1 --set system.dropout=0.05
      --set system.availability_model=diurnal --threads "$threads")
rm -rf "$out/fedbuff" "$out/fedasync"
"$fedsim" "${base[@]}" --set algorithm.mode=fedbuff --set async.buffer_size=100 --set experiment.rounds=200 \
  --set metrics.eval_every=200 --out "$out/fedbuff"
"$fedsim" "${base[@]}" --set algorithm.mode=fedasync --set experiment.rounds=2000 --set metrics.eval_every=2000 \
  --out "$out/fedasync"
gemm="$("$fedsim" bench-gemm --threads "$threads" 2>/dev/null | grep -o '[0-9.]* GFLOP/s' | tail -1 | cut -d' ' -f1)"

python3 - "$out" "$gemm" "$threads" <<'PY'
import json, sys
out, gemm, threads = sys.argv[1], float(sys.argv[2] or "nan"), sys.argv[3]
print(f"| mode | clients | at once | steps | events | events per wall s (event loop) | event loop s | training s | "
      f"training GFLOP/s (share of {threads}-thread GEMM, {gemm:.1f}) | rest s | setup s | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in ["fedbuff", "fedasync"]:
    m = json.load(open(f"{out}/{name}/metrics.json"))
    r, s = m["rounds"], m["summary"]
    events = sum(x["stages"]["scheduler"]["events"] for x in r)
    loop = sum(x["stages"]["scheduler"]["wall_seconds"] for x in r)
    train = sum(x["stages"]["train"]["wall_seconds"] for x in r)
    total = sum(x["wall_round_seconds"] for x in r)
    gf = s["wall_train_gflops"]
    print(f"| {name} | {m['config']['data']['num_clients']:,} | {m['async']['concurrency']:,} | {len(r)} | {events:,} | "
          f"{events / loop:,.0f} | {loop:.2f} | {train:.2f} | {gf:.1f} ({gf / gemm:.0%}) | {total - loop - train:.2f} | "
          f"{s['wall_setup_seconds']:.1f} | {s['peak_rss_mib']:.0f} |")
PY
