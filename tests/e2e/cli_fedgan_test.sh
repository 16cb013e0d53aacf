# fedsim run with algorithm.name=fedgan on the Fashion-MNIST sample: the round
# records' quality keys, the summary, the sample grids (parsed as PGM), the
# CLI's output, resumption, and the errors for data it cannot model.
source "$(dirname "$0")/lib.sh"

gan=(--set algorithm.name=fedgan --set data.dataset=mnist_idx --set data.path="$SRC/datasets/fmnist-sample"
     --set data.num_clients=4 --set data.max_train_samples=400 --set data.max_test_samples=100
     --set data.partition.kind=dirichlet --set data.partition.alpha=0.5 --set algorithm.clients_per_round=3
     --set algorithm.batch_size=16 --set algorithm.local_steps=2 --set experiment.rounds=4 --set metrics.eval_every=2
     --set gan.latent_dim=8 --set 'gan.generator_hidden=[32]' --set 'gan.discriminator_hidden=[32]'
     --set gan.judge_kind=softmax --set gan.judge_epochs=1 --set gan.eval_samples=100 --set gan.grid=4)

out="$("$FEDSIM" run "${gan[@]}" --out "$TMP/gan" --threads 2 2>"$TMP/gan.err")" || fail "fedgan run exited $?"
case "$out" in
  *"judge test accuracy"*"classes covered"*"samples/round_0004.pgm"*) ;;
  *) fail "fedgan summary output: $out" ;;
esac
grep -q "round 4/4  classes" "$TMP/gan.err" || fail "fedgan progress lines: $(cat "$TMP/gan.err")"

python3 - "$TMP/gan" <<'PY' || fail "fedgan metrics and images"
import json, os, sys
d = sys.argv[1]
m = json.load(open(f"{d}/metrics.json"))
rounds = [json.loads(l) for l in open(f"{d}/rounds.jsonl")]
assert rounds == m["rounds"]
assert m["model"]["kind"] == "gan_mlp"
assert m["model"]["num_params"] == (8 * 32 + 32 + 32 * 784 + 784) + (784 * 32 + 32 + 32 + 1)
assert 0.0 < m["judge"]["test_accuracy"] <= 1.0
quality = ["confident_share", "class_entropy", "effective_classes", "inception_score", "classes_covered",
           "class_histogram", "samples_image"]
for r in rounds:
    for k in ["round", "cohort", "generator_loss", "discriminator_loss", "generator_lr", "discriminator_lr",
              "bytes_up", "bytes_down", "round_bytes_up", "train_samples", "wall_seconds"] + quality:
        assert k in r, k
    assert r["round_bytes_up"] == r["round_bytes_down"] == 3 * m["model"]["num_params"] * 4
    evaluated = r["round"] % 2 == 0
    for k in quality:
        assert (r[k] is not None) == evaluated, (r["round"], k)
    if evaluated:
        assert sum(r["class_histogram"]) == 100
        assert 1 <= r["classes_covered"] <= 10
        assert 0.0 <= r["confident_share"] <= 1.0
        assert r["samples_image"] == "samples/round_%04d.pgm" % r["round"]
        # The grid: 4 x 4 images of 28 x 28 with 2 pixels of padding.
        b = open(os.path.join(d, r["samples_image"]), "rb").read()
        side = 4 * 28 + 5 * 2
        header = b"P5\n%d %d\n255\n" % (side, side)
        assert b.startswith(header), b[:20]
        assert len(b) == len(header) + side * side
        pixels = b[len(header):]
        assert pixels[0] == 128 and len(set(pixels)) > 10  # border grey, and a picture inside
s = m["summary"]
assert s["status"] == "completed" and s["final_eval_round"] == 4
assert s["final_classes_covered"] == rounds[-1]["classes_covered"]
assert s["final_samples_image"] == "samples/round_0004.pgm"
assert s["bytes_up"] == 4 * 3 * m["model"]["num_params"] * 4
assert sorted(os.listdir(f"{d}/samples")) == ["round_0002.pgm", "round_0004.pgm"]
PY

# One thread and a checkpoint every round: the same metrics and sample grids as two threads.
"$FEDSIM" run "${gan[@]}" --out "$TMP/gan2" --threads 1 --quiet --set experiment.checkpoint_every=1 \
  >/dev/null 2>&1 || fail "second fedgan run"
python3 - "$TMP/gan" "$TMP/gan2" <<'PY' || fail "fedgan runs with 1 and 2 threads differ"
import json, os, sys
sys.path.insert(0, os.environ["E2E_DIR"])
from metrics_util import strip
a, b = (json.load(open(f"{d}/metrics.json")) for d in sys.argv[1:3])
a["config"]["experiment"]["checkpoint_every"] = b["config"]["experiment"]["checkpoint_every"]
assert strip(a) == strip(b)
PY
cmp -s "$TMP/gan/samples/round_0004.pgm" "$TMP/gan2/samples/round_0004.pgm" || fail "sample grids differ"

# The simulated system applies to FedGAN's rounds like any algorithm's: with
# dropout some members never report, and the run says how many.
"$FEDSIM" run "${gan[@]}" --out "$TMP/gan_drop" --quiet --set system.dropout=0.5 --set algorithm.clients_per_round=4 \
  >/dev/null 2>&1 || fail "fedgan run with system.dropout"
python3 - "$TMP/gan_drop" <<'PY' || fail "fedgan with dropout"
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
dropped = sum(r["dropped_clients"] for r in m["rounds"])
assert m["summary"]["dropped_clients"] == dropped > 0, dropped
for r in m["rounds"]:
    # Dropped members download the pair but upload nothing.
    assert r["cohort"] + r["dropped_clients"] == r["sampled"] == 4, r
    assert r["round_bytes_up"] == r["cohort"] * m["model"]["num_params"] * 4, r
PY

# scripts/pgm_to_png.py turns a grid into a PNG of the same size.
python3 "$SRC/scripts/pgm_to_png.py" "$TMP/gan/samples/round_0004.pgm" "$TMP/grid.png" || fail "pgm_to_png"
python3 - "$TMP/grid.png" <<'PY' || fail "pgm_to_png output"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR"
assert struct.unpack(">II", b[16:24]) == (122, 122)
PY

# Data outside [0, 1] (Synthetic features) is refused, naming the problem.
expect_error 2 "fedgan generates features in [0, 1]" -- run --set algorithm.name=fedgan --set experiment.rounds=1 \
  --out "$TMP/bad" --quiet
expect_error 2 "fedgan has no differential privacy" -- run "${gan[@]}" --set privacy.mode=sample --out "$TMP/bad" --quiet

finish
