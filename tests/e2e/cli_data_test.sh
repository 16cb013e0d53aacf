# The real CLI on generated LEAF FEMNIST files and CIFAR-10 records:
# `fedsim data stats` (table and --json), `fedsim run` end to end, exit 2 on
# bad files naming the file and user or record.
source "$(dirname "$0")/lib.sh"

# LEAF FEMNIST layout: train/ in two files (users w2, w0 | w1), test/ in one
# (w0, w1, w2), plus hierarchies. w0 has 4 training samples, w1 2, w2 6;
# labels cycle 0..61 so each sample's label is known.
python3 - "$TMP/leaf" <<'PY' || fail "writing the LEAF files"
import json, os, sys
root = sys.argv[1]
for split in ("train", "test"):
    os.makedirs(f"{root}/{split}", exist_ok=True)
def user(n, first):
    xs = [[((first + i) * 5 + j) % 256 / 255 for j in range(784)] for i in range(n)]
    ys = [(first + i) % 62 for i in range(n)]
    return {"x": xs, "y": ys}
def dump(path, users):
    data = {"users": list(users), "num_samples": [len(u["y"]) for u in users.values()],
            "hierarchies": [], "user_data": users}
    json.dump(data, open(path, "w"))
dump(f"{root}/train/all_data_0_train.json", {"w2": user(6, 0), "w0": user(4, 10)})
dump(f"{root}/train/all_data_1_train.json", {"w1": user(2, 20)})
dump(f"{root}/test/all_data_0_test.json", {"w0": user(1, 30), "w1": user(1, 31), "w2": user(2, 32)})
PY
cat > "$TMP/leaf.json" <<JSON
{"experiment": {"name": "leaf_e2e", "rounds": 2},
 "data": {"dataset": "leaf", "path": "$TMP/leaf", "leaf": {"task": "femnist"}, "num_clients": 3,
          "partition": {"kind": "natural"}},
 "model": {"kind": "mlp", "hidden": [16]},
 "algorithm": {"name": "fedavg", "clients_per_round": 2, "batch_size": 2, "lr": 0.05}}
JSON

"$FEDSIM" data stats "$TMP/leaf.json" --json > "$TMP/stats.json" || fail "data stats --json exited $?"
python3 - "$TMP/stats.json" <<'PY' || fail "data stats --json content"
import json, sys
s = json.load(open(sys.argv[1]))
d, p = s["data"], s["partition"]
assert d["train_samples"] == 12 and d["test_samples"] == 4, d
assert d["num_features"] == 784 and d["num_classes"] == 62 and d["shape"] == [1, 28, 28], d
assert p["num_clients"] == 3
n = p["samples_per_client"]  # sizes 4, 2, 6 (w0, w1, w2)
assert (n["min"], n["median"], n["max"]) == (2, 4.0, 6), n
assert abs(n["p10"] - 2.4) < 1e-12 and abs(n["p90"] - 5.6) < 1e-12, n
# Gini of (2, 4, 6): sum |xi - xj| over ordered pairs = 16, / (2 * 9 * 4) = 2/9.
assert abs(n["gini"] - 2 / 9) < 1e-12, n
# Every label is distinct here: each client holds as many classes as samples.
assert p["labels_per_client"] == {"min": 2, "median": 4.0, "max": 6}, p["labels_per_client"]
t = p["test_samples_per_client"]
assert t == {"min": 1, "median": 1.0, "max": 2, "total": 4, "from": "test_set"}, t
PY

"$FEDSIM" data stats "$TMP/leaf.json" > "$TMP/stats.txt" || fail "data stats exited $?"
grep -q "^clients *3$" "$TMP/stats.txt" || fail "data stats table: no clients line: $(cat "$TMP/stats.txt")"
grep -q "min 2  p10 2.4  median 4.0  p90 5.6  max 6" "$TMP/stats.txt" || fail "data stats table: $(cat "$TMP/stats.txt")"

# client_test_fraction: half of each client's rows (2, 1, 3) become its test rows.
"$FEDSIM" data stats "$TMP/leaf.json" --json --set data.client_test_fraction=0.5 > "$TMP/split.json" ||
  fail "data stats with client_test_fraction"
python3 - "$TMP/split.json" <<'PY' || fail "client_test_fraction content"
import json, sys
p = json.load(open(sys.argv[1]))["partition"]
assert p["samples_per_client"]["min"] == 1 and p["samples_per_client"]["max"] == 3, p
assert p["test_samples_per_client"] == {"min": 1, "median": 2.0, "max": 3, "total": 6,
                                        "from": "client_test_fraction"}, p
