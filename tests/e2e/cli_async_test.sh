# Asynchronous FL through the CLI (docs/async.md): FedBuff and FedAsync runs
# on a heterogeneous simulated system with a device trace, their records
# (simulated time, staleness, concurrency, losses), a synchronous run beside
# them on one simulated-time axis in scripts/plot.py, and the errors: a bad
# trace row (exit 2, file and line) and a run whose clients all went offline
# (exit 4, stalled, with the reason).
source "$(dirname "$0")/lib.sh"

trace="$TMP/trace.csv"
python3 - "$trace" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("client,online_from,online_until\n")
    for c in range(20):
        # every client online for 3 of each 4 simulated seconds
        for k in range(500):
            f.write(f"{c},{4 * k + (c % 4)},{4 * k + (c % 4) + 3}\n")
PY
args=(run "$SRC/configs/sample_fmnist.json" --set data.path="$SRC/datasets/fmnist-sample" --quiet
      --set experiment.rounds=6 --set async.concurrency=8 --set system.compute.sigma=1
      --set system.compute.gflops=0.5 --set system.availability_model=trace --set system.trace="$trace")
"$FEDSIM" "${args[@]}" --set algorithm.mode=fedbuff --set async.buffer_size=4 --out "$TMP/fedbuff" || fail "fedbuff"
"$FEDSIM" "${args[@]}" --set algorithm.mode=fedasync --set async.staleness=hinge --out "$TMP/fedasync" || fail "fedasync"
"$FEDSIM" run "$SRC/configs/sample_fmnist.json" --set data.path="$SRC/datasets/fmnist-sample" --quiet \
  --set experiment.rounds=3 --set system.compute.sigma=1 --set system.compute.gflops=0.5 --out "$TMP/sync" || fail "sync"

python3 - "$TMP" <<'PY' || fail "asynchronous records"
import json, sys
d = sys.argv[1]
for run, k in (("fedbuff", 4), ("fedasync", 1)):
    m = json.load(open(f"{d}/{run}/metrics.json"))
    assert m["summary"]["status"] == "completed", m["summary"]
    assert m["async"]["mode"] == run and m["async"]["buffer_size"] == k, m["async"]
    assert m["availability"]["clients_in_trace"] == 20, m["availability"]
    times = [r["sim_time_s"] for r in m["rounds"]]
    assert times == sorted(times) and times[0] > 0, times
    for r in m["rounds"]:
        assert r["cohort"] == k, r
        s = r["staleness"]
        assert 0 <= s["mean"] <= s["p90"] <= s["max"], s
        assert r["in_flight"] <= 8 and r["train_loss"] > 0
    assert m["summary"]["lost_clients"] + m["summary"]["offline_clients"] > 0, m["summary"]
    lines = [json.loads(l) for l in open(f"{d}/{run}/rounds.jsonl")]
    assert len(lines) == 6
PY

if python3 -c "import matplotlib" 2>/dev/null; then
  python3 "$SRC/scripts/plot.py" "$TMP/sync" "$TMP/fedbuff" "$TMP/fedasync" --group-by algorithm.mode --x sim_time \
    --out "$TMP/t.png" >/dev/null || fail "plot.py --x sim_time"
  [ "$(head -c 8 "$TMP/t.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "plot.py wrote no PNG"
else
  echo "note: matplotlib is not installed; plot.py checks skipped" >&2
fi

# A branch may not switch the event-driven mode (FedBuff holds updates,
# FedAsync client models) or the number of slots (the saved events imply it).
[ -f "$TMP/fedbuff/checkpoint.bin" ] || fail "fedbuff wrote no checkpoint"
expect_error 2 "algorithm.mode cannot change in a branch" -- "${args[@]}" --set algorithm.mode=fedasync \
  --set experiment.rounds=8 --from "$TMP/fedbuff/checkpoint.bin" --out "$TMP/bad"
expect_error 2 "async.concurrency cannot change in a branch" -- "${args[@]}" --set algorithm.mode=fedbuff \
  --set async.buffer_size=4 --set async.concurrency=2 --set experiment.rounds=8 \
  --from "$TMP/fedbuff/checkpoint.bin" --out "$TMP/bad"
"$FEDSIM" "${args[@]}" --set algorithm.mode=fedbuff --set async.buffer_size=4 --set experiment.rounds=8 \
  --from "$TMP/fedbuff/checkpoint.bin" --out "$TMP/fedbuff8" || fail "a FedBuff branch that changes only the length"

printf 'client,online_from,online_until\n0,0,10\n1,abc,5\n' > "$TMP/bad.csv"
expect_error 2 "bad.csv:3: online_from" -- run "$SRC/configs/sample_fmnist.json" \
  --set data.path="$SRC/datasets/fmnist-sample" --set algorithm.mode=fedbuff --set async.concurrency=4 \
  --set system.availability_model=trace --set system.trace="$TMP/bad.csv" --out "$TMP/bad"

# Everyone offline after 5 simulated seconds, clients that need far longer: stalled.
printf 'client,online_from,online_until\n' > "$TMP/short.csv"
for c in $(seq 0 19); do echo "$c,0,5" >> "$TMP/short.csv"; done
expect_error 4 "stalled after server step 0 of 6: no client is online after 5.0 s" -- "${args[@]:0:5}" \
  --set experiment.rounds=6 --set algorithm.mode=fedbuff --set async.concurrency=4 --set system.compute.gflops=1e-6 \
  --set system.availability_model=trace --set system.trace="$TMP/short.csv" --out "$TMP/stalled"
python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['summary']; assert s['status']=='stalled', s" \
  "$TMP/stalled/metrics.json" || fail "a stalled run's metrics.json says so"

finish
