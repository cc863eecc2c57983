"""The Pruner: a criterion's scores, thresholded by sweeplab.pruning.budget, give masks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError, check_fraction
from sweeplab.pruning.budget import SCOPES, Target, cut, select
from sweeplab.pruning.masks import prunable_parameters
from sweeplab.pruning.strategy import Strategy


class Pruner(Strategy):
    """Base of every criterion; a subclass implements `scores` (or, if iterative, `masks`).

    Three ways to turn scores into masks:
    target (default): prune exactly the count the target asks for (one-shot: round(sparsity
    * n)), lowest scores first;
    threshold: prune where score < threshold (sparsity must be null);
    quality (Han et al. 2015): per layer, prune where score < quality * std(layer weights).

    Args:
        sparsity: fraction of prunable weights to set to zero, in [0, 1).
        scope: "global" (one threshold across layers) or "layer" (same sparsity per layer).
        name: the strategy name recorded in rows (the config file's name).
        exclude: module names left dense, e.g. ["fc3"].
        layer_scale: module name -> multiplier of the rate for that layer (scope layer).
        threshold: absolute score threshold (threshold mode).
        quality: multiplier of each layer's weight std (quality mode).
    """

    def __init__(
        self,
        sparsity: float | None = None,
        scope: str = "global",
        name: str | None = None,
        exclude: Sequence[str] = (),
        layer_scale: Mapping[str, float] | None = None,
        threshold: float | None = None,
        quality: float | None = None,
    ) -> None:
        modes = [k for k, v in (("threshold", threshold), ("quality", quality)) if v is not None]
        if len(modes) > 1:
            raise SweeplabError("pruning.threshold and pruning.quality exclude each other; set one")
        if modes and sparsity is not None:
            raise SweeplabError(
                f"pruning.{modes[0]} sets the sparsity itself; also set pruning.sparsity=null"
            )
        self.sparsity = None if modes else check_fraction("pruning.sparsity", sparsity)
        if scope not in SCOPES:
            raise SweeplabError(f"pruning.scope={scope!r} is not one of {list(SCOPES)}")
        self.scope = scope
        self.name = name or type(self).__name__.lower()
        self.exclude = [str(e) for e in exclude]
        self.layer_scale = {str(k): float(v) for k, v in (layer_scale or {}).items()}
        self.threshold = None if threshold is None else float(threshold)
        self.quality = None if quality is None else float(quality)
        if self.quality is not None and self.quality < 0:
            raise SweeplabError(f"pruning.quality={quality} must be >= 0; Han et al. use ~0.5-2")

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Iterable[tuple[Tensor, Tensor]],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        """Importance of every prunable weight (higher = keep), shaped like the weight.

        Args:
            model: the model, with any earlier masks attached.
            params: prunable weights keyed by name (weight_orig where a mask is attached).
            batches: training batches of the run's batch size, for data-driven criteria.
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
        *,
        target: Target | None = None,
        existing: dict[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Masks keyed by parameter name.

        Args:
            model: the model to score.
            batches: training batches.
            generator: seeded generator.
            target: the sparsity to reach (a schedule's step); default: this pruner's
                sparsity in one step. Ignored in threshold and quality modes.
            existing: masks of earlier steps; what they prune stays pruned.
        Returns:
            name -> float mask (1 keep, 0 prune), covering every prunable weight.
        """
        params = prunable_parameters(model, self.exclude)
        # No no_grad here: gradient-based criteria differentiate through the model.
        scores = self.scores(model, params, batches, generator)
        if self.threshold is not None:
            return cut(scores, self.threshold, existing)
        if self.quality is not None:
            taus = {n: self.quality * float(w.detach().float().std()) for n, w in params.items()}
            return cut(scores, taus, existing)
        return select(scores, self.target(target), self.scope, existing, self.layer_scale)

    def target(self, target: Target | None) -> Target:
        """`target`, or one step to this pruner's own sparsity."""
        if target is not None:
            return target
        if self.sparsity is None:
            raise SweeplabError(
                "pruning.sparsity is null but no threshold or quality is set; "
                "set pruning.sparsity, e.g. pruning.sparsity=0.9"
            )
        return Target.oneshot(self.sparsity)
