# Catalogue of hostile inputs: damaged data files, bad configs, damaged
# checkpoints. Every case must stop fedsim with exit code 2, a message that
# names the file, the key or the line, and no OUT/metrics.json.
# The bad files are built in $TMP from the committed samples in datasets/.
source "$(dirname "$0")/lib.sh"

# bad LABEL SUBSTRING OUT -- fedsim args...: exit 2, stderr contains SUBSTRING,
# and OUT/metrics.json does not exist afterwards (OUT may be "" when the
# command writes no results).
bad() {
  local label="$1" want="$2" out="$3"
  shift 4
  local before=$FAILS
  expect_error 2 "$want" -- "$@"
  if [ -n "$out" ] && [ -e "$out/metrics.json" ]; then fail "$out/metrics.json written"; fi
  [ "$FAILS" -eq "$before" ] || echo "  ^ in case: $label" >&2
}

SAMPLE_IDX="$SRC/datasets/fmnist-sample"
SAMPLE_CSV="$SRC/datasets/sample.csv"
IDX_RUN=(--quiet --set data.dataset=mnist_idx --set data.partition.kind=iid --set data.num_clients=10
  --set algorithm.clients_per_round=5 --set experiment.rounds=1)
CSV_RUN=(--quiet --set data.dataset=csv --set data.partition.kind=iid --set data.num_clients=5
  --set algorithm.clients_per_round=2 --set experiment.rounds=1)

