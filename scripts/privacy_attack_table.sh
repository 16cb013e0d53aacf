#!/usr/bin/env bash
# One table of privacy technique x attack x cost (docs/privacy.md, "Every
# technique against every attack"; issue 23 item 4). Fashion-MNIST, the 2NN
# (784-200-200-10). For each technique three runs, each under the same
# protection flags:
#   train     FedAvg, 1,000 clients (Dirichlet 0.5), 50 a round, E = 2,
#             B = 10, lr 0.05, R rounds (--rounds, default 50): test accuracy,
#             loss-threshold membership inference on the final model
#             (2,000 members against 2,000 test images), the accountant's ε,
#             the canary ε estimate (central DP without secure aggregation
#             only: 200 canaries, 200 unobserved), bytes and simulated
#             seconds per round;
#   analytic  the honest-but-curious server's dense-layer inversion
#             (audit.reconstruction): FedSGD, clients holding one image
#             (1,000 of them), 10 a round, 2 rounds;
#   imprint   the malicious server's imprint layer (audit.imprint, 200 bins
#             on the brightness): FedSGD on the train runs' clients (about 60
#             images each), 10 a round, 2 rounds.
# The DP-SGD row's two attack runs use FedAvg with one full-batch local step
# instead of FedSGD, which fedsim refuses under DP-SGD. The Paillier row
# trains with encryption.scheme = paillier_model (the cost model: the sum is
# taken in the clear, the modelled bytes and seconds are reported) and its
# attack runs use real Paillier (about 4 minutes each on 2 cores).
# Finished runs (completed, or diverged: local DP's noise can blow the
# model up, which the table reports) are skipped, so an interrupted table
# resumes. The table
# goes to OUT/attacks.md and docs/privacy.md (privacy-attacks markers).
# Usage: scripts/privacy_attack_table.sh [--data DIR] [--out DIR] [--threads N] [--rounds R]
#   --data DIR  Fashion-MNIST's four IDX files (default /usr/share/datasets/fashion-mnist)
set -euo pipefail
source "$(dirname "$0")/common.sh"

default_data=/usr/share/datasets/fashion-mnist
data="$default_data"
out="$FEDSIM_ROOT/runs/privacy_attacks"
threads="$(nproc)"
rounds=50
usage="usage: $0 [--data DIR] [--out DIR] [--threads N] [--rounds R]"
while [ $# -gt 0 ]; do
  case "$1" in
    --data|--out|--threads|--rounds)
      [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; } ;;&
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
# The default data folder comes from Debian's dataset-fashion-mnist: install
# it before looking for the folder.
if [ "$data" = "$default_data" ]; then
  fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
else
  fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3
fi
[ -d "$data" ] || { echo "privacy_attack_table: --data $data is not a directory" >&2; exit 2; }
data="$(cd "$data" && pwd)"
if [ -z "${FEDSIM:-}" ]; then
  fedsim_build >/dev/null
  FEDSIM="$FEDSIM_BUILD/fedsim"
fi
mkdir -p "$out"
finished() {  # DIR: a run that completed or diverged
  [ -f "$1/metrics.json" ] &&
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["summary"]["status"] not in ("completed", "diverged"))' \
      "$1/metrics.json"
}

common=(run --quiet --set data.dataset=fashion_mnist --set data.path="$data" --set data.standardize=true
        --set model.kind=mlp --set model.hidden=[200,200] --threads "$threads")
clients="--set data.num_clients=1000 --set data.partition.kind=dirichlet --set data.partition.alpha=0.5"
train="$clients --set algorithm.clients_per_round=50 --set algorithm.local_epochs=2 --set algorithm.batch_size=10
       --set algorithm.lr=0.05 --set experiment.rounds=$rounds --set metrics.eval_every=$rounds
       --set audit.membership=true"
analytic="--set data.num_clients=1000 --set data.max_train_samples=1000 --set data.partition.kind=iid
          --set algorithm.name=fedsgd --set algorithm.clients_per_round=10 --set algorithm.lr=0.05
          --set experiment.rounds=2 --set metrics.eval_every=2 --set audit.reconstruction=true"
imprint="$clients --set algorithm.name=fedsgd --set algorithm.clients_per_round=10 --set algorithm.lr=0.05
         --set experiment.rounds=2 --set metrics.eval_every=2 --set audit.imprint.bins=200"
