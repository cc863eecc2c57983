"""The Pruner: a criterion's scores, thresholded by sweeplab.pruning.budget, give masks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError, check_fraction, check_number
from sweeplab.pruning import distribution as layer_budget
from sweeplab.pruning import nm
from sweeplab.pruning.budget import SCOPES, Target, cut, select, select_per_layer
from sweeplab.pruning.masks import prunable_parameters
from sweeplab.pruning.strategy import Strategy


class Pruner(Strategy):
    """Base of every criterion; a subclass implements `scores` (or, if iterative, `masks`).

    Three ways to turn scores into masks:
    target (default): prune exactly the count the target asks for (one-shot: round(sparsity
    * n)), lowest scores first;
    threshold: prune where score < threshold (sparsity must be null);
    quality (Han et al. 2015): per layer, prune where score < quality * std(layer weights).
    A `distribution` sets each layer's sparsity from the target (then `scope` is not read);
    a `pattern` keeps N of every M weights of each eligible layer (sweeplab.pruning.nm).

    Args:
        sparsity: fraction of prunable weights to set to zero, in [0, 1).
        scope: "global" (one threshold across layers) or "layer" (same sparsity per layer).
        name: the strategy name recorded in rows (the config file's name).
        exclude: module names left dense, e.g. ["fc3"].
        layer_scale: module name -> multiplier of the rate for that layer (scope layer).
        threshold: absolute score threshold (threshold mode).
        quality: multiplier of each layer's weight std (quality mode).
        pattern: "N:M" semi-structured sparsity; sparsity then defaults to 1 - N/M.
        distribution: per-layer sparsities: uniform, erk, erk_plus or sensitivity.
        erk_power_scale: RigL's exponent of the ERK ratio (default 1).

    Declarations:
        scopes: the pruning.scope values this criterion takes (others are refused).

    Attributes:
        curves: distribution sensitivity: parameter name -> (rate, accuracy drop) points, set
            by the engine from the results dir's sensitivity rows (sweeplab.engine.curves).
    """

    scopes: ClassVar[tuple[str, ...]] = SCOPES
    curves: Mapping[str, Sequence[tuple[float, float]]] | None = None

    def __init__(
        self,
        sparsity: float | None = None,
        scope: str = "global",
        name: str | None = None,
        exclude: Sequence[str] = (),
        layer_scale: Mapping[str, float] | None = None,
        threshold: float | None = None,
        quality: float | None = None,
        # int: YAML reads an unquoted 2:4 as 124 (base 60); Pattern.parse says so.
        pattern: str | int | None = None,
        distribution: str | None = None,
        erk_power_scale: float | None = None,
    ) -> None:
        modes = [k for k, v in (("threshold", threshold), ("quality", quality)) if v is not None]
        if len(modes) > 1:
            raise SweeplabError("pruning.threshold and pruning.quality exclude each other; set one")
        scales = layer_scale or {}
        self.distribution, self.erk_power_scale = layer_budget.check_options(
            distribution, erk_power_scale, modes=modes, layer_scale=scales
        )
        self.pattern = None if pattern is None else nm.Pattern.parse(pattern)
        if self.pattern is not None:
            given = None if sparsity is None else check_fraction("pruning.sparsity", sparsity)
            sparsity = nm.check_options(
                self.pattern, given, modes=modes, layer_scale=scales, distribution=self.distribution
            )
        if modes and sparsity is not None:
            raise SweeplabError(
                f"pruning.{modes[0]} sets the sparsity itself; also set pruning.sparsity=null"
            )
        self.sparsity = None if modes else check_fraction("pruning.sparsity", sparsity)
        if scope not in self.scopes:
            raise SweeplabError(
                f"pruning.scope={scope!r} is not one of {list(self.scopes)} for "
                f"pruning={name or type(self).__name__.lower()}"
            )
        self.scope = scope
        self.name = name or type(self).__name__.lower()
        self.exclude = [str(e) for e in exclude]
        self.layer_scale = {
            str(k): check_number(f"pruning.layer_scale.{k}", v, example="0.5")
            for k, v in (layer_scale or {}).items()
        }
        if self.layer_scale and scope != "layer":
            raise SweeplabError(
                "pruning.layer_scale needs pruning.scope=layer; set pruning.scope=layer"
            )
        self.threshold = None if threshold is None else _finite("pruning.threshold", threshold)
        self.quality = None if quality is None else _finite("pruning.quality", quality)
        if self.quality is not None and self.quality < 0:
            raise SweeplabError(f"pruning.quality={quality} must be >= 0; Han et al. use ~0.5-2")

    def check(self, model: nn.Module, example_input: Tensor) -> None:
        """Refuse, before dense training, layers the config names that the model lacks and a
        sparsity that would prune every prunable weight."""
        params = prunable_parameters(model, self.exclude)
        shapes = {name: tuple(w.shape) for name, w in params.items()}
        if self.pattern is not None:
            nm.check_model(shapes, self.pattern, type(model).__name__)
        if self.distribution is not None and self.sparsity is not None:
            layer_budget.layer_sparsities(
                self.distribution, shapes, self.sparsity, self.erk_power_scale, self.curves
            )
        layers = {name.rsplit(".", 1)[0]: w.numel() for name, w in params.items()}
        unknown = sorted(set(self.layer_scale) - set(layers))
        if unknown:
            raise SweeplabError(
                f"pruning.layer_scale names {unknown}, not prunable layers of model "
                f"{type(model).__name__}; choose from {sorted(layers)}"
            )
        if self.sparsity is None:
            return
        n = sum(layers.values())
        if self.scope == "layer":
            scales = {k: self.layer_scale.get(k, 1.0) for k in layers}
            pruned = sum(round(min(self.sparsity * scales[k], 1.0) * m) for k, m in layers.items())
        else:
            pruned = round(self.sparsity * n)
        if pruned >= n:
            raise SweeplabError(
                f"pruning.sparsity={self.sparsity} prunes all {n} prunable weights of model "
                f"{type(model).__name__}; keep some: pruning.sparsity<={(n - 1) / n:.6g}"
            )

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
        if self.threshold is not None or self.quality is not None:
            return self._cut(scores, params, existing)
        return self.select(scores, self.target(target), existing)

    def select(
        self,
        scores: dict[str, Tensor],
        target: Target,
        existing: dict[str, Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Scores to exact masks by this pruner's pattern, else distribution, else scope.

        With a pattern or a distribution, target.sparsity is the absolute target of the step
        (the eligible weights' for a pattern); the scope's survivor shares do not apply.
        """
        if self.pattern is not None:
            return nm.select_nm(scores, self.pattern, target.sparsity, existing)
        if self.distribution is not None:
            shapes = {name: tuple(s.shape) for name, s in scores.items()}
            sparsities = layer_budget.layer_sparsities(
                self.distribution, shapes, target.sparsity, self.erk_power_scale, self.curves
            )
            return select_per_layer(scores, sparsities, existing)
        return select(scores, target, self.scope, existing, self.layer_scale)

    def _cut(
        self,
        scores: dict[str, Tensor],
        params: dict[str, Tensor],
        existing: dict[str, Tensor] | None,
    ) -> dict[str, Tensor]:
        """Threshold or quality mode's masks; a value that prunes every weight is refused."""
        tau: float | dict[str, float]
        if self.quality is None:
            key, value = "threshold", self.threshold
            tau = float(self.threshold)  # type: ignore[arg-type]
        else:
            key, value = "quality", self.quality
            tau = {n: self.quality * float(w.detach().float().std()) for n, w in params.items()}
        masks = cut(scores, tau, existing)
        if not any(bool(m.any()) for m in masks.values()):
            raise SweeplabError(
                f"pruning.{key}={value} prunes every prunable weight of this model; "
                f"lower pruning.{key}"
            )
        return masks

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


def _finite(key: str, value: object) -> float:
    """A threshold-mode value as a finite float (inf or nan would prune all or nothing)."""
    number = float(value)  # type: ignore[arg-type]  # signatures.check_node checked the type
    if not math.isfinite(number):
        raise SweeplabError(f"{key}={value} is not a finite number; e.g. {key}=0.5")
    return number
