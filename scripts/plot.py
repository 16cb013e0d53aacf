#!/usr/bin/env python3
"""Plots fedsim runs: one line per group of runs (the mean across them, e.g.
across seeds) with a shaded band (min-max or +-std), into a PNG file.

  scripts/plot.py RESULT... [--group-by KEY]... [--x round|bytes|sim_time|epsilon|wall]
                  [--y test_accuracy|test_loss|train_loss|client_accuracy.worst10|...] [--band minmax|std|none]
                  [--out FILE.png] [--title T]
  scripts/plot.py RESULT... --clients box|violin [--group-by KEY]... [--round N] [--holdout]

--y takes the per-client summaries of metrics.client_eval as well (a record key
and a field: client_accuracy.worst10, client_accuracy.p10, client_accuracy.mean,
client_accuracy.variance, holdout_client_accuracy.weighted_mean,
participation_gap, ...). --clients draws the distribution of per-client
accuracy from each run's clients.jsonl instead of lines: with one group, one
box (or violin) per evaluated round; with several, one per group at its last
evaluated round (or --round N), the group's runs pooled. --holdout draws the
held-out clients instead of the training population's.

RESULT is a run directory (rounds.jsonl, config.json, metrics.json) or a sweep
directory of scripts/sweep.sh (manifest.jsonl: all its runs), as for
`fedsim compare`. A run still in progress is plotted up to its last round.
Needs matplotlib (Debian: apt-get install python3-matplotlib). Exit status: 0,
1 when matplotlib is missing, 2 for bad input. See docs/tooling.md.
"""
import argparse
import json
import math
import os
import sys

X_AXES = {
    "round": "round",
    "bytes": "communication so far, upload + download (MB)",
    "sim_time": "simulated time (s)",
    "epsilon": "privacy spent, ε",
    "wall": "wall-clock time of the round loop (s)",
}
Y_AXES = {
    "test_accuracy": "test accuracy (fraction correct)",
    "test_loss": "test loss (cross-entropy, nats per sample)",
    "train_loss": "training loss on the clients' data (cross-entropy, nats per sample)",
}
Y_TITLES = {"test_accuracy": "Test accuracy", "test_loss": "Test loss", "train_loss": "Training loss"}
# Per-client evaluation (metrics.client_eval): record keys holding a summary,
# and the summary's fields.
CLIENT_KEYS = ["client_accuracy", "holdout_client_accuracy", "client_loss", "holdout_client_loss"]
CLIENT_FIELDS = {"weighted_mean": "sample-weighted mean", "mean": "mean", "std": "std", "variance": "variance",
                 "min": "minimum", "p10": "10th percentile", "p50": "median", "p90": "90th percentile",
                 "max": "maximum", "worst10": "mean of the worst 10%", "best10": "mean of the best 10%",
                 "jain": "Jain's index"}
for _k in CLIENT_KEYS:
    for _f, _t in CLIENT_FIELDS.items():
        if _f == "jain" and "loss" in _k:
            continue
        _what = ("held-out clients' " if _k.startswith("holdout") else "per-client ") + \
            ("accuracy" if "accuracy" in _k else "test loss")
        Y_AXES[f"{_k}.{_f}"] = f"{_what}: {_t}"
        Y_TITLES[f"{_k}.{_f}"] = f"{_what[0].upper() + _what[1:]} ({_t})"
Y_AXES["participation_gap"] = "participation gap: participants' minus held-out clients' accuracy"
Y_TITLES["participation_gap"] = "Participation gap"


def die(msg, code=2):
    print(f"plot: {msg}", file=sys.stderr)
    sys.exit(code)


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        die(f"{path}: cannot be read ({e.strerror})")
    except ValueError as e:  # UnicodeDecodeError too
        die(f"{path}: not valid JSON ({e})")


