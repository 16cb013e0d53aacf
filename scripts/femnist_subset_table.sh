#!/usr/bin/env bash
# FedAvg, FedProx, SCAFFOLD and FedAdam on a SUBSET of LEAF FEMNIST (issue 24,
# item 4): the natural partition (one client per writer), TFF's EMNIST CNN
# (model.kind = tff_emnist_cnn), 10 writers per round, E = 1, B = 20 (Reddi et
# al. 2021's EMNIST CR setting; configs/femnist_subset.json). Every writer is
# scored on its own LEAF test split (metrics.client_eval = all).
#
# Hyper-parameters are tuned on seed 1, as a paper would, then seeds 2..S run
# the chosen setting:
#   - client lr from {10^-1.5, 10^-1} for FedAvg, SCAFFOLD and FedAdam: the
#     best client rates of Reddi et al. for EMNIST CR (10^-1 for FedAvg, 10^-1.5
#     for FedAdam; 10^-2 learned too slowly here: 21% after 50 rounds against
#     48% at 10^-1.5, FedAvg seed 1);
#   - FedAdam's server side fixed at Reddi et al.'s best for EMNIST CR:
#     server lr 10^-2.5, epsilon (algorithm.tau) 10^-4, beta1 0.9, beta2 0.99;
#   - FedProx at FedAvg's chosen lr, mu from {0.01, 0.1, 1} (FedProx's
#     authors: tune mu, there is no default that works everywhere).
# A setting's score is its mean central test accuracy over the evaluations in
# the last quarter of the rounds (LEAF's data has no validation split; seeds
# 2..S take no part in the choice). The grid's scores are printed beside the
# table.
#
# Usage: scripts/femnist_subset_table.sh LEAF_FEMNIST_DATA_DIR [--rounds N] [--seeds S] [--out DIR]
#                                        [--jobs J] [--threads T] [--table-only]
#   LEAF_FEMNIST_DATA_DIR: LEAF's data/ folder holding train/ and test/.
#   --seeds S runs experiment.seed = 1..S (default 3); --jobs J runs J runs at
#   once with --threads T threads each (default: the cores shared out).
#   FEDSIM=path/to/fedsim uses that binary; otherwise fedsim is built here.
# Finished runs (completed or diverged) are skipped, so an interrupted table
# resumes; --table-only only redraws the table from the runs that exist ("not
# run" for the others). The table goes to OUT/table.md and, for the protocol
# (150 rounds, 3 seeds) when no run failed and some run has a result, into
# docs/reproductions.md (femnist-subset markers).
set -euo pipefail
source "$(dirname "$0")/common.sh"

usage="usage: $0 LEAF_FEMNIST_DATA_DIR [--rounds N] [--seeds S] [--out DIR] [--jobs J] [--threads T] [--table-only]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
data="$1"
shift
rounds=150
seeds=3
out="$FEDSIM_ROOT/runs/femnist_subset"
jobs=1
threads=""
table_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds|--seeds|--out|--jobs|--threads)
      [ $# -ge 2 ] || { echo "femnist_subset_table: $1 needs a value" >&2; echo "$usage" >&2; exit 2; } ;;&
    --rounds) rounds="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --table-only) table_only=1; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[ -n "$threads" ] || threads=$(( $(nproc) / jobs > 0 ? $(nproc) / jobs : 1 ))
for v in "$rounds" "$seeds" "$jobs" "$threads"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "femnist_subset_table: '$v' is not a positive integer" >&2; exit 2; }
done
[ -d "$data/train" ] && [ -d "$data/test" ] || { echo "femnist_subset_table: $data has no train/ and test/ folders" >&2; exit 2; }
data="$(cd "$data" && pwd)"

if [ -n "${FEDSIM:-}" ]; then
  [ -x "$FEDSIM" ] || { echo "femnist_subset_table: FEDSIM=$FEDSIM is not an executable file" >&2; exit 2; }
  fedsim="$FEDSIM"
elif [ "$table_only" = 0 ]; then
  fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3
  fedsim_build >/dev/null
  fedsim="$FEDSIM_BUILD/fedsim"
