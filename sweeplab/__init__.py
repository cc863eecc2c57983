"""sweeplab: experiment sweeps for neural-network pruning research.

`sweeplab.load_rows(results_dir)` reads a results dir's rows as a pandas DataFrame (one row
per run, one column per field, metric and config key); pandas is imported on first use, so
`import sweeplab` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_rows"]


def __getattr__(name: str) -> Any:
    if name == "load_rows":
        from sweeplab.results.rows import load_rows

        return load_rows
    raise AttributeError(f"module 'sweeplab' has no attribute {name!r}")
