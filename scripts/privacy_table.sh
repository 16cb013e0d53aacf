#!/usr/bin/env bash
# Privacy-utility table: runs the configs of configs/privacy/ on Fashion-MNIST
# with softmax regression for a range of noise multipliers z and writes the
# table into docs/privacy.md (between the "privacy-table" markers) and
# OUT/table.md.
#   10,000 IID clients, 1,000 per round: no DP (baseline); central DP-FedAvg
#   with z = 0 (clipping only), 0.5, 1, 2, 4, 8 and with Poisson sampling at
#   z = 1; local DP (Gaussian) with z = 0.1, 0.5, 1, 2, 4, 8, 16; input
#   perturbation.
#   100 IID clients, 10 per round: no DP (baseline) and sample-level DP-SGD
#   with z = 0 (clipping only), 1, 2.
# Finished runs (OUT/<run>-r<rounds>/metrics.json with status "completed") are
# reused, so an interrupted table resumes. About 5 minutes on an idle 2-core
# machine at the default 50 rounds (docs/privacy.md has the measured time).
# Usage: scripts/privacy_table.sh [--rounds N] [--out DIR] [--threads N]
set -euo pipefail
source "$(dirname "$0")/common.sh"

rounds=50
out="$FEDSIM_ROOT/runs/privacy"
threads="$(nproc)"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) fedsim_need_value "$@"; rounds="$2"; shift 2 ;;
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    --threads) fedsim_need_value "$@"; threads="$2"; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--out DIR] [--threads N]" >&2; exit 2 ;;
  esac
done
case "$rounds" in ''|*[!0-9]*|0) echo "$0: --rounds expects a positive integer, got '$rounds'" >&2; exit 2 ;; esac

fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
cfg="$FEDSIM_ROOT/configs/privacy"
mkdir -p "$out"

# One run per line: name | config | overrides (--set key=value ...).
# Table 1 (10,000 clients) first, then table 2 (100 clients, sample level).
runs=(
  "none|central.json|--set privacy.mode=none"
)
for z in 0 0.5 1 2 4 8; do runs+=("central-z$z|central.json|--set privacy.noise_multiplier=$z"); done
runs+=("central-poisson-z1|central_poisson.json|--set privacy.noise_multiplier=1")
for z in 0.1 0.5 1 2 4 8 16; do runs+=("local-z$z|local.json|--set privacy.noise_multiplier=$z"); done
runs+=("input|input_perturbation.json|")
runs+=("sample-none|sample.json|--set privacy.mode=none")
for z in 0 1 2; do runs+=("sample-z$z|sample.json|--set privacy.noise_multiplier=$z"); done

dirs=()
for spec in "${runs[@]}"; do
  IFS='|' read -r name config overrides <<<"$spec"
  dir="$out/$name-r$rounds"
  dirs+=("$dir")
  fedsim_completed "$dir" && continue
  echo "running $name ($config $overrides)" >&2
  # shellcheck disable=SC2086
  "$fedsim" run "$cfg/$config" $overrides --set experiment.rounds="$rounds" \
    --threads "$threads" --quiet --out "$dir" >/dev/null
done

python3 - "$rounds" "$FEDSIM_ROOT/docs/privacy.md" "$out/table.md" "${dirs[@]}" <<'PY'
import json, math, sys

rounds, doc, table_path, dirs = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]


def fmt_num(x, digits=3):
    if x is None:
        return "-"
    if x >= 1000:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}g}"