# idx_dir NAME: a fresh copy of the gzip sample in $TMP/NAME; prints its path.
idx_dir() {
  mkdir -p "$TMP/$1"
  cp "$SAMPLE_IDX"/*.gz "$TMP/$1/"
  echo "$TMP/$1"
}
# plain_idx_dir NAME: the same files, decompressed.
plain_idx_dir() {
  local d
  d="$(idx_dir "$1")"
  gunzip "$d"/*.gz
  echo "$d"
}
# csv_with_row NAME ROW: sample.csv with ROW inserted as line 6 (after the
# header and 4 good rows); prints its path.
csv_with_row() {
  { head -n 5 "$SAMPLE_CSV"; printf '%s\n' "$2"; tail -n +6 "$SAMPLE_CSV"; } > "$TMP/$1"
  echo "$TMP/$1"
}
# config NAME TEXT: writes TEXT (verbatim) to $TMP/NAME; prints its path.
config() {
  printf '%s' "$2" > "$TMP/$1"
  echo "$TMP/$1"
}

###############################################################################
# IDX image and label files
###############################################################################

# --- IDX: truncated image file, gzip (the gzip stream itself is cut) ---
d="$(idx_dir idx_trunc_gz)"
head -c 3000 "$SAMPLE_IDX/train-images-idx3-ubyte.gz" > "$d/train-images-idx3-ubyte.gz"
bad "truncated gzip IDX image file" "$d/train-images-idx3-ubyte.gz: corrupt or truncated gzip data" "$TMP/o_idx1" -- \
  run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx1"

# --- IDX: truncated image file, gzip (a complete gzip stream of a cut file) ---
d="$(idx_dir idx_trunc_gz2)"
gunzip -c "$SAMPLE_IDX/train-images-idx3-ubyte.gz" | head -c 5000 | gzip -c > "$d/train-images-idx3-ubyte.gz"
bad "gzip of a truncated IDX image file" \
  "$d/train-images-idx3-ubyte.gz: truncated: header says 1000 images of 28x28 but file holds 4984 bytes" \
  "$TMP/o_idx2" -- run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx2"

# --- IDX: truncated image file, plain ---
d="$(plain_idx_dir idx_trunc_plain)"
head -c 5000 "$d/train-images-idx3-ubyte" > "$TMP/cut" && mv "$TMP/cut" "$d/train-images-idx3-ubyte"
bad "truncated plain IDX image file" \
  "$d/train-images-idx3-ubyte: truncated: header says 1000 images of 28x28 but file holds 4984 bytes" \
  "$TMP/o_idx3" -- run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx3"

# --- IDX: image file cut inside its 16-byte header ---
d="$(plain_idx_dir idx_trunc_header)"
head -c 10 "$d/train-images-idx3-ubyte" > "$TMP/cut" && mv "$TMP/cut" "$d/train-images-idx3-ubyte"
bad "IDX image file shorter than its header" "$d/train-images-idx3-ubyte: truncated: 10 bytes" "$TMP/o_idx4" -- \
  run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx4"

# --- IDX: empty image file ---
d="$(plain_idx_dir idx_empty)"
: > "$d/train-images-idx3-ubyte"
bad "empty IDX image file" "$d/train-images-idx3-ubyte: truncated: 0 bytes" "$TMP/o_idx5" -- \
  run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx5"

# --- IDX: wrong magic in the image file (a label magic, 0x801) ---
d="$(plain_idx_dir idx_magic_img)"
{ printf '\x00\x00\x08\x01'; tail -c +5 "$d/train-images-idx3-ubyte"; } > "$TMP/m" && mv "$TMP/m" "$d/train-images-idx3-ubyte"
bad "wrong-magic IDX image file" \
  "$d/train-images-idx3-ubyte: not an IDX image (idx3-ubyte) file: magic 0x00000801, expected 0x00000803" \
  "$TMP/o_idx6" -- run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx6"

# --- IDX: wrong magic in the label file (gzip) ---
d="$(idx_dir idx_magic_lab)"
gunzip -c "$SAMPLE_IDX/train-labels-idx1-ubyte.gz" | { printf '\x00\x00\x08\x03'; tail -c +5; } | gzip -c \
  > "$d/train-labels-idx1-ubyte.gz"
bad "wrong-magic IDX label file" \
  "$d/train-labels-idx1-ubyte.gz: not an IDX label (idx1-ubyte) file: magic 0x00000803, expected 0x00000801" \
  "$TMP/o_idx7" -- run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx7"

# --- IDX: a file that is not IDX at all (the CSV sample under an IDX name) ---
d="$(plain_idx_dir idx_not_idx)"
cp "$SAMPLE_CSV" "$d/train-images-idx3-ubyte"
bad "CSV text as an IDX image file" "$d/train-images-idx3-ubyte: not an IDX image (idx3-ubyte) file" \
  "$TMP/o_idx8" -- run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx8"

# --- IDX: image and label counts disagree (a consistent label file of 999) ---
d="$(idx_dir idx_counts)"
gunzip -c "$SAMPLE_IDX/train-labels-idx1-ubyte.gz" | { printf '\x00\x00\x08\x01\x00\x00\x03\xe7'; tail -c +9 | head -c 999; } |
  gzip -c > "$d/train-labels-idx1-ubyte.gz"
bad "999 labels for 1000 images" \
  "$d/train-labels-idx1-ubyte.gz: 999 labels but $d/train-images-idx3-ubyte.gz holds 1000 images" \
  "$TMP/o_idx9" -- run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx9"

# --- IDX: label file shorter than its header's count ---
d="$(idx_dir idx_lab_trunc)"
gunzip -c "$SAMPLE_IDX/train-labels-idx1-ubyte.gz" | head -c 508 | gzip -c > "$d/train-labels-idx1-ubyte.gz"
bad "truncated IDX label file" \
  "$d/train-labels-idx1-ubyte.gz: truncated: header says 1000 labels but file holds 500 bytes" \
  "$TMP/o_idx10" -- run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx10"

# --- IDX: trailing bytes after the announced images ---
d="$(plain_idx_dir idx_trailing)"
printf 'extra' >> "$d/train-images-idx3-ubyte"
bad "IDX image file with trailing bytes" "$d/train-images-idx3-ubyte: 5 trailing bytes" "$TMP/o_idx11" -- \
  run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx11"

# --- IDX: a 16-byte image file whose header announces 2^31 images of 16x16 ---
# Regression (fixed in e6b3c9f): LoadIdx reserved the announced size (512 GiB)
# before reading, so fedsim died with "run failed: std::bad_alloc" (exit 1),
# or an ASan out-of-memory abort, instead of reporting the truncation.
d="$(plain_idx_dir idx_huge_header)"
printf '\x00\x00\x08\x03\x80\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x10' > "$d/train-images-idx3-ubyte"
bad "IDX image header announcing 512 GiB" "$d/train-images-idx3-ubyte: truncated" "$TMP/o_idx13" -- \
  run "${IDX_RUN[@]}" --set data.path="$d" --out "$TMP/o_idx13"

# --- IDX: labels out of range ---
# IDX labels are unsigned bytes, so no label can exceed 255: a label file is
# never out of range by construction (LoadIdx sets num_classes = max label + 1
# <= 256; tests/data/idx_test.cpp checks that). Nothing to reject here.

# --- IDX: a missing data directory ---
bad "missing IDX directory" "$TMP/no-such-dir: no such directory" "$TMP/o_idx12" -- \
  run "${IDX_RUN[@]}" --set data.path="$TMP/no-such-dir" --out "$TMP/o_idx12"

###############################################################################
# CSV files (line 6 is the bad row: header on line 1, good rows on 2-5)
###############################################################################

# --- CSV: negative label ---
f="$(csv_with_row csv_neg.csv '-1,1.0,2.0,3.0,4.0')"
bad "CSV negative label" "$f:6: label '-1' (column 1) is not a non-negative integer" "$TMP/o_csv1" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv1"

# --- CSV: non-integer label ---
f="$(csv_with_row csv_frac.csv '1.5,1.0,2.0,3.0,4.0')"
bad "CSV non-integer label" "$f:6: label '1.5' (column 1) is not a non-negative integer" "$TMP/o_csv2" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv2"

# --- CSV: label too large to be a class id ---
f="$(csv_with_row csv_huge_label.csv '100000,1.0,2.0,3.0,4.0')"
bad "CSV label too large" "$f:6: label '100000' (column 1) is too large" "$TMP/o_csv3" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv3"

# --- CSV: row with a missing field (4 fields where the file has 5) ---
f="$(csv_with_row csv_short.csv '1,1.0,2.0,3.0')"
bad "CSV row with a missing field" "$f:6: 4 fields, expected 5 as in line 2" "$TMP/o_csv4" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv4"

# --- CSV: row with an empty field ---
f="$(csv_with_row csv_empty_field.csv '1,1.0,,3.0,4.0')"
bad "CSV row with an empty field" "$f:6: column 3 is empty" "$TMP/o_csv5" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv5"

# --- CSV: row with an extra field ---
f="$(csv_with_row csv_long.csv '1,1.0,2.0,3.0,4.0,5.0')"
bad "CSV row with an extra field" "$f:6: 6 fields, expected 5 as in line 2" "$TMP/o_csv6" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv6"

# --- CSV: non-numeric feature ---
f="$(csv_with_row csv_text.csv '1,1.0,abc,3.0,4.0')"
bad "CSV non-numeric feature" "$f:6: column 3: 'abc' is not a number" "$TMP/o_csv7" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv7"

# --- CSV: non-numeric label ---
f="$(csv_with_row csv_text_label.csv 'cat,1.0,2.0,3.0,4.0')"
bad "CSV non-numeric label" "$f:6: column 1: 'cat' is not a number" "$TMP/o_csv8" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv8"

# --- CSV: NaN feature ---
f="$(csv_with_row csv_nan.csv '1,1.0,nan,3.0,4.0')"
bad "CSV NaN feature" "$f:6: column 3: 'nan' is not a finite number" "$TMP/o_csv9" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv9"
f="$(csv_with_row csv_nan2.csv '1,1.0,2.0,NaN,4.0')"
bad "CSV NaN feature (NaN)" "$f:6: column 4: 'NaN' is not a finite number" "$TMP/o_csv10" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv10"

# --- CSV: infinite feature ---
f="$(csv_with_row csv_inf.csv '1,inf,2.0,3.0,4.0')"
bad "CSV inf feature" "$f:6: column 2: 'inf' is not a finite number" "$TMP/o_csv11" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv11"
f="$(csv_with_row csv_ninf.csv '1,1.0,2.0,3.0,-Infinity')"
bad "CSV -Infinity feature" "$f:6: column 5: '-Infinity' is not a finite number" "$TMP/o_csv12" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv12"

# --- CSV: finite double that overflows float, and one that overflows double ---
f="$(csv_with_row csv_float_ovf.csv '1,1e39,2.0,3.0,4.0')"
bad "CSV feature beyond float range" "$f:6: column 2: '1e39' does not fit in a float" "$TMP/o_csv13" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv13"
f="$(csv_with_row csv_double_ovf.csv '1,1e400,2.0,3.0,4.0')"
bad "CSV feature beyond double range" "$f:6: column 2: '1e400' is out of range" "$TMP/o_csv14" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv14"

# --- CSV: NaN label ---
f="$(csv_with_row csv_nan_label.csv 'nan,1.0,2.0,3.0,4.0')"
bad "CSV NaN label" "$f:6: column 1: 'nan' is not a finite number" "$TMP/o_csv15" -- \
  run "${CSV_RUN[@]}" --set data.path="$f" --out "$TMP/o_csv15"

# --- CSV: header only, and an empty file ---
head -n 1 "$SAMPLE_CSV" > "$TMP/csv_header_only.csv"
bad "CSV with a header and no rows" "$TMP/csv_header_only.csv: empty file: no data rows" "$TMP/o_csv16" -- \
  run "${CSV_RUN[@]}" --set data.path="$TMP/csv_header_only.csv" --out "$TMP/o_csv16"
: > "$TMP/csv_empty.csv"
bad "empty CSV file" "$TMP/csv_empty.csv: empty file: no data rows" "$TMP/o_csv17" -- \
  run "${CSV_RUN[@]}" --set data.path="$TMP/csv_empty.csv" --out "$TMP/o_csv17"

# --- CSV: binary garbage ---
head -c 4096 "$SAMPLE_IDX/train-images-idx3-ubyte.gz" > "$TMP/csv_binary.csv"
bad "binary garbage as CSV" "$TMP/csv_binary.csv:" "$TMP/o_csv18" -- \
  run "${CSV_RUN[@]}" --set data.path="$TMP/csv_binary.csv" --set data.csv.header=false --out "$TMP/o_csv18"

# --- CSV: a missing file ---
bad "missing CSV file" "data.path: $TMP/no-such.csv: no such file" "$TMP/o_csv19" -- \
  run "${CSV_RUN[@]}" --set data.path="$TMP/no-such.csv" --out "$TMP/o_csv19"

###############################################################################
# Configs
###############################################################################

# --- config: string where a number belongs ---
f="$(config cfg_str4num.json '{"experiment": {"rounds": "3"}}')"
bad "config: string for a number" "$f: experiment.rounds: expected an integer >= 1, got \"3\"" "$TMP/o_cfg1" -- \
  run "$f" --quiet --out "$TMP/o_cfg1"
f="$(config cfg_str4real.json '{"algorithm": {"lr": "fast"}}')"
bad "config: string for a real" "$f: algorithm.lr: expected a number" "$TMP/o_cfg2" -- run "$f" --quiet --out "$TMP/o_cfg2"

# --- config: number where a string belongs ---
f="$(config cfg_num4str.json '{"experiment": {"name": 3}}')"
bad "config: number for a string" "$f: experiment.name: expected a string, got 3" "$TMP/o_cfg3" -- \
  run "$f" --quiet --out "$TMP/o_cfg3"
f="$(config cfg_num4choice.json '{"algorithm": {"name": 7}}')"
bad "config: number for a name" "$f: algorithm.name: expected one of" "$TMP/o_cfg4" -- run "$f" --quiet --out "$TMP/o_cfg4"

# --- config: array (and a string) where an object belongs ---
f="$(config cfg_arr4obj.json '{"data": [1, 2]}')"
bad "config: array for an object" "$f: data: expected an object, got [1,2]" "$TMP/o_cfg5" -- \
  run "$f" --quiet --out "$TMP/o_cfg5"
f="$(config cfg_str4obj.json '{"algorithm": "fedavg"}')"
bad "config: string for an object" "$f: algorithm: expected an object, got \"fedavg\"" "$TMP/o_cfg6" -- \
  run "$f" --quiet --out "$TMP/o_cfg6"

# --- config: bool and fraction where an integer belongs, scalar for an array ---
f="$(config cfg_bool4int.json '{"data": {"num_clients": true}}')"
bad "config: bool for an integer" "$f: data.num_clients: expected an integer >= 1, got true" "$TMP/o_cfg7" -- \
  run "$f" --quiet --out "$TMP/o_cfg7"
f="$(config cfg_frac4int.json '{"data": {"num_clients": 2.5}}')"
bad "config: fraction for an integer" "$f: data.num_clients: expected an integer >= 1, got 2.5" "$TMP/o_cfg8" -- \
  run "$f" --quiet --out "$TMP/o_cfg8"
f="$(config cfg_num4arr.json '{"model": {"kind": "mlp", "hidden": 200}}')"
bad "config: number for an array" "$f: model.hidden: expected an array of integers >= 1, got 200" "$TMP/o_cfg9" -- \
  run "$f" --quiet --out "$TMP/o_cfg9"

# --- config: zero and negative sizes ---
f="$(config cfg_clients0.json '{"data": {"num_clients": 0}}')"
bad "config: num_clients 0" "$f: data.num_clients: expected an integer >= 1, got 0" "$TMP/o_cfg10" -- \
  run "$f" --quiet --out "$TMP/o_cfg10"
f="$(config cfg_rounds0.json '{"experiment": {"rounds": 0}}')"
bad "config: rounds 0" "$f: experiment.rounds: expected an integer >= 1, got 0" "$TMP/o_cfg11" -- \
  run "$f" --quiet --out "$TMP/o_cfg11"
f="$(config cfg_batch-1.json '{"algorithm": {"batch_size": -1}}')"
bad "config: batch_size -1" "$f: algorithm.batch_size: expected an integer >= 0, got -1" "$TMP/o_cfg12" -- \
  run "$f" --quiet --out "$TMP/o_cfg12"
f="$(config cfg_hidden0.json '{"model": {"kind": "mlp", "hidden": [0]}}')"
bad "config: hidden [0]" "$f: model.hidden: expected an array of integers >= 1, got [0]" "$TMP/o_cfg13" -- \
  run "$f" --quiet --out "$TMP/o_cfg13"
f="$(config cfg_hidden_empty.json '{"model": {"kind": "mlp", "hidden": []}}')"
bad "config: mlp with hidden []" "$f: model.hidden: model.kind=mlp needs at least one hidden layer width" \
  "$TMP/o_cfg14" -- run "$f" --quiet --out "$TMP/o_cfg14"
bad "--set: local_epochs -1" "algorithm.local_epochs: expected an integer >= 1, got -1" "$TMP/o_cfg15" -- \
  run --quiet --set algorithm.local_epochs=-1 --out "$TMP/o_cfg15"

# --- more clients than training samples ---
# sample.csv: 300 rows, 10% held out for test, so 270 training samples.
bad "CSV: more clients than samples" "data.num_clients: 1000 clients but only 270 training samples" "$TMP/o_cfg16" -- \
  run "${CSV_RUN[@]}" --set data.path="$SAMPLE_CSV" --set data.num_clients=1000 --out "$TMP/o_cfg16"
bad "IDX: more clients than samples" "data.num_clients: 1001 clients but only 1000 training samples" "$TMP/o_cfg17" -- \
  run "${IDX_RUN[@]}" --set data.path="$SAMPLE_IDX" --set data.num_clients=1001 --out "$TMP/o_cfg17"
bad "IDX dirichlet: more clients than samples" "data.num_clients: 1001 clients but only 1000 training samples" \
  "$TMP/o_cfg18" -- run "${IDX_RUN[@]}" --set data.path="$SAMPLE_IDX" --set data.num_clients=1001 \
  --set data.partition.kind=dirichlet --out "$TMP/o_cfg18"

# --- a cohort larger than the population ---
f="$(config cfg_cohort.json '{"data": {"num_clients": 20, "partition": {"kind": "iid"}},
  "algorithm": {"clients_per_round": 21}}')"
bad "config: cohort larger than the population" \
  "$f: algorithm.clients_per_round: cohort of 21 is larger than the population (data.num_clients = 20)" \
  "$TMP/o_cfg19" -- run "$f" --quiet --out "$TMP/o_cfg19"

# --- alpha <= 0 ---
f="$(config cfg_alpha0.json '{"data": {"partition": {"kind": "dirichlet", "alpha": 0}}}')"
bad "config: alpha 0" "$f: data.partition.alpha: expected a number > 0, got 0" "$TMP/o_cfg20" -- \
  run "$f" --quiet --out "$TMP/o_cfg20"
f="$(config cfg_alpha_neg.json '{"data": {"partition": {"kind": "dirichlet", "alpha": -1}}}')"
bad "config: alpha -1" "$f: data.partition.alpha: expected a number > 0, got -1" "$TMP/o_cfg21" -- \
  run "$f" --quiet --out "$TMP/o_cfg21"

# --- unknown algorithm names ---
f="$(config cfg_algo.json '{"algorithm": {"name": "fedfoo"}}')"
bad "config: unknown algorithm" "$f: algorithm.name: expected one of fedavg," "$TMP/o_cfg22" -- \
  run "$f" --quiet --out "$TMP/o_cfg22"
f="$(config cfg_algo_case.json '{"algorithm": {"name": "FedAvg"}}')"
bad "config: algorithm name in the wrong case" "got 'FedAvg' (did you mean 'fedavg'?)" "$TMP/o_cfg23" -- \
  run "$f" --quiet --out "$TMP/o_cfg23"
bad "--set: misspelt algorithm" "got 'fedprox2' (did you mean 'fedprox'?)" "$TMP/o_cfg24" -- \
  run --quiet --set algorithm.name=fedprox2 --out "$TMP/o_cfg24"

# --- an unknown key ---
f="$(config cfg_key.json '{"algorithm": {"local_epoch": 2}}')"
bad "config: unknown key" "$f: algorithm.local_epoch: unknown key (did you mean 'algorithm.local_epochs'?)" \
  "$TMP/o_cfg25" -- run "$f" --quiet --out "$TMP/o_cfg25"

# --- an empty config file, and one of whitespace only ---
f="$(config cfg_empty.json '')"
bad "empty config file" "$f: config file is empty" "$TMP/o_cfg26" -- run "$f" --quiet --out "$TMP/o_cfg26"
f="$(config cfg_blank.json '
   
')"
bad "whitespace-only config file" "$f: config file is empty" "$TMP/o_cfg27" -- run "$f" --quiet --out "$TMP/o_cfg27"

# --- a file that is not JSON: binary garbage, YAML, a JSON syntax error ---
head -c 512 "$SAMPLE_IDX/train-images-idx3-ubyte.gz" > "$TMP/cfg_binary.json"
bad "binary garbage as a config" "$TMP/cfg_binary.json:1: not valid JSON" "$TMP/o_cfg28" -- \
  run "$TMP/cfg_binary.json" --quiet --out "$TMP/o_cfg28"
f="$(config cfg_yaml.json 'experiment:
  rounds: 3
algorithm:
  name: fedavg
')"
bad "YAML as a config" "$f:1: not valid JSON" "$TMP/o_cfg29" -- run "$f" --quiet --out "$TMP/o_cfg29"
f="$(config cfg_comma.json '{
  "experiment": {
    "rounds": 3,
  }
}
')"
bad "JSON with a trailing comma" "$f:4: not valid JSON" "$TMP/o_cfg30" -- run "$f" --quiet --out "$TMP/o_cfg30"
bad "validate: binary garbage" "$TMP/cfg_binary.json:1: not valid JSON" "" -- validate "$TMP/cfg_binary.json"

# --- a JSON config that is a bare array, number, string or null ---
f="$(config cfg_array.json '[1, 2]')"
bad "config that is a bare array" "$f: expected a JSON object at the top level" "$TMP/o_cfg31" -- \
  run "$f" --quiet --out "$TMP/o_cfg31"
f="$(config cfg_number.json '42')"
bad "config that is a bare number" "$f: expected a JSON object at the top level" "$TMP/o_cfg32" -- \
  run "$f" --quiet --out "$TMP/o_cfg32"
f="$(config cfg_string.json '"fedavg"')"
bad "config that is a bare string" "$f: expected a JSON object at the top level" "$TMP/o_cfg33" -- \
  run "$f" --quiet --out "$TMP/o_cfg33"
f="$(config cfg_null.json 'null')"
bad "config that is null" "$f: expected a JSON object at the top level" "$TMP/o_cfg34" -- \
  run "$f" --quiet --out "$TMP/o_cfg34"

# --- a huge integer: named with its own value, not a wrapped one ---
# Regression (fixed in e6b3c9f): Reader::Int read the unsigned 2^64-1 as
# int64_t -1 and said "expected an integer >= 1, got -1".
f="$(config cfg_u64.json '{"experiment": {"rounds": 18446744073709551615}}')"
bad "config: rounds 2^64-1" "$f: experiment.rounds: expected an integer <= 100000000, got 18446744073709551615" \
  "$TMP/o_cfg36" -- run "$f" --quiet --out "$TMP/o_cfg36"

# --- a deeply nested value where a section belongs (100,000 levels) ---
# Regression (fixed in e6b3c9f): the error message rendered the value with
# nlohmann::json::dump, which recurses once per level and overflowed the
# stack: SIGSEGV (exit 139), an ASan stack-overflow in the fuzz build.
python3 -c "import sys; n = 100000; sys.stdout.write('{\"experiment\": ' + '[' * n + ']' * n + '}')" \
  > "$TMP/cfg_deep.json"
bad "config: 100,000 nested arrays as a section" "$TMP/cfg_deep.json:1: not a fedsim config: nested deeper than 64 levels" \
  "$TMP/o_cfg37" -- run "$TMP/cfg_deep.json" --quiet --out "$TMP/o_cfg37"

# --- a --set value nested 10,000 levels ---
# Passes in the release build (which overflows from about 80,000 levels, more
# than the 128 KiB argv limit allows); fails under scripts/test.sh --sanitize
# (ASan stack-overflow, exit 1, from about 6,000 levels): --set values bypass
# ReadConfigJson's nesting cap, ApplyOverride copies the value recursively
# ("(*node)[part] = value" in src/core/config.cpp) and ParseConfig's Show()
# dumps it recursively.
bad "--set: a value nested 10,000 levels" "(with --set): experiment: expected an object" "$TMP/o_cfg38" -- \
  run --quiet --set "experiment=$(python3 -c "print('[' * 10000 + ']' * 10000)")" --out "$TMP/o_cfg38"

# --- a missing config file ---
bad "missing config file" "$TMP/no-such.json: cannot open config file" "$TMP/o_cfg35" -- \
  run "$TMP/no-such.json" --quiet --out "$TMP/o_cfg35"

###############################################################################
# Checkpoints: fedsim run --resume DIR with DIR/checkpoint.bin damaged
###############################################################################
# A good run with a checkpoint after every round; each case copies it, damages
# the copy and removes its metrics.json (as a run killed with -9 after a
# checkpoint leaves it), then resumes.
"$FEDSIM" run --quiet --set experiment.rounds=2 --set experiment.checkpoint_every=1 --out "$TMP/ck" ||
  fail "checkpoint source run failed"
[ -s "$TMP/ck/checkpoint.bin" ] || fail "checkpoint source run wrote no checkpoint.bin"
CK_SIZE=$(stat -c %s "$TMP/ck/checkpoint.bin")
# ck_copy NAME: a copy of the good run without metrics.json; prints its path.
ck_copy() {
  rm -rf "$TMP/$1"
  cp -r "$TMP/ck" "$TMP/$1"
  rm -f "$TMP/$1/metrics.json"
  echo "$TMP/$1"
}
# poke FILE OFFSET BYTES: overwrites BYTES (printf format) at OFFSET.
poke() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# --- checkpoint: wrong magic ---
d="$(ck_copy ck_magic)"
poke "$d/checkpoint.bin" 0 'NOTFEDSM'
bad "checkpoint with a wrong magic" "$d/checkpoint.bin: not a fedsim checkpoint (wrong magic)" "$d" -- \
  run --quiet --resume "$d"

# --- checkpoint: truncated to half ---
d="$(ck_copy ck_half)"
head -c $((CK_SIZE / 2)) "$TMP/ck/checkpoint.bin" > "$d/checkpoint.bin"
bad "checkpoint truncated to half" "$d/checkpoint.bin: checkpoint is truncated or corrupt" "$d" -- \
  run --quiet --resume "$d"

# --- checkpoint: last byte cut off ---
d="$(ck_copy ck_cut1)"
head -c $((CK_SIZE - 1)) "$TMP/ck/checkpoint.bin" > "$d/checkpoint.bin"
bad "checkpoint missing its last byte" "$d/checkpoint.bin: checkpoint is truncated or corrupt" "$d" -- \
  run --quiet --resume "$d"

# --- checkpoint: cut inside the fixed header, and empty ---
d="$(ck_copy ck_tiny)"
head -c 10 "$TMP/ck/checkpoint.bin" > "$d/checkpoint.bin"
bad "checkpoint of 10 bytes" "$d/checkpoint.bin: not a fedsim checkpoint: only 10 bytes" "$d" -- \
  run --quiet --resume "$d"
d="$(ck_copy ck_empty)"
: > "$d/checkpoint.bin"
bad "empty checkpoint" "$d/checkpoint.bin: not a fedsim checkpoint: only 0 bytes" "$d" -- run --quiet --resume "$d"

# --- checkpoint: one flipped byte in the records ---
d="$(ck_copy ck_flip)"
poke "$d/checkpoint.bin" $((CK_SIZE - 100)) '\125'
bad "checkpoint with a flipped byte" "$d/checkpoint.bin: checkpoint is truncated or corrupt (checksum mismatch)" \
  "$d" -- run --quiet --resume "$d"

# --- checkpoint: unsupported format version ---
d="$(ck_copy ck_version)"
poke "$d/checkpoint.bin" 8 '\007'
bad "checkpoint of another format version" "$d/checkpoint.bin: checkpoint format version 7" "$d" -- \
  run --quiet --resume "$d"

# --- checkpoint: missing ---
d="$(ck_copy ck_missing)"
rm "$d/checkpoint.bin"
bad "missing checkpoint" "$d/checkpoint.bin: cannot open checkpoint" "$d" -- run --quiet --resume "$d"

# --- checkpoint: a well-formed file (right magic, version and checksum) whose
# JSON header is wrong. Rewritten by python with a fresh FNV-1a checksum, so
# only the header's content is hostile.
# ck_rewrite NAME PYTHON: copies the good run into $TMP/NAME, applies PYTHON
# to the header `h` (a dict) and the record bytes `body`, re-checksums; sets d
# to the directory.
ck_rewrite() {
  d="$(ck_copy "$1")"
  python3 - "$TMP/ck/checkpoint.bin" "$d/checkpoint.bin" "$2" <<'PY' || fail "ck_rewrite $1"
import json, struct, sys
src, dst, edit = sys.argv[1], sys.argv[2], sys.argv[3]
b = open(src, 'rb').read()
n = struct.unpack_from('<Q', b, 12)[0]
h = json.loads(b[20:20 + n])
body = b[20 + n:-8]
exec(edit)
# "@@DEEP@@" stands for 100,000 nested arrays (too deep for json.dumps).
hs = json.dumps(h).replace('"@@DEEP@@"', '[' * 100000 + ']' * 100000).encode()
out = b[:12] + struct.pack('<Q', len(hs)) + hs + body
v = 0xcbf29ce484222325
for c in out:
    v = ((v ^ c) * 0x100000001b3) & 0xffffffffffffffff
open(dst, 'wb').write(out + struct.pack('<Q', v))
PY
}

# Sanity check of ck_rewrite itself: an unchanged rewrite resumes fine. Under
# scripts/test.sh --sanitize this resume also guards the fix in 162e819: a
# FedAvg checkpoint holds empty server_opt/m and server_opt/v records, and
# CheckpointReader copied them with memcpy(nullptr, ..., 0), which UBSan
# reports (fuzz regression tests/fuzz/regressions/fuzz_checkpoint/empty_*).
ck_rewrite ck_same 'pass'
"$FEDSIM" run --quiet --resume "$d" || fail "resume of a re-checksummed, unchanged checkpoint failed"

ck_rewrite ck_no_config 'del h["config"]'
bad "checkpoint header without a config" "$d/checkpoint.bin: checkpoint has no config" "$d" -- \
  run --quiet --resume "$d"
ck_rewrite ck_bad_config 'h["config"]["experiment"]["rounds"] = -3'
bad "checkpoint header with an invalid config" "experiment.rounds: expected an integer >= 1, got -3" "$d" -- \
  run --quiet --resume "$d"
ck_rewrite ck_no_global 'body = b""'
bad "checkpoint without the global model" "$d/checkpoint.bin: checkpoint has no 'global'" "$d" -- \
  run --quiet --resume "$d"
# Regressions for the next five (fixed in e6b3c9f): the header's "totals" and
# "rounds" were used without checks (RunExperiment's resume block): exit 1
# with a raw nlohmann::json exception, or exit 0 with rounds numbered -2, -1
# or junk round records in metrics.json.
ck_rewrite ck_no_totals 'del h["totals"]'
bad "checkpoint header without totals" "$d/checkpoint.bin: checkpoint" "$d" -- run --quiet --resume "$d"
ck_rewrite ck_next_round_str 'h["totals"]["next_round"] = "one"'
bad "checkpoint header with a string next_round" "$d/checkpoint.bin: checkpoint" "$d" -- run --quiet --resume "$d"
ck_rewrite ck_rounds_num 'h["totals"]["next_round"] = 1; h["rounds"] = 5'
bad "checkpoint header whose rounds is a number" "$d/checkpoint.bin: checkpoint" "$d" -- run --quiet --resume "$d"
ck_rewrite ck_rounds_junk 'h["totals"]["next_round"] = 1; h["rounds"] = [{"x": 1}]'
bad "checkpoint header whose round records are junk" "$d/checkpoint.bin: checkpoint" "$d" -- run --quiet --resume "$d"
ck_rewrite ck_next_round_neg 'h["totals"]["next_round"] = -2; h["rounds"] = []'
bad "checkpoint header with a negative next_round" "$d/checkpoint.bin: checkpoint" "$d" -- run --quiet --resume "$d"

# Regression (fixed in 82d9041, CheckpointReader caps the header's nesting):
# the config stored in the header went through ParseConfig without
# ReadConfigJson's nesting cap, and overflowed the stack: SIGSEGV in Show()'s
# json::dump (release build), ASan stack-overflow in the recursive json copy
# of CheckpointConfig (src/run/experiment.cpp) under scripts/test.sh --sanitize.
ck_rewrite ck_deep_config 'h["config"]["experiment"] = "@@DEEP@@"'
bad "checkpoint header whose config is nested 100,000 levels" "$d/checkpoint.bin" "$d" -- \
  run --quiet --resume "$d"

###############################################################################
# Fuzzer-found regressions (tests/fuzz/regressions/): inputs that once broke a
# reader, run here through the CLI.
###############################################################################
REG="$SRC/tests/fuzz/regressions"
if [ -d "$REG/fuzz_config" ]; then
  for f in "$REG"/fuzz_config/*; do
    [ -f "$f" ] || continue
    # A config the fuzzer found may be valid JSON that ParseConfig accepts;
    # what matters is exit 0 or 2 and never a crash or "run failed".
    err="$("$FEDSIM" validate "$f" 2>&1 >/dev/null)"
    rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ] || fail "validate $f: exit $rc (stderr: $err)"
  done
fi

finish
