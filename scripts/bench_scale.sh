#!/usr/bin/env bash
# Population scaling and secure-aggregation cost (docs/performance.md):
#   - FedAvg, softmax regression, Fashion-MNIST, Dirichlet 0.5 (per-client
#     scheme), 10% of the population per round: 100 / 1,000 / 10,000 / 100,000 clients;
#     seconds per round and peak RSS;
#   - the 2NN with 10,000 clients, 1,000 per round;
#   - one round of SecAgg (100 clients) and SecAgg+ (1,000 clients) on the 2NN.
# Usage: scripts/bench_scale.sh [--threads N] [--out DIR] [--quick]
set -euo pipefail
source "$(dirname "$0")/common.sh"

threads="$(nproc)"
out="$FEDSIM_ROOT/runs/bench_scale"
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) fedsim_need_value "$@"; threads="$2"; shift 2 ;;
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    *) echo "usage: $0 [--threads N] [--out DIR] [--quick]" >&2; exit 2 ;;
  esac
done
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
mkdir -p "$out"
base=(--quiet --threads "$threads" --set data.dataset=fashion_mnist --set data.standardize=true
      --set data.partition.kind=dirichlet --set data.partition.alpha=0.5 --set data.partition.dirichlet_mode=per_client
      --set algorithm.batch_size=10 --set algorithm.lr=0.05 --set metrics.eval_every=1000
      --set experiment.checkpoint_every=0)
populations="100 1000 10000 100000"
[ "$quick" = 1 ] && populations="100 1000 10000"
for n in $populations; do
  # Quantity skew (lognormal client sizes); with more clients than images some
  # clients hold none (min_samples 0).
  "$fedsim" run "${base[@]}" --out "$out/softmax-$n" --set data.num_clients="$n" \
    --set algorithm.clients_per_round=$((n / 10)) --set experiment.rounds=3 \
    --set data.partition.client_sizes=lognormal --set data.partition.min_samples=0
done
"$fedsim" run "${base[@]}" --out "$out/2nn-10000" --set data.num_clients=10000 --set algorithm.clients_per_round=1000 \
  --set model.kind=mlp --set model.hidden=[200,200] --set experiment.rounds=3
"$fedsim" run "${base[@]}" --out "$out/secagg-100" --set data.num_clients=1000 --set algorithm.clients_per_round=100 \
  --set model.kind=mlp --set model.hidden=[200,200] --set experiment.rounds=1 --set secure_aggregation.enabled=true
"$fedsim" run "${base[@]}" --out "$out/secaggplus-1000" --set data.num_clients=10000 \
  --set algorithm.clients_per_round=1000 --set model.kind=mlp --set model.hidden=[200,200] --set experiment.rounds=1 \
  --set secure_aggregation.enabled=true --set secure_aggregation.protocol=secagg_plus

python3 - "$out" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
print("| run | clients | per round | params | median s/round | peak RSS MiB | bytes up/round MB | secure agg |")
print("|---|---|---|---|---|---|---|---|")
for name in sorted(os.listdir(out)):
    p = f"{out}/{name}/metrics.json"
    if not os.path.exists(p):
        continue
    m = json.load(open(p))
    r = m["rounds"]
    sa = r[-1].get("secure_aggregation")
    sa_txt = "-" if not sa else (f"{sa['protocol']}: client {sa['wall_client_seconds']:.1f} s summed, server "
                                 f"{sa['wall_server_seconds']:.2f} s, k={sa['neighbors']}")
    print(f"| {name} | {m['config']['data']['num_clients']} | {r[-1]['cohort']} | {m['model']['num_params']} | "
          f"{statistics.median(x['wall_round_seconds'] for x in r):.3f} | {m['summary']['peak_rss_mib']:.0f} | "
          f"{r[-1]['round_bytes_up'] / 1e6:.1f} | {sa_txt} |")
PY
