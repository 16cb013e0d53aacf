# The table scripts against hostile or unlucky input, run from a copy of
# scripts/, configs/ and docs/ (nothing is installed or built: the copy's
# fedsim_install and fedsim_build do nothing, and $FEDSIM stands in for the
# build): scripts/doc_table.py refusing an empty or header-only table and a
# missing page; an option without its value (exit 2); scripts/plot.py on
# bad files (exit 2, a message naming the file, no traceback); and
# scripts/compare_algorithms.sh resuming an interrupted run from its
# checkpoint, rerunning a run of another --rounds (moved aside) and keeping
# docs/algorithms.md out of a reduced comparison.
source "$(dirname "$0")/lib.sh"
R="$TMP/root"
mkdir -p "$R" "$TMP/build"
cp -r "$SRC/scripts" "$SRC/configs" "$SRC/docs" "$R/"
cat >>"$R/scripts/common.sh" <<'EOF'
# scripts_hostile_test: no installs, no builds; $FEDSIM_BUILD/fedsim is the fedsim under test.
fedsim_install() { return 0; }
fedsim_build() { return 0; }
EOF
ln -s "$FEDSIM" "$TMP/build/fedsim"
export FEDSIM_BUILD="$TMP/build"

# --- doc_table.py ------------------------------------------------------------
DOC="$TMP/page.md"
printf 'intro\n<!-- t:begin -->\n| a | b |\n|---|---|\n| 1 | 2 |\n<!-- t:end -->\nafter\n' >"$DOC"
cp "$DOC" "$TMP/page.orig"
doc_table() { python3 "$R/scripts/doc_table.py" "$@"; }
for input in "" "| a | b |\n|---|---:|\n" "| a | b |\n|---|---:|\n\n_note_\n" "no table here\n"; do
  # shellcheck disable=SC2059
  printf "$input" | doc_table "$DOC" t 2>"$TMP/err"
  rc=$?
  [ "$rc" -eq 1 ] || fail "doc_table.py on '$input': exit $rc, expected 1"
  grep -q "$DOC" "$TMP/err" && grep -q "table t" "$TMP/err" ||
    fail "doc_table.py on '$input': the message names neither the page nor the table: $(cat "$TMP/err")"
  cmp -s "$DOC" "$TMP/page.orig" || fail "doc_table.py on '$input' changed the page"
done
# A failed generator upstream: the pipe fails (pipefail) and the page stays.
if (set -o pipefail; python3 -c 'print("| a |"); print("|---|"); raise SystemExit(3)' | doc_table "$DOC" t 2>/dev/null); then
  fail "a failed generator piped into doc_table.py exited 0"
fi
cmp -s "$DOC" "$TMP/page.orig" || fail "a failed generator changed the page"
echo "| x |" | doc_table "$TMP/missing.md" t >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" -eq 2 ] || fail "doc_table.py on a missing page: exit $rc, expected 2"
grep -q "missing.md" "$TMP/err" && ! grep -q Traceback "$TMP/err" || fail "doc_table.py, missing page: $(cat "$TMP/err")"
printf '| a | b |\n|---|---|\n| 3 | 4 |\n' | doc_table "$DOC" t || fail "doc_table.py refused a table"
grep -q '^| 3 | 4 |$' "$DOC" && grep -q '^intro$' "$DOC" && grep -q '^after$' "$DOC" || fail "doc_table.py result: $(cat "$DOC")"

# --- an option without its value ----------------------------------------------
for case in paired_branches:--seeds pfl_table:--seeds qffl_table:--seeds compare_algorithms:--rounds \
  mcmahan:--target fedprox_stragglers:--out fl_vs_distributed:--threads async_table:--femnist; do
  script="${case%%:*}" opt="${case#*:}"
  bash "$R/scripts/$script.sh" "$opt" >/dev/null 2>"$TMP/err"
  rc=$?
  [ "$rc" -eq 2 ] || fail "$script.sh $opt: exit $rc, expected 2 ($(cat "$TMP/err"))"
  grep -q -- "$opt needs a value" "$TMP/err" || fail "$script.sh $opt: $(cat "$TMP/err")"
done

# --- plot.py on bad input -------------------------------------------------------
"$FEDSIM" run --quiet --threads 1 --set experiment.rounds=2 --set metrics.client_eval=all \
  --set data.client_test_fraction=0.2 --out "$TMP/p/run" || fail "the run for plot.py"
