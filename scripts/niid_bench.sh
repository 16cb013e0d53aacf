#!/usr/bin/env bash
# NIID-Bench (Li, Diao, Chen, He, ICDE 2022) on Fashion-MNIST: 10 clients, all
# taking part every round, 50 rounds, 10 local epochs, batch 64, SGD lr 0.01
# with momentum 0.9, the LeNet-style CNN (configs/niid_bench.json), for IID,
# Dirichlet 0.5 and #C=1/2/3 label skew, with FedAvg, FedProx (mu 0.01),
# SCAFFOLD and FedNova. SCAFFOLD runs in NIID-Bench's form
# (algorithm.scaffold_variant = niid_bench: momentum 0.9 like the others, the
# correction applied after each optimizer step, models averaged by sample
# count); --only scaffold-sgd runs the paper's form instead (plain local SGD,
# momentum 0), recorded as its own column, "SCAFFOLD, plain SGD".
# The full protocol processes 30 million samples per run: 32-33.5 minutes per
# run at 1 thread beside another (LeNet at ~25 GFLOP/s per thread, docs/performance.md);
# --rounds and --epochs shrink it (the table then says so).
# The table goes into OUT/table.md and, for the full protocol (50 rounds of 10
# epochs), into docs/reproductions.md (niid-bench markers);
# completed runs are skipped and an interrupted one continues from its checkpoint, and
# --table-only writes the table from the runs that exist ("-" for the others).
# Each completed run of the full protocol is recorded in
# docs/results/niid_bench/DATASET/r50_e10/ (summary, config and accuracy
# curve): the table is drawn from those records, and a cell recorded there is
# not run again, so commit them. A reduced protocol's records stay in
# OUT/DATASET/records/rRR_eEE/, out of the docs.
# --seeds S runs experiment.seed = 1..S for every cell (NIID-Bench reports means
# over 3 seeds; seed 1 lives in ALGO_PART/, seed k in ALGO_PART_sK/) and the
# table gives the mean over the seeds that exist. --jobs J runs J cells at once,
# each with --threads threads: on 2 quiet cores, --jobs 2 --threads 1 finishes
# a cell every ~16.5 minutes (all 20 cells in about 5.5 hours).
# --dataset cifar10 --data DIR runs the same protocol on CIFAR-10 (DIR: the
# extracted cifar-10-batches-bin folder) with NIID-Bench's simple-cnn
# (configs/niid_bench_cifar10.json: niid_cifar_cnn, weight decay 1e-5, inputs
# in [0, 1] unnormalised, reflect-padding-4 random crops and horizontal
# flips), for Dirichlet 0.5 and #C=2 unless --parts says otherwise; its runs
# live in OUT/cifar10/ and its table between the niid-bench-cifar10 markers.
# FedProx takes the mu NIID-Bench's leader board gives for each CIFAR-10 cell
# (0.001 on Dirichlet 0.5, 0.01 on #C=2; 0.01 wherever it gives none, as
# Flower's baseline); a run folder whose mu is not its cell's is moved to
# RUNS/aside/ and never recorded.
# A CIFAR-10 run processes 25 million samples: ~50 minutes at 1 thread on a
# quiet core (niid_cifar_cnn at ~8,000 samples/s, docs/performance.md).
# FEDSIM=path/to/fedsim uses that binary instead of building one here.
# Usage: scripts/niid_bench.sh [--dataset fmnist|cifar10] [--data DIR] [--parts "dir0.5 c2 ..."]
#                              [--rounds N] [--epochs E] [--only "fedavg ..."] [--out DIR] [--threads N]
#                              [--seeds S] [--jobs J] [--table-only]
set -euo pipefail
source "$(dirname "$0")/common.sh"

