# The real CLI on TFF federated HDF5 files written by fedsim_h5_fixtures (the
# third argument; registered only with FEDSIM_HDF5): `fedsim data stats`, a
# run end to end with the LEAF Shakespeare LSTM, and exit 2 naming the file
# and dataset path for bad files.
source "$(dirname "$0")/lib.sh"
FIXTURES="$3"

"$FIXTURES" "$TMP/h5" || fail "fedsim_h5_fixtures exited $?"

config() {  # config NAME FOLDER TASK NUM_CLIENTS MODEL
  cat > "$TMP/$1.json" <<JSON
{"experiment": {"name": "$1", "rounds": 1},
 "data": {"dataset": "tff_h5", "path": "$TMP/h5/$2", "tff_h5": {"task": "$3"}, "num_clients": $4,
          "partition": {"kind": "natural"}},
 "model": $5,
 "algorithm": {"name": "fedavg", "clients_per_round": 2, "batch_size": 16, "lr": 0.1}}
JSON
}
config shakespeare shakespeare shakespeare 3 '{"kind": "leaf_shakespeare_lstm"}'
config emnist emnist emnist 2 '{"kind": "mlp", "hidden": [8]}'

"$FEDSIM" data stats "$TMP/shakespeare.json" --json > "$TMP/stats.json" || fail "data stats --json exited $?"
python3 - "$TMP/stats.json" <<'PY' || fail "data stats --json content"
import json, sys
s = json.load(open(sys.argv[1]))
d, p = s["data"], s["partition"]
# Train: a_role 5, b_role 13, c_role 101 next-character samples; test 2 + 3 + 3 (z_only: no client).
assert d["train_samples"] == 119 and d["test_samples"] == 8, d
assert d["num_classes"] == 90 and d["shape"] == [80], d
n = p["samples_per_client"]
assert p["num_clients"] == 3 and (n["min"], n["median"], n["max"]) == (5, 13.0, 101), p
assert p["test_samples_per_client"]["total"] == 5, p["test_samples_per_client"]
PY

"$FEDSIM" run "$TMP/shakespeare.json" --out "$TMP/run" --quiet --threads 2 --set metrics.client_eval=all ||
  fail "shakespeare run exited $?"
python3 - "$TMP/run" <<'PY' || fail "shakespeare run content"
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
assert m["data"]["train_samples"] == 119 and m["summary"]["status"] == "completed", m["summary"]
# Per-client evaluation on the clients' own test rows: a_role and c_role have some, b_role none.
assert m["rounds"][-1]["client_accuracy"]["clients"] == 2, m["rounds"][-1]["client_accuracy"]
PY
# The binary cache holds tff_h5 data too.
"$FEDSIM" data convert "$TMP/shakespeare.json" --out "$TMP/sh.cache" > /dev/null || fail "data convert exited $?"
"$FEDSIM" data stats "$TMP/shakespeare.json" --set data.cache="$TMP/sh.cache" --json > "$TMP/cached.json" ||
  fail "data stats from the cache exited $?"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))["data"]; assert d["train_samples"] == 119 and d["vocab_size"] == 90, d' \
  "$TMP/cached.json" || fail "data stats from the cache: content"
"$FEDSIM" run "$TMP/emnist.json" --out "$TMP/run_emnist" --quiet --threads 2 || fail "emnist run exited $?"

# Bad input: exit 2, the file and the dataset path named.
expect_error 2 "$TMP/h5/no_examples/shakespeare_train.h5: no group /examples" -- \
  run "$TMP/shakespeare.json" --set data.path="$TMP/h5/no_examples" --out "$TMP/bad1"
[ ! -e "$TMP/bad1/metrics.json" ] || fail "metrics.json written for a bad file"
expect_error 2 "$TMP/h5/no_field/shakespeare_train.h5: /examples/a_role/snippets: no such dataset" -- \
  data stats "$TMP/shakespeare.json" --set data.path="$TMP/h5/no_field"
expect_error 2 "$TMP/h5/bad_dtype/shakespeare_train.h5: /examples/a_role/snippets: not strings" -- \
  data stats "$TMP/shakespeare.json" --set data.path="$TMP/h5/bad_dtype"
expect_error 2 "$TMP/h5/bad_shape/fed_emnist_train.h5: /examples/f0000_00/pixels: shape [1, 28, 27], expected [n, 28, 28]" -- \
  data stats "$TMP/emnist.json" --set data.path="$TMP/h5/bad_shape"
expect_error 2 "data.tff_h5.train_file: $TMP/h5/emnist/shakespeare_train.h5: no such file" -- \
  data stats "$TMP/shakespeare.json" --set data.path="$TMP/h5/emnist"
expect_error 2 "data.num_clients: 4 clients but" -- data stats "$TMP/shakespeare.json" --set data.num_clients=4

# Next-token data: TFF's own Shakespeare framing (every step predicted) and
# StackOverflow next-word prediction, end to end with their presets.
"$FEDSIM" run "$TMP/shakespeare.json" --out "$TMP/run_steps" --quiet --threads 2 --set data.tff_h5.targets=every_step \
  --set metrics.client_eval=all || fail "shakespeare every_step run exited $?"
python3 - "$TMP/run_steps" <<'PY' || fail "shakespeare every_step run content"
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
# a_role 2 rows, b_role 1, c_role 2 (102 ids in rows of 81).
assert m["data"]["train_samples"] == 5 and m["summary"]["status"] == "completed", (m["data"], m["summary"])
assert "every step predicted" in m["data"]["description"], m["data"]["description"]
assert m["model"]["num_params"] == 820522, m["model"]
PY
config so stackoverflow stackoverflow 3 '{"kind": "tff_stackoverflow_lstm"}'
"$FEDSIM" run "$TMP/so.json" --out "$TMP/run_so" --quiet --threads 2 --set data.tff_h5.vocab_size=3 \
  --set metrics.client_eval=all || fail "stackoverflow run exited $?"
python3 - "$TMP/run_so" <<'PY' || fail "stackoverflow run content"
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
d = m["data"]
assert d["train_samples"] == 5 and d["test_samples"] == 2 and d["vocab_size"] == 7 and d["shape"] == [21], d
assert m["summary"]["status"] == "completed", m["summary"]
# Embedding 7 x 96, LSTM 670, dense 96, dense 7.
assert m["model"]["num_params"] == 7 * 96 + 4 * (670 * (96 + 670) + 670) + (670 * 96 + 96) + (96 * 7 + 7), m["model"]
acc = m["rounds"][-1]["test_accuracy"]
assert 0.0 <= acc <= 1.0, acc
PY
expect_error 2 "data.partition.kind: dirichlet splits the data by label" -- \
  run "$TMP/so.json" --set data.partition.kind=dirichlet --set data.tff_h5.vocab_size=3 --out "$TMP/bad_so1"
expect_error 2 "model.kind: mlp predicts one class per sample" -- \
  run "$TMP/so.json" --set model.kind=mlp --set 'model.hidden=[4]' --set data.tff_h5.vocab_size=3 --out "$TMP/bad_so2"
expect_error 2 "attack.kind: label_flip needs a label per sample" -- \
  run "$TMP/so.json" --set attack.kind=label_flip --set data.tff_h5.vocab_size=3 --out "$TMP/bad_so3"
[ ! -e "$TMP/bad_so1/metrics.json" ] && [ ! -e "$TMP/bad_so2/metrics.json" ] || fail "metrics.json written for a refused run"

finish