PY

"$FEDSIM" run "$TMP/leaf.json" --out "$TMP/run" --quiet --threads 2 || fail "leaf run exited $?"
python3 - "$TMP/run" <<'PY' || fail "leaf run content"
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
assert m["data"]["train_samples"] == 12 and m["data"]["test_samples"] == 4, m["data"]
assert m["partition"]["num_clients"] == 3 and m["partition"]["test_samples_per_client"]["total"] == 4
assert len(m["rounds"]) == 2 and m["summary"]["status"] == "completed"
assert 0.0 <= m["summary"]["final_test_accuracy"] <= 1.0
PY

# The binary cache: `fedsim data convert`, then the same run reading the cache
# gives the same results; a damaged cache exits 2.
"$FEDSIM" data convert "$TMP/leaf.json" --out "$TMP/leaf.cache" > "$TMP/convert.txt" || fail "data convert exited $?"
grep -q "^wrote $TMP/leaf.cache" "$TMP/convert.txt" || fail "data convert output: $(cat "$TMP/convert.txt")"
"$FEDSIM" run "$TMP/leaf.json" --out "$TMP/runc" --quiet --threads 2 --set data.cache="$TMP/leaf.cache" ||
  fail "run from the cache exited $?"
python3 - "$TMP" <<'PY' || fail "run from the cache differs"
import json, os, sys
sys.path.insert(0, os.environ["E2E_DIR"])
from metrics_util import strip
d = sys.argv[1]
a, b = (json.load(open(f"{d}/{r}/metrics.json")) for r in ("run", "runc"))
assert strip(a["rounds"]) == strip(b["rounds"]) and a["partition"] == b["partition"]
assert b["data"]["description"].endswith("(from the cache " + d + "/leaf.cache)"), b["data"]["description"]
PY
python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' "$TMP/leaf.cache"
expect_error 2 "$TMP/leaf.cache: damaged" -- run "$TMP/leaf.json" --out "$TMP/runc2" --set data.cache="$TMP/leaf.cache"

# More clients than writers: exit 2 with the number of writers.
expect_error 2 "has 3 training users" -- run "$TMP/leaf.json" --out "$TMP/bad0" --set data.num_clients=4
# A user whose x and y differ in length, and malformed JSON: exit 2 naming file and user.
bad="$TMP/leaf/train/all_data_1_train.json"
cp "$bad" "$TMP/good.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["user_data"]["w1"]["y"].pop(); json.dump(d, open(sys.argv[1], "w"))' "$bad"
expect_error 2 "$bad: user \"w1\": x has 2 samples but y has 1" -- data stats "$TMP/leaf.json"
expect_error 2 "$bad: user \"w1\": x has 2 samples but y has 1" -- run "$TMP/leaf.json" --out "$TMP/bad1" --quiet
python3 -c 'import sys; s=open(sys.argv[1]).read(); open(sys.argv[2], "w").write(s.replace("\"y\": [", "\"y\": [,", 1))' \
  "$TMP/good.json" "$bad"
expect_error 2 "$bad: malformed JSON" -- run "$TMP/leaf.json" --out "$TMP/bad2" --quiet
rm "$bad"
cp "$TMP/good.json" "$TMP/leaf/train/all_data_1_train.json"

# Sent140 rows (LEAF's six fields, x[4] the tweet), a vocabulary built from
# the training tweets: good 3, so 3, bad 2, day 2, then "!", ",", sad once
# each: 7 words + the unknown id. An mlp on the word ids runs end to end.
python3 - "$TMP/s140" <<'PY' || fail "writing the Sent140 files"
import json, os, sys
root = sys.argv[1]
for s in ("train", "test"):
    os.makedirs(f"{root}/{s}")
def row(t):
    return ["1467810369", "Mon Apr 06 22:19:45 PDT 2009", "NO_QUERY", "someone", t, "training"]
train = {"users": ["b", "a"], "num_samples": [2, 2], "user_data": {
    "b": {"x": [row("good good day!"), row("bad day")], "y": [1, 0]},
    "a": {"x": [row("so good"), row("so bad, so sad")], "y": [1, 0]}}}
