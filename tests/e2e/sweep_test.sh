# scripts/sweep.sh: a 2x2 grid with 2 seeds on the default experiment, the
# manifest, resuming (nothing finished is rerun), stale and bad configs, a
# failing run, `fedsim compare` on the sweep, and scripts/plot.py.
source "$(dirname "$0")/lib.sh"
SWEEP="$SRC/scripts/sweep.sh"
S="$TMP/sweep"

sweep() { FEDSIM="$FEDSIM" bash "$SWEEP" "$@"; }

sweep default --grid algorithm.name=fedavg,fedprox --grid algorithm.lr=0.01,0.05 --seeds 2 \
  --set experiment.rounds=2 --jobs 2 --out "$S" 2>"$TMP/log1" || fail "sweep exited $?: $(cat "$TMP/log1")"
[ "$(find "$S" -mindepth 1 -maxdepth 1 -type d | wc -l)" -eq 8 ] || fail "expected 8 run dirs: $(ls "$S")"

python3 - "$S" <<'PY' || fail "sweep results and manifest"
import json, os, sys
s = sys.argv[1]
names = [f"algorithm.name={a}__algorithm.lr={lr}__seed={seed}"
         for a in ["fedavg", "fedprox"] for lr in ["0.01", "0.05"] for seed in [1, 2]]
assert sorted(d for d in os.listdir(s) if os.path.isdir(f"{s}/{d}")) == sorted(names), os.listdir(s)
lines = [json.loads(l) for l in open(f"{s}/manifest.jsonl")]
assert [l["name"] for l in lines] == names, [l["name"] for l in lines]
for l in lines:
    assert set(l) == {"name", "dir", "settings", "seed", "status"}, l
    assert l["status"] == "completed" and l["dir"] == l["name"], l
    m = json.load(open(f"{s}/{l['dir']}/metrics.json"))
    c = m["config"]
    assert m["summary"]["status"] == "completed"
    assert l["settings"] == {"algorithm.name": c["algorithm"]["name"], "algorithm.lr": c["algorithm"]["lr"]}, l
    assert isinstance(l["settings"]["algorithm.lr"], float)  # a JSON number, as fedsim --set reads it
    assert l["seed"] == c["experiment"]["seed"] and c["experiment"]["rounds"] == 2, l
    assert m["environment"]["threads"] == 1  # --jobs 2: one thread per run
PY

mtimes() { python3 -c 'import glob, os, sys; [print(f, os.stat(f).st_mtime_ns) for f in sorted(glob.glob(sys.argv[1] + "/*/metrics.json"))]' "$1"; }
mtimes "$S" >"$TMP/mtimes1"

# Rerun: everything is complete, nothing runs again.
sweep default --grid algorithm.name=fedavg,fedprox --grid algorithm.lr=0.01,0.05 --seeds 2 \
  --set experiment.rounds=2 --jobs 2 --out "$S" 2>"$TMP/log2" || fail "rerun exited $?: $(cat "$TMP/log2")"
mtimes "$S" >"$TMP/mtimes2"
cmp -s "$TMP/mtimes1" "$TMP/mtimes2" || fail "the rerun touched finished runs: $(diff "$TMP/mtimes1" "$TMP/mtimes2")"
grep -q "8 already completed, 0 to run " "$TMP/log2" || fail "rerun log: $(cat "$TMP/log2")"

# An interrupted sweep resumes: only the run without a completed metrics.json runs.
lost="algorithm.name=fedprox__algorithm.lr=0.05__seed=1"
rm "$S/$lost/metrics.json"
sweep default --grid algorithm.name=fedavg,fedprox --grid algorithm.lr=0.01,0.05 --seeds 2 \
  --set experiment.rounds=2 --out "$S" 2>"$TMP/log3" || fail "resume exited $?: $(cat "$TMP/log3")"
[ -f "$S/$lost/metrics.json" ] || fail "the missing run was not rerun"
mtimes "$S" | grep -v "$lost" >"$TMP/mtimes3"
grep -v "$lost" "$TMP/mtimes1" | cmp -s - "$TMP/mtimes3" || fail "resume touched other runs"
grep -q "7 already completed, 1 to run " "$TMP/log3" || fail "resume log: $(cat "$TMP/log3")"

# fedsim compare reads the sweep: 2 groups of 4 runs.
"$FEDSIM" compare "$S" --group-by algorithm.name >"$TMP/cmp.md" || fail "compare exited $?"
python3 - "$TMP/cmp.md" <<'PY' || fail "compare of the sweep: $(cat "$TMP/cmp.md")"
import sys
rows = [[c.strip() for c in l.strip().strip("|").split("|")] for l in open(sys.argv[1]).read().splitlines()[2:]]
assert [(r[0], r[1], r[2]) for r in rows] == [("fedavg", "4", "completed"), ("fedprox", "4", "completed")], rows
assert all("±" in r[3] for r in rows), rows
PY
[ "$("$FEDSIM" compare "$S" | wc -l)" -eq 10 ] || fail "compare without --group-by: expected 8 rows"

