# fedsim run with no config: the built-in default experiment, and the result
# files with their documented keys.
source "$(dirname "$0")/lib.sh"

"$FEDSIM" run --out "$TMP/run" --quiet --threads 2 || fail "default run exited $?"
[ -f "$TMP/run/metrics.json" ] || fail "no metrics.json"
[ -f "$TMP/run/config.json" ] || fail "no config.json"
[ "$(wc -l < "$TMP/run/rounds.jsonl")" -eq 20 ] || fail "rounds.jsonl does not have 20 lines"

python3 - "$TMP/run" <<'PY' || fail "metrics content"
import json, sys
d = sys.argv[1]
m = json.load(open(f"{d}/metrics.json"))
for k in ["config", "environment", "data", "model", "partition", "rounds", "summary"]:
    assert k in m, k
assert m["model"]["kind"] == "softmax" and m["model"]["num_params"] == 610
for k in ["num_clients", "samples_per_client", "labels_per_client", "mean_label_tv"]:
    assert k in m["partition"], k
assert m["partition"]["num_clients"] == 30
for k in ["threads", "compiler", "build_type", "version"]:
    assert k in m["environment"], k
rounds = [json.loads(l) for l in open(f"{d}/rounds.jsonl")]
assert rounds == m["rounds"]
for r in rounds:
    for k in ["round", "cohort", "train_loss", "test_loss", "test_accuracy", "bytes_up", "bytes_down", "wall_seconds"]:
        assert k in r, k
    assert 0.0 <= r["test_accuracy"] <= 1.0
assert [r["round"] for r in rounds] == list(range(1, 21))
assert rounds[-1]["bytes_up"] == 20 * 10 * 610 * 4
s = m["summary"]
for k in ["final_test_accuracy", "best_test_accuracy", "rounds_to_target", "bytes_up", "bytes_down", "wall_seconds"]:
    assert k in s, k
assert s["final_test_accuracy"] == rounds[-1]["test_accuracy"]
assert s["best_test_accuracy"] == max(r["test_accuracy"] for r in rounds)
assert s["rounds_to_target"] is None and s["status"] == "completed"
cfg = json.load(open(f"{d}/config.json"))
assert cfg == m["config"] and cfg["algorithm"]["local_epochs"] == 1
PY

# eval_every: unevaluated rounds carry null, the last round is always evaluated;
# rounds_to_target is the first evaluated round at or above the target.
"$FEDSIM" run --quiet --out "$TMP/ev" --set metrics.eval_every=3 --set experiment.rounds=7 \
  --set experiment.target_accuracy=0.5 || fail "eval_every run"
python3 - "$TMP/ev" <<'PY' || fail "eval_every content"
import json, sys
rounds = [json.loads(l) for l in open(f"{sys.argv[1]}/rounds.jsonl")]
evaluated = [r["round"] for r in rounds if r["test_accuracy"] is not None]
assert evaluated == [3, 6, 7], evaluated
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
first = next(r["round"] for r in rounds if r["test_accuracy"] is not None and r["test_accuracy"] >= 0.5)
assert m["summary"]["rounds_to_target"] == first
PY

# A real dataset from files: the Fashion-MNIST sample in datasets/.
"$FEDSIM" run "$SRC/configs/sample_fmnist.json" --set data.path="$SRC/datasets/fmnist-sample" \
  --out "$TMP/fm" --quiet || fail "sample_fmnist run"
python3 - "$TMP/fm" <<'PY' || fail "sample_fmnist content"
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
assert m["data"]["train_samples"] == 1000 and m["data"]["test_samples"] == 500
assert m["model"]["num_params"] == 784 * 64 + 64 + 64 * 10 + 10
assert m["summary"]["final_test_accuracy"] > 0.5, m["summary"]
PY

# Progress goes to stderr as plain lines when stderr is not a terminal.
"$FEDSIM" run --out "$TMP/p" --set experiment.rounds=3 2>"$TMP/progress" >/dev/null
[ "$(grep -c '^round ' "$TMP/progress")" -eq 3 ] || fail "expected 3 progress lines"
"$FEDSIM" run --out "$TMP/q" --quiet --set experiment.rounds=3 >"$TMP/qout" 2>&1
[ ! -s "$TMP/qout" ] || fail "--quiet printed: $(cat "$TMP/qout")"

finish
