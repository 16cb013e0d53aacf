# scripts/niid_bench.sh at the full protocol (50 rounds of 10 epochs) on a
# tiny CIFAR-10 folder, run from a copy of scripts/, configs/ and
# docs/reproductions.md (the script writes its records and its table there):
# seeds 1 and 2, FedProx's mu per cell, the mean ± std table beside the
# published figures, resuming (nothing recorded runs again), a run folder of
# the wrong mu set aside, a reduced protocol kept out of the docs, and a
# table with no runs leaving the docs alone.
source "$(dirname "$0")/lib.sh"
R="$TMP/root"
mkdir -p "$R/docs"
cp -r "$SRC/scripts" "$SRC/configs" "$R/"
cp "$SRC/docs/reproductions.md" "$R/docs/"
STORE="$R/docs/results/niid_bench/cifar10/r50_e10"
RUNS="$TMP/out/cifar10/r50_e10"

# Five training batches of 10 images and a test batch of 10, labels 0..9 in turn.
write_cifar10 "$TMP/cifar" 10 || fail "writing the CIFAR files"

nb() { FEDSIM="$FEDSIM" bash "$R/scripts/niid_bench.sh" --dataset cifar10 --data "$TMP/cifar" --jobs 2 --threads 1 \
  --out "$TMP/out" "$@"; }

nb --only "fedavg fedprox" --parts dir0.5 --seeds 2 >"$TMP/out1" 2>"$TMP/log1" ||
  fail "niid_bench exited $?: $(cat "$TMP/log1")"
python3 - "$STORE" "$R/docs/reproductions.md" <<'PY' || fail "records and table after seeds 1 and 2"
import json, os, statistics, sys
store, doc = sys.argv[1], open(sys.argv[2]).read()
names = ["fedavg_dir0.5", "fedavg_dir0.5_s2", "fedprox_dir0.5", "fedprox_dir0.5_s2"]
assert sorted(f for f in os.listdir(store) if f.endswith(".json")) == sorted(n + ".json" for n in names), os.listdir(store)
final = {}
for n in names:
    r = json.load(open(f"{store}/{n}.json"))
    c = r["config"]
    assert r["summary"]["status"] == "completed", (n, r["summary"])
    assert c["experiment"]["seed"] == (2 if n.endswith("_s2") else 1), (n, c["experiment"])
    assert (c["experiment"]["rounds"], c["algorithm"]["local_epochs"]) == (50, 10), n
    assert c["data"]["partition"]["kind"] == "dirichlet" and c["data"]["partition"]["alpha"] == 0.5, n
    assert c["algorithm"]["name"] == n.split("_")[0], n
    if n.startswith("fedprox"):
        assert c["algorithm"]["mu"] == 0.001, (n, c["algorithm"]["mu"])  # the leader board's mu on Dirichlet 0.5
    assert r["rounds"] and r["rounds"][-1]["round"] == 50, (n, r["rounds"][-1:])
    final[n] = r["summary"]["final_test_accuracy"]
section = doc.split("<!-- niid-bench-cifar10:begin -->")[1].split("<!-- niid-bench-cifar10:end -->")[0]
row = next(l for l in section.splitlines() if l.startswith("| Dirichlet 0.5 | fedsim |"))
cells = [c.strip() for c in row.strip("|").split("|")][2:]
for i, a in enumerate(["fedavg", "fedprox"]):
    v = [final[f"{a}_dir0.5"], final[f"{a}_dir0.5_s2"]]
    want = f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}"
    assert cells[i].startswith(want) and cells[i].endswith("; n=2)"), (a, cells[i], want)
assert cells[2] == "not run" and cells[3] == "not run", cells
assert "| | NIID-Bench paper | 0.682 | 0.679 | 0.698 | 0.668 |" in section, section
assert "--seeds 2" in section and "| #C=2 |" not in section, section
PY

# Rerunning the same command runs nothing: every cell is recorded (seed 1's
# FedAvg run folder is gone, so only its record keeps it from running).
rm -rf "$RUNS/fedavg_dir0.5"
nb --only "fedavg fedprox" --parts dir0.5 --seeds 2 >/dev/null 2>"$TMP/log2" || fail "rerun exited $?"
grep -q "running\|resuming" "$TMP/log2" && fail "the rerun ran a recorded cell: $(cat "$TMP/log2")"

# An interrupted cell continues from its checkpoint: seed 2's FedAvg run,
# unrecorded, is stopped by SIGTERM after two rounds; the script resumes it
# and records the accuracies of the uninterrupted run.
curve() { python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["summary"]["final_test_accuracy"], [x["test_accuracy"] for x in r["rounds"]])' "$1"; }
want="$(curve "$STORE/fedavg_dir0.5_s2.json")"
rm -rf "$RUNS/fedavg_dir0.5_s2" "$STORE/fedavg_dir0.5_s2.json"
nb --only fedavg --parts dir0.5 --seeds 2 >/dev/null 2>"$TMP/log2a" &
pid=$!
for _ in $(seq 1 1200); do
  [ -f "$RUNS/fedavg_dir0.5_s2/rounds.jsonl" ] && [ "$(wc -l < "$RUNS/fedavg_dir0.5_s2/rounds.jsonl")" -ge 2 ] && break
  sleep 0.05
