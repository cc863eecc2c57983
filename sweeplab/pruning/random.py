"""Random pruning: uniform scores from the run's seed; the baseline to beat."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from sweeplab.pruning.base import Pruner


class Random(Pruner):
    """Score ~ U(0, 1) per weight, drawn on the CPU from the seeded generator."""

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Iterable[tuple[Tensor, Tensor]],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        return {
            name: torch.rand(w.shape, generator=generator).to(w.device)
            for name, w in params.items()
        }
