#!/usr/bin/env bash
# The portable build's results under forced variations of the machine
# (issue 25; docs/metrics.md#determinism): the golden cases of
# tests/golden/cases.txt run with the same binary while something the host
# decides is changed, and each variation is compared bit for bit with the
# expected results in tests/golden/expected/ (made with the portable build).
#
#   threads-1-core  taskset -c 0 and --threads 1
#   hwcaps          GLIBC_TUNABLES masks AVX, AVX2, FMA, FMA4 and AVX-512F, so
#                   the C library's functions take their SSE2 code paths
#                   (on this machine that changes glibc's exp/log/pow/sin/erfc
#                   results: see docs/metrics.md)
#   malloc          GLIBC_TUNABLES: every allocation above 4 KiB through mmap,
#                   no thread cache, one arena, freed memory overwritten
#   qemu-<cpu>      qemu-x86_64 user-mode emulation of another CPU model
#                   (CPUID, caches and instruction set as that CPU reports)
#   valgrind        valgrind --tool=none: valgrind's own CPU (its CPUID)
#
# Usage: scripts/portable_check.sh [--fedsim build/fedsim] [--variations "a b c"]
#                                  [--cases "NAME ..."] [--native build-native/fedsim]
#   --native BIN   also run the variations with a native (-DFEDSIM_PORTABLE=OFF)
#                  binary, on the slow subset of cases, compared with its own
#                  baseline run: which variations change its results (shows
#                  that the check sees a difference where one exists).
# Prints one line per variation; exits 1 if a portable variation differs.
set -euo pipefail
source "$(dirname "$0")/common.sh"

fedsim="$FEDSIM_ROOT/build/fedsim"
native=""
variations="baseline threads-1-core hwcaps malloc qemu-Haswell-v4 qemu-EPYC-v3 qemu-Cooperlake valgrind"
# The emulators are slow (qemu about 10-30x, valgrind about 5x): a subset of
# the cases that still reaches every kind of arithmetic (GEMM, convolution and
# GroupNorm, the LSTM's gates, DP noise and the accountant, server optimisers,
# the system model, secure sums, Paillier).
slow_cases="quickstart niid_bench sequential_fmnist lstm_gru_sample alg_fedadam privacy_central system_faults async_fedbuff_diurnal secagg_central_dp paillier"
cases=""
while [ $# -gt 0 ]; do
  case "$1" in
    --fedsim) fedsim_need_value "$@"; fedsim="$2"; shift 2 ;;
    --native) fedsim_need_value "$@"; native="$2"; shift 2 ;;
    --variations) fedsim_need_value "$@"; variations="$2"; shift 2 ;;
    --cases) fedsim_need_value "$@"; cases="$2"; shift 2 ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "portable_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
fedsim="$(cd "$(dirname "$fedsim")" && pwd)/$(basename "$fedsim")"
[ -x "$fedsim" ] || { echo "portable_check.sh: no fedsim binary at $fedsim" >&2; exit 2; }
[ -z "$native" ] || native="$(cd "$(dirname "$native")" && pwd)/$(basename "$native")"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# A wrapper per variation: golden.py runs it as if it were fedsim.
wrapper() {  # VARIATION BINARY -> path of an executable wrapper
  local v="$1" bin="$2" w="$tmp/$1-$(basename "$(dirname "$2")")"
  {
    echo '#!/usr/bin/env bash'
    case "$v" in
      baseline) echo "exec \"$bin\" \"\$@\"" ;;
      threads-1-core)
        echo 'args=(); for a in "$@"; do args+=("$a"); done'
        echo 'for i in "${!args[@]}"; do [ "${args[$i]}" = "--threads" ] && args[$((i+1))]=1; done'
        echo "exec taskset -c 0 \"$bin\" \"\${args[@]}\"" ;;
      hwcaps) echo "GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA,-AVX,-FMA4,-AVX512F exec \"$bin\" \"\$@\"" ;;
      malloc) echo "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4096:glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1:glibc.malloc.perturb=165 exec \"$bin\" \"\$@\"" ;;
      qemu-*) echo "exec qemu-x86_64 -cpu ${v#qemu-} \"$bin\" \"\$@\"" ;;
      valgrind) echo "exec valgrind --tool=none --error-exitcode=99 -q \"$bin\" \"\$@\"" ;;
      *) echo "portable_check.sh: unknown variation $v" >&2; exit 2 ;;
    esac
  } > "$w"
  chmod +x "$w"
  echo "$w"
}

