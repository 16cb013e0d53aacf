#!/usr/bin/env bash
# Synchronous against asynchronous FL on heterogeneous devices (docs/async.md,
# docs/reproductions.md "FedBuff"): simulated time and bytes (up + down) until
# the global model first reaches a target test accuracy, for
#   sync      FedAvg, 10 clients per round, waiting for the slowest
#   sync_os   FedAvg asking 13 (over-selection 0.3), keeping the first 10
#   fedbuff   FedBuff: 10 clients training at once (as many as a sync
#             round), a server step every 10 updates, staleness weight
#             1/sqrt(1 + s), server lr 1; fedbuff_c30: 30 at once
#   fedasync  FedAsync: 10 at once, every update mixed in with
#             alpha = 0.6 (1 + s)^-0.5; fedasync_c30: 30 at once
# on two simulated systems:
#   lognormal  compute speed lognormal(log 0.002 GFLOP/s, 1), bandwidth
#              lognormal(log 1 Mbit/s, 1)
#   stragglers 25% of the devices 10x slower (0.0002 against 0.002 GFLOP/s),
#              1 Mbit/s links
# and two data sets:
#   fmnist     Fashion-MNIST, 100 clients, Dirichlet 0.5 label skew, softmax,
#              E = 1, B = 10, lr 0.05; target 0.82
#   femnist    LEAF FEMNIST (natural clients: one per writer), the 2NN,
#              E = 1, B = 10, lr 0.05; target 0.40 -- only with --femnist DIR
#              (the folder holding LEAF's femnist/data with train/ and test/)
# Every run processes the same number of client updates (sync: R rounds of
# 10; fedbuff: R steps of 10; fedasync: 10 R steps of one), evaluated every
# 10 updates' worth. Completed runs of the same config are skipped and
# interrupted ones continue from their checkpoint (a run of another config,
# e.g. another --rounds, is moved aside and run again); the table goes to
# OUT/table.md and docs/reproductions.md (async markers); plots to
# docs/img/async_*.png with --plots.
# Usage: scripts/async_table.sh [--femnist DIR] [--out DIR] [--threads N] [--rounds R] [--plots]
set -euo pipefail
source "$(dirname "$0")/common.sh"

out="$FEDSIM_ROOT/runs/async_table"
threads="$(nproc)"
rounds=150
femnist=""
plots=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    --threads) fedsim_need_value "$@"; threads="$2"; shift 2 ;;
    --rounds) fedsim_need_value "$@"; rounds="$2"; shift 2 ;;
    --femnist) fedsim_need_value "$@"; femnist="$2"; shift 2 ;;
    --plots) plots=1; shift ;;
    *) echo "usage: $0 [--femnist DIR] [--out DIR] [--threads N] [--rounds R] [--plots]" >&2; exit 2 ;;
  esac
done

fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
[ "$plots" = 1 ] && fedsim_install python3-matplotlib
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
mkdir -p "$out"

declare -A data=(
  [fmnist]="--set data.dataset=fashion_mnist --set data.standardize=true --set data.num_clients=100
            --set data.partition.kind=dirichlet --set data.partition.alpha=0.5 --set model.kind=softmax"
  [femnist]="--set data.dataset=leaf --set data.leaf.task=femnist
             --set data.num_clients=105 --set data.partition.kind=natural --set model.kind=mlp
             --set model.hidden=[200,200]"
)
declare -A system=(
  [lognormal]="--set system.compute.gflops=0.002 --set system.compute.sigma=1 --set system.network.up_mbps=1
               --set system.network.down_mbps=1 --set system.network.sigma=1"
  [stragglers]="--set system.compute.distribution=profiles --set system.compute.sigma=0
                --set system.profiles.share=[0.75,0.25] --set system.profiles.gflops=[0.002,0.0002]
                --set system.profiles.up_mbps=[1,1] --set system.profiles.down_mbps=[1,1]
                --set system.profiles.latency_ms=[50,50]"
)
declare -A algo=(
  [sync]="--set experiment.rounds=$rounds --set metrics.eval_every=1"
  [sync_os]="--set experiment.rounds=$rounds --set metrics.eval_every=1 --set system.over_selection=0.3"
  [fedbuff]="--set experiment.rounds=$rounds --set metrics.eval_every=1 --set algorithm.mode=fedbuff
             --set async.concurrency=10 --set async.buffer_size=10"
  [fedbuff_c30]="--set experiment.rounds=$rounds --set metrics.eval_every=1 --set algorithm.mode=fedbuff
                 --set async.concurrency=30 --set async.buffer_size=10"
  [fedasync]="--set experiment.rounds=$((rounds * 10)) --set metrics.eval_every=10 --set algorithm.mode=fedasync
              --set async.concurrency=10 --set async.alpha=0.6"
  [fedasync_c30]="--set experiment.rounds=$((rounds * 10)) --set metrics.eval_every=10 --set algorithm.mode=fedasync
                  --set async.concurrency=30 --set async.alpha=0.6"
)
methods="sync sync_os fedbuff fedbuff_c30 fedasync fedasync_c30"
sets="fmnist"
[ -n "$femnist" ] && sets="fmnist femnist"
common=(--set experiment.seed=1 --set algorithm.name=fedavg --set algorithm.clients_per_round=10
        --set algorithm.local_epochs=1 --set algorithm.batch_size=10 --set algorithm.lr=0.05
        --set experiment.checkpoint_every=10)
