#!/usr/bin/env bash
# Regenerates the key table in docs/config.md from the built binary
# (`fedsim list --config-keys`): the table is the block of lines beginning with
# "| key | type | default | meaning |" up to the first line not starting with "|".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fedsim="${FEDSIM:-$root/build/fedsim}"
table="$("$fedsim" list --config-keys)"
awk -v table="$table" '
  !done && /^\| key \| type \| default \| meaning \|/ { print table; skipping = 1; done = 1; next }
  skipping && /^\|/ { next }
  { skipping = 0; print }
' "$root/docs/config.md" > "$root/docs/config.md.tmp"
mv "$root/docs/config.md.tmp" "$root/docs/config.md"