canaries="--set audit.canaries=200"
central="--set privacy.mode=central --set privacy.clip_norm=1"
secagg="--set secure_aggregation.enabled=true"
declare -A rows=(
  [none]=""
  [input_perturbation]="--set privacy.input_perturbation.features=gaussian --set privacy.input_perturbation.feature_clip=0.5
                        --set privacy.input_perturbation.feature_noise=1 --set privacy.input_perturbation.label_epsilon=2"
  [local_dp]="--set privacy.mode=local --set privacy.clip_norm=1 --set privacy.noise_multiplier=1"
  [central_z0.5]="$central --set privacy.noise_multiplier=0.5"
  [central_z1]="$central --set privacy.noise_multiplier=1"
  [dp_sgd]="--set privacy.mode=sample --set privacy.clip_norm=1 --set privacy.noise_multiplier=1"
  [secagg]="$secagg"
  [paillier]="--set encryption.scheme=paillier_model"
  [secagg_central_z1]="$secagg $central --set privacy.noise_multiplier=1"
)
order="none input_perturbation local_dp central_z0.5 central_z1 dp_sgd secagg paillier secagg_central_z1"
start=$(date +%s)
for name in $order; do
  for kind in train analytic imprint; do
    dir="$out/$name/$kind"
    finished "$dir" && continue
    extra=""
    case "$kind" in
      train) extra="$train"; case "$name" in central_*) extra="$extra $canaries" ;; esac ;;
      analytic) extra="$analytic" ;;
      imprint) extra="$imprint" ;;
    esac
    # fedsim refuses DP-SGD under fedsgd (no local SGD): the DP-SGD row's
    # attacks see FedAvg with one local step over the client's whole data,
    # the same gradient with per-example clipping and noise.
    [ "$name" = dp_sgd ] && [ "$kind" != train ] &&
      extra="$extra --set algorithm.name=fedavg --set algorithm.local_epochs=1 --set algorithm.batch_size=100000"
    # The Paillier row trains with the calibrated cost model (real 2048-bit
    # Paillier on 199,210 coordinates takes about 25 s per client upload
    # here); its attacks see real Paillier's decrypted fixed-point sum.
    [ "$name" = paillier ] && [ "$kind" != train ] && extra="$extra --set encryption.scheme=paillier"
    echo "running $name/$kind" >&2
    # shellcheck disable=SC2086
    # The row's protection first: a run's own settings (last) may refine it.
    "$FEDSIM" "${common[@]}" ${rows[$name]} $extra --out "$dir" || [ $? -eq 3 ]  # 3: diverged, reported
  done
done
echo "runs took $(( $(date +%s) - start )) s" >&2

python3 - "$out" "$order" <<'PY' | tee "$out/attacks.md" | python3 "$FEDSIM_ROOT/scripts/doc_table.py" "$FEDSIM_ROOT/docs/privacy.md" privacy-attacks
import json, sys
out, order = sys.argv[1], sys.argv[2].split()
def load(name, kind):
    return json.load(open(f"{out}/{name}/{kind}/metrics.json"))
def num(v, f="%.2f"):
    return f % v if isinstance(v, (int, float)) else "-"