# A completed run whose config differs from what the sweep would give it is refused (exit 2).
out="$(sweep default --grid algorithm.name=fedavg,fedprox --grid algorithm.lr=0.01,0.05 --seeds 2 \
  --set experiment.rounds=3 --out "$S" 2>&1)"
rc=$?
[ "$rc" -eq 2 ] || fail "stale sweep: exit $rc, expected 2: $out"
case "$out" in *"experiment.rounds is 2, this sweep sets 3"*) ;; *) fail "stale sweep message: $out" ;; esac
mtimes "$S" | grep -v "$lost" | cmp -s - "$TMP/mtimes3" || fail "the refused sweep touched runs"

# A config fedsim rejects stops the sweep before any run (exit 2).
out="$(sweep default --grid algorithm.name=fedavg,nosuch --set experiment.rounds=2 --out "$TMP/bad" 2>&1)"
rc=$?
[ "$rc" -eq 2 ] || fail "bad grid value: exit $rc, expected 2: $out"
case "$out" in *"nosuch"*) ;; *) fail "bad grid value message: $out" ;; esac
[ ! -e "$TMP/bad" ] || fail "a rejected sweep created its output directory"
out="$(sweep default --grid algorithm.name --out "$TMP/bad" 2>&1)"
[ $? -eq 2 ] || fail "--grid without values: $out"
out="$(FEDSIM=/nonexistent bash "$SWEEP" default --grid algorithm.name=fedavg --out "$TMP/bad" 2>&1)"
[ $? -eq 2 ] || fail "FEDSIM=/nonexistent: $out"

# A run that fails (a missing data directory) does not stop the others; the
# sweep exits 1 and the manifest says which run failed, with its exit code.
F="$TMP/fail"
sweep "$SRC/configs/sample_fmnist.json" --grid "data.path=$SRC/datasets/fmnist-sample,$TMP/nowhere" \
  --set experiment.rounds=1 --out "$F" 2>"$TMP/log4"
rc=$?
[ "$rc" -eq 1 ] || fail "sweep with a failing run: exit $rc, expected 1: $(cat "$TMP/log4")"
python3 - "$F" <<'PY' || fail "manifest of the failing sweep: $(cat "$F/manifest.jsonl")"
import json, sys
lines = [json.loads(l) for l in open(f"{sys.argv[1]}/manifest.jsonl")]
assert [l["status"] for l in lines] == ["completed", "failed"], lines
assert lines[1]["exit"] == 2 and "nowhere" in lines[1]["name"] and "/" not in lines[1]["name"], lines[1]
PY
grep -q "FAILED (exit 2)" "$TMP/log4" || fail "the failure is not reported: $(cat "$TMP/log4")"
"$FEDSIM" compare "$F" >"$TMP/cmp_fail.md" || fail "compare of a sweep with a failed run exited $?"
grep -q "| failed" "$TMP/cmp_fail.md" || fail "compare does not show the failed run: $(cat "$TMP/cmp_fail.md")"

# scripts/plot.py: a PNG of the sweep, where matplotlib is installed.
if python3 -c 'import matplotlib' 2>/dev/null || /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  python3 "$SRC/scripts/plot.py" "$S" --group-by algorithm.name --x bytes --out "$TMP/p.png" >/dev/null 2>"$TMP/plot.err" ||
    fail "plot.py exited $?: $(cat "$TMP/plot.err")"
  [ "$(head -c 8 "$TMP/p.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "plot.py wrote no PNG"
  python3 "$SRC/scripts/plot.py" "$S" --x sim_time --out "$TMP/q.png" >/dev/null 2>"$TMP/plot2.err" ||
    fail "plot --x sim_time exited $?: $(cat "$TMP/plot2.err")"
  [ "$(head -c 8 "$TMP/q.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "plot --x sim_time wrote no PNG"
else
  echo "note: matplotlib is not installed; plot.py PNG checks skipped" >&2
fi
# Without matplotlib it says how to install it (a stand-in package that fails to import).
mkdir -p "$TMP/nompl/matplotlib" && echo 'raise ImportError("stand-in")' >"$TMP/nompl/matplotlib/__init__.py"
out="$(PYTHONPATH="$TMP/nompl" python3 "$SRC/scripts/plot.py" "$S" --out "$TMP/r.png" 2>&1)"
rc=$?
[ "$rc" -eq 1 ] || fail "plot.py without matplotlib: exit $rc, expected 1: $out"
case "$out" in *"apt-get install python3-matplotlib"*) ;; *) fail "plot.py without matplotlib: $out" ;; esac

finish
