#!/usr/bin/env bash
# The attack x defence table of docs/robustness.md: FedAvg on the 2NN
# (configs/robustness_fmnist.json: Fashion-MNIST, 30,000 training samples
# over 100 IID clients, 20 per round, E = 1, B = 10, lr 0.05), 20% of the
# clients malicious, for every attack of attack.kind and every rule of
# robust.rule; then the backdoor reproduction (Sun et al. 2019: norm bounding
# and weak DP against a boosted backdoor, by 20% and by 3% of the clients). Each cell is the final test
# accuracy, and for the backdoor also the attack's success rate. Writes the
# tables into docs/robustness.md (between the "robustness-table" and
# "backdoor-table" markers) and OUT/table.md.
# --seeds N runs every selected cell with experiment.seed = 1..N (seed 1 is
# the config's); a cell with runs of several seeds shows their mean ± sample
# standard deviation (a single run, its value). --attacks and --rules
# (comma-separated names) select the cells to run; the table shows every
# cell from the runs OUT holds ("—": none), so a grid of seed 1 and the
# cells that carry a finding over 3 seeds make one table. The backdoor
# reproduction runs for every seed asked.
# Finished runs (OUT/<run>-r<rounds>[-s<seed>]/metrics.json, status
# "completed"; no suffix for seed 1) are reused (and diverged ones, which the
# table shows as such), so an interrupted table resumes. The config drops
# non-finite client updates (experiment.on_divergence = skip_clients) and
# counts them.
# Usage: scripts/robustness_table.sh [--rounds N] [--seeds N] [--attacks A,B] [--rules R,S] [--out DIR] [--threads N]
set -euo pipefail
source "$(dirname "$0")/common.sh"

rounds=30
seeds=1
only_attacks=""
only_rules=""
out="$FEDSIM_ROOT/runs/robustness"
threads="$(nproc)"
usage="usage: $0 [--rounds N] [--seeds N] [--attacks A,B] [--rules R,S] [--out DIR] [--threads N]"
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --attacks) only_attacks="$2"; shift 2 ;;
    --rules) only_rules="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
case "$rounds" in ''|*[!0-9]*|0) echo "$0: --rounds expects a positive integer, got '$rounds'" >&2; exit 2 ;; esac
case "$seeds" in ''|*[!0-9]*|0) echo "$0: --seeds expects a positive integer, got '$seeds'" >&2; exit 2 ;; esac

fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
cfg="$FEDSIM_ROOT/configs/robustness_fmnist.json"
mkdir -p "$out"

attacks=(
  "none|--set attack.kind=none --set attack.fraction=0"
  "sign_flip|--set attack.kind=sign_flip"
  "gaussian|--set attack.kind=gaussian --set attack.sigma=0.01"
  "alie|--set attack.kind=alie"
  "ipm|--set attack.kind=ipm --set attack.epsilon=0.1"
  "label_flip|--set attack.kind=label_flip --set attack.mapping=reverse"
  "backdoor|--set attack.kind=backdoor --set attack.boost=5"
)
defences=(
  "mean|--set robust.rule=mean"
  "median|--set robust.rule=median"
  "trimmed_mean|--set robust.rule=trimmed_mean"
  "krum|--set robust.rule=krum"
  "multikrum|--set robust.rule=multikrum"
  "bulyan|--set robust.rule=bulyan"
  "rfa|--set robust.rule=rfa"
  "centered_clipping|--set robust.rule=centered_clipping --set robust.clip_norm=1"
  "norm_bound|--set robust.rule=norm_bound --set robust.clip_norm=1"
)
# Sun et al. 2019: a boosted backdoor against the mean, norm bounding, and
# norm bounding with weak DP.
backdoor=(
  "bd-mean|--set attack.kind=backdoor --set attack.boost=10 --set robust.rule=mean"
  "bd-norm1|--set attack.kind=backdoor --set attack.boost=10 --set robust.rule=norm_bound --set robust.clip_norm=1"
  "bd-norm0.5|--set attack.kind=backdoor --set attack.boost=10 --set robust.rule=norm_bound --set robust.clip_norm=0.5"
  "bd-norm0.5-dp|--set attack.kind=backdoor --set attack.boost=10 --set robust.rule=norm_bound --set robust.clip_norm=0.5 --set robust.noise_std=0.001"
  "bd-norm0.5-dp3|--set attack.kind=backdoor --set attack.boost=10 --set robust.rule=norm_bound --set robust.clip_norm=0.5 --set robust.noise_std=0.003"
  "bd3-mean|--set attack.kind=backdoor --set attack.fraction=0.03 --set attack.boost=10 --set robust.rule=mean"
  "bd3-norm0.5|--set attack.kind=backdoor --set attack.fraction=0.03 --set attack.boost=10 --set robust.rule=norm_bound --set robust.clip_norm=0.5"
  "bd3-norm0.5-dp3|--set attack.kind=backdoor --set attack.fraction=0.03 --set attack.boost=10 --set robust.rule=norm_bound --set robust.clip_norm=0.5 --set robust.noise_std=0.003"
)

