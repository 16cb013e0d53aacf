#!/usr/bin/env bash
# Local-training speed of the layer engine's presets and the old model kinds
# (issue 19, item 5; docs/performance.md "Model presets against PyTorch").
# Each model trains whole local epochs of plain SGD on generated data of its
# input shape (`fedsim bench-model`: one client per thread, the data already
# decoded to floats), at 1 and at 2 threads, beside this machine's float32
# GEMM rate measured just before it at the same thread count
# (`fedsim bench-gemm`, 512x512, one product per thread), so both see the same
# load. Prints samples/s, GFLOP/s (the model's own FLOP count,
# Model::TrainFlopsPerSample) and the share of the GEMM rate; the load average
# is recorded with every row.
#
# With --pytorch (what scripts/bench_vs_pytorch.sh runs) each fedsim
# measurement is followed at once by PyTorch's (scripts/bench_torch_models.py:
# the same layers, batch and thread count), and both run under /usr/bin/time
# for their peak RSS.
#
# Usage: scripts/bench_models.sh [--pytorch] [--threads "1 2"] [--seconds S]
#                                [--samples N] [--models "kind ..."] [--out DIR]
set -euo pipefail
source "$(dirname "$0")/common.sh"

threads_list="1 2"
seconds=2
samples=500
models=""
pytorch=0
out="$FEDSIM_ROOT/runs/bench_models"
while [ $# -gt 0 ]; do
  case "$1" in
    --pytorch) pytorch=1; shift ;;
    --threads) fedsim_need_value "$@"; threads_list="$2"; shift 2 ;;
    --seconds) fedsim_need_value "$@"; seconds="$2"; shift 2 ;;
    --samples) fedsim_need_value "$@"; samples="$2"; shift 2 ;;
    --models) fedsim_need_value "$@"; models="$2"; shift 2 ;;
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    *) echo "usage: scripts/bench_models.sh [--pytorch] [--threads \"1 2\"] [--seconds S] [--samples N]" \
            "[--models \"kind ...\"] [--out DIR]" >&2; exit 2 ;;
  esac
done

deps=("${FEDSIM_BUILD_DEPS[@]}" python3 time)
# PyTorch: Debian's python3-torch is built against the generic libblas.so.3,
# which is the slow reference BLAS unless an optimised alternative is
# installed; OpenBLAS (OpenMP build, so torch.set_num_threads governs it) is
# what a user who cares about speed would have.
[ "$pytorch" = 1 ] && deps+=(python3-torch libopenblas0-openmp)
fedsim_install "${deps[@]}"
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"

