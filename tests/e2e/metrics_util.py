"""Helpers for the end-to-end tests' Python snippets: fedsim's own metrics
helpers in scripts/fedsim_metrics.py, so tests and scripts compare runs alike."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from fedsim_metrics import strip  # noqa: E402,F401
