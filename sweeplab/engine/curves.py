"""pruning.distribution=sensitivity: the curves a run allocates by, from its results dir.

They are the sensitivity rows (`sweeplab sensitivity`) of the run's own dense model (its
dense_id) under its own criterion (results.sensitivity.criterion_digest: the pruning section
without amounts and layer choices). A run without them is refused before any training, naming
the command that measures them; a layer without a curve is refused by the pruner's check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweeplab.errors import SweeplabError
from sweeplab.pruning.strategy import Strategy


def attach(pruner: Strategy, config: Mapping[str, Any], dense_id: str) -> Strategy:
    """Give a pruner with distribution=sensitivity its curves; any other pruner unchanged.

    Args:
        pruner: the run's instantiated pruning strategy.
        config: the run's resolved config (plain containers).
        dense_id: the run's dense model id.
    Returns:
        The pruner, its `curves` keyed by parameter name (layer + ".weight").
    """
    if getattr(pruner, "distribution", None) != "sensitivity":
        return pruner
    from sweeplab.results.sensitivity import criterion_digest, curves

    results_dir = config["paths"]["results_dir"]
    found = curves(results_dir, dense_id, criterion_digest(config["pruning"]))
    if not found:
        raise SweeplabError(
            f"pruning.distribution=sensitivity needs the sensitivity curves of dense model "
            f"{dense_id} under pruning={pruner.name}, and {results_dir} has none; run "
            "`sweeplab sensitivity` with this run's overrides first (the same data, model, "
            "train, seed and criterion)"
        )
    pruner.curves = {f"{layer}.weight": points for layer, points in found.items()}  # type: ignore[attr-defined]
    return pruner
