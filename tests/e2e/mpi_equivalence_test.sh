# MPI backend (docs/scaling.md): `mpirun -np R fedsim run` gives metrics
# identical, bit for bit, to the single-process run with the same seed
# (wall-clock fields aside; clients.jsonl of per-client evaluation too), for a plain, a stateful, a sparse, a DP, a
# secure-aggregation, a straggler (simulated system), an asynchronous (FedBuff, FedAsync), an imprint-attack and a baseline config; R = 3
# splits unevenly; a run interrupted under
# MPI resumes on a different number of ranks; failures end every rank with
# the single-process exit code. Registered only when fedsim is built with MPI.
source "$(dirname "$0")/lib.sh"

MPIEXEC="${FEDSIM_MPIEXEC:-mpirun}"
# CI runs as root in a container with few cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Under AddressSanitizer (scripts/test.sh --sanitize) OpenMPI's own
# allocations that it never frees (MPI_Init internals, unloaded components)
# would fail every rank at exit; memory errors and UB are still caught, and
# fedsim's side of the distributed loop is leak-checked in-process
# (tests/fl/distributed_test.cpp). Ignored by builds without ASan.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# No InfiniBand/network probing on a single machine, and quiet about it.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi() {
  local np="$1"
  shift
  "$MPIEXEC" -np "$np" --oversubscribe --allow-run-as-root "$FEDSIM" "$@"
}

same() {  # same NAME_A NAME_B LABEL: metrics.json and rounds.jsonl equal after strip
  python3 - "$TMP/$1" "$TMP/$2" <<'PY' || fail "$3: MPI metrics differ from the single-process run"
import json, os, sys
sys.path.insert(0, os.environ["E2E_DIR"])
from metrics_util import strip
a, b = sys.argv[1], sys.argv[2]
ma, mb = strip(json.load(open(f"{a}/metrics.json"))), strip(json.load(open(f"{b}/metrics.json")))
for k in sorted(set(ma) | set(mb)):
    if ma.get(k) != mb.get(k):
        print(f"{k}: {json.dumps(ma.get(k))[:400]}\n  vs {json.dumps(mb.get(k))[:400]}", file=sys.stderr)
assert json.dumps(ma, sort_keys=True) == json.dumps(mb, sort_keys=True)
la = [strip(json.loads(l)) for l in open(f"{a}/rounds.jsonl")]
lb = [strip(json.loads(l)) for l in open(f"{b}/rounds.jsonl")]
assert la == lb and len(la) == ma["summary"]["rounds_completed"]
assert json.load(open(f"{b}/metrics.json"))["environment"]["ranks"] > 1
# Per-client evaluation's rows (no machine measurements in them).
assert os.path.exists(f"{a}/clients.jsonl") == os.path.exists(f"{b}/clients.jsonl")
if os.path.exists(f"{a}/clients.jsonl"):
    assert open(f"{a}/clients.jsonl").read() == open(f"{b}/clients.jsonl").read(), "clients.jsonl differs"
PY
}

sample=(run "$SRC/configs/sample_fmnist.json" --set data.path="$SRC/datasets/fmnist-sample" --quiet
        --set algorithm.clients_per_round=12 --set experiment.rounds=4)

