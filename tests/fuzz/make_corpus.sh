#!/usr/bin/env bash
# Regenerates the seed corpora in tests/fuzz/corpus/<target>/ (a few small
# valid and invalid inputs each, all under 50 KB).
# Usage: bash tests/fuzz/make_corpus.sh [FEDSIM_BINARY (default build/fedsim)]
# The checkpoints come from real fedsim runs, so rerun this after a change to
# the checkpoint format.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
FEDSIM="${1:-$ROOT/build/fedsim}"
C="$ROOT/tests/fuzz/corpus"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
rm -rf "$C"
mkdir -p "$C"/fuzz_config "$C"/fuzz_idx "$C"/fuzz_csv "$C"/fuzz_checkpoint

# --- fuzz_config: the shipped configs, a few broken ones, --set assignments ---
for f in "$ROOT"/configs/*.json "$ROOT"/configs/algorithms/*.json; do
  cp "$f" "$C/fuzz_config/$(basename "$(dirname "$f")")_$(basename "$f")"
done
printf '{}' > "$C/fuzz_config/empty_object.json"
printf '{"experiment": {"rounds": "3"}}' > "$C/fuzz_config/bad_type.json"
printf '{"data": {"partition": {"kind": "dirichlet", "alpha": 0}}}' > "$C/fuzz_config/bad_alpha.json"
printf '{"algorithm": {"name": "fedprox2", "local_epoch": 2}}' > "$C/fuzz_config/bad_names.json"
printf '{"model": {"kind": "mlp", "hidden": [0]}, "data": [1]}' > "$C/fuzz_config/bad_hidden.json"
printf '{"experiment": {"rounds": 18446744073709551615, "seed": -1, "target_accuracy": null}}' \
  > "$C/fuzz_config/big_numbers.json"
printf '[1, 2]' > "$C/fuzz_config/array.json"
printf 'set:model.hidden=[200,200]' > "$C/fuzz_config/set_hidden"
printf 'set:algorithm.name=fedsgd' > "$C/fuzz_config/set_bare_string"
printf 'set:experiment.rounds.x=1' > "$C/fuzz_config/set_not_object"

# --- fuzz_idx: first byte 0 = hostile image file, 1 = hostile label file ---
python3 - "$C/fuzz_idx" <<'PY'
import gzip, struct, sys
out = sys.argv[1]
def images(n, r, c):
    return struct.pack('>IIII', 0x803, n, r, c) + bytes((i * 7) % 256 for i in range(n * r * c))
def labels(n):
    return struct.pack('>II', 0x801, n) + bytes(i % 10 for i in range(n))
files = {
    'images_3x2x2': b'\x00' + images(3, 2, 2),
    'images_3x2x2_gz': b'\x00' + gzip.compress(images(3, 2, 2), mtime=0),
    'images_5x4x4': b'\x00' + images(5, 4, 4),
    'images_truncated': b'\x00' + images(3, 2, 2)[:-3],
    'images_trailing': b'\x00' + images(3, 2, 2) + b'xyz',
    'images_wrong_magic': b'\x00' + struct.pack('>IIII', 0x801, 3, 2, 2) + bytes(12),
    'images_zero_dim': b'\x00' + struct.pack('>IIII', 0x803, 3, 0, 2),
    'images_short_header': b'\x00' + struct.pack('>II', 0x803, 3),
    'images_gz_truncated': b'\x00' + gzip.compress(images(5, 4, 4), mtime=0)[:-6],
    'labels_3': b'\x01' + labels(3),
    'labels_3_gz': b'\x01' + gzip.compress(labels(3), mtime=0),
    'labels_255': b'\x01' + struct.pack('>II', 0x801, 2) + b'\x00\xff',
    'labels_truncated': b'\x01' + labels(3)[:-1],
    'labels_wrong_magic': b'\x01' + struct.pack('>II', 0x803, 3) + bytes(3),
    'labels_empty': b'\x01',
}
for name, data in files.items():
    open(f'{out}/{name}', 'wb').write(data)
PY

# --- fuzz_csv: label in column 0, a header line ---
head -n 21 "$ROOT/datasets/sample.csv" > "$C/fuzz_csv/sample_head.csv"
printf 'y,a,b\n0,1.5,-2\n1,3e-3,4\n' > "$C/fuzz_csv/small.csv"
printf '\xef\xbb\xbfy,a\r\n0, 1.0\r\n\r\n2,\t+2.5\r\n' > "$C/fuzz_csv/bom_crlf_blank.csv"
printf 'y,a,b\n0,1,2\n1,2\n' > "$C/fuzz_csv/missing_field.csv"
printf 'y,a,b\n0,1,abc\n' > "$C/fuzz_csv/non_numeric.csv"
printf 'y,a,b\n0,nan,1\n1,inf,-inf\n' > "$C/fuzz_csv/nan_inf.csv"
printf 'y,a\n-1,1\n1.5,2\n99999,3\n' > "$C/fuzz_csv/bad_labels.csv"
printf 'y,a\n0,1e39\n0,1e400\n' > "$C/fuzz_csv/overflow.csv"
printf 'y\n0\n' > "$C/fuzz_csv/label_only.csv"
printf 'y,a,b\n' > "$C/fuzz_csv/header_only.csv"

# --- fuzz_checkpoint: real checkpoints of tiny runs, and damaged copies ---
tiny=(--quiet --set experiment.rounds=1 --set experiment.checkpoint_every=1 --set data.synthetic.num_users=4
  --set data.num_clients=4 --set algorithm.clients_per_round=2 --set data.synthetic.num_features=3
  --set data.synthetic.num_classes=2)
for algo in fedavg fedadam scaffold feddyn fedsparse; do
  "$FEDSIM" run "${tiny[@]}" --set algorithm.name="$algo" --out "$TMP/$algo"
  cp "$TMP/$algo/checkpoint.bin" "$C/fuzz_checkpoint/$algo.bin"
done
f="$C/fuzz_checkpoint/fedavg.bin"
size=$(stat -c %s "$f")
# Without the checksum: the target appends a fresh one, so mutations of these
# reach the header and record parsing.
for algo in fedavg scaffold; do
  head -c $(($(stat -c %s "$C/fuzz_checkpoint/$algo.bin") - 8)) "$C/fuzz_checkpoint/$algo.bin" \
    > "$C/fuzz_checkpoint/${algo}_no_checksum.bin"
done
head -c $((size / 2)) "$f" > "$C/fuzz_checkpoint/truncated.bin"
{ printf 'NOTFEDSM'; tail -c +9 "$f"; } > "$C/fuzz_checkpoint/wrong_magic.bin"
head -c 20 "$f" > "$C/fuzz_checkpoint/header_only.bin"

du -sh "$C"/*
find "$C" -type f -size +50k -exec echo "too large: {}" \; | grep . && exit 1
exit 0