def fmt_delta(x):
    if x == 0:
        return "0"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def row(path):
    m = json.load(open(f"{path}/metrics.json"))
    c, p, s, last = m["config"], m["privacy"], m["summary"], m["rounds"][-1]
    pc, ip = c["privacy"], c["privacy"]["input_perturbation"]
    mode = p["mode"]
    z = clip = clipped = "-"
    eps, delta = s["epsilon"], s["delta"]
    notes = []
    if mode in ("central", "local", "sample"):
        z, clip = f"{p['noise_multiplier']:g}", f"{pc['clip_norm']:g}"
        if eps is None:
            eps = math.inf  # no noise: no finite guarantee
    if mode in ("central", "local"):
        clipped = f"{last['clip_fraction']:.2f}"
    a = c["algorithm"]
    if mode == "central":
        if a["sampling"] == "poisson":
            notes.append(f"Poisson sampling, q = {a['sampling_rate']:g}")
        else:
            notes.append(f"fixed cohort, q = K/N = {p['sampling_rate']:g}")
    elif mode == "local":
        per_round = p["local_epsilon_per_round"]
        if per_round:
            notes.append(f"{pc['mechanism']}, ε per round {fmt_num(per_round)}, "
                         f"k = {round(s['epsilon'] / per_round)}")
        else:
            notes.append(f"{pc['mechanism']}, no noise")
    elif mode == "sample":
        notes.append(f"per-example clip, B = {a['batch_size']}")
    elif ip["features"] != "none" or ip["label_epsilon"] is not None:
        mode = "input"
        g = p["input_perturbation"]
        eps, delta = g["epsilon"], g["delta"]
        if eps is None:
            eps = math.inf
        if ip["features"] != "none":
            notes.append(f"features: {'L2' if ip['features'] == 'gaussian' else 'L1'} clip C = "
                         f"{ip['feature_clip']:g}, {ip['features']} noise {ip['feature_noise']:g} "
                         f"(ε {fmt_num(g['feature_epsilon'])})")
        if ip["label_epsilon"] is not None:
            notes.append(f"labels: randomised response ε {ip['label_epsilon']:g}")
    else:
        mode = "none (baseline)"
    acc = s["final_test_accuracy"]
    acc_s = "-" if acc is None else f"{acc:.4f}"
    if s["status"] != "completed":
        acc_s += f" ({s['status']})"
    eps_s = "∞" if eps == math.inf else fmt_num(eps)
    delta_s = "-" if delta is None or eps_s == "-" else fmt_delta(delta)
    cells = [mode, z, clip, acc_s, eps_s, delta_s, str(s["rounds_completed"]), clipped, "; ".join(notes) or "-"]
    return c["data"]["num_clients"], "| " + " | ".join(cells) + " |"


header = ["| mode | z | clip S | final test acc | ε | δ | rounds | clipped (last round) | notes |",
          "|---|---|---|---|---|---|---|---|---|"]
groups = {}
for d in dirs:
    n, line = row(d)
    groups.setdefault(n, []).append(line)
parts = []
for n, lines in groups.items():
    parts.append(f"**{n:,} clients**\n\n" + "\n".join(header + lines))
table = "\n\n".join(parts)
open(table_path, "w").write(table + "\n")
print(table)
text = open(doc).read()
begin, end = "<!-- privacy-table:begin -->", "<!-- privacy-table:end -->"
if begin in text and end in text:
    note = (f"\n_Generated by `scripts/privacy_table.sh --rounds {rounds}`: Fashion-MNIST (standardised), softmax "
            "regression, FedAvg, IID clients, δ = 1e-5, seed 1. 10,000 clients: 1,000 per round, E = 5, B = 10, "
            "lr 0.2 (configs/privacy/central.json, central_poisson.json, local.json, input_perturbation.json). "
            "100 clients: 10 per round, E = 1, B = 50, lr 1.0 (configs/privacy/sample.json). "
            "ε is summary.epsilon (input perturbation: privacy.input_perturbation.epsilon); "
            "∞: no noise, no finite guarantee. Local: ε = k × (ε per round), k = the most rounds any one client "
            "took part in. Clipped: clip_fraction of the last round._\n\n")
    text = text[:text.index(begin) + len(begin)] + note + table + "\n" + text[text.index(end):]
    open(doc, "w").write(text)
PY