need() { command -v "$1" >/dev/null || fedsim_install "$2"; }
case " $variations " in *" qemu-"*) need qemu-x86_64 qemu-user ;; esac
case " $variations " in *" valgrind "*) need valgrind valgrind ;; esac

# The hazard itself: glibc's elementary functions with and without its
# AVX/AVX2/FMA code paths, over two million arguments (fedsim does not call
# them; a program that does gets these differences between machines).
cat > "$tmp/libm_probe.c" <<'EOF_C'
#include <math.h>
#include <stdio.h>
#include <string.h>
#define N 2000000
static const char* names[] = {"exp", "log", "pow", "sin", "cos", "erfc", "log1p", "tanh", "expf", "logf", "tanhf"};
static void values(int i, double* v) {
  const double x = -50.0 + 100.0 * (i + 0.5) / N;
  v[0] = exp(x); v[1] = log(fabs(x) + 1e-3); v[2] = pow(fabs(x) + 0.5, 0.37); v[3] = sin(x);
  v[4] = cos(x); v[5] = erfc(x / 10); v[6] = log1p(fabs(x)); v[7] = tanh(x / 10);
  v[8] = expf((float)x); v[9] = logf((float)fabs(x) + 1e-3f); v[10] = tanhf((float)x / 10);
}
int main(int argc, char** argv) {  /* write FILE | compare FILE */
  FILE* f = fopen(argv[2], argv[1][0] == 'w' ? "wb" : "rb");
  long diff[11] = {0};
  for (int i = 0; i < N; ++i) {
    double v[11], w[11];
    values(i, v);
    if (argv[1][0] == 'w') { fwrite(v, sizeof v, 1, f); continue; }
    if (fread(w, sizeof w, 1, f) != 1) return 1;
    for (int k = 0; k < 11; ++k) diff[k] += memcmp(&v[k], &w[k], sizeof(double)) != 0;
  }
  fclose(f);
  if (argv[1][0] != 'w')
    for (int k = 0; k < 11; ++k) printf("%s %ld%s", names[k], diff[k], k < 10 ? ", " : "\n");
  return 0;
}
EOF_C
if gcc -O1 -fno-builtin "$tmp/libm_probe.c" -o "$tmp/libm_probe" -lm 2>/dev/null; then
  "$tmp/libm_probe" write "$tmp/libm.bin"
  echo "glibc results that change when AVX/AVX2/FMA are masked (of 2,000,000 arguments):"
  echo "  $(GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA,-AVX,-FMA4,-AVX512F "$tmp/libm_probe" compare "$tmp/libm.bin")"
  rm -f "$tmp/libm.bin"
fi

status=0
for v in $variations; do
  these="$cases"
  case "$v" in qemu-*|valgrind) [ -n "$these" ] || these="$slow_cases" ;; esac
  for bin in "$fedsim" $native; do
    kind=portable
    [ "$bin" = "$native" ] && kind=native
    start=$(date +%s)
    # The portable binary against the checked-in expected files; the native
    # one against its own baseline run (made on first use, below).
    expected=()
    if [ "$kind" = native ]; then
      these="${cases:-$slow_cases}"
      expected=(--expected "$tmp/native-expected")
      if [ ! -d "$tmp/native-expected" ]; then
        # shellcheck disable=SC2086
        python3 "$FEDSIM_ROOT/tests/golden/golden.py" make "$bin" "$FEDSIM_ROOT" "${expected[@]}" \
          $these > /dev/null
      fi
    fi
    # shellcheck disable=SC2086
    if out=$(python3 "$FEDSIM_ROOT/tests/golden/golden.py" check "$(wrapper "$v" "$bin")" "$FEDSIM_ROOT" \
             "${expected[@]}" $these 2>&1); then
      verdict="identical bits"
    else
      verdict="DIFFERS: $(echo "$out" | grep -c '^FAIL') case(s)"
      [ "$kind" = portable ] && status=1
    fi
    n=$(echo "$out" | grep -c -E '^(ok|FAIL) ')
    printf '%-16s %-8s %2d cases  %4ds  %s\n' "$v" "$kind" "$n" "$(( $(date +%s) - start ))" "$verdict"
    if [ "$kind" = portable ] && [ "$verdict" != "identical bits" ]; then echo "$out" | grep -A3 '^FAIL' | head -20; fi
  done
done
exit $status
