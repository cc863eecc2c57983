"""Magnitude pruning (Han et al. 2015): |w| is the importance."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from sweeplab.pruning.base import Pruner


class Magnitude(Pruner):
    """Score = |w|; with scope global this is torch's global_unstructured(L1Unstructured)."""

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Iterable[tuple[Tensor, Tensor]],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        return {name: w.detach().abs() for name, w in params.items()}
