#!/usr/bin/env bash
# Runs a grid of fedsim experiments: every combination of the --grid values,
# times seeds 1..N, each as
#   fedsim run BASE_CONFIG [--set ...] --set KEY=VALUE... --set experiment.seed=S --out DIR/<name>
# where <name> is built from the settings, e.g.
#   algorithm.name=fedavg__data.partition.alpha=0.1__seed=1
# Runs that already completed (DIR/<name>/metrics.json with status
# "completed") are skipped, and interrupted runs (status "interrupted", same
# config, a checkpoint.bin) continue with `fedsim run --resume`, so an
# interrupted sweep resumes where it stopped; other runs start from scratch.
# DIR/manifest.jsonl lists every run, one JSON object a line:
#   {"name", "dir" (relative to DIR), "settings": {KEY: VALUE}, "seed", "status"}
# with status pending, running, completed, diverged, interrupted or failed; it
# is rewritten as runs start and finish. `fedsim compare DIR` and
# `scripts/plot.py DIR` read it. Each run's output (progress, errors) goes to
# DIR/<name>/fedsim.log.
#
# Usage: scripts/sweep.sh BASE_CONFIG --grid KEY=V1,V2[,...] [--grid KEY=...]... [--seeds N]
#          [--out DIR] [--jobs N] [--threads N] [--set KEY=VALUE]...
#   BASE_CONFIG  a config file, or the word "default" for the built-in default experiment
#   --grid       a key path and its values, separated by commas (commas inside [] {} or "" do not split)
#   --seeds N    seeds 1..N for each combination (experiment.seed; default 1)
#   --out DIR    sweep directory (default runs/sweep-<config name>)
#   --jobs N     runs at once (default 1)
#   --threads N  fedsim --threads for each run (default: 1 when --jobs > 1, else all cores)
#   --set K=V    applied to every run, before the grid values
# Environment: FEDSIM, the fedsim binary to use (default build/fedsim, built if missing).
# Exit status: 0 when every run completed; 1 if any run failed, diverged or
# was interrupted (the others still run); 2 for bad arguments, a config that
# fedsim rejects (checked for every run before any starts), or a completed run
# in DIR whose config differs from the one it would get now; 130/143 when the
# sweep itself was interrupted by SIGINT/SIGTERM (running runs stop after their
# current round and are rerun next time).
set -uo pipefail
source "$(dirname "$0")/common.sh"

usage() {
  sed -n '/^# Usage:/,/^# Environment:/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}
die() {
  echo "sweep: $*" >&2
  exit 2
}

base=""
grids=()
user_sets=()
seeds=1
out=""
jobs=1
threads=""
while [ $# -gt 0 ]; do
  case "$1" in
    --grid) [ $# -ge 2 ] || usage; grids+=("$2"); shift 2 ;;
    --set) [ $# -ge 2 ] || usage; user_sets+=("$2"); shift 2 ;;
    --seeds) [ $# -ge 2 ] || usage; seeds="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
    --jobs) [ $# -ge 2 ] || usage; jobs="$2"; shift 2 ;;
    --threads) [ $# -ge 2 ] || usage; threads="$2"; shift 2 ;;
    -h | --help) usage 0 ;;
    -*) echo "sweep: unknown option $1" >&2; usage ;;
    *) [ -z "$base" ] || { echo "sweep: more than one BASE_CONFIG: $base, $1" >&2; usage; }; base="$1"; shift ;;
  esac
done
[ -n "$base" ] || { echo "sweep: BASE_CONFIG is required (a config file, or \"default\")" >&2; usage; }
[[ "$seeds" =~ ^[1-9][0-9]*$ ]] || die "--seeds $seeds: expected an integer >= 1"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs $jobs: expected an integer >= 1"
[ -z "$threads" ] || [[ "$threads" =~ ^[0-9]+$ ]] || die "--threads $threads: expected an integer >= 0"
if [ "${BASH_VERSINFO[0]}" -lt 5 ] || { [ "${BASH_VERSINFO[0]}" -eq 5 ] && [ "${BASH_VERSINFO[1]}" -lt 1 ]; }; then
  die "needs bash 5.1 or later (this is $BASH_VERSION)"
