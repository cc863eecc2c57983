"""Wanda (Sun, Liu, Bair, Kolter 2023): prune by |W_ij| * ||X_j||_2, compared per output row.

Followed: the authors' code (locuslab/wanda, lib/prune.py `prune_wanda`, lib/layerwrapper.py
`WrappedGPT`): score = |W| * sqrt(scaler_row), scaler_row the squared L2 norm of each input
feature over the calibration set (divided there by the sample count, a constant per layer that
changes no comparison); per output row, the lowest scores of a stable ascending sort are
pruned; N:M takes the lowest of each group of M consecutive inputs of a row. Layers are pruned
in forward order on inputs through the earlier pruned layers (the reference's block-by-block
pass, every prunable layer its own block; sweeplab.pruning.calibration). The weights the masks
keep are not changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError
from sweeplab.pruning import calibration as calib
from sweeplab.pruning import distribution as layer_budget
from sweeplab.pruning import nm
from sweeplab.pruning.budget import Target, select_per_layer
from sweeplab.pruning.layerwise import Batches, LayerwisePruner
from sweeplab.pruning.masks import current_mask, prunable_parameters

ROUNDINGS = ("round", "floor")


def wanda_scores(weight: Tensor, module: nn.Module, inputs: Iterator[Tensor]) -> Tensor:
    """|W| * ||X_j||_2, X_j input feature j of `module` over all `inputs` (rows of features:
    calibration.features), shaped like weight."""
    squares = torch.zeros(weight[0].numel(), device=weight.device, dtype=torch.float32)
    for x in inputs:
        squares += calib.features(module, x).float().pow(2).sum(dim=0)
    return weight.detach().abs().float() * squares.sqrt().view(weight.shape[1:])


def row_count(inputs: int, sparsity: float, rounding: str) -> int:
    """Weights pruned in each row of `inputs` weights: round(s * n), or int(s * n) as the
    reference's `int(W_metric.shape[1] * args.sparsity_ratio)`."""
    return int(inputs * sparsity) if rounding == "floor" else round(inputs * sparsity)


def select_rows(
    score: Tensor, sparsity: float, rounding: str, existing: Tensor | None = None
) -> Tensor:
    """Mask pruning the same count in every output row, its lowest scores first.

    Args:
        score: (out, ...) scores, higher = keep; a row is everything past dim 0.
        sparsity: fraction of each row to prune (row_count rounds it).
        rounding: "round" or "floor".
        existing: earlier mask; its zeros stay pruned (a row pruned further before keeps
            its mask).
    Returns:
        float mask shaped like score. Among equal scores the earlier input is pruned first
        (the reference's stable sort).
    """
    rows = score.detach().float().reshape(score.shape[0], -1)
    if existing is not None:
        rows = rows.masked_fill(existing.reshape(rows.shape).to(rows.device) == 0, float("-inf"))
    n = rows.shape[1]
    already = (rows == float("-inf")).sum(dim=1, keepdim=True)
    pruned = torch.clamp(already, min=row_count(n, sparsity, rounding))
    order = torch.argsort(rows, dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=rows.device).expand_as(order))
    return (rank >= pruned).float().view(score.shape)


class Wanda(LayerwisePruner):
    """Score = |W_ij| * ||X_j||_2 on the calibration set; masks per output row by default.

    Args:
        sparsity: fraction of each layer's weights to prune.
        scope: "row" (every output row prunes the same count, the paper's comparison group)
            or "layer" (one comparison per layer, the paper's per-layer ablation, exact count).
        rounding: scope row: "round" (round(s * n) per row) or "floor" (the reference's int).
        calibration: calibration examples (first of the run's shuffled training batches).
        **kwargs: Pruner's options (name, exclude, pattern, distribution, ...).
    """

    scopes: ClassVar[tuple[str, ...]] = ("row", "layer")

    def __init__(
        self,
        sparsity: float | None = None,
        *,
        scope: str = "row",
        rounding: str = "round",
        calibration: int = 128,
        **kwargs,
    ) -> None:
        super().__init__(sparsity, scope=scope, calibration=calibration, **kwargs)
        if rounding not in ROUNDINGS:
            raise SweeplabError(
                f"pruning.rounding={rounding!r} is not one of {list(ROUNDINGS)}; use "
                "pruning.rounding=round (or floor, as the reference)"
            )
        self.rounding = rounding

    def check(self, model: nn.Module, example_input: Tensor) -> None:
        """Also refuse a row scope whose rounding prunes every input of a layer's rows."""
        super().check(model, example_input)
        if self.scope != "row" or self.sparsity is None or self.pattern is not None:
            return
        params = prunable_parameters(model, self.exclude)
        for name, s in self._row_sparsities(params, self.sparsity).items():
            n = params[name][0].numel()
            if row_count(n, s, self.rounding) >= n:
                layer = name.rsplit(".", 1)[0]
                raise SweeplabError(
                    f"pruning.sparsity={self.sparsity} prunes all {n} inputs of every row of "
                    f"layer {layer} (pruning.scope=row); lower pruning.sparsity below "
                    f"{(n - 0.5) / n:.4g}, set pruning.rounding=floor or "
                    f"pruning.exclude=[{layer}]"
                )

    def _row_sparsities(self, params: dict[str, Tensor], sparsity: float) -> dict[str, float]:
        """Each layer's sparsity in scope row: the target, or the distribution's share."""
        if self.distribution is None:
            return {n: sparsity for n in params}
        shapes = {n: tuple(w.shape) for n, w in params.items()}
        return layer_budget.layer_sparsities(
            self.distribution, shapes, sparsity, self.erk_power_scale, self.curves
        )

    def plan(
        self, params: dict[str, Tensor], target: Target, existing: dict[str, Tensor] | None
    ) -> dict[str, float]:
        if self.scope == "row" and self.pattern is None:  # each row: select_rows
            return self._row_sparsities(params, target.sparsity)
        return super().plan(params, target, existing)

    def prune_layer(
        self,
        name: str,
        module: nn.Module,
        weight: Tensor,
        inputs: Iterator[Tensor],
        target: Target,
        plan: dict[str, float],
        existing: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        score = wanda_scores(weight, module, inputs)
        earlier = None if existing is None else {name: existing}
        if self.pattern is not None:
            mask = nm.select_nm({name: score}, self.pattern, target.sparsity, earlier)[name]
        elif self.scope == "row":
            mask = select_rows(score, plan[name], self.rounding, existing)
        else:
            mask = select_per_layer({name: score}, {name: plan[name]}, earlier)[name]
        mask = mask.to(weight.device)
        return mask, weight * mask.to(weight.dtype)

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Batches,
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        """Wanda scores of every layer on the model as given (no layer pruned in between):
        what a hybrid reads."""
        calib.check_layers(model, list(params), self.name)
        chunks = calib.examples(batches, self.calibration)
        calib.forward_order(model, list(params), chunks[0])  # refuses layers never run
        out = {}
        for name, w in params.items():
            module = model.get_submodule(name.rsplit(".", 1)[0])
            mask = current_mask(model, name)
            weight = w.detach() if mask is None else w.detach() * mask
            out[name] = wanda_scores(weight, module, calib.layer_inputs(model, module, chunks))
        return out
