# Per-client evaluation through the CLI: clients.jsonl and the record's
# summaries agree, the held-out clients are listed in metrics.json and never
# appear as participants, and scripts/plot.py draws the distribution and the
# worst-10% curve from the result files (where matplotlib is installed).
source "$(dirname "$0")/lib.sh"

args=(run "$SRC/configs/sample_fmnist.json" --set data.path="$SRC/datasets/fmnist-sample" --quiet
      --set experiment.rounds=4 --set metrics.eval_every=2 --set data.client_test_fraction=0.25
      --set data.holdout_clients=4 --set personalization.finetune_steps=2)
"$FEDSIM" "${args[@]}" --set metrics.client_eval=all --out "$TMP/all" || fail "client_eval=all"
"$FEDSIM" "${args[@]}" --set metrics.client_eval=participants --out "$TMP/part" || fail "client_eval=participants"

python3 - "$TMP" <<'PY' || fail "per-client rows and summaries disagree"
import json, sys
d = sys.argv[1]
for run, per_round in (("all", 20), ("part", None)):
    m = json.load(open(f"{d}/{run}/metrics.json"))
    holdout = set(m["clients"]["holdout_clients"])
    assert len(holdout) == 4, m["clients"]
    rows = [json.loads(l) for l in open(f"{d}/{run}/clients.jsonl")]
    assert sorted({r["round"] for r in rows}) == [2, 4]
    for rnd in (2, 4):
        rr = [r for r in rows if r["round"] == rnd]
        if per_round:
            assert len(rr) == per_round, len(rr)
        assert {r["client"] for r in rr if r["holdout"]} == holdout
        train = [r for r in rr if not r["holdout"]]
        rec = m["rounds"][rnd - 1]
        want = sum(r["correct"] for r in train) / sum(r["test_samples"] for r in train)
        assert abs(rec["client_accuracy"]["weighted_mean"] - want) < 1e-12
        assert rec["client_accuracy"]["clients"] == len(train)
    if run == "part":
        # participants: the cohort (5 clients per round), never a held-out client
        assert all(len([r for r in rows if r["round"] == k and not r["holdout"]]) <= 5 for k in (2, 4))
PY

if python3 -c "import matplotlib" 2>/dev/null; then
  python3 "$SRC/scripts/plot.py" "$TMP/all" --clients box --out "$TMP/box.png" >/dev/null || fail "plot.py --clients box"
  python3 "$SRC/scripts/plot.py" "$TMP/all" "$TMP/part" --clients violin --holdout --out "$TMP/v.png" >/dev/null ||
    fail "plot.py --clients violin --holdout"
  python3 "$SRC/scripts/plot.py" "$TMP/all" --y client_accuracy.worst10 --out "$TMP/w.png" >/dev/null ||
    fail "plot.py --y client_accuracy.worst10"
  for f in box v w; do
    [ "$(head -c 8 "$TMP/$f.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "plot.py wrote no PNG ($f)"
  done
  out="$(python3 "$SRC/scripts/plot.py" "$TMP/all" --clients box --round 3 --out "$TMP/x.png" 2>&1)"
  [ $? -eq 2 ] || fail "plot.py --round of an unevaluated round: expected exit 2: $out"
else
  echo "note: matplotlib is not installed; plot.py checks skipped" >&2
fi

expect_error 2 "no client has test rows" -- run "$SRC/configs/sample_fmnist.json" \
  --set data.path="$SRC/datasets/fmnist-sample" --set metrics.client_eval=all
expect_error 2 "metrics.client_eval" -- run "$SRC/configs/fedgan_fmnist.json" --set metrics.client_eval=all

finish