out="$FEDSIM_ROOT/runs/niid_bench"
dataset=fmnist
data=""
parts=""
threads=""
rounds=50
epochs=10
only="fedavg fedprox scaffold fednova"
table_only=0
seeds=1
jobs=1
usage="usage: $0 [--dataset fmnist|cifar10] [--data DIR] [--parts LIST] [--rounds N] [--epochs E] [--only \"ALGO...\"] [--out DIR] [--threads N] [--seeds S] [--jobs J] [--table-only]"
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds|--jobs|--out|--threads|--rounds|--epochs|--only|--dataset|--data|--parts)
      [ $# -ge 2 ] || { echo "niid_bench: $1 needs a value" >&2; echo "$usage" >&2; exit 2; } ;;&
    --dataset) dataset="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --parts) parts="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --table-only) table_only=1; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
for a in $only; do
  case "$a" in fedavg|fedprox|scaffold|fednova|scaffold-sgd) ;;
    *) echo "niid_bench: --only takes fedavg, fedprox, scaffold, fednova, scaffold-sgd (not '$a')" >&2; exit 2 ;;
  esac
done
case "$dataset" in
  fmnist) [ -n "$parts" ] || parts="iid dir0.5 c1 c2 c3"; config="$FEDSIM_ROOT/configs/niid_bench.json"; runs="$out" ;;
  cifar10)
    [ -n "$data" ] && [ -f "$data/test_batch.bin" ] ||
      { echo "niid_bench: --dataset cifar10 needs --data DIR, the folder holding data_batch_1.bin ... test_batch.bin" >&2; exit 2; }
    data="$(cd "$data" && pwd)"
    [ -n "$parts" ] || parts="dir0.5 c2"; config="$FEDSIM_ROOT/configs/niid_bench_cifar10.json"; runs="$out/cifar10" ;;
  *) echo "niid_bench: --dataset takes fmnist or cifar10 (not '$dataset')" >&2; exit 2 ;;
esac
for p in $parts; do
  case "$p" in iid|dir0.5|c1|c2|c3) ;;
    *) echo "niid_bench: --parts takes iid, dir0.5, c1, c2, c3 (not '$p')" >&2; exit 2 ;;
  esac
done
store="$FEDSIM_ROOT/docs/results/niid_bench/$dataset/r${rounds}_e${epochs}"
[ "$rounds" = 50 ] && [ "$epochs" = 10 ] || store="$runs/records/r${rounds}_e${epochs}"
# Each of the J cells running at once gets an equal share of the cores by default.
[ -n "$threads" ] || threads=$(( $(nproc) / jobs > 0 ? $(nproc) / jobs : 1 ))
for v in "$seeds" "$jobs" "$threads" "$rounds" "$epochs"; do
  [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "niid_bench: '$v' is not a positive integer" >&2; echo "$usage" >&2; exit 2; }
done

if [ -n "${FEDSIM:-}" ]; then
  [ -x "$FEDSIM" ] || { echo "niid_bench: FEDSIM=$FEDSIM is not an executable file" >&2; exit 2; }
  fedsim="$FEDSIM"
elif [ "$table_only" = 0 ]; then
  fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
  fedsim_build >/dev/null
  fedsim="$FEDSIM_BUILD/fedsim"
fi
data_set=()
[ -n "$data" ] && data_set=(--set data.path="$data")

