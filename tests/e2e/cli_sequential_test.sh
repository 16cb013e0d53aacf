# model.kind=sequential end to end through the real CLI: FedAvg with a small
# CNN described in model.layers on the Fashion-MNIST sample (IDX images,
# shape 1 x 28 x 28), a preset on CSV rows given an image shape, and spec
# errors that stop with exit 2 naming the entry and field.
source "$(dirname "$0")/lib.sh"

SAMPLE="$SRC/datasets/fmnist-sample"
cat > "$TMP/cnn.json" <<JSON
{
  "experiment": {"rounds": 3, "seed": 3},
  "data": {"dataset": "mnist_idx", "path": "$SAMPLE", "num_clients": 6, "max_train_samples": 300,
           "max_test_samples": 200, "partition": {"kind": "iid"}},
  "model": {"kind": "sequential", "layers": [
    {"type": "conv2d", "filters": 8, "kernel": 5, "padding": "same"}, {"type": "relu"},
    {"type": "maxpool2d", "kernel": 2},
    {"type": "conv2d", "filters": 8, "kernel": 3, "groups": 2}, {"type": "groupnorm", "groups": 2}, {"type": "relu"},
    {"type": "maxpool2d", "kernel": 2},
    {"type": "dropout", "rate": 0.25},
    {"type": "flatten"}, {"type": "dense", "units": 32}, {"type": "relu"}, {"type": "dense"}]},
  "algorithm": {"name": "fedavg", "clients_per_round": 3, "batch_size": 10, "lr": 0.05}
}
JSON
"$FEDSIM" validate "$TMP/cnn.json" >/dev/null || fail "validate of the sequential config"
"$FEDSIM" run "$TMP/cnn.json" --out "$TMP/a" --quiet --threads 1 || fail "sequential run exited $?"
"$FEDSIM" run "$TMP/cnn.json" --out "$TMP/b" --quiet --threads 2 || fail "sequential run (2 threads) exited $?"
python3 - "$TMP/a" "$TMP/b" <<'PY' || fail "sequential run's metrics"
import json, os, sys
sys.path.insert(0, os.environ["E2E_DIR"])
from metrics_util import strip
a = json.load(open(sys.argv[1] + "/metrics.json"))
b = json.load(open(sys.argv[2] + "/metrics.json"))
assert a["summary"]["status"] == "completed", a["summary"]
m = a["model"]
assert m["kind"] == "sequential", m
# conv 5x5x8 208, grouped conv 3x3 (2 groups of 4 -> 4) 296, groupnorm 16,
# dense 8*6*6 -> 32 9,248, dense 32 -> 10 330.
assert m["num_params"] == 208 + 296 + 16 + 9248 + 330, m
assert "groupnorm" in m["description"], m["description"]
assert len(a["rounds"]) == 3
assert all(r["test_loss"] == r["test_loss"] for r in a["rounds"])
assert strip(a) == strip(b), "1 and 2 threads differ"
PY

# A preset on CSV rows with model.input_shape: niid_cifar_cnn needs 32x32
# images, which 4 features are not; the error names the preset and the keys.
expect_error 2 "model.input_shape: [3, 32, 32] has 3072 values but samples have 4 features" -- \
  run --set data.dataset=csv --set data.path="$SRC/datasets/sample.csv" --set data.partition.kind=iid \
  --set model.kind=niid_cifar_cnn --set 'model.input_shape=[3,32,32]' --out "$TMP/c"
[ ! -e "$TMP/c/metrics.json" ] || fail "metrics.json written for a model that does not fit the data"
expect_error 2 "model.kind=leaf_shakespeare_lstm: layers[0].type: embedding needs token data" -- \
  run --set model.kind=leaf_shakespeare_lstm --out "$TMP/d"
expect_error 2 "model.layers[1].kernel: a 15x15 window does not fit the 14x14 input" -- \
  run "$TMP/cnn.json" --set 'model.layers=[{"type":"conv2d","filters":2,"kernel":3,"stride":2,"padding":1},{"type":"maxpool2d","kernel":15},{"type":"dense"}]' \
  --out "$TMP/e"
expect_error 2 "model.layers[0].filter: unknown field of a conv2d layer (did you mean 'filters'?)" -- \
  run "$TMP/cnn.json" --set 'model.layers=[{"type":"conv2d","filter":2,"kernel":3},{"type":"dense"}]' --out "$TMP/f"
expect_error 2 "model.layers: model.kind=sequential needs a list of layers" -- \
  validate "$TMP/cnn.json" --set 'model.layers=[]'
finish