done
# SIGTERM to the fedsim process writing that folder (found in /proc: no procps needed).
python3 - "$RUNS/fedavg_dir0.5_s2" <<'PY' || fail "no fedsim run to interrupt"
import os, signal, sys
hits = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        continue
    if b"--out" in args and os.fsencode(sys.argv[1]) in args and os.path.basename(args[0]) != b"bash":
        hits.append(int(pid))
for pid in hits:
    os.kill(pid, signal.SIGTERM)
sys.exit(0 if hits else 1)
PY
wait "$pid" && fail "the interrupted script exited 0"
python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["summary"]["status"]; assert s == "interrupted", s' \
  "$RUNS/fedavg_dir0.5_s2/metrics.json" || fail "the run was not interrupted"
[ -f "$STORE/fedavg_dir0.5_s2.json" ] && fail "an interrupted run was recorded"
nb --only fedavg --parts dir0.5 --seeds 2 >/dev/null 2>"$TMP/log2b" || fail "resume exited $?: $(cat "$TMP/log2b")"
grep -q "resuming fedavg on dir0.5, seed 2" "$TMP/log2b" || fail "the cell was not resumed: $(cat "$TMP/log2b")"
[ "$(curve "$STORE/fedavg_dir0.5_s2.json")" = "$want" ] || fail "the resumed run's accuracies differ from the uninterrupted run's"

# A FedProx folder of another mu in the #C=2 cell (Dirichlet 0.5's, mu 0.001;
# #C=2 takes 0.01) is set aside, and the cell runs afresh with its own mu.
cp -r "$RUNS/fedprox_dir0.5" "$RUNS/fedprox_c2"
nb --only fedprox --parts c2 >/dev/null 2>"$TMP/log3" || fail "fedprox on #C=2 exited $?: $(cat "$TMP/log3")"
grep -q "ran FedProx with mu = 0.001, not this cell's 0.01" "$TMP/log3" || fail "no message for the wrong mu: $(cat "$TMP/log3")"
[ -f "$RUNS/aside/fedprox_c2.mu0.001/metrics.json" ] || fail "the mu 0.001 folder was not moved aside: $(ls -R "$RUNS")"
python3 - "$STORE/fedprox_c2.json" "$R/docs/reproductions.md" <<'PY' || fail "the #C=2 FedProx record and cell"
import json, sys
c = json.load(open(sys.argv[1]))["config"]
assert c["algorithm"]["mu"] == 0.01, c["algorithm"]
assert c["data"]["partition"]["kind"] == "labels" and c["data"]["partition"]["labels_per_client"] == 2, c["data"]
# One seed in a table where other cells have two: the cell says n=1.
section = open(sys.argv[2]).read().split("<!-- niid-bench-cifar10:begin -->")[1].split("<!-- niid-bench-cifar10:end -->")[0]
row = next(l for l in section.splitlines() if l.startswith("| #C=2 | fedsim |"))
cells = [x.strip() for x in row.strip().strip("|").split("|")][2:]
assert cells[0] == "not run" and cells[1].endswith("; n=1)"), cells
PY

# A reduced protocol records in OUT and leaves the docs alone.
cp "$R/docs/reproductions.md" "$TMP/reproductions.full.md"
nb --only fedavg --parts c2 --rounds 1 --epochs 1 >"$TMP/out4" 2>"$TMP/log4" || fail "reduced run exited $?: $(cat "$TMP/log4")"
[ -f "$TMP/out/cifar10/records/r1_e1/fedavg_c2.json" ] || fail "no record of the reduced run in OUT"
[ -e "$R/docs/results/niid_bench/cifar10/r1_e1" ] && fail "a reduced run recorded into the docs"
cmp -s "$R/docs/reproductions.md" "$TMP/reproductions.full.md" || fail "a reduced run changed docs/reproductions.md"
grep -q "Reduced protocol: 1 rounds of 1 local epochs" "$TMP/out/cifar10/table.md" || fail "the reduced table does not say so"

# The Fashion-MNIST table with no run and no record here leaves the docs alone.
FEDSIM="$FEDSIM" bash "$R/scripts/niid_bench.sh" --table-only --out "$TMP/fout" >/dev/null 2>"$TMP/log5" ||
  fail "fmnist --table-only exited $?"
grep -q "left as it is" "$TMP/log5" || fail "no message for the empty table: $(cat "$TMP/log5")"
cmp -s "$R/docs/reproductions.md" "$TMP/reproductions.full.md" || fail "an empty table changed docs/reproductions.md"
finish