print("| technique | test accuracy | analytic attack: exact / inverted (mean PSNR dB) | imprint attack: exact (≥ 30 dB) / images in view "
      "| membership AUC | TPR at 1% FPR | accountant ε (δ = 1e-5) | canary ε estimate | MB per round (up + down) "
      "| simulated s per round |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in order:
    t, a, i = load(name, "train"), load(name, "analytic"), load(name, "imprint")
    s = t["summary"]
    rounds = len(t["rounds"])
    ra, ri = a["summary"]["audit"]["reconstruction"], i["summary"]["audit"]["imprint"]
    diverged = s["status"] == "diverged"
    mi = s.get("audit", {}).get("membership", {})
    c = s.get("audit", {}).get("canaries")
    ip = t["config"]["privacy"]["input_perturbation"]
    if t["privacy"]["mode"] != "none":
        eps = num(s["epsilon"])
    elif ip["features"] != "none" or ip["label_epsilon"] is not None:
        g = t["privacy"]["input_perturbation"]
        eps = f"{g['epsilon']:.2f} per example" if g.get("epsilon") is not None else "∞"
    else:
        eps = "-"
    if diverged:
        canary = "- (diverged)" if name.startswith("central") and "secagg" not in name else "n/a"
    elif c:
        rng = c.get("epsilon_estimate_range")
        canary = num(c.get("epsilon_estimate")) + (f" ({rng[0]:.2f}-{rng[1]:.2f})" if rng else "")
    else:
        canary = "n/a"
    analytic = f"{ra['exact']} / {ra['attacked']} ({num(ra['mean_psnr'], '%.0f')})"
    imp = f"{ri['recovered']} ({ri['within_30db']}) / {ri['samples']}"
    up, he_s = s["bytes_up"], 0.0
    enc = [r.get("encryption") for r in t["rounds"]]
    if enc and enc[0] and enc[0].get("scheme") in ("paillier_model", "bfv", "ckks"):
        # A modelled scheme sums in the clear: its wire size and times are in
        # the rounds' encryption objects, not in bytes_up and sim_time_s.
        up = sum(e["bytes_up"] for e in enc)
        he_s = sum(e["client_encrypt_seconds"] + e["server_aggregate_seconds"] + e["decrypt_seconds"]
                   for e in enc) / rounds
    mb = (up + s["bytes_down"]) / rounds / 1e6
    sim = f"{s['sim_time_s'] / rounds:.1f}" + (f" + {he_s:.1f} modelled HE" if he_s else "")
    acc = f"diverged (NaN in round {rounds})" if diverged else f"{s['final_test_accuracy']:.4f}"
    print(f"| {name} | {acc} | {analytic} | {imp} | {num(mi.get('auc'), '%.3f')} | "
          f"{num(mi.get('tpr_at_fpr_0.01'), '%.3f')} | {eps} | {canary} | {mb:.1f} | {sim} |")
print()
print("_Generated by `scripts/privacy_attack_table.sh` (one seed). Analytic: the number of uploads (or sums) "
      "inverted to an exact copy of a client's image out of those inverted, and their mean PSNR. Imprint: the "
      "client images recovered exactly (in brackets: recovered to at least 30 dB PSNR) out of the images behind the "
      "uploads (or sums) the server inverted. "
      "The canary estimate is ± 2 standard errors of the fit; n/a where fedsim refuses the canary audit (see "
      "the text)._")
PY

# The imprint attack's own settings (privacy-imprint markers): FedSGD and
# FedAvg with several local steps, fewer bins, a random measurement, secure
# aggregation over cohorts of 10 and 50, the cohort's sum taken in float64
# (the paillier_model scheme sums in the clear) and real Paillier with 28-bit
# values (about 8 minutes), all without other protection.
declare -A settings=(
  [fedsgd_upload]=""
  [fedsgd_bins50]="--set audit.imprint.bins=50"
  [fedsgd_random]="--set audit.imprint.measurement=random"
  [fedavg_e1_b50]="--set algorithm.name=fedavg --set algorithm.local_epochs=1 --set algorithm.batch_size=50"
  [fedavg_e1_b10]="--set algorithm.name=fedavg --set algorithm.local_epochs=1 --set algorithm.batch_size=10"
  [fedavg_e5_b10]="--set algorithm.name=fedavg --set algorithm.local_epochs=5 --set algorithm.batch_size=10"
  [secagg_cohort10]="$secagg"
  [secagg_cohort50]="$secagg --set algorithm.clients_per_round=50"
  [sum_float64_cohort10]="--set encryption.scheme=paillier_model"
  [paillier_bits28_cohort10]="--set encryption.scheme=paillier --set encryption.value_bits=28"
)
settings_order="fedsgd_upload fedsgd_bins50 fedsgd_random fedavg_e1_b50 fedavg_e1_b10 fedavg_e5_b10 secagg_cohort10
                secagg_cohort50 sum_float64_cohort10 paillier_bits28_cohort10"
for name in $settings_order; do
  dir="$out/imprint_settings/$name"
  finished "$dir" && continue
  echo "running imprint_settings/$name" >&2
  # shellcheck disable=SC2086
  "$FEDSIM" "${common[@]}" $imprint ${settings[$name]} --out "$dir"
done
python3 - "$out" "$settings_order" <<'PY' | tee "$out/imprint.md" | python3 "$FEDSIM_ROOT/scripts/doc_table.py" "$FEDSIM_ROOT/docs/privacy.md" privacy-imprint
import json, sys
out, order = sys.argv[1], sys.argv[2].split()
print("| setting | what the server inverts | bins | samples in view | non-empty bins | recovered exactly | share | ≥ 30 dB PSNR | mean PSNR of the bins (dB) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for name in order:
    r = json.load(open(f"{out}/imprint_settings/{name}/metrics.json"))["summary"]["audit"]["imprint"]
    psnr = f"{r['mean_psnr']:.1f}" if r["mean_psnr"] is not None else "-"
    print(f"| {name} | {r['view']} | {r['bins']} | {r['samples']} | {r['candidates']} | {r['recovered']} | "
          f"{r['recovered_fraction']:.2f} | {r['within_30db']} | {psnr} |")
print()
print("_Generated by `scripts/privacy_attack_table.sh`; `OUT/imprint_settings/*/imprint.pgm` show up to 16 bins of "
      "the last attack round above their best matches._")
PY