def read_lines(path, skip_cut=True):
    """(line number, line) of a JSON-lines file. A file that cannot be read, or a line that is not
    UTF-8, is bad input; with skip_cut, a last line without its newline that is not UTF-8 (cut short
    by a killed process) is left out, as the readers leave out such a line that is not valid JSON."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        die(f"{path}: cannot be read ({e.strerror})")
    raw_lines = data.split(b"\n")
    lines = []
    for lineno, raw in enumerate(raw_lines, 1):
        try:
            lines.append((lineno, raw.decode("utf-8")))
        except UnicodeDecodeError as e:
            if skip_cut and lineno == len(raw_lines):
                continue
            die(f"{path}:{lineno}: not valid UTF-8 ({e.reason} at byte {e.start} of the line)")
    return lines


def read_manifest(path):
    """The runs of a sweep, in order of first appearance; the last line for a name wins."""
    entries = {}
    for lineno, line in read_lines(path, skip_cut=False):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except ValueError as err:
            die(f"{path}:{lineno}: not valid JSON ({err})")
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            die(f"{path}:{lineno}: expected an object with a \"name\" string")
        d = e.get("dir", e["name"])
        if not isinstance(d, str) or not d:
            die(f"{path}:{lineno}: \"dir\" must be a non-empty string (the run's directory), got {json.dumps(d)}")
        entries[e["name"]] = e  # keeps the position of the first line
    if not entries:
        die(f"{path}: lists no runs")
    sweep = os.path.dirname(path)
    return [(name, os.path.join(sweep, e.get("dir", name)), e) for name, e in entries.items()]


def expand(paths):
    """(name, run directory, manifest entry or None) for every run the paths name."""
    runs = []
    for given in paths:
        p = given.rstrip("/") or "/"
        if os.path.isdir(p):
            if any(os.path.exists(os.path.join(p, f)) for f in ("metrics.json", "rounds.jsonl")):
                runs.append((p, p, None))
            elif os.path.exists(os.path.join(p, "manifest.jsonl")):
                runs.extend(read_manifest(os.path.join(p, "manifest.jsonl")))
            else:
                die(f"{p}: neither a run directory (no rounds.jsonl or metrics.json) "
                    "nor a sweep directory (no manifest.jsonl)")
        elif os.path.isfile(p):
            if os.path.basename(p) == "manifest.jsonl":
                runs.extend(read_manifest(p))
            else:
                d = os.path.dirname(p) or "."
                runs.append((d, d, None))
        else:
            die(f"{p}: no such file or directory")
    return runs


def load_run(name, d, entry):
    """(config, config source, rounds) of a run, or None for a sweep run without results."""
    metrics_path = os.path.join(d, "metrics.json")
    rounds_path = os.path.join(d, "rounds.jsonl")
    config_path = os.path.join(d, "config.json")
    metrics = read_json(metrics_path) if os.path.exists(metrics_path) else None
    if metrics is not None and not isinstance(metrics, dict):
        die(f"{metrics_path}: expected a JSON object (a fedsim metrics.json)")
    if metrics is not None and isinstance(metrics.get("config"), dict):
        config, source = metrics["config"], metrics_path
    elif os.path.exists(config_path):
        config, source = read_json(config_path), config_path
    else:
        config, source = None, None
    rounds = None
    if os.path.exists(rounds_path):
        rounds = []
        for lineno, line in read_lines(rounds_path):
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut short by a killed process
            if isinstance(rec, dict) and isinstance(rec.get("round"), int) and not isinstance(rec["round"], bool):
                rec["_where"] = f"{rounds_path}:{lineno}"
                rounds.append(rec)
    elif metrics is not None:
        rounds = metrics.get("rounds")
        if not isinstance(rounds, list):
            die(f"{metrics_path}: no \"rounds\" array")
        for i, rec in enumerate(rounds):
            if not isinstance(rec, dict) or not isinstance(rec.get("round"), int) or isinstance(rec["round"], bool):
                die(f"{metrics_path}: rounds[{i}]: expected an object with an integer \"round\"")
        rounds = [dict(rec, _where=f"{metrics_path}: rounds[{i}]") for i, rec in enumerate(rounds)]
    if rounds is None or config is None:
        if entry is not None:
            print(f"plot: skipping {name}: no results (status {entry.get('status', 'unknown')})", file=sys.stderr)
            return None
        die(f"{d}: no rounds.jsonl, config.json or metrics.json")
    if not isinstance(config, dict):
        die(f"{source}: expected a JSON object")
    return config, source, rounds


def config_value(config, key, source):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            die(f"--group-by {key}: no such config key in {source} (see fedsim list --config-keys)")
        node = node[part]
    return node


def label_of(v):
    return v if isinstance(v, str) else json.dumps(v)


def x_of(rec, x, name):
    if x == "round":
        return rec["round"]
    if x == "bytes":
        up, down = rec.get("bytes_up"), rec.get("bytes_down")
        if not number(up) or not number(down):
            die(f"--x bytes: {rec.get('_where', name)} (round {rec['round']}): no numeric bytes_up and bytes_down "
                "(a fedsim version that did not record them?); use another --x")
        return (up + down) / 1e6
    if x == "wall":
        return rec.get("wall_seconds")
    if x == "sim_time":
        return rec.get("sim_time_s")
    return rec.get("epsilon")


def check_x_available(rounds, x, name, config):
    if x == "sim_time" and rounds and not any("sim_time_s" in r for r in rounds):
        die(f"--x sim_time: not available: the rounds of {name} have no sim_time_s key "
            "(this run did not record simulated time); use --x round, bytes or wall")
    if x == "epsilon" and rounds and not any("epsilon" in r for r in rounds):
        mode = config.get("privacy", {}).get("mode", "none") if isinstance(config.get("privacy"), dict) else "none"
        die(f"--x epsilon: {name} has no epsilon in its rounds (privacy.mode is {mode}); "
            "plot runs with differential privacy on, or use another --x")


def y_of(rec, y):
    """A record's value for --y: a top-level key, or KEY.FIELD of a per-client summary."""
    if "." in y:
        key, field = y.split(".", 1)
        summary = rec.get(key)
        return summary.get(field) if isinstance(summary, dict) else None
    return rec.get(y)


