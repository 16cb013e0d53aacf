#!/usr/bin/env bash
# Thread scaling of one fedsim process from 1 to N threads (docs/scaling.md,
# "Threads beyond two cores"). Three workloads, each run once per thread count:
#   2nn-c100    FedAvg, 2NN, 1,000 IID clients of 60 images, cohort 100,
#               E=5, B=10, 6 rounds (the bench_scaling.sh workload);
#   2nn-c1000   the same with every one of the 1,000 clients in the cohort,
#               3 rounds (enough clients per thread to balance 16 threads);
#   lenet-c10   the NIID-Bench setting (configs/niid_bench.json): 10 clients,
#               LeNet-style CNN, one local epoch, 3 rounds: at most 10
#               threads can have work, one client each.
# Evaluation runs only after the last round, so the timed rounds (all but the
# last) measure local training and aggregation; the first round's warm-up is
# among them (with 3 rounds the "median" is the mean of rounds 1 and 2). Prints, per workload and thread
# count, the median seconds per timed round, the speed-up over 1 thread and the
# efficiency t1 / (n t_n), next to the float32 GEMM rate of the same binary
# (`fedsim bench-gemm`, one 512x512 product per thread); and checks that every
# run's metrics equal its 1-thread run's (wall-clock fields aside).
#
# Usage: scripts/bench_threads.sh [--threads "1 2 4 8 16"] [--out DIR]
#                                 [--fedsim BIN] [--data DIR] [--only "2nn-c100 ..."]
# Without --fedsim it installs what it needs and builds fedsim here; with it,
# nothing is installed (for machines without a package archive; pass
# --data DIR when Fashion-MNIST is not in /usr/share/datasets/fashion-mnist).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

threads="1 2 4 8 16"
out="$root/runs/bench_threads"
fedsim=""
data=""
only="2nn-c100 2nn-c1000 lenet-c10"
while [ $# -gt 0 ]; do
  case "$1" in
    --threads|--out|--fedsim|--data|--only)
      [ $# -ge 2 ] || { echo "bench_threads: $1 needs a value" >&2; exit 2; } ;;&
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --fedsim) fedsim="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) echo "usage: $0 [--threads \"1 2 4 8 16\"] [--out DIR] [--fedsim BIN] [--data DIR] [--only \"WORKLOAD...\"]" >&2
       exit 2 ;;
  esac
done
for t in $threads; do
  [[ "$t" =~ ^[1-9][0-9]*$ ]] || { echo "bench_threads: thread count '$t' is not a positive integer" >&2; exit 2; }
done
case " $threads " in *" 1 "*) ;; *) echo "bench_threads: --threads must include 1 (the baseline)" >&2; exit 2 ;; esac
for w in $only; do
  case "$w" in 2nn-c100|2nn-c1000|lenet-c10) ;;
    *) echo "bench_threads: unknown workload '$w' (2nn-c100, 2nn-c1000, lenet-c10)" >&2; exit 2 ;;
  esac
done
if [ -z "$fedsim" ]; then
  source "$here/common.sh"
  fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
  fedsim_build >/dev/null
  fedsim="$FEDSIM_BUILD/fedsim"
fi
mkdir -p "$out"
data_set=()
[ -n "$data" ] && data_set=(--set data.path="$data")

twonn=("$root/configs/bench_2nn.json" --set data.num_clients=1000 --set experiment.checkpoint_every=0)
for w in $only; do
  case "$w" in
    2nn-c100) args=("${twonn[@]}" --set algorithm.clients_per_round=100 --set experiment.rounds=6 --set metrics.eval_every=6) ;;
    2nn-c1000) args=("${twonn[@]}" --set algorithm.clients_per_round=1000 --set experiment.rounds=3 --set metrics.eval_every=3) ;;
    lenet-c10) args=("$root/configs/niid_bench.json" --set algorithm.local_epochs=1 --set experiment.rounds=3
                     --set metrics.eval_every=3 --set experiment.checkpoint_every=0) ;;
  esac
  for t in $threads; do
    "$fedsim" run "${args[@]}" "${data_set[@]}" --threads "$t" --quiet --out "$out/$w/t$t"
  done
done
for t in $threads; do
  "$fedsim" bench-gemm --threads "$t" --size 512 --seconds 1 --json > "$out/gemm_t$t.json"
done

FEDSIM_SCRIPTS="$here" python3 - "$out" "$threads" "$only" <<'PY'
import json, os, statistics, sys
out, threads, only = sys.argv[1], [int(t) for t in sys.argv[2].split()], sys.argv[3].split()
sys.path.insert(0, os.environ["FEDSIM_SCRIPTS"])
from fedsim_metrics import strip
gemm = {t: json.load(open(f"{out}/gemm_t{t}.json")) for t in threads}
print("| threads | GEMM GFLOP/s | GEMM speed-up |")
print("|---:|---:|---:|")
g1 = gemm[1]["gflops"]
for t in threads:
    print(f"| {t} | {gemm[t]['gflops']:.1f} | {gemm[t]['gflops'] / g1:.2f} |")
for w in only:
    runs = {t: json.load(open(f"{out}/{w}/t{t}/metrics.json")) for t in threads}
    timed = {t: statistics.median(r["wall_round_seconds"] for r in m["rounds"][:-1]) for t, m in runs.items()}
    base = json.dumps(strip(runs[1]), sort_keys=True)
    print(f"\n{w}: median seconds per round (all rounds but the evaluated last)")
    print("| threads | s/round | speed-up | efficiency | metrics equal to 1 thread |")
    print("|---:|---:|---:|---:|---|")
    for t in threads:
        same = json.dumps(strip(runs[t]), sort_keys=True) == base
        print(f"| {t} | {timed[t]:.3f} | {timed[1] / timed[t]:.2f} | {timed[1] / (t * timed[t]):.2f} | "
              f"{'yes' if same else 'NO'} |")
PY