fi
config="$FEDSIM_ROOT/configs/femnist_subset.json"
runs="$out/r$rounds"
mkdir -p "$runs"
users="$(python3 -c 'import json, sys, glob; print(sum(len(json.load(open(f))["users"]) for f in glob.glob(sys.argv[1] + "/train/*.json")))' "$data")"

# The grid, as log10 of the client learning rate, and FedProx's mu values.
lr_grid="-1.5 -1"
mu_grid="0.01 0.1 1"

# A run is named by its setting: ALGO_lrE[_muM]_sSEED.
finished() {  # DIR: a run that completed or diverged
  [ -f "$1/metrics.json" ] &&
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["summary"]["status"] not in ("completed", "diverged"))' \
      "$1/metrics.json"
}
# One run: name ($1 = ALGO_lrE[_muM]_sSEED). A run with a checkpoint continues from it.
run_one() {
  local name="$1" dir="$runs/$1" algo lre mu="" seed
  algo="${name%%_*}"
  lre="$(sed -E 's/.*_lr([-0-9.]+)_.*/\1/' <<<"$name")"
  seed="${name##*_s}"
  [[ "$name" == *_mu* ]] && mu="$(sed -E 's/.*_mu([0-9.]+)_.*/\1/' <<<"$name")"
  if [ -f "$dir/checkpoint.bin" ] && [ -f "$dir/config.json" ]; then
    echo "$(date +%T) resuming $name" >&2
    "$fedsim" run --resume "$dir" --threads "$threads" --quiet && return 0
    finished "$dir" && { echo "femnist_subset_table: $name diverged" >&2; return 0; }
    echo "femnist_subset_table: FAILED $name" >&2
    return 1
  fi
  local extra=(--set algorithm.name="$algo" --set algorithm.lr="$(python3 -c "print(f'{10 ** float(\"$lre\"):.6g}')")")
  case "$algo" in
    fedprox) extra+=(--set algorithm.mu="$mu") ;;
    # Reddi et al. 2021, EMNIST CR (google-research/federated, optimization/docs/hyperparameters.md).
    fedadam) extra+=(--set algorithm.server_lr=0.0031623 --set algorithm.tau=1e-4
                     --set algorithm.beta1=0.9 --set algorithm.beta2=0.99) ;;
  esac
  echo "$(date +%T) running $name" >&2
  "$fedsim" run "$config" "${extra[@]}" --set data.path="$data" --set data.num_clients="$users" \
    --set experiment.seed="$seed" --set experiment.rounds="$rounds" --threads "$threads" --quiet --out "$dir" && return 0
  # A run that diverged is a result (the setting loses the grid), not a failure.
  finished "$dir" && { echo "femnist_subset_table: $name diverged" >&2; return 0; }
  echo "femnist_subset_table: FAILED $name" >&2
  return 1
}
failed=0
# Runs the named runs that have not finished, $jobs at a time.
run_batch() {
  local running=0 name
  for name in "$@"; do
    finished "$runs/$name" && continue
    if [ "$running" -ge "$jobs" ]; then
      wait -n || failed=1
      running=$((running - 1))
    fi
    run_one "$name" &
    running=$((running + 1))
  done
  while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
  done
}
# The chosen setting of ALGO among the seed-1 runs named ALGO_*_s1 that
# finished: the highest mean test accuracy over the last quarter's evaluations.
choose() {
  python3 - "$runs" "$1" "$rounds" <<'PY'
import glob, json, os, sys
runs, algo, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
best = None
for d in sorted(glob.glob(f"{runs}/{algo}_lr*_s1")):
    try:
        m = json.load(open(f"{d}/metrics.json"))
    except (OSError, ValueError):
        continue
    if m["summary"]["status"] not in ("completed", "diverged"):
        continue
    acc = [r["test_accuracy"] for r in m["rounds"] if r.get("test_accuracy") is not None and r["round"] > 0.75 * rounds]
    score = sum(acc) / len(acc) if acc and m["summary"]["status"] == "completed" else -1.0
    if best is None or score > best[0]:
        best = (score, os.path.basename(d)[:-len("_s1")])
print(best[1] if best else "")
PY
}