declare -A part=(
  [iid]="--set data.partition.kind=iid"
  [dir0.5]="--set data.partition.kind=dirichlet --set data.partition.alpha=0.5"
  [c1]="--set data.partition.kind=labels --set data.partition.labels_per_client=1"
  [c2]="--set data.partition.kind=labels --set data.partition.labels_per_client=2"
  [c3]="--set data.partition.kind=labels --set data.partition.labels_per_client=3"
)
# FedProx's mu on partition $1: NIID-Bench's leader board (README.md of
# Xtra-Computing/NIID-Bench) ran CIFAR-10's Dirichlet 0.5 cell with 0.001 and
# its #C=2 cell with 0.01; elsewhere 0.01, as Flower's baseline.
prox_mu() {
  if [ "$dataset" = cifar10 ] && [ "$1" = dir0.5 ]; then echo 0.001; else echo 0.01; fi
}
# The partition of run folder $1 (ALGO_PART or ALGO_PART_sK).
folder_part() {
  local name="${1##*/}"
  name="${name#*_}"
  echo "${name%_s[0-9]*}"
}
# Records the completed run in directory $1 as $store/NAME.json (NAME: the
# run folder's name): the summary, config, model, data, partition and build of
# its metrics.json, and per round only the evaluation figures.
record_run() {
  mkdir -p "$store"
  python3 - "$1" "$store/$(basename "$1").json" "$(prox_mu "$(folder_part "$1")")" <<'PY'
import json, os, sys
src, dst, prox_mu = sys.argv[1], sys.argv[2], float(sys.argv[3])
m = json.load(open(f"{src}/metrics.json"))
if m.get("summary", {}).get("status") != "completed":
    sys.exit(0)
mu = m.get("config", {}).get("algorithm", {}).get("mu")
if os.path.basename(src).startswith("fedprox_") and (mu is None or abs(mu - prox_mu) > 1e-12 * prox_mu):
    print(f"niid_bench: {src} ran FedProx with mu = {mu}, not its cell's {prox_mu}; not recorded", file=sys.stderr)
    sys.exit(0)
# The "scaffold" cells are NIID-Bench's form; a run folder of the paper's form
# under that name (from the script before scaffold-sgd existed) is not one.
variant = m.get("config", {}).get("algorithm", {}).get("scaffold_variant", "paper")
name = os.path.basename(src)
if (name.startswith("scaffold_") and variant != "niid_bench") or (name.startswith("scaffold-sgd_") and variant != "paper"):
    print(f"niid_bench: {src} ran SCAFFOLD's {variant} form, which its folder name does not say; not recorded",
          file=sys.stderr)
    sys.exit(0)
keep = ("round", "test_accuracy", "test_loss", "train_loss", "wall_seconds", "stages")
rec = {k: m[k] for k in ("_build", "config", "model", "data", "partition", "summary") if k in m}
rec["rounds"] = [{k: r[k] for k in keep if k in r} for r in m.get("rounds", []) if r.get("test_accuracy") is not None]
rec["source"] = "scripts/niid_bench.sh, from " + os.path.basename(src) + "/metrics.json"
with open(dst + ".tmp", "w") as f:
    json.dump(rec, f, indent=1, sort_keys=True)
    f.write("\n")
os.replace(dst + ".tmp", dst)
PY
}
# summary.status of the run in directory $1 ("none" without metrics.json).
run_status() {
  [ -f "$1/metrics.json" ] || { echo none; return; }
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["summary"].get("status", "unknown"))' "$1/metrics.json"
}
# One cell: algorithm $1, partition $2, seed $3, into $4. An interrupted run
# continues from its checkpoint; a cell with no checkpoint starts afresh.
run_cell() {
  local extra="--set algorithm.name=${1%-sgd} --set experiment.seed=$3"
  # Each algorithm's own keys go with it: fedsim rejects a key the run does
  # not read, so the shared config holds none.
  [ "$1" = fedprox ] && extra="$extra --set algorithm.mu=$(prox_mu "$2")"
  [ "$1" = scaffold ] && extra="$extra --set algorithm.scaffold_variant=niid_bench"
  [ "$1" = scaffold-sgd ] && extra="$extra --set algorithm.momentum=0"
  if [ -f "$4/checkpoint.bin" ]; then
    echo "$(date +%T) resuming $1 on $2, seed $3" >&2
    "$fedsim" run --resume "$4" --threads "$threads" --quiet ||
      { echo "niid_bench: FAILED $1 on $2, seed $3 ($4)" >&2; return 1; }
    record_run "$4"
    return 0
  fi
  echo "$(date +%T) running $1 on $2, seed $3" >&2
  # shellcheck disable=SC2086
  "$fedsim" run "$config" $extra ${part[$2]} "${data_set[@]}" --set experiment.rounds="$rounds" \
    --set algorithm.local_epochs="$epochs" --threads "$threads" --quiet --out "$4" ||
    { echo "niid_bench: FAILED $1 on $2, seed $3 ($4)" >&2; return 1; }
  record_run "$4"
}
# The SCAFFOLD form a run folder's config holds ("none" without one).
run_form() {
  [ -f "$1/config.json" ] || { echo none; return; }
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["algorithm"].get("scaffold_variant", "paper"))' \
    "$1/config.json"
}
# A "scaffold" folder whose run is the paper's form (from the script before
# scaffold-sgd existed) is moved to the scaffold-sgd cell it is, or aside if
# that cell has a folder already, so it is neither resumed nor recorded as
# NIID-Bench's form; a "scaffold-sgd" folder of the other form is an error.
sort_scaffold_folder() {
  local dir="$1" form
  form="$(run_form "$dir")"
  case "$(basename "$dir")" in
    scaffold_*)
      if [ "$form" = paper ]; then
        local sgd="${dir%/*}/scaffold-sgd_${dir##*/scaffold_}"
        [ -e "$sgd" ] && sgd="$dir.paper-form"
        echo "niid_bench: $dir ran SCAFFOLD's paper form; moved to $sgd" >&2
        mv "$dir" "$sgd"
      fi ;;
    scaffold-sgd_*)
      if [ "$form" = niid_bench ]; then
        echo "niid_bench: $dir ran SCAFFOLD's niid_bench form, not the paper's; rename or remove it" >&2
        return 1
      fi ;;
  esac
}
# A "fedprox" folder whose mu is not its cell's (prox_mu) goes to
# RUNS/aside/NAME.muMU, so it is neither resumed nor recorded.
sort_fedprox_folder() {
  local dir="$1" mu want aside
  case "$(basename "$dir")" in fedprox_*) ;; *) return 0 ;; esac
  [ -f "$dir/config.json" ] || return 0
  want="$(prox_mu "$(folder_part "$dir")")"
  # Prints the folder's mu ("unreadable" for a broken config); exits 0 when it is the cell's.
  mu="$(python3 - "$dir/config.json" "$want" <<'PY'
