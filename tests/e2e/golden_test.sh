# Golden runs: every config in configs/ (shortened) and variants reaching
# each stage of the round give the results stored in tests/golden/expected/,
# bit for bit but for the changes listed in tests/golden/changes.json.
source "$(dirname "$0")/lib.sh"
python3 "$SRC/tests/golden/golden.py" check "$FEDSIM" "$SRC" || fail "golden results differ (above)"
finish