# selected LIST NAME: NAME is in the comma-separated LIST (an empty LIST selects all).
selected() { [ -z "$1" ] || case ",$1," in *",$2,"*) true ;; *) false ;; esac; }
for name in ${only_attacks//,/ }; do
  printf '%s\n' "${attacks[@]%%|*}" | grep -qx "$name" || { echo "$0: --attacks: no attack '$name'" >&2; exit 2; }
done
for name in ${only_rules//,/ }; do
  printf '%s\n' "${defences[@]%%|*}" | grep -qx "$name" || { echo "$0: --rules: no rule '$name'" >&2; exit 2; }
done

finished() {  # finished DIR: a run that completed or diverged (a diverged run is a result too)
  [ -f "$1/metrics.json" ] &&
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["summary"]["status"] not in ("completed", "diverged"))' \
      "$1/metrics.json"
}
run() {  # run NAME SEED OVERRIDES...
  local dir="$out/$1-r$rounds"
  [ "$2" -eq 1 ] || dir="$dir-s$2"
  local seed="$2"; shift 2
  finished "$dir" && return 0
  echo "running $(basename "$dir") ($*)" >&2
  local rc=0
  "$fedsim" run "$cfg" "$@" --set experiment.seed="$seed" --set experiment.rounds="$rounds" --threads "$threads" \
    --quiet --out "$dir" >/dev/null || rc=$?
  # Exit 3: the global model diverged; the table says so.
  [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || { echo "$0: run $(basename "$dir") failed (exit $rc)" >&2; exit 1; }
}
for seed in $(seq 1 "$seeds"); do
  for a in "${attacks[@]}"; do
    selected "$only_attacks" "${a%%|*}" || continue
    for d in "${defences[@]}"; do
      selected "$only_rules" "${d%%|*}" || continue
      # shellcheck disable=SC2086
      run "${a%%|*}-${d%%|*}" "$seed" ${a#*|} ${d#*|}
    done
  done
  for b in "${backdoor[@]}"; do
    # shellcheck disable=SC2086
    run "${b%%|*}" "$seed" ${b#*|}
  done
done

python3 - "$rounds" "$out" "$FEDSIM_ROOT/docs/robustness.md" "$out/table.md" <<'PY'
import glob, json, os, re, statistics, sys

rounds, out, doc, table_path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
attacks = ["none", "sign_flip", "gaussian", "alie", "ipm", "label_flip", "backdoor"]
defences = ["mean", "median", "trimmed_mean", "krum", "multikrum", "bulyan", "rfa", "centered_clipping", "norm_bound"]
def runs(name):
    """Every finished run of NAME in OUT, seed 1 (no suffix) first, then by seed."""
    dirs = [f"{out}/{name}-r{rounds}"] + sorted(glob.glob(f"{out}/{name}-r{rounds}-s*"),
                                                key=lambda d: int(d.rsplit("-s", 1)[1]))
    found = []
    for d in dirs:
        try:
            m = json.load(open(f"{d}/metrics.json"))
        except (OSError, ValueError):
            continue
        if m["summary"]["status"] in ("completed", "diverged"):
            found.append(m)
    return found
def stat(values, digits):
    """A value, or the mean ± sample standard deviation of several."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
def cell(ms):
    if not ms:
        return "—"
    diverged = [m["summary"] for m in ms if m["summary"]["status"] == "diverged"]
    if diverged:
        return f"diverged in {len(diverged)} of {len(ms)} (round {diverged[0]['diverged_round']})"
    acc = [m["summary"]["final_test_accuracy"] for m in ms]
    if any(a is None for a in acc):
        return "—"
    text = stat(acc, 3)
    bd = [m["summary"].get("final_backdoor_accuracy") for m in ms]
    if bd[0] is not None:
        text += " / " + stat(bd, 2)
    return text
lines = ["| attack \\ rule | " + " | ".join(defences) + " |", "|---|" + "---|" * len(defences)]
for a in attacks:
    lines.append(f"| {a} | " + " | ".join(cell(runs(f"{a}-{d}")) for d in defences) + " |")
main = "\n".join(lines)
bd_lines = ["| attackers | defence | seeds | final test acc | backdoor success | attackers per round |",
            "|---|---|---|---|---|---|"]
for name, label in [("bd-mean", "mean"), ("bd-norm1", "norm_bound M = 1"), ("bd-norm0.5", "norm_bound M = 0.5"),
                    ("bd-norm0.5-dp", "norm_bound M = 0.5, σ = 0.001"),
                    ("bd-norm0.5-dp3", "norm_bound M = 0.5, σ = 0.003"), ("bd3-mean", "mean"),
                    ("bd3-norm0.5", "norm_bound M = 0.5"), ("bd3-norm0.5-dp3", "norm_bound M = 0.5, σ = 0.003")]:
    ms = runs(name)
    if not ms:
        continue
    share = f"{ms[0]['attack']['count']}%"  # of 100 clients
    bad = statistics.mean(sum(r["robust"]["malicious"] for r in m["rounds"]) / len(m["rounds"]) for m in ms)
    diverged = [m["summary"] for m in ms if m["summary"]["status"] == "diverged"]
    if diverged:
        bd_lines.append(f"| {share} | {label} | {len(ms)} | diverged in {len(diverged)} | | {bad:.1f} |")
        continue
    acc = [m["summary"]["final_test_accuracy"] for m in ms]
    asr = [m["summary"]["final_backdoor_accuracy"] for m in ms]
    bd_lines.append(f"| {share} | {label} | {len(ms)} | {stat(acc, 3)} | {stat(asr, 3)} | {bad:.1f} |")
bd = "\n".join(bd_lines)
with open(table_path, "w") as f:
    f.write(main + "\n\n" + bd + "\n")
text = open(doc).read()
for marker, table in [("robustness-table", main), ("backdoor-table", bd)]:
    text = re.sub(rf"(<!-- {marker} -->\n).*?(\n<!-- /{marker} -->)", lambda mm: mm.group(1) + table + mm.group(2),
                  text, flags=re.S)
open(doc, "w").write(text)
print(main + "\n\n" + bd)
PY
