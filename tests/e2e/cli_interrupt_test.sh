# SIGINT / SIGTERM / kill -9 during a run: a checkpoint, the metrics so far,
# exit 130 / 143, and --resume finishing with the metrics of an uninterrupted
# run (wall-clock fields aside).
source "$(dirname "$0")/lib.sh"

args=(run --quiet --threads 2 --set experiment.rounds=60 --set experiment.checkpoint_every=3
      --set model.kind=mlp --set model.hidden=[128] --set algorithm.name=scaffold)
"$FEDSIM" "${args[@]}" --out "$TMP/full" || fail "uninterrupted run"

# Waits until OUT/rounds.jsonl has at least N lines (at most ~20 s).
wait_rounds() {
  for _ in $(seq 1 400); do
    [ -f "$1/rounds.jsonl" ] && [ "$(wc -l < "$1/rounds.jsonl")" -ge "$2" ] && return 0
    sleep 0.05
  done
  return 1
}

compare() {
  python3 - "$1" "$2" <<'PY' || fail "resumed metrics differ from the uninterrupted run ($2)"
import json, os, sys
sys.path.insert(0, os.environ["E2E_DIR"])
from metrics_util import strip
a = strip(json.load(open(f"{sys.argv[1]}/metrics.json")))
b = strip(json.load(open(f"{sys.argv[2]}/metrics.json")))
assert a == b
lines = [json.loads(l) for l in open(f"{sys.argv[2]}/rounds.jsonl")]
assert [l["round"] for l in lines] == list(range(1, 61))
PY
}

for sig in INT TERM; do
  out="$TMP/$sig"
  "$FEDSIM" "${args[@]}" --out "$out" 2>"$TMP/$sig.err" &
  pid=$!
  wait_rounds "$out" 2 || fail "$sig: run produced no rounds"
  kill -s "$sig" "$pid"
  wait "$pid"
  rc=$?
  want=$([ "$sig" = INT ] && echo 130 || echo 143)
  [ "$rc" -eq "$want" ] || fail "SIG$sig: exit $rc, expected $want"
  grep -q "fedsim run --resume $out" "$TMP/$sig.err" || fail "SIG$sig: no resume hint: $(cat "$TMP/$sig.err")"
  [ -f "$out/checkpoint.bin" ] || fail "SIG$sig: no checkpoint"
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['summary']; assert s['status']=='interrupted', s" \
    "$out/metrics.json" || fail "SIG$sig: metrics.json does not say interrupted"
  "$FEDSIM" run --quiet --threads 1 --resume "$out" || fail "SIG$sig: resume failed"
  compare "$TMP/full" "$out"
done

# kill -9: no handler runs. Every line of rounds.jsonl still parses, and
# --resume continues from the last periodic checkpoint.
out="$TMP/KILL"
"$FEDSIM" "${args[@]}" --out "$out" &
pid=$!
wait_rounds "$out" 7 || fail "KILL: run produced no rounds"
kill -9 "$pid"
wait "$pid" 2>/dev/null
python3 -c "
import json, sys
for line in open(sys.argv[1]): json.loads(line)
" "$out/rounds.jsonl" || fail "KILL: rounds.jsonl has a broken line"
[ -f "$out/checkpoint.bin" ] || fail "KILL: no periodic checkpoint"
[ ! -f "$out/metrics.json" ] || fail "KILL: metrics.json exists for a killed run"
"$FEDSIM" run --quiet --resume "$out" || fail "KILL: resume failed"
compare "$TMP/full" "$out"

expect_error 2 "checkpoint.bin: cannot open checkpoint" -- run --resume "$TMP/nowhere"
expect_error 2 "--resume takes the run's output directory only" -- run --resume "$out" --set experiment.rounds=3

finish
