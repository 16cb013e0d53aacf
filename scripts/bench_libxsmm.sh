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
LIBXSMM_TARGET=hsw "$out/bench_libxsmm" "$seconds" > "$out/table_hsw.md"
# One table: this CPU's code path, then the AVX2 one's rate and ratio (each
# against the Eigen figure of its own run), and whether the two give the
# same bits (the hash of each result).
python3 - "$out/table.md" "$out/table_hsw.md" <<'PY'
import sys
def rows(path):
    return [[c.strip() for c in l.split("|")[1:-1]] for l in open(path) if l.startswith("| ") and not l.startswith("| product")]
hsw = {r[0]: r for r in rows(sys.argv[2])}
head = open(sys.argv[1]).readline().split("|")[4].strip()  # "libxsmm (cpx) GFLOP/s"
print(f"| product | m x n x k | Eigen GFLOP/s | {head} | / Eigen | Eigen GFLOP/s (AVX2 run) | libxsmm (hsw) GFLOP/s | / Eigen | same bits as Eigen | same bits AVX2 vs this CPU |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows(sys.argv[1]):
    h = hsw[r[0]]
    same = "n/a" if r[6] == "-" else ("yes" if h[6] == r[6] else "no")
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {h[2]} | {h[3]} | {h[4]} | {r[5]} | {same} |")
PY