test = {"users": ["a"], "num_samples": [1], "user_data": {"a": {"x": [row("good day")], "y": [1]}}}
json.dump(train, open(f"{root}/train/t.json", "w"))
json.dump(test, open(f"{root}/test/t.json", "w"))
PY
cat > "$TMP/s140.json" <<JSON
{"experiment": {"name": "sent140_e2e", "rounds": 2},
 "data": {"dataset": "leaf", "path": "$TMP/s140", "leaf": {"task": "sent140", "seq_len": 4}, "num_clients": 2,
          "partition": {"kind": "natural"}},
 "model": {"kind": "mlp", "hidden": [8]},
 "algorithm": {"name": "fedavg", "clients_per_round": 2, "batch_size": 2, "lr": 0.05}}
JSON
"$FEDSIM" data stats "$TMP/s140.json" --json > "$TMP/s140_stats.json" || fail "sent140 data stats exited $?"
python3 - "$TMP/s140_stats.json" <<'PY' || fail "sent140 data stats content"
import json, sys
s = json.load(open(sys.argv[1]))
d, p = s["data"], s["partition"]
assert (d["vocab_size"], d["shape"], d["num_features"], d["num_classes"]) == (8, [4], 4, 2), d
assert (d["train_samples"], d["test_samples"], p["num_clients"]) == (4, 1, 2), (d, p)
assert "vocabulary 7 words + unknown" in d["description"], d["description"]
PY
"$FEDSIM" run "$TMP/s140.json" --out "$TMP/s140run" --quiet --threads 2 || fail "sent140 mlp run exited $?"
[ -f "$TMP/s140run/metrics.json" ] || fail "sent140 run: no metrics.json"

# CIFAR-10 binary records: 5 training batches of 4 images, a test batch of 4,
# a LeNet run over a Dirichlet partition; then a truncated batch.
write_cifar10 "$TMP/cifar" 4 || fail "writing the CIFAR files"
cat > "$TMP/cifar.json" <<JSON
{"experiment": {"name": "cifar_e2e", "rounds": 1},
 "data": {"dataset": "cifar10", "path": "$TMP/cifar", "num_clients": 2,
          "partition": {"kind": "dirichlet", "alpha": 0.5, "min_samples": 0}},
 "model": {"kind": "cnn_lenet"},
 "algorithm": {"name": "fedavg", "clients_per_round": 2, "batch_size": 4, "lr": 0.01}}
JSON
"$FEDSIM" run "$TMP/cifar.json" --out "$TMP/crun" --quiet --threads 2 || fail "cifar run exited $?"
python3 - "$TMP/crun" <<'PY' || fail "cifar run content"
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
assert m["data"]["train_samples"] == 20 and m["data"]["test_samples"] == 4 and m["data"]["num_features"] == 3072
assert m["partition"]["num_clients"] == 2
PY
# data.augment: random crops (zero padding 4) and flips; the same run on 1 and
# 2 threads, and not the run without augmentation.
for t in 1 2; do
  "$FEDSIM" run "$TMP/cifar.json" --out "$TMP/caug$t" --quiet --threads $t --set experiment.rounds=2 \
    --set data.augment.crop_padding=4 --set data.augment.flip=true || fail "augmented cifar run ($t threads)"
done
"$FEDSIM" run "$TMP/cifar.json" --out "$TMP/cplain" --quiet --threads 2 --set experiment.rounds=2 || fail "cifar run"
python3 - "$TMP" <<'PY' || fail "augmented runs"
import json, os, sys
sys.path.insert(0, os.environ["E2E_DIR"])
from metrics_util import strip
d = sys.argv[1]
a1, a2, plain = (json.load(open(f"{d}/{r}/metrics.json")) for r in ("caug1", "caug2", "cplain"))
assert strip(a1["rounds"]) == strip(a2["rounds"]), "augmentation depends on the thread count"
assert [r["train_loss"] for r in a1["rounds"]] != [r["train_loss"] for r in plain["rounds"]], "augmentation did nothing"
assert a1["config"]["data"]["augment"] == {"crop_padding": 4, "padding": "zero", "flip": True}
PY
expect_error 2 "data.augment" -- run "$TMP/cifar.json" --out "$TMP/cbad0" --set algorithm.name=fedsgd \
  --set data.augment.flip=true
expect_error 2 "data.augment: random crops and flips need image data" -- run "$TMP/s140.json" --out "$TMP/sbad" \
  --quiet --set data.augment.flip=true

head -c 5000 "$TMP/cifar/data_batch_2.bin" > "$TMP/short.bin" && mv "$TMP/short.bin" "$TMP/cifar/data_batch_2.bin"
expect_error 2 "$TMP/cifar/data_batch_2.bin: record 2 is truncated" -- run "$TMP/cifar.json" --out "$TMP/cbad" --quiet

finish
