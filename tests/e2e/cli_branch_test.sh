# Branching a run (fedsim run CONFIG --from RUN/checkpoint.bin --out NEW):
# the branch starts at the checkpoint's round with the parent's records and
# state, may change what can change mid-run, refuses what cannot (exit 2
# naming the key), and a branch that changes nothing but the length equals
# the uninterrupted run.
source "$(dirname "$0")/lib.sh"

base=(run --quiet --threads 2 --set algorithm.clients_per_round=8)
"$FEDSIM" "${base[@]}" --set experiment.rounds=3 --out "$TMP/trunk" || fail "trunk run"
"$FEDSIM" "${base[@]}" --set experiment.rounds=6 --out "$TMP/whole" || fail "uninterrupted run"
"$FEDSIM" "${base[@]}" --set experiment.rounds=6 --from "$TMP/trunk/checkpoint.bin" --out "$TMP/same" ||
  fail "branch with only the length changed"
"$FEDSIM" "${base[@]}" --set experiment.rounds=6 --set algorithm.lr=0.2 --from "$TMP/trunk/checkpoint.bin" \
  --out "$TMP/lr" || fail "branch with another learning rate"
python3 - "$TMP" <<'PY' || fail "branch results"
import json, os, sys
sys.path.insert(0, os.environ["E2E_DIR"])
from metrics_util import strip
d = sys.argv[1]
load = lambda n: json.load(open(f"{d}/{n}/metrics.json"))
trunk, whole, same, lr = load("trunk"), load("whole"), load("same"), load("lr")
assert same["branch"]["round"] == 3 and same["branch"]["changed"] == ["experiment.rounds"], same["branch"]
assert strip(same["rounds"]) == strip(whole["rounds"])
assert strip(same["summary"]) == strip(whole["summary"])
assert lr["branch"]["changed"] == ["algorithm.lr", "experiment.rounds"], lr["branch"]
assert strip(lr["rounds"][:3]) == strip(trunk["rounds"]), "rounds before the branch point are the parent's"
assert lr["rounds"][3]["lr"] == 0.2 and lr["rounds"][5]["test_loss"] != whole["rounds"][5]["test_loss"]
lines = [json.loads(l) for l in open(f"{d}/lr/rounds.jsonl")]
assert [r["round"] for r in lines] == [1, 2, 3, 4, 5, 6]
PY
expect_error 2 "model.hidden cannot change" -- "${base[@]}" --set experiment.rounds=6 --set model.kind=mlp --set 'model.hidden=[8]' \
  --from "$TMP/trunk/checkpoint.bin" --out "$TMP/bad"
expect_error 2 "algorithm.name" -- "${base[@]}" --set algorithm.name=fedavgm --from "$TMP/trunk/checkpoint.bin" \
  --out "$TMP/bad"
expect_error 2 "not both" -- run --resume "$TMP/trunk" --from "$TMP/trunk/checkpoint.bin"
expect_error 2 "another --out" -- "${base[@]}" --from "$TMP/trunk/checkpoint.bin" --out "$TMP/trunk"
expect_error 2 "cannot open" -- "${base[@]}" --from "$TMP/nowhere/checkpoint.bin" --out "$TMP/bad"
finish