fi

base_args=()
if [ "$base" = default ] && [ ! -e default ]; then
  base_name=default
else
  [ -f "$base" ] || die "$base: no such config file"
  base_args=("$base")
  base_name="$(basename "$base" .json)"
fi
[ -n "$out" ] || out="runs/sweep-$base_name"

# The fedsim binary: $FEDSIM, or the build's (built if missing).
if [ -n "${FEDSIM:-}" ]; then
  [ -x "$FEDSIM" ] || die "FEDSIM=$FEDSIM is not an executable file"
  fedsim="$FEDSIM"
else
  fedsim="$FEDSIM_BUILD/fedsim"
  if [ ! -x "$fedsim" ]; then
    echo "sweep: $fedsim is missing; building it" >&2
    fedsim_install "${FEDSIM_BUILD_DEPS[@]}" || exit 1
    fedsim_build >/dev/null || exit 1
  fi
fi
command -v python3 >/dev/null || fedsim_install python3 || exit 1

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The plan: one line per run, tab-separated: name, seed, settings as JSON,
# then the grid's KEY=VALUE assignments.
python3 - "$seeds" "${grids[@]}" >"$tmp/plan" <<'PY' || exit 2
import itertools, json, re, sys

def die(msg):
    print(f"sweep: {msg}", file=sys.stderr)
    sys.exit(2)

def split_values(text):
    """Splits on commas that are not inside [], {} or a JSON string."""
    parts, cur, depth, in_str, esc = [], "", 0, False, False
    for ch in text:
        if in_str:
            cur += ch
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        cur += ch
    parts.append(cur)
    return parts

def value(text):
    # As fedsim --set reads it: JSON if it parses (NaN/Infinity do not), else a bare string.
    def reject(c):
        raise ValueError(c)
    try:
        return json.loads(text, parse_constant=reject)
    except ValueError:
        return text

seeds = int(sys.argv[1])
keys, values = [], []
for spec in sys.argv[2:]:
    key, sep, vals = spec.partition("=")
    if not sep or not key:
        die(f"--grid {spec}: expected KEY=V1,V2,...")
    if key in keys:
        die(f"--grid {key}: given twice")
    if key == "experiment.seed":
        die("--grid experiment.seed: use --seeds N (seeds 1..N) instead")
    vs = split_values(vals)
    if any(v == "" for v in vs):
        die(f"--grid {spec}: empty value")
    if any(c in v for v in vs for c in "\t\n\r"):
        die(f"--grid {key}: values cannot contain tabs or newlines")
    if len(set(vs)) != len(vs):
        die(f"--grid {spec}: a value is listed twice")
    keys.append(key)
    values.append(vs)

seen = {}
for combo in itertools.product(*values):
    for seed in range(1, seeds + 1):
        parts = [f"{k}={v}" for k, v in zip(keys, combo)] + [f"seed={seed}"]
        name = re.sub(r"[^A-Za-z0-9._=-]", "_", "__".join(parts))
        if name in seen:
            die(f"runs {seen[name]} and {' '.join(parts)} get the same directory name {name}")
        if len(name) > 200:
            die(f"run directory name too long ({len(name)} characters): {name}")
        seen[name] = " ".join(parts)
        settings = {k: value(v) for k, v in zip(keys, combo)}
        print("\t".join([name, str(seed), json.dumps(settings, separators=(",", ":"))] +
                        [f"{k}={v}" for k, v in zip(keys, combo)]))
PY

names=() seed_of=() settings_of=() grid_of=()
while IFS= read -r line; do
  IFS=$'\t' read -r -a f <<<"$line"
  names+=("${f[0]}")
  seed_of+=("${f[1]}")
  settings_of+=("${f[2]}")
  grid_of+=("$(printf '%s\t' "${f[@]:3}")")
