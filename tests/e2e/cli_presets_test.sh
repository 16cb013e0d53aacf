# Every preset of the layer engine, and the two CNN kinds that now run on it,
# trains FedAvg end to end through the real CLI on data of its shape (issue
# 19): LEAF-format FEMNIST and Sent140 files written here, LEAF Shakespeare's
# sample, CIFAR-shaped CSV rows with model.input_shape, the Fashion-MNIST
# sample. One round of 2 clients each; the run completes, reports the preset's
# kind and parameter count, and its test loss is finite. (StackOverflow's LSTM
# runs in h5_tff_test.sh, on TFF HDF5 files.)
source "$(dirname "$0")/lib.sh"

python3 - "$TMP" <<'PY' || fail "writing the data"
import json, os, random, sys
t = sys.argv[1]
random.seed(3)

def leaf(task, make_x, make_y, users=3, n=6):
    for split in ("train", "test"):
        os.makedirs(f"{t}/{task}/{split}", exist_ok=True)
        ud = {f"u{i}": {"x": [make_x() for _ in range(n)], "y": [make_y() for _ in range(n)]} for i in range(users)}
        with open(f"{t}/{task}/{split}/{split}.json", "w") as f:
            json.dump({"users": list(ud), "num_samples": [n] * users, "user_data": ud}, f)

leaf("femnist", lambda: [random.randrange(256) / 255 for _ in range(784)], lambda: random.randrange(62))
words = "the cat sat on a mat with her hat and a bat".split()
leaf("sent140", lambda: ["1", "Mon Apr 06", "NO_QUERY", "someone", " ".join(random.choice(words) for _ in range(9)), "x"],
     lambda: random.randrange(2))
with open(f"{t}/cifar.csv", "w") as f:
    f.write("label," + ",".join(f"p{i}" for i in range(3072)) + "\n")
    for r in range(24):
        f.write(str(r % 10) + "," + ",".join(f"{random.random():.3f}" for _ in range(3072)) + "\n")
PY

# check NAME KIND PARAMS DATA_JSON [MODEL_EXTRA_JSON]: writes the config, runs it, checks metrics.json.
check() {
  local name="$1" kind="$2" params="$3" data="$4" extra="${5:-}"
  cat > "$TMP/$name.json" <<JSON
{"experiment": {"name": "$name", "rounds": 1},
 "data": $data,
 "model": {"kind": "$kind"$extra},
 "algorithm": {"name": "fedavg", "clients_per_round": 2, "batch_size": 4, "lr": 0.05}}
JSON
  "$FEDSIM" run "$TMP/$name.json" --out "$TMP/run_$name" --quiet --threads 2 || { fail "$name: exit $?"; return; }
  python3 - "$TMP/run_$name/metrics.json" "$kind" "$params" <<'PY' || fail "$name: metrics.json"
import json, math, sys
m = json.load(open(sys.argv[1]))
assert m["summary"]["status"] == "completed", m["summary"]
assert m["model"]["kind"] == sys.argv[2], m["model"]
if sys.argv[3] != "-":
    assert m["model"]["num_params"] == int(sys.argv[3]), (m["model"]["num_params"], sys.argv[3])
assert math.isfinite(m["summary"]["final_test_loss"]), m["summary"]
PY
}

femnist='{"dataset": "leaf", "path": "'"$TMP"'/femnist", "leaf": {"task": "femnist"}, "num_clients": 3, "partition": {"kind": "natural"}}'
cifar='{"dataset": "csv", "path": "'"$TMP"'/cifar.csv", "num_clients": 2, "partition": {"kind": "iid"}}'
shakespeare='{"dataset": "leaf", "path": "'"$SRC"'/datasets/leaf-shakespeare-sample", "leaf": {"task": "shakespeare"}, "num_clients": 4, "partition": {"kind": "natural"}}'
sent140='{"dataset": "leaf", "path": "'"$TMP"'/sent140", "leaf": {"task": "sent140"}, "num_clients": 3, "partition": {"kind": "natural"}}'
fmnist='{"dataset": "mnist_idx", "path": "'"$SRC"'/datasets/fmnist-sample", "num_clients": 4, "max_train_samples": 200, "max_test_samples": 100, "partition": {"kind": "iid"}}'

# The published counts (docs/models.md) where the data gives the source's shape.
check leaf_femnist_cnn leaf_femnist_cnn 6603710 "$femnist"
check tff_emnist_cnn tff_emnist_cnn 1206590 "$femnist"
check niid_cifar_cnn niid_cifar_cnn 62006 "$cifar" ', "input_shape": [3, 32, 32]'
check resnet20_gn resnet20_gn 272282 "$cifar" ', "input_shape": [3, 32, 32]'
check leaf_shakespeare_lstm leaf_shakespeare_lstm 817872 "$shakespeare"
check sent140_lstm sent140_lstm - "$sent140"
check cnn_mcmahan cnn_mcmahan 1663370 "$fmnist"
check cnn_lenet cnn_lenet 44426 "$fmnist"
finish
