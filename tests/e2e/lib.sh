# Helpers for the end-to-end tests. Each test script is run by ctest as
#   bash tests/e2e/NAME_test.sh FEDSIM_BINARY SOURCE_DIR
set -uo pipefail
FEDSIM="$1"
SRC="$2"
TMP="$(mktemp -d)"
# Python snippets import tests/e2e/metrics_util.py from here.
export E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
trap 'rm -rf "$TMP"' EXIT
FAILS=0

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

# expect_error CODE SUBSTRING -- fedsim args...: runs fedsim, checks the exit
# code and that stderr contains SUBSTRING.
expect_error() {
  local code="$1" want="$2"
  shift 3
  local err rc
  err="$("$FEDSIM" "$@" 2>&1 >/dev/null)"
  rc=$?
  if [ "$rc" -ne "$code" ]; then fail "fedsim $*: exit $rc, expected $code (stderr: $err)"; return; fi
  case "$err" in
    *"$want"*) ;;
    *) fail "fedsim $*: stderr does not contain '$want': $err" ;;
  esac
}

# write_cifar10 DIR N: a CIFAR-10 binary folder (data_batch_1..5.bin and
# test_batch.bin) of N images per file. Image i of a file whose first index
# is f (N*b for data_batch_b, 40 for the test batch) has label (f + i) % 10
# and pixels ((f + i) * 3 + j) % 256.
write_cifar10() {
  python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(root)
def batch(name, first):
    with open(f"{root}/{name}", "wb") as f:
        for i in range(n):
            f.write(bytes([(first + i) % 10]) + bytes(((first + i) * 3 + j) % 256 for j in range(3072)))
for b in range(1, 6):
    batch(f"data_batch_{b}.bin", n * b)
batch("test_batch.bin", 40)
PY
}

finish() {
  if [ "$FAILS" -ne 0 ]; then echo "$FAILS check(s) failed" >&2; exit 1; fi
  echo "all checks passed"
}
