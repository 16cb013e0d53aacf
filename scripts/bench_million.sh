#!/usr/bin/env bash
# A million-client population on one machine (docs/scaling.md): FedAvg on
# Fashion-MNIST split over 1,000,000 clients (per-client Dirichlet 0.5 with
# lognormal sizes, min_samples 0: the 60,000 images leave most clients
# empty), 10,000 clients per round, 3 rounds, no evaluation before the end.
#   softmax, 2nn          2 threads
#   2nn-t1                1 thread
#   2nn-np2               mpirun -np 2, 1 thread per rank (with MPI)
#   scaffold16            SCAFFOLD, float16 client state (with --stateful:
#                         needs about 12 GB of memory)
# Usage: scripts/bench_million.sh [--out DIR] [--stateful]
set -euo pipefail
source "$(dirname "$0")/common.sh"

out="$FEDSIM_ROOT/runs/million"
stateful=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    --stateful) stateful=1; shift ;;
    *) echo "usage: $0 [--out DIR] [--stateful]" >&2; exit 2 ;;
  esac
done
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
mkdir -p "$out"
base=(run --quiet --set data.dataset=fashion_mnist --set data.standardize=true --set data.partition.kind=dirichlet
      --set data.partition.alpha=0.5 --set data.partition.dirichlet_mode=per_client
      --set data.partition.client_sizes=lognormal --set data.partition.min_samples=0 --set algorithm.batch_size=10
      --set algorithm.lr=0.05 --set metrics.eval_every=1000 --set experiment.checkpoint_every=0
      --set data.num_clients=1000000 --set algorithm.clients_per_round=10000 --set experiment.rounds=3)
nn=(--set model.kind=mlp --set model.hidden=[200,200])
"$fedsim" "${base[@]}" --threads 2 --out "$out/softmax"
"$fedsim" "${base[@]}" "${nn[@]}" --threads 2 --out "$out/2nn"
"$fedsim" "${base[@]}" "${nn[@]}" --threads 1 --out "$out/2nn-t1"
if command -v mpirun >/dev/null; then
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe --bind-to none \
    --mca btl self,vader "$fedsim" "${base[@]}" "${nn[@]}" --threads 1 --out "$out/2nn-np2"
fi
if [ "$stateful" = 1 ]; then
  "$fedsim" "${base[@]}" "${nn[@]}" --threads 2 --out "$out/scaffold16" --set algorithm.name=scaffold \
    --set algorithm.state_precision=float16
fi

python3 - "$out" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
print("| run | ranks x threads | s/round (3 rounds) | setup s | peak RSS MiB (rank 0) | local samples/round | clients with state | state MB | rank 0 received per round MB |")
print("|---|---|---|---|---|---|---|---|---|")
for name in ["softmax", "2nn", "2nn-t1", "2nn-np2", "scaffold16"]:
    p = f"{out}/{name}/metrics.json"
    if not os.path.exists(p):
        continue
    m = json.load(open(p))
    s, e, r = m["summary"], m["environment"], m["rounds"]
    times = " / ".join("%.2f" % x["wall_round_seconds"] for x in r)
    print(f"| {name} | {e['ranks']} x {e['threads']} | {times} | "
          f"{s['wall_setup_seconds']:.2f} | {s['peak_rss_mib']:.0f} | {statistics.mean(x['train_samples'] for x in r):.0f} | "
          f"{s.get('clients_with_state', '-')} | {s.get('client_state_bytes', 0) / 1e6:.0f} | "
          f"{e.get('exchange_bytes_received', 0) / len(r) / 1e6:.0f} |")
PY
