#!/usr/bin/env bash
# Time of each robust aggregation rule on 100 uploads of the 2NN (199,210
# parameters) against the round's training time: configs/robustness_fmnist.json
# with every client of the 100 in the cohort, no attack (or --attack), 3 rounds; prints the
# median over rounds of the rule's wall time (robust.wall_seconds) and of the
# round's training time (stages' train wall time = wall_round_seconds minus
# the evaluation, here the round without evaluation), and for the Krum family
# how many of the 4,950 pairwise distances were taken as direct sums in each
# round (the Gram path's fallback; krum_selection.h).
# --attack KIND: 20 of the 100 clients attack (e.g. alie: 20 identical
# uploads, the case where the Krum family's Gram distances need direct sums).
# --binary PATH: time that fedsim binary (e.g. a build of an older commit)
# instead of building this checkout. --rounds N: N rounds (default 3), so N - 1
# timed rounds for the median on a noisy machine.
# Usage: scripts/bench_robust.sh [--threads N] [--out DIR] [--attack KIND] [--binary PATH] [--rounds N]
set -euo pipefail
source "$(dirname "$0")/common.sh"
threads="$(nproc)"
out="$FEDSIM_ROOT/runs/bench_robust"
attack=(--set attack.kind=none --set attack.fraction=0)
fedsim=""
rounds=3
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "usage: $0 [--threads N] [--out DIR] [--attack KIND] [--binary PATH] [--rounds N]" >&2; exit 2; }
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --attack) attack=(--set attack.kind="$2" --set attack.fraction=0.2); shift 2 ;;
    --binary) fedsim="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "usage: $0 [--threads N] [--out DIR] [--attack KIND] [--binary PATH] [--rounds N]" >&2; exit 2 ;;
  esac
done
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
if [ -z "$fedsim" ]; then
  fedsim_build >/dev/null
  fedsim="$FEDSIM_BUILD/fedsim"
fi
mkdir -p "$out"
for rule in median trimmed_mean krum multikrum bulyan rfa centered_clipping norm_bound; do
  "$fedsim" run "$FEDSIM_ROOT/configs/robustness_fmnist.json" "${attack[@]}" \
    --set robust.rule="$rule" --set robust.byzantine=20 --set algorithm.clients_per_round=100 \
    --set experiment.rounds="$rounds" --set metrics.eval_every=100 --set data.max_train_samples=0 \
    --threads "$threads" --quiet --out "$out/$rule" >/dev/null
done
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
print(f"| rule | aggregation s (median of rounds) | round s (training and all) | share of the round | distances as direct sums |")
print("|---|---|---|---|---|")
for rule in ["median", "trimmed_mean", "krum", "multikrum", "bulyan", "rfa", "centered_clipping", "norm_bound"]:
    m = json.load(open(f"{out}/{rule}/metrics.json"))
    rounds = m["rounds"][:-1] or m["rounds"]  # the last round also evaluates
    agg = statistics.median(r["robust"]["wall_seconds"] for r in rounds)
    rnd = statistics.median(r["wall_round_seconds"] for r in rounds)
    direct = [r["robust"].get("direct_distances") for r in rounds]
    direct = "—" if direct[0] is None else " / ".join(str(d) for d in direct)  # Krum family, per round
    print(f"| {rule} | {agg:.3f} | {rnd:.3f} | {agg / rnd:.1%} | {direct} |")
PY