plot_bad() {  # WHAT WANT -- plot.py arguments: exit 2, WANT in the message, no traceback
  local what="$1" want="$2"
  shift 3
  python3 "$R/scripts/plot.py" "$@" --out "$TMP/p/out.png" >/dev/null 2>"$TMP/err"
  local rc=$?
  [ "$rc" -eq 2 ] || fail "plot.py, $what: exit $rc, expected 2: $(cat "$TMP/err")"
  grep -q Traceback "$TMP/err" && fail "plot.py, $what: a traceback: $(cat "$TMP/err")"
  grep -qF -- "$want" "$TMP/err" || fail "plot.py, $what: the message does not name '$want': $(cat "$TMP/err")"
}
cp -r "$TMP/p/run" "$TMP/p/utf8"
printf '{"round": 3, "test_accuracy": 0.5, "note": "\xff\xfe"}\n{"round": 4}\n' >>"$TMP/p/utf8/rounds.jsonl"
plot_bad "invalid UTF-8 in rounds.jsonl" "utf8/rounds.jsonl:3" -- "$TMP/p/utf8"
cp -r "$TMP/p/run" "$TMP/p/nobytes"
python3 - "$TMP/p/nobytes/rounds.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
del recs[1]["bytes_up"]
open(sys.argv[1], "w").write("".join(json.dumps(r) + "\n" for r in recs))
PY
plot_bad "a round without bytes_up, --x bytes" "nobytes/rounds.jsonl:2" -- "$TMP/p/nobytes" --x bytes
mkdir -p "$TMP/p/sweep"
echo '{"name": "a", "dir": 5, "status": "completed"}' >"$TMP/p/sweep/manifest.jsonl"
plot_bad "a manifest line with \"dir\": 5" "manifest.jsonl:1" -- "$TMP/p/sweep"
cp -r "$TMP/p/run" "$TMP/p/noround"
python3 - "$TMP/p/noround/clients.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
del rows[2]["round"]
open(sys.argv[1], "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
plot_bad "a clients.jsonl row without round" "noround/clients.jsonl:3" -- "$TMP/p/noround" --clients box

# --- compare_algorithms.sh: resume, stale runs, docs ---------------------------
# FedAvg on the Fashion-MNIST sample, 10 clients, a checkpoint every round.
python3 - "$R/configs/algorithms/fedavg.json" "$SRC/datasets/fmnist-sample" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["data"].update(path=sys.argv[2], num_clients=10)
c["experiment"]["checkpoint_every"] = 1
json.dump(c, open(sys.argv[1], "w"))
PY
O="$TMP/cmp"
ROUNDS=16
cfg="$R/configs/algorithms/fedavg.json"
# fedavg-iid: interrupted (SIGINT) after its first rounds, as the script would have run it.
for _ in 1 2 3; do
  rm -rf "$O/fedavg-iid"
  "$FEDSIM" run "$cfg" --set data.partition.kind=iid --set experiment.rounds=$ROUNDS --threads 1 --quiet \
    --out "$O/fedavg-iid" 2>/dev/null &
  pid=$!
  for _wait in $(seq 1 2000); do
    [ -s "$O/fedavg-iid/rounds.jsonl" ] && break
    sleep 0.01
  done
  kill -INT "$pid" 2>/dev/null
  wait "$pid"
  [ $? -eq 130 ] && break
done
python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["summary"]; assert s["status"] == "interrupted", s' \
  "$O/fedavg-iid/metrics.json" || fail "could not interrupt the fedavg-iid run"
[ -f "$O/fedavg-iid/checkpoint.bin" ] || fail "the interrupted run has no checkpoint"
done_before=$(wc -l <"$O/fedavg-iid/rounds.jsonl")
# fedavg-dir0.5: a completed run of another --rounds.
"$FEDSIM" run "$cfg" --set data.partition.kind=dirichlet --set data.partition.alpha=0.5 --set experiment.rounds=2 \
  --threads 1 --quiet --out "$O/fedavg-dir0.5" || fail "the 2-round run"
cmp_algos() { bash "$R/scripts/compare_algorithms.sh" --only fedavg --rounds $ROUNDS --threads 1 --out "$O"; }
cmp_algos >"$TMP/cmp1.out" 2>"$TMP/cmp1.err" || fail "compare_algorithms.sh exited $?: $(cat "$TMP/cmp1.err")"
grep -q "resuming fedavg on iid" "$TMP/cmp1.err" || fail "the interrupted run was not resumed: $(cat "$TMP/cmp1.err")"
grep -q "running fedavg on iid" "$TMP/cmp1.err" && fail "the interrupted run was run from the start"
grep -q "fedavg-dir0.5 holds a completed run of another config: experiment.rounds is 2" "$TMP/cmp1.err" ||
  fail "the 2-round run was not reported stale: $(cat "$TMP/cmp1.err")"
ls -d "$O"/fedavg-dir0.5.stale-* >/dev/null 2>&1 || fail "the 2-round run was not moved aside: $(ls "$O")"
python3 - "$O" "$ROUNDS" "$done_before" <<'PY' || fail "runs after compare_algorithms.sh"
import json, sys
out, rounds, before = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
assert 0 < before < rounds, before
for part in ["iid", "dir0.5", "dir0.1"]:
    m = json.load(open(f"{out}/fedavg-{part}/metrics.json"))
    assert m["summary"]["status"] == "completed", (part, m["summary"])
    assert m["config"]["experiment"]["rounds"] == rounds, part
    got = [json.loads(l)["round"] for l in open(f"{out}/fedavg-{part}/rounds.jsonl")]
    assert got == list(range(1, rounds + 1)), (part, got)
rows = [l for l in open(f"{out}/table.md") if l.startswith("| fedavg |")]
assert len(rows) == 3, rows
PY
cmp -s "$R/docs/algorithms.md" "$SRC/docs/algorithms.md" || fail "a reduced comparison (--only) changed docs/algorithms.md"
grep -q "table.md only" "$TMP/cmp1.err" || fail "no word that the docs were left alone: $(cat "$TMP/cmp1.err")"
# Again: every run is finished and of this config; nothing runs.
mt() { stat -c '%n %Y' "$O"/fedavg-*/metrics.json; }
mt >"$TMP/mt1"
cmp_algos >/dev/null 2>"$TMP/cmp2.err" || fail "rerun exited $?: $(cat "$TMP/cmp2.err")"
grep -q "running\|resuming\|moved it aside" "$TMP/cmp2.err" && fail "the rerun ran something: $(cat "$TMP/cmp2.err")"
mt | cmp -s - "$TMP/mt1" || fail "the rerun touched finished runs"

finish