def load_clients(d, name, holdout):
    """{round: [accuracy, ...]} of a run's clients.jsonl (the training clients, or the held-out ones)."""
    path = os.path.join(d, "clients.jsonl")
    if not os.path.exists(path):
        die(f"{name}: no clients.jsonl (run it with metrics.client_eval = participants, all or sample)")
    out = {}
    for lineno, line in read_lines(path):
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a killed process
        if not isinstance(row, dict) or bool(row.get("holdout")) != holdout or not number(row.get("accuracy")):
            continue
        r = row.get("round")
        if not isinstance(r, int) or isinstance(r, bool):
            die(f"{path}:{lineno}: a client row without an integer \"round\"")
        out.setdefault(r, []).append(row["accuracy"])
    return out


def plot_clients(args, runs_by_group):
    """Box or violin plots of per-client accuracy; returns (fig, ax). runs_by_group: label -> the
    load_clients() of each of its runs."""
    import matplotlib.pyplot as plt
    boxes = []  # (label, values)
    if len(runs_by_group) == 1:
        (label, runs), = runs_by_group.items()
        rounds = {}
        for per_round in runs:
            for r, v in per_round.items():
                rounds.setdefault(r, []).extend(v)
        picked = [args.round] if args.round else sorted(rounds)
        boxes = [(str(r), rounds[r]) for r in picked if r in rounds]
        xlabel = "round"
    else:
        for label, runs in runs_by_group.items():
            values = []
            for per_round in runs:
                r = args.round or (max(per_round) if per_round else None)
                values.extend(per_round.get(r, []))
            if values:
                boxes.append((label, values))
        xlabel = ", ".join(args.group_by) if args.group_by else "run"
    if not boxes:
        die("nothing to plot: no evaluated round with per-client rows" + (f" at round {args.round}" if args.round else ""))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(boxes) + 3), 5.5), dpi=120)
    values = [v for _, v in boxes]
    if args.clients == "violin":
        ax.violinplot(values, showmedians=True)
    else:
        ax.boxplot(values, whis=(10, 90), showmeans=True, flierprops={"markersize": 2})
    ax.set_xticks(range(1, len(boxes) + 1))
    ax.set_xticklabels([b for b, _ in boxes], rotation=30 if len(boxes) > 6 else 0, ha="right" if len(boxes) > 6 else "center")
    ax.set_xlabel(xlabel)
    who = "held-out clients" if args.holdout else "clients"
    ax.set_ylabel(f"accuracy of each of the {who} on its own test rows")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, axis="y", alpha=0.3)
    if args.clients == "box":
        ax.set_xlabel(xlabel + "\n(box: quartiles; whiskers: 10th-90th percentile; triangle: mean)")
    ax.set_title(args.title or f"Per-client accuracy ({who})")
    return fig, ax


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def import_matplotlib():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except ImportError as e:
        # Debian's python3-matplotlib is for /usr/bin/python3; the python3 on
        # PATH may be another one (pyenv, a virtualenv). Try it once.
        system = "/usr/bin/python3"
        if (os.environ.get("FEDSIM_PLOT_REEXEC") != "1" and os.path.exists(system)
                and os.path.realpath(sys.executable) != os.path.realpath(system)):
            os.environ["FEDSIM_PLOT_REEXEC"] = "1"
            os.execv(system, [system, os.path.abspath(__file__)] + sys.argv[1:])
        print(f"plot: matplotlib is not available to {sys.executable} ({e}).\n"
              "plot: install it with:  apt-get install python3-matplotlib   (as root, or with sudo)",
              file=sys.stderr)
        sys.exit(1)


