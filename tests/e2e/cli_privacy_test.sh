# fedsim privacy epsilon / sigma print the accountant's published values, and
# a DP run reports epsilon in every round.
source "$(dirname "$0")/lib.sh"

out="$("$FEDSIM" privacy epsilon --q 0.04 --sigma 1.5 --steps 2250 --delta 1e-5)"
case "$out" in *"epsilon 7.32911 "*) ;; *) fail "epsilon: $out" ;; esac
out="$("$FEDSIM" privacy epsilon --q 0.01 --sigma 4 --steps 10000 --delta 1e-5 --conversion classic)"
case "$out" in *"epsilon "*) ;; *) fail "classic: $out" ;; esac
out="$("$FEDSIM" privacy sigma --q 0.04 --steps 2250 --delta 1e-5 --epsilon 7.32911117143)"
case "$out" in *"sigma 1.5"*) ;; *) fail "sigma: $out" ;; esac
expect_error 2 "q" -- privacy epsilon --q 2 --sigma 1 --steps 3

"$FEDSIM" run --quiet --out "$TMP/dp" --set experiment.rounds=3 --set privacy.mode=central \
  --set privacy.noise_multiplier=1.0 --set privacy.clip_norm=1.0 || fail "central DP run"
python3 - "$TMP/dp" <<'PY' || fail "DP metrics"
import json, sys
rounds = [json.loads(l) for l in open(f"{sys.argv[1]}/rounds.jsonl")]
eps = [r["epsilon"] for r in rounds]
assert all(e > 0 for e in eps) and eps == sorted(eps), eps
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
assert m["summary"]["epsilon"] == eps[-1] and m["summary"]["delta"] == 1e-5
PY
expect_error 2 "privacy.mode: central DP clips one model-delta upload" -- run --set privacy.mode=central --set algorithm.name=scaffold
out="$("$FEDSIM" bench-he --key-bits 512 --samples 1)"
case "$out" in *"Paillier 512-bit"*"encrypt"*"decrypt"*) ;; *) fail "bench-he: $out" ;; esac
finish