if [ "$table_only" = 0 ]; then
  # Phase 1: the lr grid on seed 1.
  grid=()
  for a in fedavg scaffold fedadam; do
    for e in $lr_grid; do grid+=("${a}_lr${e}_s1"); done
  done
  run_batch "${grid[@]}"
  # Phase 2: FedProx's mu grid at FedAvg's lr, beside seeds 2..S of the others.
  fedavg_lr="$(choose fedavg | sed -E 's/.*_lr//')"
  [ -n "$fedavg_lr" ] || { echo "femnist_subset_table: no finished FedAvg run to take the lr from" >&2; exit 1; }
  batch=()
  mu_done=1
  for m in $mu_grid; do
    batch+=("fedprox_lr${fedavg_lr}_mu${m}_s1")
    finished "$runs/fedprox_lr${fedavg_lr}_mu${m}_s1" || mu_done=0
  done
  # On a resumed table whose mu grid is complete, FedProx's seeds join this batch.
  for a in fedavg scaffold fedadam; do
    c="$(choose "$a")"
    for ((k = 2; k <= seeds; k++)); do batch+=("${c}_s$k"); done
  done
  if [ "$mu_done" = 1 ]; then
    c="$(choose fedprox)"
    for ((k = 2; k <= seeds; k++)); do batch+=("${c}_s$k"); done
  fi
  run_batch "${batch[@]}"
  # Phase 3: seeds 2..S of FedProx's chosen mu.
  c="$(choose fedprox)"
  batch=()
  for ((k = 2; k <= seeds; k++)); do batch+=("${c}_s$k"); done
  run_batch "${batch[@]}"
fi

chosen=""
for a in fedavg fedprox scaffold fedadam; do chosen="$chosen $(choose "$a")"; done
python3 - "$runs" "$rounds" "$seeds" "$data" "$chosen" <<'PY' > "$out/table.md.tmp" || { echo "femnist_subset_table: making the table failed; $out/table.md and docs/reproductions.md are left as they are" >&2; rm -f "$out/table.md.tmp"; exit 1; }
import glob, json, os, statistics, sys
runs, rounds, seeds, data, chosen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5].split()
titles = {"fedavg": "FedAvg", "fedprox": "FedProx", "scaffold": "SCAFFOLD", "fedadam": "FedAdam"}
def load(name):
    try:
        m = json.load(open(f"{runs}/{name}/metrics.json"))
    except (OSError, ValueError):
        return None
    return m if m["summary"]["status"] in ("completed", "diverged") else None
def setting(name):
    """'lr 0.0316, mu 0.1' from ALGO_lrE[_muM]."""
    parts = name.split("_")
    s = f"lr 10^{parts[1][2:]}"
    if len(parts) > 2:
        s += f", μ {parts[2][2:]}"
    if parts[0] == "fedadam":
        s += "; server: Adam, lr 10^-2.5, ε 10^-4, β 0.9/0.99"
    return s
def late_acc(m):
    acc = [r["test_accuracy"] for r in m["rounds"] if r.get("test_accuracy") is not None and r["round"] > 0.75 * rounds]
    return sum(acc) / len(acc) if acc else float("nan")
def cell(v):
    v = [x * 100 for x in v]
    if not v:
        return "not run"
    return f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f} (n=1)"
wall, threads, n_runs, desc = 0.0, set(), 0, ""
for d in glob.glob(f"{runs}/*/metrics.json"):
    m = json.load(open(d))
    if m["summary"]["status"] in ("completed", "diverged"):
        wall += m["summary"]["wall_seconds"]
        threads.add(m["environment"]["threads"])
        n_runs += 1
        desc = m["data"]["description"]
