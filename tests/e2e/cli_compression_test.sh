# Upload compression from the CLI: `fedsim validate` refuses what a run
# would refuse (exit 2, naming both keys), and a compressed run's bytes are
# the codec's encoded sizes.
source "$(dirname "$0")/lib.sh"

expect_error 2 "algorithm.name=scaffold" -- validate "$SRC/configs/algorithms/scaffold.json" --set compression.kind=topk
expect_error 2 "secure_aggregation.enabled" -- validate "$SRC/configs/quickstart.json" --set compression.kind=int8 \
  --set secure_aggregation.enabled=true
expect_error 2 "privacy.mode=central" -- validate "$SRC/configs/privacy/central.json" --set compression.kind=qsgd
expect_error 2 "compression.error_feedback" -- validate "$SRC/configs/quickstart.json" \
  --set compression.error_feedback=true
expect_error 2 "compression.bits" -- validate "$SRC/configs/quickstart.json" --set compression.kind=qsgd \
  --set compression.bits=1

"$FEDSIM" run --quiet --threads 2 --set experiment.rounds=2 --set compression.kind=qsgd --set compression.bits=4 \
  --set compression.bucket=100 --out "$TMP/q" || fail "qsgd run"
python3 - "$TMP/q/metrics.json" <<'PY' || fail "qsgd bytes"
import json, sys
m = json.load(open(sys.argv[1]))
n = m["model"]["num_params"]
per_client = (n * 4 + 7) // 8 + 4 * ((n + 99) // 100)
for r in m["rounds"]:
    assert r["round_bytes_up"] == r["cohort"] * per_client, (r["round_bytes_up"], r["cohort"], per_client)
    assert r["stages"]["compress"]["codec"].startswith("qsgd"), r["stages"]["compress"]
PY
finish
