# fedsim compare: two tiny real runs compared side by side; the table's numbers
# are checked against python3's reading of their metrics.json files.
source "$(dirname "$0")/lib.sh"

"$FEDSIM" run --quiet --out "$TMP/s1" --set experiment.rounds=2 --set experiment.seed=1 || fail "run seed 1 exited $?"
"$FEDSIM" run --quiet --out "$TMP/s2" --set experiment.rounds=2 --set experiment.seed=2 || fail "run seed 2 exited $?"

# One row per run (markdown).
"$FEDSIM" compare "$TMP/s1" "$TMP/s2" >"$TMP/table.md" || fail "compare exited $?"
python3 - "$TMP" <<'PY' || fail "markdown table content: $(cat "$TMP/table.md")"
import json, sys
d = sys.argv[1]
lines = open(f"{d}/table.md").read().splitlines()
cells = [[c.strip() for c in l.strip().strip("|").split("|")] for l in lines]
header = cells[0]
assert header == ["run", "n", "status", "final acc", "best acc", "MB up", "MB down", "simulated s", "wall s"], header
assert set(lines[1]) <= set("|-: "), lines[1]
rows = cells[2:]
assert [r[0] for r in rows] == [f"{d}/s1", f"{d}/s2"], rows

def mb(b):
    mb = b / 1e6
    return f"{mb:.3f}" if mb < 1 else f"{mb:.2f}" if mb < 100 else f"{mb:.1f}"

for name, row in zip(["s1", "s2"], rows):
    s = json.load(open(f"{d}/{name}/metrics.json"))["summary"]
    want = ["1", "completed", f"{s['final_test_accuracy']:.4f}", f"{s['best_test_accuracy']:.4f}",
            mb(s["bytes_up"]), mb(s["bytes_down"]), f"{s['sim_time_s']:.1f}", f"{s['wall_seconds']:.2f}"]
    assert row[1:] == want, (row, want)
PY

# Grouped: one row, n = 2, mean ± sample std; CSV with full precision.
"$FEDSIM" compare "$TMP/s1" "$TMP/s2" --group-by algorithm.name --csv --target 0.5 >"$TMP/table.csv" ||
  fail "compare --csv exited $?"
"$FEDSIM" compare "$TMP/s1/" "$TMP/s2" --group-by algorithm.name --group-by model.kind >"$TMP/group.md" ||
  fail "compare --group-by exited $?"
python3 - "$TMP" <<'PY' || fail "grouped content: $(cat "$TMP/table.csv" "$TMP/group.md")"
import csv, json, statistics, sys
d = sys.argv[1]
ms = [json.load(open(f"{d}/{n}/metrics.json")) for n in ["s1", "s2"]]
rows = list(csv.DictReader(open(f"{d}/table.csv")))
assert len(rows) == 1, rows
r = rows[0]
assert r["algorithm.name"] == "fedavg" and r["n"] == "2" and r["completed"] == "2" and r["status"] == "completed", r

def close(text, want):
    assert abs(float(text) - want) <= 1e-12 * max(1, abs(want)), (text, want)

for col, key in [("final_acc", "final_test_accuracy"), ("best_acc", "best_test_accuracy")]:
    v = [m["summary"][key] for m in ms]
    close(r[f"{col}_mean"], statistics.mean(v))
    close(r[f"{col}_std"], statistics.stdev(v))
close(r["mb_up"], statistics.mean(m["summary"]["bytes_up"] / 1e6 for m in ms))
close(r["mb_down"], statistics.mean(m["summary"]["bytes_down"] / 1e6 for m in ms))
close(r["wall_seconds"], statistics.mean(m["summary"]["wall_seconds"] for m in ms))
close(r["sim_seconds"], statistics.mean(m["summary"]["sim_time_s"] for m in ms))
assert r["kind"] == "federated", r
assert r["epsilon"] == "", r
# --target 0.5: the first round whose test accuracy is >= 0.5, for the runs that reach it.
reached = [next((x["round"] for x in m["rounds"] if x["test_accuracy"] is not None and x["test_accuracy"] >= 0.5), None)
           for m in ms]
hits = [x for x in reached if x is not None]
assert r["target_runs"] == "2" and r["rounds_to_target_reached"] == str(len(hits)), (r, reached)
if hits:
    close(r["rounds_to_target_mean"], statistics.mean(hits))

lines = open(f"{d}/group.md").read().splitlines()
assert len(lines) == 3, lines
cells = [c.strip() for c in lines[2].strip().strip("|").split("|")]
assert cells[:4] == ["fedavg", "softmax", "2", "completed"], cells
v = [m["summary"]["final_test_accuracy"] for m in ms]
assert cells[4] == f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}", (cells, v)
PY

# A baseline beside a federated run: a kind column, epochs marked, the baseline's own sim time.
"$FEDSIM" run --quiet --out "$TMP/dp" --set baseline.kind=data_parallel --set baseline.epochs=2 \
  --set baseline.workers=3 --set experiment.target_accuracy=0.3 || fail "data_parallel baseline exited $?"
"$FEDSIM" compare "$TMP/s1" "$TMP/dp" >"$TMP/mixed.md" || fail "compare with a baseline exited $?"
python3 - "$TMP" <<'PY' || fail "baseline comparison: $(cat "$TMP/mixed.md")"
import json, sys
d = sys.argv[1]
lines = open(f"{d}/mixed.md").read().splitlines()
cells = [[c.strip() for c in l.strip().strip("|").split("|")] for l in lines]
assert cells[0][:2] == ["run", "kind"], cells[0]
assert cells[2][1] == "federated" and cells[3][1] == "data_parallel", cells
m = json.load(open(f"{d}/dp/metrics.json"))
s = m["summary"]
assert len(m["rounds"]) == 2 and [r["epoch"] for r in m["rounds"]] == [1, 2], m["rounds"]
sim = cells[0].index("simulated s")
assert cells[3][sim] == f"{s['sim_time_s']:.1f}", (cells[3], s)
rt = cells[0].index("rounds to 0.3")
assert cells[3][rt] == f"{s['rounds_to_target']} ep", (cells[3], s)
# Ring all-reduce over 3 workers: 2 * (3 - 1) * model bytes per step, summed over workers.
p = m["model"]["num_params"]
assert s["bytes_up"] == s["steps"] * 2 * 2 * 4 * p, s
PY
# A baseline checkpoints like a federated run: resuming a finished run
# changes nothing.
cp "$TMP/dp/metrics.json" "$TMP/dp_before.json"
"$FEDSIM" run --resume "$TMP/dp" >/dev/null 2>&1 || fail "resume of a finished baseline run failed"
python3 - "$TMP/dp_before.json" "$TMP/dp/metrics.json" <<'PY' || fail "a resumed finished baseline run changed its results"
import json, sys
sys.path.insert(0, __import__("os").environ["E2E_DIR"])
from metrics_util import strip
a, b = (strip(json.load(open(p))) for p in sys.argv[1:])
assert a == b
PY

# Bad input exits 2 and names the path or the key.
expect_error 2 "$TMP/nope" -- compare "$TMP/s1" "$TMP/nope"
mkdir -p "$TMP/bad" && echo '{"summary": ' >"$TMP/bad/metrics.json"
expect_error 2 "$TMP/bad/metrics.json" -- compare "$TMP/bad"
mkdir -p "$TMP/empty"
expect_error 2 "$TMP/empty" -- compare "$TMP/empty"
expect_error 2 "algorithm.nmae" -- compare "$TMP/s1" --group-by algorithm.nmae
expect_error 2 "--target" -- compare "$TMP/s1" --target 1.5
expect_error 2 "required" -- compare

finish
