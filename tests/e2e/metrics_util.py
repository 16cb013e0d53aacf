"""Helpers for the end-to-end tests' Python snippets."""


def strip(x):
    """The metrics without machine measurements (docs/metrics.md's determinism
    rule): the environment object, keys starting with wall_ or ending in
    _seconds, and peak_rss_mib."""
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items()
                if k != "environment" and not k.startswith("wall_") and not k.endswith("_seconds")
                and k != "peak_rss_mib"}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
