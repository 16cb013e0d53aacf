#!/usr/bin/env bash
# The participation-gap table of docs/reproductions.md (issue 20, 5c): FedAvg
# on LEAF FEMNIST with 20% of the writers held out of training entirely
# (data.holdout_clients = 0.2). Every writer is scored on its own LEAF test
# split (metrics.client_eval = all): the participants' pooled accuracy, the
# held-out writers' pooled accuracy and their difference, the participation
# gap of Yuan et al. (ICLR 2022); with and without 10 steps of local
# fine-tuning (at lr 0.01, a fifth of the training rate: at the training rate
# the 10 steps overfit the writer's few samples and lower its accuracy) before
# evaluation. Seeds change the training and which writers
# are held out.
# The model is the 2NN (784-200-200-62): the CNNs of the LEAF and TFF papers
# take ~5 s a round on 2 cores, too slow for 3 seeds x 300 rounds here.
# Usage: scripts/participation_gap.sh LEAF_FEMNIST_DATA_DIR [--rounds N] [--seeds "1 2 3"] [--out DIR]
#   LEAF_FEMNIST_DATA_DIR: the data/ folder holding train/ and test/ as
#   LEAF's preprocess.sh writes them (datasets/README.md).
# Writes OUT/table.md and prints it, and with the protocol (300 rounds, seeds
# 1 2 3) puts it into docs/reproductions.md. Finished runs are reused.
set -euo pipefail
source "$(dirname "$0")/common.sh"

[ $# -ge 1 ] || { echo "usage: $0 LEAF_FEMNIST_DATA_DIR [--rounds N] [--seeds LIST] [--out DIR]" >&2; exit 2; }
data="$1"
shift
rounds=300
seeds="1 2 3"
out="$FEDSIM_ROOT/runs/participation_gap"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) fedsim_need_value "$@"; rounds="$2"; shift 2 ;;
    --seeds) fedsim_need_value "$@"; seeds="$2"; shift 2 ;;
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    *) echo "usage: $0 LEAF_FEMNIST_DATA_DIR [--rounds N] [--seeds LIST] [--out DIR]" >&2; exit 2 ;;
  esac
done
[ -d "$data/train" ] && [ -d "$data/test" ] || { echo "$0: $data has no train/ and test/ folders" >&2; exit 2; }

fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
mkdir -p "$out"
users="$(python3 -c "import json,sys,glob; print(sum(len(json.load(open(f))[\"users\"]) for f in glob.glob(sys.argv[1] + \"/train/*.json\")))" "$data")"

for seed in $seeds; do
  for ft in 0 10; do
    run="$out/s$seed-ft$ft-r$rounds"
    if [ -f "$run/metrics.json" ] && python3 -c "import json,sys; sys.exit(json.load(open('$run/metrics.json'))['summary']['status']!='completed')"; then
      continue
    fi
    "$fedsim" run "$FEDSIM_ROOT/configs/leaf_femnist.json" --quiet --out "$run" \
      --set data.path="$data" --set data.num_clients="$users" --set experiment.seed="$seed" \
      --set experiment.rounds="$rounds" --set metrics.eval_every="$rounds" \
      --set model.kind=mlp --set 'model.hidden=[200,200]' --set algorithm.lr=0.05 \
      --set data.holdout_clients=0.2 --set metrics.client_eval=all \
      --set personalization.finetune_steps="$ft" --set personalization.finetune_lr=0.01
  done
done

python3 - "$out" "$rounds" "$seeds" <<'PY' | tee "$out/table.md"
import json, statistics, sys
out, rounds, seeds = sys.argv[1], sys.argv[2], sys.argv[3].split()
def cell(v):
    v = [x * 100 for x in v]
    return f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f}"
print(f"| FedAvg, 2NN, {rounds} rounds | participants (own test split) | held-out writers | participation gap | central test set | worst 10% of participants |")
print("|---|---|---|---|---|---|")
for ft, name in ((0, "global model"), (10, "+ 10 fine-tuning steps (lr 0.01)")):
    rows = []
    for s in seeds:
        m = json.load(open(f"{out}/s{s}-ft{ft}-r{rounds}/metrics.json"))["summary"]
        rows.append((m["final_client_accuracy"]["weighted_mean"], m["final_holdout_client_accuracy"]["weighted_mean"],
                     m["final_participation_gap"], m["final_test_accuracy"], m["final_client_accuracy"]["worst10"]))
    cols = list(zip(*rows))
    print(f"| {name} | " + " | ".join(cell(c) for c in cols) + " |")
print(f"\nAccuracy in %, mean ± std over seeds {', '.join(seeds)} (a seed also changes which writers are held out).")
PY

# The protocol's run (300 rounds, seeds 1 2 3) goes into docs/reproductions.md.
if [ "$rounds" = 300 ] && [ "$seeds" = "1 2 3" ]; then
  python3 "$FEDSIM_ROOT/scripts/doc_table.py" "$FEDSIM_ROOT/docs/reproductions.md" participation-gap < "$out/table.md"
fi