# name | extra settings. Each runs once in one process (2 threads) and once
# with mpirun -np 2 (1 thread per rank).
cases=(
  "fedavg|"
  "scaffold|--set algorithm.name=scaffold"
  "feddyn_f16|--set algorithm.name=feddyn --set algorithm.alpha=0.1 --set algorithm.state_precision=float16"
  "fedsparse|--set algorithm.name=fedsparse --set algorithm.update_density=0.05 --set algorithm.sparse_download=true --set algorithm.model_density=0.5 --set algorithm.prune_rounds=2 --set algorithm.mask_every=1"
  "dp_poisson|--set algorithm.sampling=poisson --set algorithm.sampling_rate=0.4 --set privacy.mode=central --set privacy.noise_multiplier=0.5 --set privacy.clip_norm=1.0"
  "secagg|--set secure_aggregation.enabled=true --set secure_aggregation.dropout_rate=0.1"
  "dgc_stragglers|--set algorithm.name=fedsparse --set algorithm.momentum_correction=0.9 --set system.deadline_s=0.3 --set system.partial_work=true --set system.compute.gflops=0.05 --set system.compute.round_sigma=1 --set system.dropout=0.2"
  "baseline|--set baseline.kind=data_parallel --set baseline.workers=3 --set baseline.epochs=2"
  "qsgd_ef|--set compression.kind=qsgd --set compression.bits=4 --set compression.error_feedback=true"
  "backdoor_cclip|--set attack.kind=backdoor --set attack.fraction=0.3 --set attack.boost=2 --set robust.rule=centered_clipping --set robust.clip_norm=0.5"
  "alie_bulyan|--set attack.kind=alie --set attack.fraction=0.2 --set robust.rule=bulyan --set robust.byzantine=2"
  "ditto_f16|--set algorithm.name=ditto --set algorithm.state_precision=float16 --set data.client_test_fraction=0.25 --set metrics.client_eval=all"
  "qffl_secagg|--set algorithm.name=qffl --set secure_aggregation.enabled=true --set secure_aggregation.range=16"
  "client_eval|--set algorithm.name=scaffold --set data.client_test_fraction=0.25 --set metrics.client_eval=all --set data.holdout_clients=4 --set personalization.finetune_steps=3"
  "fedbuff_diurnal|--set algorithm.mode=fedbuff --set async.concurrency=8 --set async.buffer_size=3 --set system.availability_model=diurnal --set system.dropout=0.1 --set compression.kind=topk --set compression.density=0.1 --set privacy.mode=central --set privacy.noise_multiplier=0.3 --set privacy.clip_norm=1.0"
  "sync_trace_diurnal|--set system.availability_model=diurnal --set system.availability=0.9 --set system.diurnal.amplitude=0.9 --set system.compute.gflops=0.0001"
  "imprint|--set audit.imprint.bins=32 --set audit.imprint.every=2 --set algorithm.batch_size=50"
  "imprint_secagg|--set audit.imprint.bins=32 --set audit.imprint.measurement=random --set secure_aggregation.enabled=true --set secure_aggregation.range=8"
  "fedasync|--set algorithm.mode=fedasync --set async.concurrency=6 --set async.max_staleness=3 --set system.compute.sigma=1 --set metrics.client_eval=participants --set data.client_test_fraction=0.25"
)
for c in "${cases[@]}"; do
  name="${c%%|*}"
  read -r -a extra <<< "${c#*|}"
  "$FEDSIM" "${sample[@]}" "${extra[@]}" --threads 2 --out "$TMP/$name.1" || fail "$name: single process"
  mpi 2 "${sample[@]}" "${extra[@]}" --threads 1 --out "$TMP/$name.2" || fail "$name: mpirun -np 2"
  same "$name.1" "$name.2" "$name (2 ranks)"
done

# fedgia takes one full-batch gradient from every client, so it reads none of
# the cohort and local-training keys above (and fedsim rejects a key the run
# does not read): the same data and model without them.
gia=(run --quiet --set data.dataset=mnist_idx --set data.path="$SRC/datasets/fmnist-sample" --set data.num_clients=20
     --set data.standardize=true --set data.partition.kind=dirichlet --set data.partition.alpha=0.5
     --set model.kind=mlp --set 'model.hidden=[64]' --set experiment.rounds=4 --set algorithm.name=fedgia)
"$FEDSIM" "${gia[@]}" --threads 2 --out "$TMP/fedgia.1" || fail "fedgia: single process"
mpi 2 "${gia[@]}" --threads 1 --out "$TMP/fedgia.2" || fail "fedgia: mpirun -np 2"
same fedgia.1 fedgia.2 "fedgia (2 ranks)"

# Three ranks: 12 clients per round split 3 ways by client id, unevenly.
mpi 3 "${sample[@]}" --set algorithm.name=scaffold --threads 1 --out "$TMP/scaffold.3" || fail "scaffold: mpirun -np 3"
same scaffold.1 scaffold.3 "scaffold (3 ranks)"

