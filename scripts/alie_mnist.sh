#!/usr/bin/env bash
# ALIE ("A Little Is Enough", Baruch et al. 2019) in a setting closer to the
# paper's MNIST experiment than the Fashion-MNIST table: the real MNIST, the
# MLP of the authors' code (784-100-10), 51 clients all in every round, 12
# of them (24%, the code's default share) malicious, against the mean, the
# trimmed mean (12 values cut at each end: trim 0.236 of 51), Krum and
# Bulyan (f = 12; Bulyan needs 4f + 3 = 51), with z = the paper's z_max
# (Φ⁻¹(37/51) ≈ 0.60) and z = 1.5 (the authors' code's default); and each
# rule without attackers. configs/alie_mnist.json: FedAvg, E = 1, B = 32,
# lr 0.1, 20 rounds, standardised pixels, one seed. Unlike the paper, the
# workers run a local epoch (FedAvg) rather than upload one minibatch
# gradient, and the attackers are omniscient (docs/robustness.md).
# Finished runs are reused. Writes OUT/table.md and docs/robustness.md
# (between the "alie-mnist-table" markers).
# Usage: scripts/alie_mnist.sh --data DIR [--out DIR] [--threads N]
#   --data DIR  folder with MNIST's four IDX files (train-images-idx3-ubyte[.gz], ...)
set -euo pipefail
source "$(dirname "$0")/common.sh"

data=""
out="$FEDSIM_ROOT/runs/alie_mnist"
threads="$(nproc)"
usage="usage: $0 --data DIR [--out DIR] [--threads N]"
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[ -n "$data" ] || { echo "$usage" >&2; exit 2; }
[ -d "$data" ] || { echo "$0: --data: no such directory: $data" >&2; exit 2; }

fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
cfg="$FEDSIM_ROOT/configs/alie_mnist.json"
mkdir -p "$out"

run() {  # run NAME OVERRIDES...
  local dir="$out/$1"; shift
  fedsim_completed "$dir" && return 0
  echo "running $(basename "$dir") ($*)" >&2
  "$fedsim" run "$cfg" --set data.path="$data" "$@" --threads "$threads" --quiet --out "$dir" >/dev/null
}
for rule in mean trimmed_mean krum bulyan; do
  run "none-$rule" --set attack.kind=none --set attack.count=0 --set robust.rule="$rule"
  run "alie-zmax-$rule" --set robust.rule="$rule"
  run "alie-z1.5-$rule" --set attack.z=1.5 --set robust.rule="$rule"
done

python3 - "$out" "$FEDSIM_ROOT/docs/robustness.md" <<'PY'
import json, re, sys
out, doc = sys.argv[1], sys.argv[2]
rules = ["mean", "trimmed_mean", "krum", "bulyan"]
def cell(name):
    m = json.load(open(f"{out}/{name}/metrics.json"))
    return f"{m['summary']['final_test_accuracy']:.3f}", m
lines = ["| attack | z | " + " | ".join(rules) + " |", "|---|---|" + "---|" * len(rules)]
for label, prefix in [("none", "none"), ("ALIE", "alie-zmax"), ("ALIE", "alie-z1.5")]:
    cells, z = [], "—"
    for r in rules:
        text, m = cell(f"{prefix}-{r}")
        if prefix != "none":
            z = f"{m['rounds'][-1]['robust']['alie_z']:.2f}"
            kept = sum(x["robust"]["malicious_included"] for x in m["rounds"]) / len(m["rounds"])
            if r in ("krum", "bulyan"):
                text += f" ({kept:.1f} attackers kept)"
        cells.append(text)
    lines.append(f"| {label} | {z} | " + " | ".join(cells) + " |")
table = "\n".join(lines)
open(f"{out}/table.md", "w").write(table + "\n")
text = open(doc).read()
text = re.sub(r"(<!-- alie-mnist-table -->\n).*?(\n<!-- /alie-mnist-table -->)", lambda mm: mm.group(1) + table + mm.group(2),
              text, flags=re.S)
open(doc, "w").write(text)
print(table)
PY
