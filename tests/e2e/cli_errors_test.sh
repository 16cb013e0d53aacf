# Bad input: exit code 2 with one message naming the file, key or line, and
# no metrics.json written.
source "$(dirname "$0")/lib.sh"

expect_error 2 "algorithm.local_epochs: expected an integer >= 1, got -1" -- run --set algorithm.local_epochs=-1 --out "$TMP/a"
[ ! -e "$TMP/a/metrics.json" ] || fail "metrics.json written for a bad config"
expect_error 2 "algorithm.local_epoch: unknown key (did you mean 'algorithm.local_epochs'?)" -- run --set algorithm.local_epoch=2
expect_error 2 "got 'fedprox2' (did you mean 'fedprox'?)" -- run --set algorithm.name=fedprox2
expect_error 2 "data.partition.alpha: expected a number > 0, got 0" -- run --set data.partition.alpha=0
expect_error 2 "larger than the population" -- run --set algorithm.clients_per_round=31
expect_error 2 "$TMP/missing.json: cannot open config file" -- run "$TMP/missing.json"

printf '{\n  "experiment": {\n    "rounds": 3,\n  }\n}\n' > "$TMP/bad.json"
expect_error 2 "$TMP/bad.json:4: not valid JSON" -- validate "$TMP/bad.json"
: > "$TMP/empty.json"
expect_error 2 "$TMP/empty.json: config file is empty" -- run "$TMP/empty.json"
echo '[1, 2]' > "$TMP/array.json"
expect_error 2 "expected a JSON object" -- run "$TMP/array.json"
echo '{"algorithm": {"lr": "fast"}}' > "$TMP/type.json"
expect_error 2 "$TMP/type.json: algorithm.lr: expected a number" -- validate "$TMP/type.json"

# Missing and corrupt data files are named with their path.
expect_error 2 "/nonexistent/fmnist" -- run --set data.dataset=fashion_mnist --set data.partition.kind=iid \
  --set data.num_clients=10 --set data.path=/nonexistent/fmnist --out "$TMP/b"
[ ! -e "$TMP/b/metrics.json" ] || fail "metrics.json written for missing data"
mkdir -p "$TMP/idx"
cp "$SRC"/datasets/fmnist-sample/*.gz "$TMP/idx/"
head -c 3000 "$SRC/datasets/fmnist-sample/train-images-idx3-ubyte.gz" > "$TMP/idx/train-images-idx3-ubyte.gz"
expect_error 2 "$TMP/idx/train-images-idx3-ubyte.gz" -- run --set data.dataset=mnist_idx --set data.path="$TMP/idx" \
  --set data.partition.kind=iid --set data.num_clients=10 --out "$TMP/c"
[ ! -e "$TMP/c/metrics.json" ] || fail "metrics.json written for corrupt data"
printf 'label,a,b\n0,1.0,2.0\n1,abc,2.0\n' > "$TMP/bad.csv"
expect_error 2 "$TMP/bad.csv:3" -- run --set data.dataset=csv --set data.path="$TMP/bad.csv" \
  --set data.partition.kind=iid --set data.num_clients=1 --set algorithm.clients_per_round=1

# A rerun that fails does not leave an earlier success behind.
"$FEDSIM" run --quiet --out "$TMP/d" --set experiment.rounds=2 || fail "good run"
[ -e "$TMP/d/metrics.json" ] || fail "good run wrote no metrics.json"
expect_error 2 "/nonexistent" -- run --out "$TMP/d" --set data.dataset=mnist_idx --set data.path=/nonexistent \
  --set data.partition.kind=iid --set data.num_clients=10
[ ! -e "$TMP/d/metrics.json" ] || fail "stale metrics.json left after a failed rerun"

# Command-line errors.
expect_error 2 "" -- frobnicate
expect_error 2 "" -- run --threads -1
"$FEDSIM" validate "$SRC/configs/quickstart.json" >/dev/null || fail "validate quickstart.json"
"$FEDSIM" list | grep -q "fedsgd" || fail "list lacks fedsgd"

finish
