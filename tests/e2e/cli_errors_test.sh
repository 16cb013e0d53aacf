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

# A number too large for a double is bad input too: the file and line, or the
# --set assignment (not "run failed", exit 1).
printf '{\n  "experiment": {\n    "rounds": 1e400\n  }\n}\n' > "$TMP/huge.json"
expect_error 2 "$TMP/huge.json:3: number 1e400 is out of range (beyond the largest double" -- run "$TMP/huge.json" \
  --out "$TMP/huge"
[ ! -e "$TMP/huge/metrics.json" ] || fail "metrics.json written for a number out of range"
printf '{"algorithm": {"lr": 0.1,\n "momentum": -2e999}}\n' > "$TMP/huge2.json"
expect_error 2 "$TMP/huge2.json:2: number -2e999 is out of range" -- validate "$TMP/huge2.json"
expect_error 2 "--set experiment.rounds=1e400: number 1e400 is out of range" -- run --set experiment.rounds=1e400
expect_error 2 "--set algorithm.lr=-1e400: number -1e400 is out of range" -- \
  validate "$SRC/configs/quickstart.json" --set algorithm.lr=-1e400
expect_error 2 "--set experiment.name: the value is neither JSON nor valid UTF-8" -- \
  run --set experiment.name="$(printf '\xff')"

# A key the run does not read is rejected, naming the key and the run kind.
expect_error 2 "algorithm.state_precision: not read by algorithm.name=fedgan" -- \
  run --set algorithm.name=fedgan --set algorithm.state_precision=float16 --out "$TMP/gan"
[ ! -e "$TMP/gan/metrics.json" ] || fail "metrics.json written for a key fedgan does not read"
expect_error 2 "baseline.workers: not read by algorithm.name=fedgan" -- \
  validate "$SRC/configs/fedgan_fmnist.json" --set baseline.workers=5
expect_error 2 "model.kind: not read by algorithm.name=fedgan" -- validate "$SRC/configs/fedgan_fmnist.json" \
  --set model.kind=mlp --set model.hidden=[10]
expect_error 2 "algorithm.mu: not read by algorithm.name=fedavg (FedProx's proximal weight" -- \
  run --set algorithm.mu=0.1
expect_error 2 "algorithm.momentum_correction: not read by algorithm.name=scaffold" -- \
  validate "$SRC/configs/algorithms/fedsparse.json" --set algorithm.name=scaffold
expect_error 2 "algorithm.local_epochs: not read by algorithm.name=fedsgd" -- \
  validate "$SRC/configs/quickstart.json" --set algorithm.name=fedsgd
expect_error 2 "baseline.epochs: not read by algorithm.name=fedavg" -- run --set baseline.epochs=3
expect_error 2 "system.dropout: not read by baseline.kind=centralized" -- \
  run --set baseline.kind=centralized --set system.dropout=0.1
expect_error 2 "baseline.workers: not read by baseline.kind=centralized" -- \
  run --set baseline.kind=centralized --set baseline.workers=3
# A key at its default is no setting; a baseline takes the federated run's own settings.
"$FEDSIM" validate "$SRC/configs/niid_bench.json" --set algorithm.name=scaffold --set algorithm.momentum=0 \
  >/dev/null || fail "niid_bench.json as scaffold"
"$FEDSIM" validate "$SRC/configs/algorithms/fedprox.json" --set baseline.kind=data_parallel >/dev/null ||
  fail "fedprox.json as a data-parallel baseline"

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
# Into a file first: `fedsim list | grep -q` under pipefail fails when grep
# exits at its match while fedsim is still writing (SIGPIPE), which a longer
# catalogue made happen.
"$FEDSIM" list > "$TMP/list.txt" || fail "list failed"
grep -q "fedsgd" "$TMP/list.txt" || fail "list lacks fedsgd"

finish