# name kind batch [hidden]: the presets at the batch sizes of their sources
# (LEAF 10, TFF's EMNIST 20, NIID-Bench 64), ResNet-20 at 32, the old kinds
# at FedAvg's batch of 10 (and the two CNNs at 64 as well, as bench.sh and
# the NIID-Bench runs train them).
rows=(
  "leaf_femnist_cnn leaf_femnist_cnn 10"
  "tff_emnist_cnn tff_emnist_cnn 20"
  "resnet20_gn resnet20_gn 32"
  "niid_cifar_cnn niid_cifar_cnn 64"
  "cnn_lenet cnn_lenet 10"
  "cnn_lenet_b64 cnn_lenet 64"
  "cnn_mcmahan cnn_mcmahan 10"
  "cnn_mcmahan_b64 cnn_mcmahan 64"
  "leaf_shakespeare_lstm leaf_shakespeare_lstm 10"
  "sent140_lstm sent140_lstm 10"
  "tff_stackoverflow_lstm tff_stackoverflow_lstm 16"
  "2nn mlp 10 200,200"
  "mlp200 mlp 10 200"
)

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/load.txt"
for row in "${rows[@]}"; do
  read -r name kind batch hidden <<< "$row"
  if [ -n "$models" ] && ! [[ " $models " == *" $name "* || " $models " == *" $kind "* ]]; then continue; fi
  for t in $threads_list; do
    load="$(cut -d' ' -f1 /proc/loadavg)"
    gemm="$("$fedsim" bench-gemm --threads "$t" --size 512 --seconds 1 --json)"
    hid=(); [ -n "${hidden:-}" ] && hid=(--hidden "$hidden")
    /usr/bin/time -f "%M" -o "$out/rss_fedsim.txt" \
      "$fedsim" bench-model --model "$kind" "${hid[@]}" --batch "$batch" --threads "$t" \
      --samples "$samples" --seconds "$seconds" --json > "$out/fedsim.json"
    torch_json="null"; torch_rss="null"
    if [ "$pytorch" = 1 ]; then
      # Debian's python (python3-torch is installed for it, not for a python3
      # earlier on PATH). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, where this
      # machine sets them to work around old OpenBLAS builds, would pin
      # OpenBLAS to its Haswell kernel (2.5x slower here): unset for this
      # command alone, OpenBLAS picks its kernel for the CPU (printed in the
      # JSON; results checked against float64 when this was written).
      # With several threads, OMP_WAIT_POLICY=PASSIVE: on a loaded machine
      # GNU OpenMP's spinning threads made PyTorch's 2-thread runs up to 20x
      # slower than 1 thread; passive waiting is PyTorch's better case here.
      wait_policy=(); [ "$t" -gt 1 ] && wait_policy=(OMP_WAIT_POLICY=PASSIVE)
      env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS="$t" OPENBLAS_NUM_THREADS="$t" "${wait_policy[@]}" \
        /usr/bin/time -f "%M" -o "$out/rss_torch.txt" \
        /usr/bin/python3 "$FEDSIM_ROOT/scripts/bench_torch_models.py" --model "$kind" --hidden "${hidden:-200,200}" \
        --batch "$batch" --threads "$t" --samples "$samples" --seconds "$seconds" > "$out/torch.json"
      torch_json="$(cat "$out/torch.json")"; torch_rss="$(tail -1 "$out/rss_torch.txt")"
    fi
    printf '{"name": "%s", "threads": %s, "load": %s, "gemm": %s, "fedsim": %s, "fedsim_rss_kib": %s, "torch": %s, "torch_rss_kib": %s}\n' \
      "$name" "$t" "$load" "$gemm" "$(cat "$out/fedsim.json")" "$(tail -1 "$out/rss_fedsim.txt")" \
      "$torch_json" "$torch_rss" >> "$results"
    echo "  $name, $t thread(s) done (load $load)" >&2
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/load.txt"

python3 - "$results" "$pytorch" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pytorch = sys.argv[2] == "1"
one = {(r["name"]): r for r in rows if r["threads"] == 1}
hdr = "| model | batch | params | MFLOP/sample | threads | load | GEMM GFLOP/s | samples/s | GFLOP/s | share of GEMM | vs 1 thread |"
sep = "|---|---|---|---|---|---|---|---|---|---|---|"
if pytorch:
    hdr += " PyTorch samples/s | fedsim / PyTorch | RSS MiB fedsim / PyTorch |"
    sep += "---|---|---|"
print(hdr)
print(sep)
for r in rows:
    f, g = r["fedsim"], r["gemm"]["gflops"]
    base = one.get(r["name"])
    scale = f"{f['samples_per_second'] / base['fedsim']['samples_per_second']:.2f}x" if base and r["threads"] > 1 else ""
    line = (f"| {r['name']} | {f['batch']} | {f['num_params']:,} | {f['train_flops_per_sample'] / 1e6:.1f} | "
            f"{r['threads']} | {r['load']:.1f} | {g:.1f} | {f['samples_per_second']:,.0f} | {f['gflops']:.1f} | "
            f"{100 * f['gflops'] / g:.0f}% | {scale} |")
    if pytorch:
        t = r["torch"]
        warn = "" if t["num_params"] == f["num_params"] else f" (PyTorch has {t['num_params']:,} parameters!)"
        line += (f" {t['samples_per_second']:,.0f} | {f['samples_per_second'] / t['samples_per_second']:.2f}x{warn} | "
                 f"{r['fedsim_rss_kib'] / 1024:.0f} / {r['torch_rss_kib'] / 1024:.0f} |")
    print(line)
PY
