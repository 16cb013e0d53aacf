#!/usr/bin/env bash
# Builds fedsim's libFuzzer targets (tests/fuzz/) with clang into build-fuzz
# and fuzzes each for a while, starting from its seed corpus.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
#   TARGET: fuzz_config fuzz_idx fuzz_csv fuzz_checkpoint (default: all four)
# Steps: (1) replay tests/fuzz/regressions/ and the seed corpora once (ctest in
# build-fuzz); (2) fuzz each target in a scratch copy of its corpus
# (build-fuzz/run/<target>/), so the repository's corpus is never written to;
# crashes, leaks, out-of-memory and timeouts found are kept in
# build-fuzz/run/<target>/artifacts/ and summarised.
# Exits 1 if a regression input fails or fuzzing found anything.
# FEDSIM_FUZZ_MAX_LEN (optional) overrides libFuzzer's -max_len.
set -euo pipefail
source "$(dirname "$0")/common.sh"

seconds="${1:-60}"
[ $# -gt 0 ] && shift
case "$seconds" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number, got '$seconds'" >&2; exit 2 ;; esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_config fuzz_idx fuzz_csv fuzz_checkpoint)

# clang-14 and its runtimes (libFuzzer, ASan, UBSan); libomp-14-dev is clang's
# OpenMP, which fedsim_core links.
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" clang-14 libclang-rt-14-dev libomp-14-dev python3
CLANGXX="$(command -v clang++-14 || command -v clang++)"
CLANG="$(command -v clang-14 || command -v clang)"

FUZZ_BUILD="${FEDSIM_FUZZ_BUILD:-$FEDSIM_ROOT/build-fuzz}"
CC="$CLANG" CXX="$CLANGXX" cmake -S "$FEDSIM_ROOT" -B "$FUZZ_BUILD" -DFEDSIM_FUZZ=ON -DFEDSIM_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$FUZZ_BUILD" -j"$(nproc)" --target "${targets[@]}"

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export OMP_NUM_THREADS=1
status=0

echo "== replaying tests/fuzz/regressions and the seed corpora"
regex="$(printf '%s|' "${targets[@]}")"
if ! (cd "$FUZZ_BUILD" && ctest --output-on-failure -R "^fuzz\\.(${regex%|})\$"); then
  echo "fuzz.sh: a regression or corpus input fails (see above)" >&2
  status=1
fi

# The first line of each report kind, for the summary.
summarise() {  # BINARY ARTIFACT
  local out line
  out="$("$1" -runs=1 "$2" 2>&1 || true)"
  line="$(grep -m1 -E "runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|what\(\):|^fuzz_[a-z]+: " \
    <<<"$out" || true)"
  # Addresses, pids and sizes differ between reports of one bug.
  sed -E 's/^==[0-9]+==[ ]?//; s/0x[0-9a-f]+/0x.../g; s/\([0-9]+\)/(...)/g' <<<"${line:-(no report on replay)}"
}

for t in "${targets[@]}"; do
  bin="$FUZZ_BUILD/$t"
  work="$FUZZ_BUILD/run/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$FEDSIM_ROOT/tests/fuzz/corpus/$t"/* "$work/corpus/"
  echo "== $t: fuzzing for ${seconds}s (corpus: $(ls "$work/corpus" | wc -l) files, scratch: $work)"
  extra=()
  [ -n "${FEDSIM_FUZZ_MAX_LEN:-}" ] && extra+=(-max_len="$FEDSIM_FUZZ_MAX_LEN")
  # -fork=1 with ignore_*: keep fuzzing after a finding (each is saved as an
  # artifact) instead of stopping at the first one. 4 GiB memory limits: LoadIdx
  # may reserve what an IDX header announces up to 2 GiB (a hint it trusts).
  (cd "$work" && "$bin" -max_total_time="$seconds" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=4096 -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
    ${extra[@]+"${extra[@]}"} "$work/corpus" >"$work/fuzz.log" 2>&1) || true
  # The last status line: executions, coverage, corpus size, findings so far.
  grep -E "^#[0-9]+: cov" "$work/fuzz.log" | tail -1 | cut -c1-160 || true
  found=()
  for a in "$work"/artifacts/*; do
    [ -f "$a" ] || continue
    case "$(basename "$a")" in crash-* | leak-* | oom-* | timeout-*) found+=("$a") ;; esac
  done
  if [ ${#found[@]} -eq 0 ]; then
    echo "$t: nothing found; corpus grew to $(ls "$work/corpus" | wc -l) files"
    continue
  fi
  status=1
  echo "$t: ${#found[@]} finding(s) in $work/artifacts/ (replay one with: $bin FILE):"
  for a in "${found[@]}"; do
    printf '%s\t%s\n' "$(summarise "$bin" "$a")" "$(basename "$a")"
  done | sort | awk -F'\t' '{n[$1]++; if (!($1 in ex)) ex[$1]=$2} END {for (k in n) printf "  %3d x %s\n        e.g. %s\n", n[k], k, ex[k]}'
done
exit "$status"
