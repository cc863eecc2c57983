"""Series colours, shared by the static plots and the HTML report (no matplotlib here)."""

from __future__ import annotations

from collections.abc import Iterable

from sweeplab.results.series import natural_rank

# tab10, then tab20's lighter shades.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]  # fmt: skip


def colors(names: Iterable[str]) -> dict[str, str]:
    """A stable colour per series name (natural order, cycling through PALETTE)."""
    rank = natural_rank(names)
    return {name: PALETTE[i % len(PALETTE)] for name, i in rank.items()}
