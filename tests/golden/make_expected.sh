#!/usr/bin/env bash
# Writes tests/golden/expected/ from a fedsim binary built from the commit
# whose results the golden test holds later code to (see cases.txt).
# Usage: tests/golden/make_expected.sh FEDSIM [NAME...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec python3 "$here/golden.py" make "$1" "$here/../.." "${@:2}"
