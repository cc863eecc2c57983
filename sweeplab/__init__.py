"""sweeplab: experiment sweeps for neural-network pruning research.

The Python API (sweeplab/results/api.py): `sweeplab.load_rows(results_dir, where=...)` reads a
results dir's rows as a pandas DataFrame (one row per run, one column per field, metric and
config key, filtered like `sweeplab table --where`); `sweeplab.table(rows, view=...)`,
`sweeplab.summarize(rows)` and `sweeplab.plot(rows, out_dir)` give what the commands give.
pandas is imported on first use, so `import sweeplab` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_rows", "plot", "summarize", "table"]


def __getattr__(name: str) -> Any:
    if name in ("load_rows", "plot", "summarize", "table"):
        from sweeplab.results import api

        return getattr(api, name)
    raise AttributeError(f"module 'sweeplab' has no attribute {name!r}")
