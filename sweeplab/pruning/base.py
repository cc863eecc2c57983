"""The Pruner: a criterion's scores plus a scope and a sparsity give masks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError, check_fraction
from sweeplab.pruning.masks import prunable_parameters, threshold

SCOPES = ("global", "layer")


class Pruner:
    """Base of every criterion; a subclass implements `scores` only.

    Args:
        sparsity: fraction of prunable weights to set to zero, in [0, 1).
        scope: "global" (one threshold across layers) or "layer" (same sparsity per layer).
        name: the strategy name recorded in rows (the config file's name).
        exclude: module names left dense, e.g. ["fc3"].
    """

    def __init__(
        self,
        sparsity: float,
        scope: str = "global",
        name: str | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        self.sparsity = check_fraction("pruning.sparsity", sparsity)
        if scope not in SCOPES:
            raise SweeplabError(f"pruning.scope={scope!r} is not one of {list(SCOPES)}")
        self.scope = scope
        self.name = name or type(self).__name__.lower()
        self.exclude = [str(e) for e in exclude]

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Iterable[tuple[Tensor, Tensor]],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        """Importance of every prunable weight (higher = keep), shaped like the weight.

        Args:
            model: the trained model.
            params: prunable weights keyed by name.
            batches: training batches, for data-driven criteria.
            generator: seeded generator, for stochastic criteria.
        Returns:
            name -> score tensor.
        """
        raise NotImplementedError

    def masks(
        self,
        model: nn.Module,
        batches: Iterable[tuple[Tensor, Tensor]],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        """Masks keyed by parameter name that prune exactly round(sparsity * n) weights."""
        params = prunable_parameters(model, self.exclude)
        # No no_grad here: gradient-based criteria differentiate through the model.
        scores = self.scores(model, params, batches, generator)
        return threshold(scores, self.sparsity, self.scope)
