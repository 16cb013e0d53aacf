#!/usr/bin/env bash
# Thread and MPI scaling (docs/scaling.md). FedAvg with the 2NN
# (784-200-200-10) on Fashion-MNIST: 1,000 IID clients of 60 images, a cohort
# of 100 per round, E=5, B=10, 6 rounds, evaluation only after the last round
# (so rounds 1-5 time training and aggregation alone). Runs:
#   t1, t2      one process, 1 and 2 threads;
#   np1, np2    mpirun -np 1 and -np 2, 1 thread per rank (only with MPI);
#   scaffold2   SCAFFOLD (uploads 2P floats) on 2 ranks, for the traffic formula.
# Prints the median seconds per round of rounds 1-5, the thread / rank
# efficiency t_1 / (2 t_2) and rank 0's traffic per round; checks that every
# run's metrics equal the 1-thread run's (wall-clock fields aside).
# Usage: scripts/bench_scaling.sh [--out DIR] [--rounds N]
set -euo pipefail
source "$(dirname "$0")/common.sh"

out="$FEDSIM_ROOT/runs/bench_scaling"
rounds=6
while [ $# -gt 0 ]; do
  case "$1" in
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    --rounds) fedsim_need_value "$@"; rounds="$2"; shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--rounds N]" >&2; exit 2 ;;
  esac
done
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
mkdir -p "$out"
cfg=(run "$FEDSIM_ROOT/configs/bench_2nn.json" --quiet --set data.num_clients=1000 --set algorithm.clients_per_round=100
     --set experiment.rounds="$rounds" --set metrics.eval_every="$rounds" --set experiment.checkpoint_every=0)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# One machine: shared memory between ranks; no binding, so the ranks' threads
# are placed by the kernel like the single process's.
mpi=(mpirun --oversubscribe --bind-to none --mca btl self,vader)

"$fedsim" "${cfg[@]}" --threads 1 --out "$out/t1"
"$fedsim" "${cfg[@]}" --threads 2 --out "$out/t2"
if command -v mpirun >/dev/null &&
   python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))['environment']['mpi'] else 1)" \
     "$out/t1/metrics.json"; then
  "${mpi[@]}" -np 1 "$fedsim" "${cfg[@]}" --threads 1 --out "$out/np1"
  "${mpi[@]}" -np 2 "$fedsim" "${cfg[@]}" --threads 1 --out "$out/np2"
  "${mpi[@]}" -np 2 "$fedsim" "${cfg[@]}" --threads 1 --out "$out/scaffold2" --set algorithm.name=scaffold \
    --set algorithm.local_epochs=1
else
  echo "bench_scaling: fedsim built without MPI (or no mpirun): MPI rows skipped" >&2
fi

FEDSIM_SCRIPTS="$FEDSIM_ROOT/scripts" python3 - "$out" "$rounds" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, os.environ["FEDSIM_SCRIPTS"])
from fedsim_metrics import strip
runs = {}
for name in ["t1", "t2", "np1", "np2", "scaffold2"]:
    p = f"{out}/{name}/metrics.json"
    if os.path.exists(p):
        runs[name] = json.load(open(p))
def per_round(m):
    return statistics.median(r["wall_round_seconds"] for r in m["rounds"][: rounds - 1])
print("| run | ranks x threads | median s/round (rounds 1-%d) | peak RSS MiB (rank 0) | rank 0 received per round MB | rank 0 sent per round MB |" % (rounds - 1))
print("|---|---|---|---|---|---|")
for name, m in runs.items():
    e = m["environment"]
    print(f"| {name} | {e['ranks']} x {e['threads']} | {per_round(m):.3f} | {m['summary']['peak_rss_mib']:.0f} | "
          f"{e.get('exchange_bytes_received', 0) / rounds / 1e6:.2f} | {e.get('exchange_bytes_sent', 0) / rounds / 1e6:.3f} |")
t1 = per_round(runs["t1"])
print(f"\nthreads: efficiency t1 / (2 t2) = {t1 / (2 * per_round(runs['t2'])):.3f}")
if "np2" in runs:
    print(f"ranks:   efficiency t(np1) / (2 t(np2)) = {per_round(runs['np1']) / (2 * per_round(runs['np2'])):.3f}")
base = json.dumps(strip(runs["t1"]), sort_keys=True)
for name in ["t2", "np1", "np2"]:
    if name in runs:
        same = json.dumps(strip(runs[name]), sort_keys=True) == base
        print(f"{name}: metrics {'identical to' if same else 'DIFFER from'} t1")
PY