# Interrupted under 2 ranks (SIGINT to one rank: all stop after the round,
# rank 0 writes the checkpoint), resumed on 3 ranks: equal to one process.
long=(run --quiet --threads 1 --set experiment.rounds=60 --set experiment.checkpoint_every=3
      --set model.kind=mlp --set model.hidden=[64] --set algorithm.name=scaffold --set algorithm.clients_per_round=6)
"$FEDSIM" "${long[@]}" --out "$TMP/long.1" || fail "long: single process"
"$MPIEXEC" -np 2 --oversubscribe --allow-run-as-root "$FEDSIM" "${long[@]}" --out "$TMP/long.int" 2>"$TMP/long.err" &
pid=$!  # mpirun; its children are the ranks
for _ in $(seq 1 400); do
  [ -f "$TMP/long.int/rounds.jsonl" ] && [ "$(wc -l < "$TMP/long.int/rounds.jsonl")" -ge 2 ] && break
  sleep 0.05
done
rank_pid="$(pgrep -P "$pid" | tail -1)"
[ -n "$rank_pid" ] && kill -INT "$rank_pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] || fail "SIGINT to a rank: mpirun exit $rc, expected 130 ($(cat "$TMP/long.err"))"
python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['summary']; assert s['status']=='interrupted' and s['rounds_completed']<60, s" \
  "$TMP/long.int/metrics.json" || fail "interrupted run: metrics.json does not say interrupted"
mpi 3 run --quiet --threads 1 --resume "$TMP/long.int" || fail "resume on 3 ranks"
same long.1 long.int "interrupted on 2 ranks, resumed on 3"

# FedGAN: a run interrupted in one process resumes under mpirun -np 2 (every
# rank runs the whole GAN; rank 0 reads the checkpoint and sends it to the
# other rank, which has no output folder of its own) and equals the
# uninterrupted run. `timeout`: a resume that hangs fails instead of
# blocking the suite.
gan=(run "$SRC/configs/fedgan_fmnist.json" --quiet --threads 1 --set data.dataset=mnist_idx
     --set data.path="$SRC/datasets/fmnist-sample" --set experiment.rounds=40 --set experiment.checkpoint_every=0
     --set gan.judge_epochs=1 --set gan.eval_samples=64 --set metrics.eval_every=20 --set algorithm.local_steps=1
     --set 'gan.generator_hidden=[32]' --set 'gan.discriminator_hidden=[32]')
"$FEDSIM" "${gan[@]}" --out "$TMP/gan.1" || fail "fedgan: single process"
"$FEDSIM" "${gan[@]}" --out "$TMP/gan.int" 2>/dev/null &
pid=$!
for _ in $(seq 1 400); do
  [ -f "$TMP/gan.int/rounds.jsonl" ] && [ "$(wc -l < "$TMP/gan.int/rounds.jsonl")" -ge 2 ] && break
  sleep 0.02
done
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 130 ]; then
  timeout 120 "$MPIEXEC" -np 2 --oversubscribe --allow-run-as-root "$FEDSIM" run --quiet --threads 1 \
    --resume "$TMP/gan.int" || fail "fedgan: resume under mpirun -np 2 failed or hung (exit $?)"
  same gan.1 gan.int "fedgan interrupted in one process, resumed on 2 ranks"
else
  fail "fedgan: SIGINT: exit $rc, expected 130 (the run finished before the signal?)"
fi

# Failures: a bad key before any round is reported once and exits 2 on every
# rank; a missing data file too.
err="$(mpi 2 "${sample[@]}" --set algorithm.nmae=x 2>&1 >/dev/null)"
rc=$?
[ "$rc" -eq 2 ] || fail "bad key under mpirun: exit $rc, expected 2"
[ "$(grep -c "fedsim: error:" <<< "$err")" -eq 1 ] || fail "bad key: expected one error line, got: $err"
err="$(mpi 2 "${sample[@]}" --set data.path="$TMP/nowhere" 2>&1 >/dev/null)"
rc=$?
[ "$rc" -eq 2 ] || fail "missing data under mpirun: exit $rc, expected 2"
[ "$(grep -c "fedsim: error:" <<< "$err")" -eq 1 ] || fail "missing data: expected one error line, got: $err"

finish