done <"$tmp/plan"
n=${#names[@]}

# The --set arguments of run $1 (user's, grid's, seed), in the array `sets`.
run_sets() {
  local i="$1" kv grid
  sets=()
  for kv in "${user_sets[@]}"; do sets+=(--set "$kv"); done
  IFS=$'\t' read -r -a grid <<<"${grid_of[$i]}"
  for kv in "${grid[@]}"; do sets+=(--set "$kv"); done
  sets+=(--set "experiment.seed=${seed_of[$i]}")
}

# Every run's config is checked before any starts, and compared with the
# config of a completed run already in DIR.
mkdir -p "$tmp/cfg"
validate_cfg="$base"
if [ ${#base_args[@]} -eq 0 ]; then
  validate_cfg="$tmp/default.json"
  echo '{}' >"$validate_cfg"
fi
for ((i = 0; i < n; i++)); do
  run_sets "$i"
  if ! "$fedsim" validate "$validate_cfg" "${sets[@]}" --print >"$tmp/cfg/$i.json" 2>"$tmp/err"; then
    echo "sweep: run ${names[$i]}: $(cat "$tmp/err")" >&2
    exit 2
  fi
done
mkdir -p "$out" || die "cannot create $out"
python3 - "$out" "$tmp/cfg" "${names[@]}" >"$tmp/state" <<'PY' || exit 2
import json, os, sys
out, cfgdir, names = sys.argv[1], sys.argv[2], sys.argv[3:]

def first_difference(a, b, path=""):
    """A key path present in both configs with different values. Keys in only one are
    ignored: a newer fedsim may have added keys with their defaults."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) & set(b)):
            d = first_difference(a[k], b[k], f"{path}.{k}" if path else k)
            if d:
                return d
        return None
    return None if a == b else path

def get(c, path):
    for k in path.split("."):
        c = c[k]
    return json.dumps(c)

stale = []
for i, name in enumerate(names):
    state = "pending"
    try:
        with open(os.path.join(out, name, "metrics.json")) as f:
            m = json.load(f)
        with open(os.path.join(cfgdir, f"{i}.json")) as f:
            want = json.load(f)
        if m["summary"]["status"] == "completed":
            d = first_difference(m["config"], want)
            if d:
                stale.append(f"  {out}/{name}: {d} is {get(m['config'], d)}, this sweep sets {get(want, d)}")
            state = "completed"
        elif (m["summary"]["status"] == "interrupted" and m["config"] == want
              and os.path.exists(os.path.join(out, name, "checkpoint.bin"))):
            state = "resume"  # continue from its checkpoint (the same results as a full run)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no (readable) result: run it
    print(state)
if stale:
    print("sweep: these completed runs have a different config than this sweep would give them "
          "(BASE_CONFIG or --set changed?); remove them or use another --out:", file=sys.stderr)
    print("\n".join(stale), file=sys.stderr)
    sys.exit(2)
PY
mapfile -t status <"$tmp/state"
declare -A resume=()
for ((i = 0; i < n; i++)); do
  if [ "${status[$i]}" = resume ]; then
    resume[$i]=1
    status[i]=pending
  fi
done
exit_of=()

# Rewrites DIR/manifest.jsonl (through a temporary file and a rename).
write_manifest() {
  local i extra
  for ((i = 0; i < n; i++)); do
    extra=""
    [ -n "${exit_of[$i]:-}" ] && extra=",\"exit\":${exit_of[$i]}"
    printf '{"name":"%s","dir":"%s","settings":%s,"seed":%s,"status":"%s"%s}\n' "${names[$i]}" "${names[$i]}" \
      "${settings_of[$i]}" "${seed_of[$i]}" "${status[$i]}" "$extra"
  done >"$out/manifest.jsonl.tmp" && mv -f "$out/manifest.jsonl.tmp" "$out/manifest.jsonl"
}

# summary.status of a run's metrics.json, or nothing.
metrics_status() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["summary"]["status"])' "$1/metrics.json" 2>/dev/null
}

todo=()
for ((i = 0; i < n; i++)); do
  [ "${status[$i]}" = completed ] || todo+=("$i")
done
skipped=$((n - ${#todo[@]}))
echo "sweep: $n runs in $out ($skipped already completed, ${#todo[@]} to run (${#resume[@]} resumed from a checkpoint)," \
  "$jobs at a time)" >&2
write_manifest

thread_args=()
if [ -n "$threads" ]; then
  thread_args=(--threads "$threads")
elif [ "$jobs" -gt 1 ]; then
  thread_args=(--threads 1)
fi

declare -A run_of=() started_at=()
running=0
stop_signal=0
finished=0
# shellcheck disable=SC2317  # called by the traps below
on_signal() {
  stop_signal="$1"
  local pid
  echo "sweep: stopping: no new runs; the running ones stop after their current round" >&2
  for pid in "${!run_of[@]}"; do kill -TERM "$pid" 2>/dev/null; done
}
trap 'on_signal 2' INT
trap 'on_signal 15' TERM

launch() {
  local i="$1" dir="$out/${names[$1]}"
  run_sets "$i"
  mkdir -p "$dir"
  if [ -n "${resume[$i]:-}" ]; then
    # An interrupted run with the same config: continue it from its checkpoint.
    "$fedsim" run --resume "$dir" "${thread_args[@]}" >>"$dir/fedsim.log" 2>&1 &
  else
    "$fedsim" run "${base_args[@]}" "${sets[@]}" --out "$dir" "${thread_args[@]}" >"$dir/fedsim.log" 2>&1 &
  fi
  run_of[$!]="$i"
  started_at[$i]=$EPOCHREALTIME
  running=$((running + 1))
  status[i]=running
  write_manifest
}

finish() {
  local i="$1" rc="$2" dir="$out/${names[$1]}" st
  running=$((running - 1))
  finished=$((finished + 1))
  st="$(metrics_status "$dir")"
  if [ -n "$st" ]; then
    status[i]="$st"
  else
    status[i]=failed
  fi
  [ "$rc" -eq 0 ] && [ "$st" = completed ] || exit_of[i]="$rc"
  local msg
  msg="${status[$i]} in $(awk -v a="${started_at[$i]}" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
  if [ "${status[$i]}" != completed ]; then
    msg="${status[$i]^^} (exit $rc): $(grep -v '^round ' "$dir/fedsim.log" | tail -n 1); log: $dir/fedsim.log"
  fi
  echo "sweep: [$finished/${#todo[@]}] ${names[$i]}: $msg" >&2
  write_manifest
}

next=0
while :; do
  while [ "$stop_signal" -eq 0 ] && [ "$running" -lt "$jobs" ] && [ "$next" -lt "${#todo[@]}" ]; do
    launch "${todo[$next]}"
    next=$((next + 1))
  done
  [ "$running" -eq 0 ] && break
  done_pid=""
  wait -n -p done_pid
  rc=$?
  [ -n "${done_pid:-}" ] || continue  # a signal interrupted the wait (done_pid unset)
  finish "${run_of[$done_pid]}" "$rc"
  unset "run_of[$done_pid]"
done

completed=0
bad=()
for ((i = 0; i < n; i++)); do
  if [ "${status[$i]}" = completed ]; then completed=$((completed + 1)); else bad+=("${names[$i]} (${status[$i]})"); fi
done
echo "sweep: $completed of $n runs completed; manifest: $out/manifest.jsonl" >&2
if [ "$stop_signal" -ne 0 ]; then
  echo "sweep: interrupted; run the same command again to finish the remaining runs" >&2
  exit $((128 + stop_signal))
fi
if [ ${#bad[@]} -gt 0 ]; then
  printf 'sweep: not completed: %s\n' "${bad[@]}" >&2
  exit 1
fi
exit 0
