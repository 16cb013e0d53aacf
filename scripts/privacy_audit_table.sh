#!/usr/bin/env bash
# Privacy measured beside the accountant (docs/privacy.md, "Audits"):
# softmax regression on Fashion-MNIST, 1,000 clients (Dirichlet 0.5), 100 per
# round, E = 1, B = 10, lr 0.05, 30 rounds, under no DP, central DP-FedAvg at
# noise multipliers 0.3, 0.5, 1 and 2 (clip 1) with 200 canary clients and
# 200 unobserved ones (Andrew et al. 2024), local DP (z = 1, clip 1) and
# sample-level DP-SGD (z = 1, clip 1); and an overfitting 2NN (2,000
# images over 20 clients, E = 20) without DP and with DP-SGD. Every run also
# attacks its final model with loss-threshold membership inference (Yeom et
# al. 2018, up to 2,000 members against 2,000 test samples). The table goes to OUT/table.md and
# docs/privacy.md (privacy-audit markers). Completed runs are skipped.
# A second table (privacy-reconstruction markers): the honest-but-curious
# server inverting the first dense layer of each upload (audit.reconstruction)
# for clients holding one Fashion-MNIST image (1,000 clients, 10 per round,
# 5 rounds, the 2NN), under FedSGD without DP, with central DP (z = 1), local
# DP (z = 1) and secure aggregation, and FedAvg (E = 1, B = 1: one step of
# one image) and FedAvg on 10-image clients (E = 5, B = 10).
# Usage: scripts/privacy_audit_table.sh [--out DIR] [--threads N] [--rounds R]
set -euo pipefail
source "$(dirname "$0")/common.sh"

out="$FEDSIM_ROOT/runs/privacy_audit"
threads="$(nproc)"
rounds=30
while [ $# -gt 0 ]; do
  case "$1" in
    --out) fedsim_need_value "$@"; out="$2"; shift 2 ;;
    --threads) fedsim_need_value "$@"; threads="$2"; shift 2 ;;
    --rounds) fedsim_need_value "$@"; rounds="$2"; shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--threads N] [--rounds R]" >&2; exit 2 ;;
  esac
done
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 dataset-fashion-mnist
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"
mkdir -p "$out"

base=(run --quiet --set data.dataset=fashion_mnist --set data.standardize=true --set data.num_clients=1000
      --set data.partition.kind=dirichlet --set data.partition.alpha=0.5 --set model.kind=softmax
      --set algorithm.clients_per_round=100 --set algorithm.local_epochs=1 --set algorithm.batch_size=10
      --set algorithm.lr=0.05 --set experiment.rounds="$rounds" --set metrics.eval_every="$rounds"
      --set audit.membership=true --threads "$threads")
central="--set privacy.mode=central --set privacy.clip_norm=1 --set audit.canaries=200"
# An overfitting reference for the membership attack: the 2NN on 2,000
# training images over 20 clients, 20 local epochs a round, no DP.
overfit="--set data.max_train_samples=2000 --set data.num_clients=20 --set algorithm.clients_per_round=10
         --set algorithm.local_epochs=20 --set model.kind=mlp --set model.hidden=[200,200]"
declare -A runs=(
  [none]=""
  [central_z0.3]="$central --set privacy.noise_multiplier=0.3"
  [central_z0.5]="$central --set privacy.noise_multiplier=0.5"
  [central_z1]="$central --set privacy.noise_multiplier=1"
  [central_z2]="$central --set privacy.noise_multiplier=2"
  [local_z1]="--set privacy.mode=local --set privacy.clip_norm=1 --set privacy.noise_multiplier=1"
  [sample_z1]="--set privacy.mode=sample --set privacy.clip_norm=1 --set privacy.noise_multiplier=1"
  [none_overfit]="$overfit"
  [sample_z1_overfit]="$overfit --set privacy.mode=sample --set privacy.clip_norm=1 --set privacy.noise_multiplier=1"
)
order="none central_z0.3 central_z0.5 central_z1 central_z2 local_z1 sample_z1 none_overfit sample_z1_overfit"
start=$(date +%s)
for name in $order; do
  fedsim_completed "$out/$name" && continue
  echo "running $name" >&2
  # shellcheck disable=SC2086
  "$fedsim" "${base[@]}" ${runs[$name]} --out "$out/$name"
done
echo "runs took $(( $(date +%s) - start )) s" >&2