def save(fig, out):
    fig.tight_layout()
    try:
        fig.savefig(out, format="png")
    except OSError as e:
        die(f"{out}: cannot be written ({e.strerror})", code=1)
    print(out)


def main():
    ap = argparse.ArgumentParser(
        description="Plot fedsim runs: one line per group (mean across its runs) with a shaded band.",
        epilog="RESULT: a run directory or a sweep directory (manifest.jsonl). See docs/tooling.md.")
    ap.add_argument("results", nargs="+", metavar="RESULT")
    ap.add_argument("--group-by", action="append", default=[], metavar="KEY",
                    help="one line per value of this config key, e.g. algorithm.name (repeatable); "
                         "default: one line per run")
    ap.add_argument("--x", choices=list(X_AXES), default="round",
                    help="x axis: round, cumulative bytes up+down (MB), sim_time (sim_time_s), epsilon, "
                         "wall (wall_seconds); default round")
    ap.add_argument("--y", choices=list(Y_AXES), default="test_accuracy", metavar="Y",
                    help="y axis: test_accuracy (default), test_loss, train_loss, participation_gap, or a "
                         "per-client summary field such as client_accuracy.worst10 (KEY.FIELD; keys: "
                         + ", ".join(CLIENT_KEYS) + "; fields: " + ", ".join(CLIENT_FIELDS) + ")")
    ap.add_argument("--clients", choices=["box", "violin"], default=None,
                    help="plot the distribution of per-client accuracy (clients.jsonl) instead of lines")
    ap.add_argument("--round", type=int, default=None, metavar="N", help="--clients: the evaluated round to draw")
    ap.add_argument("--holdout", action="store_true", help="--clients: the held-out clients instead")
    ap.add_argument("--band", choices=["minmax", "std", "none"], default="minmax",
                    help="shaded band across a group's runs: min-max (default), mean +- sample std, or none")
    ap.add_argument("--out", default=None, metavar="FILE.png", help="output PNG (default Y_vs_X.png)")
    ap.add_argument("--title", default=None, metavar="T", help="plot title")
    args = ap.parse_args()
    out = args.out or (f"clients_{args.clients}.png" if args.clients else f"{args.y}_vs_{args.x}.png")
    if args.clients:
        runs_by_group = {}
        for name, d, entry in expand(args.results):
            loaded = load_run(name, d, entry)
            if loaded is None:
                continue
            config, source, _ = loaded
            label = ", ".join(label_of(config_value(config, k, source)) for k in args.group_by) if args.group_by \
                else name
            # Read before matplotlib is imported, so that bad input is found first.
            runs_by_group.setdefault(label, []).append(load_clients(d, name, args.holdout))
        if not runs_by_group:
            die("no run has results to plot")
        import_matplotlib()
        fig, _ = plot_clients(args, runs_by_group)
        save(fig, out)
        return

    # Groups in order of first appearance: label -> list of (name, rounds).
    groups = {}
    delta = set()
    for name, d, entry in expand(args.results):
        loaded = load_run(name, d, entry)
        if loaded is None:
            continue
        config, source, rounds = loaded
        check_x_available(rounds, args.x, name, config)
        if args.group_by:
            label = ", ".join(label_of(config_value(config, k, source)) for k in args.group_by)
        else:
            label = name
        groups.setdefault(label, []).append((name, rounds))
        delta.update(r["delta"] for r in rounds if number(r.get("delta")))
    if not groups:
        die("no run has results to plot")

    # Per group and round: the mean of x and y over the runs that have both, and the band.
    lines = []
    for label, runs in groups.items():
        by_round = {}
        for name, rounds in runs:
            for rec in rounds:
                xv, yv = x_of(rec, args.x, name), y_of(rec, args.y)
                if number(xv) and number(yv):
                    by_round.setdefault(rec["round"], []).append((xv, yv))
        pts = []
        for r in sorted(by_round):
            xs, ys = [p[0] for p in by_round[r]], [p[1] for p in by_round[r]]
            n = len(ys)
            mean = sum(ys) / n
            if args.band == "std" and n > 1:
                sd = math.sqrt(sum((v - mean) ** 2 for v in ys) / (n - 1))
                lo, hi = mean - sd, mean + sd
            else:
                lo, hi = min(ys), max(ys)
            pts.append((sum(xs) / n, mean, lo, hi))
        if not pts:
            print(f"plot: {label}: no round has both {args.x} and {args.y} (not evaluated?)", file=sys.stderr)
            continue
        lines.append((label, len(runs), pts))
    if not lines:
        die(f"nothing to plot: no round of any run has both {args.x} and {args.y}")

    import_matplotlib()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    many = max(len(p) for _, _, p in lines) <= 40
    for label, n, pts in lines:
        xs, ys, lo, hi = zip(*pts)
        text = f"{label} (n={n})" if n > 1 else label
        (line,) = ax.plot(xs, ys, label=text, linewidth=1.6, marker="o" if many else None, markersize=3)
        if args.band != "none" and n > 1:
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
    xlabel = X_AXES[args.x]
    if args.x == "epsilon" and len(delta) == 1:
        xlabel += f" (δ = {next(iter(delta)):g})"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(Y_AXES[args.y])
    if args.x == "round":
        ax.xaxis.get_major_locator().set_params(integer=True)
    title = args.title
    if title is None:
        by = ", ".join(args.group_by) if args.group_by else "run"
        title = f"{Y_TITLES[args.y]} by {by}"
    ax.set_title(title)
    if any(n > 1 for _, n, _ in lines):
        band = {"minmax": "shaded: min–max", "std": "shaded: ±1 std", "none": ""}[args.band]
        note = "line: mean of the group's runs" + (f"; {band}" if band else "")
        ax.text(1.0, -0.13, note, transform=ax.transAxes, ha="right", va="top", fontsize=8, color="0.35")
    ax.grid(True, alpha=0.3)
    legend_title = ", ".join(args.group_by) if args.group_by else None
    if len(lines) > 10:
        ax.legend(title=legend_title, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(title=legend_title, fontsize=8)
    save(fig, out)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 -- bad input the checks above missed: a message, not a traceback
        die(f"unexpected input ({type(e).__name__}: {e}); see docs/tooling.md for what plot.py reads")