import json, sys
try:
    mu = json.load(open(sys.argv[1])).get("algorithm", {}).get("mu")
except (OSError, ValueError, AttributeError):
    mu = "unreadable"
print(mu)
want = float(sys.argv[2])
sys.exit(0 if isinstance(mu, (int, float)) and abs(mu - want) <= 1e-12 * want else 1)
PY
)" && return 0
  mkdir -p "${dir%/*}/aside"
  aside="${dir%/*}/aside/${dir##*/}.mu$mu"
  local k=2
  while [ -e "$aside" ]; do aside="${dir%/*}/aside/${dir##*/}.mu$mu.$k"; k=$((k + 1)); done
  echo "niid_bench: $dir ran FedProx with mu = $mu, not this cell's $want; moved to $aside" >&2
  mv "$dir" "$aside"
}
failed=0
if [ "$table_only" = 0 ]; then
  running=0
  for a in $only; do
    for p in $parts; do
      for ((k = 1; k <= seeds; k++)); do
        dir="$runs/r${rounds}_e${epochs}/${a}_$p"
        [ "$k" -gt 1 ] && dir="${dir}_s$k"
        [ -f "$store/$(basename "$dir").json" ] && continue
        sort_scaffold_folder "$dir" || { failed=1; continue; }
        sort_fedprox_folder "$dir"
        [ "$(run_status "$dir")" = completed ] && { record_run "$dir"; continue; }
        if [ "$running" -ge "$jobs" ]; then
          wait -n || failed=1
          running=$((running - 1))
        fi
        run_cell "$a" "$p" "$k" "$dir" &
        running=$((running + 1))
      done
    done
  done
  while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
  done
fi

# The table always has all four columns and every seed found on disk, whatever
# --only and --seeds chose to run, so a partial rerun never drops results.
mkdir -p "$runs"
for dir in "$runs/r${rounds}_e${epochs}"/*_*/; do
  [ "$(run_status "$dir")" = completed ] && record_run "${dir%/}"
