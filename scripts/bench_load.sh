#!/usr/bin/env bash
# Loading LEAF JSON at scale (issue 18; docs/performance.md): writes a
# Shakespeare-format and a FEMNIST-format data set in LEAF's layout
# (data/train/*.json, data/test/*.json, several files, users sorted) with
# random contents, then loads each with `fedsim data stats` and prints the
# JSON bytes, the loaded feature bytes (metrics' data.feature_bytes), the
# wall time and the process's peak RSS, and the peak RSS over the loaded
# bytes (the issue's target: about 1.5x). The SAX reader never holds a file's
# DOM, so the peak should follow the loaded data, not the JSON text.
# Usage: scripts/bench_load.sh [--shakespeare N] [--femnist N] [--out DIR]
#   N: training samples (test = N/9); defaults 1,000,000 and 30,000.
set -euo pipefail
source "$(dirname "$0")/common.sh"

shakespeare=1000000
femnist=30000
out="$(mktemp -d)"
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --shakespeare) fedsim_need_value "$@"; shakespeare="$2"; shift 2 ;;
    --femnist) fedsim_need_value "$@"; femnist="$2"; shift 2 ;;
    --out) fedsim_need_value "$@"; out="$2"; keep=1; shift 2 ;;
    *) echo "usage: $0 [--shakespeare N] [--femnist N] [--out DIR]" >&2; exit 2 ;;
  esac
done
[ "$keep" = 1 ] || trap 'rm -rf "$out"' EXIT
fedsim_install "${FEDSIM_BUILD_DEPS[@]}" python3 time
fedsim_build >/dev/null
fedsim="$FEDSIM_BUILD/fedsim"

python3 - "$out" "$shakespeare" "$femnist" <<'PY'
import json, os, random, sys
out, n_sh, n_fe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(1)
# LEAF's 80-character Shakespeare alphabet (leaf/models/shakespeare: letters, digits, punctuation, space).
letters = "\n !\"&'(),-.0123456789:;>?ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz}"
def write(task, n, per_user, sample):
    for split, count in (("train", n), ("test", max(1, n // 9))):
        d = os.path.join(out, task, "data", split)
        os.makedirs(d, exist_ok=True)
        users = (count + per_user - 1) // per_user
        files = 8
        for f in range(files):
            lo, hi = users * f // files, users * (f + 1) // files
            names = [f"u{u:07d}" for u in range(lo, hi)]
            with open(os.path.join(d, f"all_data_{f}_{split}.json"), "w") as fh:
                fh.write('{"users": ' + json.dumps(names) + ', "num_samples": '
                         + json.dumps([per_user] * len(names)) + ', "user_data": {')
                for i, u in enumerate(names):
                    k = min(per_user, count - (lo + i) * per_user)
                    xs, ys = zip(*(sample() for _ in range(max(k, 1))))
                    fh.write(("" if i == 0 else ", ") + json.dumps(u) + ': {"x": ' + json.dumps(list(xs))
                             + ', "y": ' + json.dumps(list(ys)) + "}")
                fh.write("}}")
        if split == "train":
            open(os.path.join(out, task + ".users"), "w").write(str(users))
write("shakespeare", n_sh, 400, lambda: ("".join(rng.choice(letters) for _ in range(80)), rng.choice(letters)))
write("femnist", n_fe, 150, lambda: ([rng.randrange(256) / 255 for _ in range(784)], rng.randrange(62)))
PY

printf '| data | training samples | JSON MB | loaded MB | load s | peak RSS MB | peak / loaded |\n|---|---|---|---|---|---|---|\n'
for task in shakespeare femnist; do
  dir="$out/$task/data"
  json_mb="$(du -sm "$dir" | cut -f1)"
  /usr/bin/time -f "%e %M" -o "$out/$task.time" "$fedsim" data stats --json --set data.dataset=leaf \
    --set data.leaf.task="$task" --set data.path="$dir" --set data.partition.kind=natural \
    --set data.num_clients="$(cat "$out/$task.users")" "$FEDSIM_ROOT/configs/leaf_$task.json" > "$out/$task.json"
  python3 - "$out/$task.json" "$out/$task.time" "$task" "$json_mb" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["data"]
secs, rss_kb = open(sys.argv[2]).read().split()[-2:]
loaded = d["feature_bytes"] / 2**20
rss = int(rss_kb) / 1024
print(f"| {sys.argv[3]} | {d['train_samples']:,} | {sys.argv[4]} | {loaded:.1f} | {float(secs):.2f} | {rss:.1f} | {rss / loaded:.2f} |")
PY
done
