#!/usr/bin/env bash
# Issue 19's evaluation of small-matrix kernels (docs/performance.md, "Small
# GEMMs at batch 10: libxsmm evaluated"): the products of one SGD step of the
# 2NN's and the 784-200-10 MLP's dense layers at batch 10, timed with Eigen
# (fedsim's kernels) and with libxsmm's JIT kernels (Debian's libxsmm-dev),
# on one thread, and whether libxsmm gives the same bits as Eigen and on its
# AVX2 ("hsw") and this CPU's code paths. Installs libxsmm-dev and
# libeigen3-dev, compiles scripts/bench_libxsmm.cpp with the portable build's
# flags into OUT (default runs/bench_libxsmm) and prints a Markdown table.
# Usage: scripts/bench_libxsmm.sh [--seconds S] [--out DIR]
set -euo pipefail
source "$(dirname "$0")/common.sh"

seconds=1
out="$FEDSIM_ROOT/runs/bench_libxsmm"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds|--out) [ $# -ge 2 ] || { echo "bench_libxsmm: $1 needs a value" >&2; exit 2; } ;;&
    --seconds) seconds="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: scripts/bench_libxsmm.sh [--seconds S] [--out DIR]" >&2; exit 2 ;;
  esac
done
fedsim_install g++ libeigen3-dev libxsmm-dev pkg-config
mkdir -p "$out"
g++ -std=c++17 -O3 -march=x86-64-v3 -ffp-contract=off -DEIGEN_DONT_PARALLELIZE -DNDEBUG \
  -I/usr/include/eigen3 $(pkg-config --cflags libxsmm) \
  "$FEDSIM_ROOT/scripts/bench_libxsmm.cpp" -o "$out/bench_libxsmm" \
  -L/usr/lib -lxsmm -lxsmmnoblas -lpthread -lrt -ldl -lm
"$out/bench_libxsmm" "$seconds" > "$out/table.md"
LIBXSMM_TARGET=hsw "$out/bench_libxsmm" 0.05 > "$out/table_hsw.md"
# The last column of each row: the hash of libxsmm's result on this CPU's
# code path against the AVX2 one.
python3 - "$out/table.md" "$out/table_hsw.md" <<'PY'
import sys
rows = [l.rstrip("\n") for l in open(sys.argv[1])]
hsw = {l.split("|")[1]: l.split("|")[-2].strip() for l in open(sys.argv[2]) if l.startswith("| ") and "x" in l.split("|")[2]}
for l in rows:
    cells = l.split("|")
    if l.startswith("| product"):
        print(l[:l.rfind("| result hash")] + "| same bits on AVX2 (hsw) |")
    elif l.startswith("|---"):
        print(l)
    else:
        h = cells[-2].strip()
        same = "n/a" if h == "-" else ("yes" if hsw.get(cells[1]) == h else "no")
        print("|".join(cells[:-2]) + f"| {same} |")
PY