done
python3 - "$store" "$rounds" "$epochs" "$dataset" "$parts" <<'PY' > "$runs/table.md.tmp"
import glob, json, os, re, statistics, sys
out, rounds, epochs, dataset, parts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5].split()
algos = ["fedavg", "fedprox", "scaffold", "fednova"]
# SCAFFOLD's paper form (plain local SGD) gets a column of its own where it has records.
if glob.glob(f"{out}/scaffold-sgd_*.json"):
    algos.append("scaffold-sgd")
# Reference accuracies in %, Fashion-MNIST, the simple CNN, 10 clients, 50 rounds of 10 epochs.
# NIID-Bench (Li et al., ICDE 2022) Table III, mean over 3 runs: the FedAvg column as cited in fedsim's issue #8.
paper = {("fedavg", "iid"): 89.2, ("fedavg", "dir0.5"): 88.1, ("fedavg", "c2"): 78.1, ("fedavg", "c3"): 82.4}
# Flower's NIID-Bench baseline (adap/flower, baselines/niid_bench/README.md, "Expected Results"; one seed, 42):
# an independent re-implementation of the same protocol, with every algorithm and partition.
flower = {}
for a, vals in {"fedavg": (89.0, 88.4, 10.0, 81.0, 83.2), "scaffold": (89.5, 88.4, 10.0, 10.0, 84.2),
                "fedprox": (89.5, 88.6, 38.0, 78.8, 82.5), "fednova": (89.3, 88.1, 11.1, 70.5, 83.2)}.items():
    flower.update({(a, p): v for p, v in zip(["iid", "dir0.5", "c1", "c2", "c3"], vals)})
if dataset == "cifar10":
    # NIID-Bench's leader board (README.md of Xtra-Computing/NIID-Bench, "Leader Board", CIFAR-10, 10 parties,
    # simple-cnn, 50 rounds; mean of three runs; its FedAvg figures are Table III's, quoted in issue 24). Its
    # FedProx cells used mu = 0.001 (Dirichlet 0.5) and 0.01 (#C=2), as prox_mu does. Flower has no CIFAR-10 run.
    paper = {("fedavg", "dir0.5"): 68.2, ("fedprox", "dir0.5"): 67.9, ("scaffold", "dir0.5"): 69.8,
             ("fednova", "dir0.5"): 66.8, ("fedavg", "c2"): 49.8, ("fedprox", "c2"): 50.7,
             ("scaffold", "c2"): 49.1, ("fednova", "c2"): 46.5}
    flower = {}
    # Every partition run here or asked for, in the usual order.
    have = {re.sub(r"_s[0-9]+$", "", os.path.basename(d)[:-5]).split("_", 1)[1] for d in glob.glob(f"{out}/*_*.json")}
    parts = [p for p in ["iid", "dir0.5", "c1", "c2", "c3"] if p in parts or p in have]
else:
    parts = ["iid", "dir0.5", "c1", "c2", "c3"]
missing = "not run" if dataset == "cifar10" else "-"
names = {"iid": "IID", "dir0.5": "Dirichlet 0.5", "c1": "#C=1", "c2": "#C=2", "c3": "#C=3"}
titles = {"fedavg": "FedAvg", "fedprox": "FedProx", "scaffold": "SCAFFOLD", "fednova": "FedNova",
          "scaffold-sgd": "SCAFFOLD, plain SGD"}
def completed(d):
    """The summary of the completed run recorded as d.json, or None."""
    try:
        s = json.load(open(f"{d}.json"))["summary"]
    except (OSError, ValueError, KeyError):
        return None
    ok = s.get("status") == "completed" and s.get("final_test_accuracy") is not None
    return s if ok else None
def seed_runs(a, p):
    """The completed runs of algorithm a on partition p, seed 1 first."""
    dirs = [f"{out}/{a}_{p}"] + sorted(d[:-5] for d in glob.glob(f"{out}/{a}_{p}_s*.json") if re.search(r"_s[0-9]+\.json$", d))
    return [s for s in map(completed, dirs) if s is not None]
