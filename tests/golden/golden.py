#!/usr/bin/env python3
"""Golden runs: every config in configs/ (shortened) and variants that reach
each stage of the round, compared bit for bit (wall-clock fields aside) with
results stored from an earlier commit.

  golden.py make  FEDSIM SRC [NAME...]   write expected/NAME.json
  golden.py check FEDSIM SRC [NAME...]   run and compare (exit 1 on a difference)
  --expected DIR   read and write the expected files in DIR instead of
                   expected/ (scripts/portable_check.sh compares a native
                   build with itself this way)

The cases are in cases.txt. changes.json says what may differ and why:
  "added":   key paths the newer code may add (new metrics, new config keys);
  "changed": per case, {"reason": why, "paths": [key paths whose values
             changed on purpose]}.
A path is dot-separated; "*" matches any key or array index.

The expected files are made with the portable build (FEDSIM_PORTABLE, the
default), whose bits are the same on every x86-64-v3 machine
(docs/metrics.md#determinism). They record the build type, SIMD, compiler and
portability they were made with; a run whose build matches is compared bit for
bit, on whatever CPU it runs; any other build (native, the sanitizer build,
another compiler) with a tolerance of 0.01 absolute or 1e-3 relative on
non-integer numbers, integers still exact.
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from fedsim_metrics import strip  # noqa: E402


def read_cases(only):
    common, cases = [], []
    with open(os.path.join(HERE, "cases.txt")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            words = shlex.split(line)
            if words[0] == "COMMON":
                common = words[1:]
            else:
                cases.append((words[0], words[1], words[2:]))
    if only:
        missing = set(only) - {c[0] for c in cases}
        if missing:
            sys.exit(f"golden.py: no such case: {', '.join(sorted(missing))}")
        cases = [c for c in cases if c[0] in only]
    return common, cases


def run_case(fedsim, src, common, name, config, args, tmp):
    out = os.path.join(tmp, name)
    cmd = [fedsim, "run", os.path.join(src, config), "--out", out] + common + args
    p = subprocess.run(cmd, cwd=src, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # A run that diverges exits non-zero but still writes its metrics; the
    # exit code is part of what is compared.
    if not os.path.exists(os.path.join(out, "metrics.json")):
        raise RuntimeError(f"{name}: exit {p.returncode}: {p.stderr.strip()[-2000:]}\n  {' '.join(cmd)}")
    with open(os.path.join(out, "metrics.json")) as f:
        raw = json.load(f)
    metrics = strip(raw)
    metrics["exit_code"] = p.returncode
    env = raw.get("environment", {})
    metrics["_build"] = {k: env.get(k) for k in ("build_type", "simd", "compiler", "portable")}
    with open(os.path.join(out, "rounds.jsonl")) as f:
        rounds = [strip(json.loads(l)) for l in f if l.strip()]
    # rounds.jsonl must say what metrics.json says, round for round.
    if rounds != metrics.get("rounds") and "summary" in metrics:
        raise RuntimeError(f"{name}: rounds.jsonl differs from metrics.json's rounds")
    return metrics


def match(pattern, path):
    p, q = pattern.split("."), path.split(".")
    return len(p) == len(q) and all(a == "*" or a == b for a, b in zip(p, q))


def close(a, b, tolerant):
    # Integers, strings, booleans and null stay exact; only floats get slack.
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    if tolerant and numbers and (isinstance(a, float) or isinstance(b, float)):
        return abs(a - b) <= max(0.01, 1e-3 * abs(b))
    return a == b


def diff(exp, act, path, added, changed, out, tolerant=False):
    if any(match(c, path) for c in changed):
        return
    if isinstance(exp, dict) and isinstance(act, dict):
        for k in exp:
            sub = f"{path}.{k}" if path else k
            if k not in act:
                out.append(f"{sub}: missing (expected {json.dumps(exp[k])[:80]})")
            else:
                diff(exp[k], act[k], sub, added, changed, out, tolerant)
        for k in act:
            sub = f"{path}.{k}" if path else k
            if k not in exp and not any(match(a, sub) for a in added):
                out.append(f"{sub}: new key not listed in changes.json's \"added\"")
    elif isinstance(exp, list) and isinstance(act, list):
        if len(exp) != len(act):
            out.append(f"{path}: {len(act)} entries, expected {len(exp)}")
        for i, (a, b) in enumerate(zip(exp, act)):
            diff(a, b, f"{path}.{i}", added, changed, out, tolerant)
    elif not close(exp, act, tolerant) or (type(exp) != type(act) and not tolerant):
        out.append(f"{path}: {json.dumps(act)[:80]} != expected {json.dumps(exp)[:80]}")


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("make", "check"):
        sys.exit(__doc__)
    argv = sys.argv[1:]
    expected_dir = os.path.join(HERE, "expected")
    if "--expected" in argv:
        i = argv.index("--expected")
        expected_dir = os.path.abspath(argv[i + 1])
        del argv[i:i + 2]
    mode, fedsim, src, only = argv[0], os.path.abspath(argv[1]), os.path.abspath(argv[2]), argv[3:]
    common, cases = read_cases(only)
    with open(os.path.join(HERE, "changes.json")) as f:
        changes = json.load(f)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, config, args in cases:
            try:
                metrics = run_case(fedsim, src, common, name, config, args, tmp)
            except RuntimeError as e:
                print(f"FAIL {e}")
                failures += 1
                continue
            path = os.path.join(expected_dir, name + ".json")
            if mode == "make":
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    json.dump(metrics, f, indent=1, sort_keys=True)
                    f.write("\n")
                print(f"wrote {name}")
                continue
            with open(path) as f:
                expected = json.load(f)
            build = metrics.pop("_build")
            tolerant = expected.pop("_build", None) != build
            if tolerant and name == cases[0][0]:
                print(f"note: this build ({build}) is not the one the expected results were made with: "
                      "comparing with a tolerance")
            problems = []
            diff(expected, metrics, "", changes.get("added", []),
                 changes.get("changed", {}).get(name, {}).get("paths", []), problems, tolerant)
            if problems:
                failures += 1
                print(f"FAIL {name}: {len(problems)} difference(s) from the golden results")
                for p in problems[:12]:
                    print(f"  {p}")
            else:
                print(f"ok   {name}")
    if failures:
        sys.exit(f"{failures} golden case(s) failed")


if __name__ == "__main__":
    main()