recon=(run --quiet --set data.dataset=fashion_mnist --set data.standardize=true --set data.num_clients=1000
       --set data.max_train_samples=1000 --set data.partition.kind=iid --set model.kind=mlp --set model.hidden=[200,200]
       --set algorithm.clients_per_round=10 --set algorithm.lr=0.05 --set experiment.rounds=5
       --set metrics.eval_every=5 --set audit.reconstruction=true --threads "$threads")
declare -A recon_runs=(
  [fedsgd]="--set algorithm.name=fedsgd"
  [fedsgd_central_z1]="--set algorithm.name=fedsgd --set privacy.mode=central --set privacy.clip_norm=1 --set privacy.noise_multiplier=1"
  [fedsgd_local_z1]="--set algorithm.name=fedsgd --set privacy.mode=local --set privacy.clip_norm=1 --set privacy.noise_multiplier=1"
  [fedsgd_secagg]="--set algorithm.name=fedsgd --set secure_aggregation.enabled=true --set secure_aggregation.range=8"
  [fedavg_e1_b1]="--set algorithm.local_epochs=1 --set algorithm.batch_size=1"
  [fedavg_10_images]="--set data.max_train_samples=10000 --set algorithm.local_epochs=5 --set algorithm.batch_size=10"
)
recon_order="fedsgd fedsgd_central_z1 fedsgd_local_z1 fedsgd_secagg fedavg_e1_b1 fedavg_10_images"
for name in $recon_order; do
  fedsim_completed "$out/recon_$name" && continue
  echo "running recon_$name" >&2
  # shellcheck disable=SC2086
  "$fedsim" "${recon[@]}" ${recon_runs[$name]} --out "$out/recon_$name"
done
python3 - "$out" "$recon_order" <<'PY' | tee "$out/reconstruction.md" | python3 "$FEDSIM_ROOT/scripts/doc_table.py" "$FEDSIM_ROOT/docs/privacy.md" privacy-reconstruction
import json, sys
out, order = sys.argv[1], sys.argv[2].split()
print("| setting | what the server inverts | inverted | exact | mean PSNR (dB) | test accuracy |")
print("|---|---|---:|---:|---:|---:|")
for name in order:
    s = json.load(open(f"{out}/recon_{name}/metrics.json"))["summary"]
    r = s["audit"]["reconstruction"]
    psnr = f"{r['mean_psnr']:.1f}" if r["mean_psnr"] is not None else "-"
    print(f"| {name} | {r['view']} | {r['attacked']} | {r['exact']} | {psnr} | {s['final_test_accuracy']:.4f} |")
print()
print("_Generated by `scripts/privacy_audit_table.sh`; `OUT/recon_*/reconstructions.pgm` show the last round's "
      "reconstructions above their best matches._")
PY

python3 - "$out" "$order" <<'PY' | tee "$out/table.md" | python3 "$FEDSIM_ROOT/scripts/doc_table.py" "$FEDSIM_ROOT/docs/privacy.md" privacy-audit
import json, sys
out, order = sys.argv[1], sys.argv[2].split()
def num(v, f="%.2f"):
    return f % v if isinstance(v, (int, float)) else "-"
print("| technique | test accuracy | accountant ε (δ = 1e-5) | canary ε estimate (± 2 s.e. of the fit) | membership AUC | TPR at 1% FPR | TPR at 0.1% FPR | wall s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name in order:
    m = json.load(open(f"{out}/{name}/metrics.json"))
    s = m["summary"]
    a = s.get("audit", {})
    c, mi = a.get("canaries", {}), a.get("membership", {})
    eps = s.get("epsilon")
    rng = c.get("epsilon_estimate_range")
    est = num(c.get("epsilon_estimate")) + (f" ({rng[0]:.2f}-{rng[1]:.2f})" if rng else "")
    print(f"| {name} | {s['final_test_accuracy']:.4f} | {num(eps)} | {est} | "
          f"{num(mi.get('auc'), '%.3f')} | {num(mi.get('tpr_at_fpr_0.01'), '%.3f')} | "
          f"{num(mi.get('tpr_at_fpr_0.001'), '%.4f')} | {s['wall_seconds']:.0f} |")
print()
print("_Generated by `scripts/privacy_audit_table.sh`: one seed; the canary estimate is of the final model only "
      "(Andrew et al.'s threat model in which intermediate models are not observed)._")
PY