start=$(date +%s)
for d in $sets; do
  for s in lognormal stragglers; do
    for a in $methods; do
      dir="$out/${d}_${s}_$a"
      # The data folder as one argument (its path may hold spaces).
      path=()
      [ "$d" = femnist ] && path=(--set "data.path=$femnist/femnist/data")
      # shellcheck disable=SC2206
      args=("${common[@]}" ${data[$d]} "${path[@]}" ${system[$s]} ${algo[$a]})
      fedsim_ensure_run "$fedsim" "$dir" "$threads" "$d $s $a" "${args[@]}"
    done
  done
done
echo "runs took $(( $(date +%s) - start )) s" >&2

python3 - "$out" "$sets" "$methods" <<'PY' | tee "$out/table.md" | python3 "$FEDSIM_ROOT/scripts/doc_table.py" "$FEDSIM_ROOT/docs/reproductions.md" async
import json, os, sys
out, sets, methods = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
target = {"fmnist": 0.82, "femnist": 0.40}
names = {"sync": "FedAvg, 10 per round", "sync_os": "FedAvg, asks 13, keeps the first 10",
         "fedbuff": "FedBuff, 10 at once, K = 10", "fedbuff_c30": "FedBuff, 30 at once, K = 10",
         "fedasync": "FedAsync, 10 at once", "fedasync_c30": "FedAsync, 30 at once"}
print("| data | system | method | sim. hours to target | speed-up vs sync | MB to target | bytes vs sync | final accuracy | mean staleness | updates lost |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
for d in sets:
    for s in ["lognormal", "stragglers"]:
        base = base_mb = None
        for a in methods:
            p = f"{out}/{d}_{s}_{a}/metrics.json"
            if not os.path.exists(p):
                print(f"| {d} | {s} | {names[a]} | - | - | - | - | - | - | - |")
                continue
            m = json.load(open(p))
            hit = next((r for r in m["rounds"] if r.get("test_accuracy") is not None
                        and r["test_accuracy"] >= target[d]), None)
            t = hit["sim_time_s"] / 3600 if hit else None
            mb = (hit["bytes_up"] + hit["bytes_down"]) / 1e6 if hit else None
            if a == "sync":
                base, base_mb = t, mb
            stal = [r["staleness"]["mean"] for r in m["rounds"] if "staleness" in r and r["staleness"]["mean"] is not None]
            s_ = m["summary"]
            lost = s_.get("lost_clients", 0) + s_.get("dropped_clients", 0) + s_.get("stale_updates", 0)
            last = m["summary"].get("final_test_accuracy")
            fmt = lambda v, f: (f % v) if v is not None else f"> {m['summary']['sim_time_s'] / 3600:.2f}"
            speed = f"{base / t:.2f}x" if (t and base) else "-"
            ratio = f"{mb / base_mb:.2f}x" if (mb and base_mb) else "-"
            print(f"| {d} (target {target[d]}) | {s} | {names[a]} | {fmt(t, '%.2f')} | {speed} | "
                  f"{'%.1f' % mb if mb is not None else '-'} | {ratio} | {last:.4f} | "
                  f"{'%.2f' % (sum(stal) / len(stal)) if stal else '-'} | {lost} |")
print()
print("_Generated by `scripts/async_table.sh`; every run processes the same number of client updates; "
      "accuracy evaluated after every 10 updates' worth._")
PY

if [ "$plots" = 1 ]; then
  for d in $sets; do
    for s in lognormal stragglers; do
      # Run from the output folder, so that the legend names the runs, not the paths.
      (cd "$out" && python3 "$FEDSIM_ROOT/scripts/plot.py" "${d}_${s}_"{sync,sync_os,fedbuff,fedbuff_c30,fedasync} \
        --x sim_time --title "$d, $s devices" --out "$FEDSIM_ROOT/docs/img/async_${d}_${s}.png" >/dev/null)
    done
  done
fi
