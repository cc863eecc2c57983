"""`sweeplab run`: check the command line, then hand it to Hydra's multirun unchanged."""

from __future__ import annotations

import sys

from sweeplab.configs import check_choices
from sweeplab.results.store import check_writable


def results_dir(overrides: list[str]) -> str:
    """The results dir a run will write to: the last paths.results_dir override, or results."""
    found = [
        a.split("=", 1)[1] for a in overrides if a.lstrip("+").startswith("paths.results_dir=")
    ]
    return found[-1] if found else "results"


def launch(overrides: list[str]) -> int:
    """Run one config or a sweep with Hydra; returns the exit code (130 after Ctrl-C).

    Args:
        overrides: `sweeplab run`'s arguments, e.g. ["-m", "pruning.sparsity=0.5,0.9"].
    """
    check_choices(overrides)
    # Hydra creates its output folder under the results dir before any task code runs: check
    # first, so an unwritable folder is one line, not a traceback.
    check_writable(results_dir(overrides))
    from sweeplab.engine.task import main as hydra_main

    sys.argv = ["sweeplab run", *overrides]
    try:
        hydra_main()
    except KeyboardInterrupt:
        print(
            "sweeplab: interrupted; finished runs are kept, the same command resumes",
            file=sys.stderr,
        )
        return 130
    return 0
