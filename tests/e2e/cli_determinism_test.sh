# Same config and seed: identical metrics (wall-clock fields aside) for
# --threads 1 and --threads 2, and for two runs; a different seed differs.
source "$(dirname "$0")/lib.sh"

args=(run "$SRC/configs/sample_fmnist.json" --set data.path="$SRC/datasets/fmnist-sample" --quiet)
"$FEDSIM" "${args[@]}" --threads 1 --out "$TMP/t1" || fail "threads 1"
"$FEDSIM" "${args[@]}" --threads 2 --out "$TMP/t2" || fail "threads 2"
"$FEDSIM" "${args[@]}" --threads 2 --out "$TMP/t2b" || fail "threads 2 again"
"$FEDSIM" "${args[@]}" --threads 2 --out "$TMP/s2" --set experiment.seed=2 || fail "seed 2"

python3 - "$TMP" <<'PY' || fail "metrics differ"
import json, os, sys
sys.path.insert(0, os.environ["E2E_DIR"])
from metrics_util import strip
d = sys.argv[1]
load = lambda n: strip(json.load(open(f"{d}/{n}/metrics.json")))
lines = lambda n: [strip(json.loads(l)) for l in open(f"{d}/{n}/rounds.jsonl")]
a, b, c, s = load("t1"), load("t2"), load("t2b"), load("s2")
assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True), "threads 1 vs 2"
assert json.dumps(b, sort_keys=True) == json.dumps(c, sort_keys=True), "rerun"
assert lines("t1") == lines("t2")
assert a["summary"] != s["summary"], "seed had no effect"
PY

finish
