"""Reading fedsim's metrics from Python: shared by the scripts' table snippets
and the end-to-end tests (tests/e2e/metrics_util.py re-exports it)."""


def strip(x):
    """The metrics without machine measurements (docs/metrics.md's determinism
    rule): the environment object, keys starting with wall_ or ending in
    _seconds, and peak_rss_mib. Two runs that should agree bit for bit
    (thread counts, rank counts, resume) have equal strip()s."""
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items()
                if k != "environment" and not k.startswith("wall_") and not k.endswith("_seconds")
                and k != "peak_rss_mib"}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