print(f"| {rounds} rounds, mean ± std over seeds | setting (chosen on seed 1) | central test accuracy | writers, weighted mean (own test split) | writers, plain mean | worst 10% of writers | std over writers | test accuracy, last-quarter mean |")
print("|---|---|---|---|---|---|---|---|")
for algo in ["fedavg", "fedprox", "scaffold", "fedadam"]:
    c = next((x for x in chosen if x.startswith(algo + "_")), None)
    ms = [m for m in (load(f"{c}_s{k}") for k in range(1, seeds + 1)) if m is not None] if c else []
    done = [m for m in ms if m["summary"]["status"] == "completed"]
    if not done:
        print(f"| {titles[algo]} | {setting(c) if c else '-'} | " + " | ".join(["not run"] * 6) + " |")
        continue
    s = [m["summary"] for m in done]
    cols = [[x["final_test_accuracy"] for x in s],
            [x["final_client_accuracy"]["weighted_mean"] for x in s],
            [x["final_client_accuracy"]["mean"] for x in s],
            [x["final_client_accuracy"]["worst10"] for x in s],
            [x["final_client_accuracy"]["std"] for x in s],
            [late_acc(m) for m in done]]
    note = "" if len(done) == seeds else f" ({len(done)} of {seeds} seeds" + (f", {len(ms) - len(done)} diverged" if len(ms) > len(done) else "") + ")"
    print(f"| {titles[algo]}{note} | {setting(c)} | " + " | ".join(cell(v) for v in cols) + " |")
print()
print("Seed-1 grid (test accuracy in %, mean over the evaluations in the last quarter of the rounds; the chosen setting in bold):")
print()
print("| algorithm | setting | test accuracy, last quarter | final test accuracy | training loss, last quarter |")
print("|---|---|---|---|---|")
for algo in ["fedavg", "fedprox", "scaffold", "fedadam"]:
    for d in sorted(glob.glob(f"{runs}/{algo}_lr*_s1"), key=lambda d: (float(d.split("_lr")[1].split("_")[0]), d)):
        name = os.path.basename(d)[:-3]
        m = load(name + "_s1")
        if m is None:
            print(f"| {titles[algo]} | {setting(name)} | not run | not run | not run |")
            continue
        if m["summary"]["status"] != "completed":
            r = m["summary"].get("diverged_round")
            print(f"| {titles[algo]} | {setting(name)} | diverged (NaN in round {r}) | - | - |")
            continue
        loss = [r["train_loss"] for r in m["rounds"] if r.get("train_loss") is not None and r["round"] > 0.75 * rounds]
        b = "**" if name in chosen else ""
        print(f"| {titles[algo]} | {b}{setting(name)}{b} | {b}{late_acc(m) * 100:.1f}{b} | {m['summary']['final_test_accuracy'] * 100:.1f} | {sum(loss) / len(loss):.3f} |")
print()
print(f"_Generated by `scripts/femnist_subset_table.sh DATA --rounds {rounds} --seeds {seeds}`. Data: {desc.split(' from ')[0] if desc else 'LEAF femnist'} "
      f"(a SUBSET of LEAF FEMNIST, not LEAF's benchmark). Accuracy in % after round {rounds}, experiment.seed = 1..{seeds}; "
      f"\"central test accuracy\" pools every writer's LEAF test samples, so it equals the writers' weighted mean; worst 10%: the mean of the "
      f"lowest-scoring ⌈n/10⌉ writers. {n_runs} runs, {wall / 60:.0f} minutes of run time in all at {'/'.join(map(str, sorted(threads)))} thread(s) per run._")
PY
mv "$out/table.md.tmp" "$out/table.md"
cat "$out/table.md"
if [ "$failed" != 0 ]; then
  echo "femnist_subset_table: a run failed (see above); the table has the runs that finished and is in $out/table.md only" \
    "(docs/reproductions.md is left as it is)" >&2
  exit 1
fi
if [ "$rounds" = 150 ] && [ "$seeds" = 3 ]; then
  # A table of "not run" cells (--table-only with no runs) leaves the docs alone.
  if compgen -G "$runs/*/metrics.json" >/dev/null; then
    python3 "$FEDSIM_ROOT/scripts/doc_table.py" "$FEDSIM_ROOT/docs/reproductions.md" femnist-subset < "$out/table.md"
  else
    echo "femnist_subset_table: no run found in $runs; docs/reproductions.md is left as it is" >&2
  fi
fi