# Every cell's seed count is known before the first row, so that in a table
# where some cells have several seeds a one-seed cell says n=1.
max_n = max([len(seed_runs(a, p)) for a in algos for p in parts] + [0])
def cell(a, p):
    runs = seed_runs(a, p)
    if not runs:
        return missing
    final = [r["final_test_accuracy"] for r in runs]
    best = [r["best_test_accuracy"] for r in runs]
    if len(runs) == 1:
        return f"{final[0]:.4f} ({best[0]:.4f}" + ("; n=1)" if max_n > 1 else ")")
    return (f"{statistics.mean(final):.4f} ± {statistics.stdev(final):.4f} "
            f"({statistics.mean(best):.4f}; n={len(runs)})")
print("| partition | | " + " | ".join(titles.get(a, a) for a in algos) + " |")
print("|---|---|" + "---:|" * len(algos))
for p in parts:
    print(f"| {names[p]} | fedsim | " + " | ".join(cell(a, p) for a in algos) + " |")
    for label, ref in (("NIID-Bench paper", paper), ("Flower baseline", flower)):
        if dataset == "cifar10" and label == "Flower baseline":
            continue
        vals = [ref.get((a, p)) for a in algos]
        print(f"| | {label} | " + " | ".join(f"{v / 100:.3f}" if v is not None else "-" for v in vals) + " |")
print()
note = "" if (rounds, epochs) == (50, 10) else f" **Reduced protocol: {rounds} rounds of {epochs} local epochs (the paper: 50 of 10), so the numbers are not comparable with the published ones.**"
seed_note = ("one seed (experiment.seed = 1)" if max_n <= 1 else
             "with several seeds (experiment.seed = 1, 2, ...): mean ± standard deviation over the n completed, "
             "mean best in parentheses")
if dataset == "cifar10":
    print(f"_Generated by `scripts/niid_bench.sh --dataset cifar10 --data DIR --rounds {rounds} --epochs {epochs}" +
          (f" --seeds {max_n}" if max_n > 1 else "") +
          f"`: CIFAR-10 test accuracy after the last round (in parentheses the best of the evaluations every 5 rounds); {seed_note}; "
          f"the test set in the order of the data folder's test_batch.bin (accuracy does not depend on it); "
          f"NIID-Bench paper: the leader board of NIID-Bench's README, mean over 3 runs (its FedAvg figures are the "
          f"paper's Table III), FedProx there with mu 0.001 on Dirichlet 0.5 and 0.01 on #C=2 as here; "
          f"\"not run\": no completed run yet; \"-\": not quoted.{note}_")
else:
    print(f"_Generated by `scripts/niid_bench.sh --rounds {rounds} --epochs {epochs}" + (f" --seeds {max_n}" if max_n > 1 else "") +
          f"`: test accuracy after the last round (in parentheses the best of the evaluations every 5 rounds); {seed_note}; "
          f"NIID-Bench paper: its Table III, mean over 3 runs (only the FedAvg column is quoted here); Flower baseline: "
          f"one seed of Flower's re-implementation of the protocol; \"-\": not run or not quoted.{note}_")
PY
mv "$runs/table.md.tmp" "$runs/table.md"
cat "$runs/table.md"
# Only the full protocol's table goes into the docs; a reduced one stays in OUT/table.md.
# A table without a single fedsim figure (no runs and no records here, as for
# the Fashion-MNIST table, whose runs predate the records) leaves the docs alone.
if [ "$rounds" = 50 ] && [ "$epochs" = 10 ]; then
  marker=niid-bench
  [ "$dataset" = cifar10 ] && marker=niid-bench-cifar10
  if grep -q '^| [^|]* | fedsim | .*[0-9]\.[0-9]' "$runs/table.md"; then
    python3 "$FEDSIM_ROOT/scripts/doc_table.py" "$FEDSIM_ROOT/docs/reproductions.md" "$marker" < "$runs/table.md"
  else
    echo "niid_bench: no run or record of this table found; docs/reproductions.md left as it is" >&2
  fi
fi
[ "$failed" = 0 ] || { echo "niid_bench: a run failed (see the messages above); the table has the runs that finished" >&2; exit 1; }
