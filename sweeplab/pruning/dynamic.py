"""Sparse training from initialization: a static random mask, SET and RigL mask updates.

These strategies never see a dense model: a random mask at the target sparsity is put on the
freshly initialized model, which then trains sparse (sweeplab.engine.sparse_training). Static
keeps that mask; SET (Mocanu et al. 2018) and RigL (Evci et al. 2020) update it every
`update_every` optimizer steps until `stop_at` of training: in each layer, drop the
`drop_fraction` of active weights with the smallest magnitude, then grow as many inactive
ones, at random (SET) or by the magnitude of the dense gradient (RigL). Grown weights start at
zero; the engine also zeroes their optimizer state.

`update_mask` is a transcription of google-research/rigl, rigl/sparse_optimizers_base.py
`SparseSETOptimizerBase._get_update_op`: n_drop = int(n_active * fraction) per layer; keep
the n_active - n_drop highest drop scores; grow the n_drop highest grow scores among the rest
(positions dropped by this update may grow back; they keep their value). Both selections
break ties by position, lowest first, as TF's top_k. The drop fraction follows
`get_drop_fraction` (constant, or cosine: fraction * (1 + cos(pi * min(t, T) / T)) / 2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from sweeplab.errors import SweeplabError, check_positive
from sweeplab.pruning.random import Random

ANNEALS = ("cosine", "constant")


def drop_fraction(step: int, initial: float, end: int, anneal: str) -> float:
    """RigL's get_drop_fraction (begin step 0) at optimizer step `step`.

    Args:
        step: optimizer steps taken.
        initial: pruning.drop_fraction.
        end: the last step that may update the mask (pruning.stop_at of training).
        anneal: "cosine" or "constant".
    """
    if anneal == "constant":
        return initial
    return initial * 0.5 * (1.0 + math.cos(math.pi * min(step, end) / end))


def drop_count(mask: Tensor, fraction: float) -> int:
    """Active weights one update drops: int(n_active * fraction) in float32, as the reference
    computes it (in float64, 90 * 0.7 is 62.999... and would drop one weight fewer)."""
    product = torch.tensor(float(mask.count_nonzero()), dtype=torch.float32) * fraction
    return int(product.item())


def drop_scores(weight: Tensor, mask: Tensor) -> Tensor:
    """|w| of active weights; -inf where inactive, so only active weights can stay active."""
    return torch.where(mask > 0, weight.detach().abs(), torch.full_like(weight, -math.inf))


def _top(scores: Tensor, k: int) -> Tensor:
    """0/1 float vector with ones at the k highest scores; equal scores: lowest index first."""
    order = torch.sort(scores, descending=True, stable=True).indices
    out = torch.zeros_like(scores, dtype=torch.float32)
    out[order[:k]] = 1.0
    return out


def update_mask(mask: Tensor, drop_score: Tensor, grow_score: Tensor, n_drop: int) -> Tensor:
    """One layer's drop-and-grow: the new mask has as many ones as `mask`.

    Args:
        mask: 0/1 mask of the layer.
        drop_score: higher = keep; of the active weights (drop_scores).
        grow_score: higher = grow first (uniform draws for SET, |dense gradient| for RigL).
        n_drop: active weights to drop and inactive ones to grow (drop_count).
    Returns:
        The new 0/1 float mask, shaped like `mask`.
    """
    keep = _top(drop_score.flatten().float(), int(mask.count_nonzero()) - n_drop)
    grow = grow_score.flatten().float()
    # The kept weights score below every other position, so growth picks among the rest.
    lifted = torch.where(keep > 0, grow.min() - 1, grow)
    return (keep + _top(lifted, n_drop)).view_as(mask).to(mask.dtype)


class SparseFromScratch(Random):
    """Base of the strategies that train sparse from initialization; the initial mask is random.

    The initial mask takes uniform scores from its own random stream and keeps the top ones
    per `scope`, or per `distribution` (uniform, erk, erk_plus) when one is set.

    Args:
        sparsity: fraction of prunable weights that are zero throughout training.
        scope: global (one random draw over all layers) or layer (each layer at `sparsity`).
        name: the strategy name recorded in rows.
        exclude: module names left dense.
        distribution: per-layer sparsities (sweeplab.pruning.distribution); overrides scope.
        erk_power_scale: RigL's exponent of the ERK ratio.
    """

    trains_sparse: ClassVar[bool] = True
    needs_gradient: ClassVar[bool] = False  # RigL grows by the dense gradient

    def __init__(
        self,
        sparsity: float = 0.9,
        scope: str = "layer",
        name: str | None = None,
        exclude: Sequence[str] = (),
        distribution: str | None = None,
        erk_power_scale: float | None = None,
    ) -> None:
        super().__init__(
            sparsity, scope, name, exclude, distribution=distribution,
            erk_power_scale=erk_power_scale,
        )  # fmt: skip

    def update_steps(self, total: int) -> list[int]:
        """Optimizer steps (1-based) after which the mask is updated in a fit of `total`."""
        return []


class Static(SparseFromScratch):
    """The random initial mask, kept fixed throughout training (the baseline of SET and RigL)."""


class DynamicSparse(SparseFromScratch):
    """Base of SET and RigL: drop by magnitude, grow by `grow_scores`, on a step schedule.

    Args:
        update_every: optimizer steps between mask updates (RigL's ΔT).
        drop_fraction: fraction of each layer's active weights dropped at an update, at step 0.
        drop_fraction_anneal: "cosine" (decays to 0 at stop_at) or "constant".
        stop_at: fraction of training's optimizer steps after which the mask is frozen.
        (the other arguments: SparseFromScratch)
    """

    def __init__(
        self,
        sparsity: float = 0.9,
        scope: str = "layer",
        name: str | None = None,
        exclude: Sequence[str] = (),
        distribution: str | None = None,
        erk_power_scale: float | None = None,
        update_every: int = 10,
        drop_fraction: float = 0.3,
        drop_fraction_anneal: str = "cosine",
        stop_at: float = 0.75,
    ) -> None:
        super().__init__(sparsity, scope, name, exclude, distribution, erk_power_scale)
        self.every = int(
            check_positive("pruning.update_every", update_every, integer=True, example="100")
        )
        self.drop_fraction = _in_unit("pruning.drop_fraction", drop_fraction, "0.3")
        if drop_fraction_anneal not in ANNEALS:
            raise SweeplabError(
                f"pruning.drop_fraction_anneal={drop_fraction_anneal!r} is not one of "
                f"{list(ANNEALS)}"
            )
        self.anneal = drop_fraction_anneal
        self.stop_at = _in_unit("pruning.stop_at", stop_at, "0.75")

    def end_step(self, total: int) -> int:
        """The last optimizer step that may update the mask in a fit of `total` steps."""
        return round(self.stop_at * total)

    def fraction_at(self, step: int, total: int) -> float:
        """The drop fraction of an update after optimizer step `step` of `total`."""
        return drop_fraction(step, self.drop_fraction, max(self.end_step(total), 1), self.anneal)

    def update_steps(self, total: int) -> list[int]:
        """Every update_every-th step up to stop_at; a step whose fraction is 0 drops nothing
        and is no update (cosine's last)."""
        end = self.end_step(total)
        steps = range(self.every, end + 1, self.every)
        found = [k for k in steps if self.fraction_at(k, total) > 0]
        if not found:
            fix = (
                f"lower pruning.update_every (at most {end - 1}) or raise train.epochs"
                if end > 1
                else "raise train.epochs or pruning.stop_at"
            )
            raise SweeplabError(
                f"pruning.update_every={self.every}: pruning={self.name} would never update its "
                f"mask, training has {total} optimizer steps and freezes the mask after step "
                f"{end} (pruning.stop_at={self.stop_at}); {fix}"
            )
        return found

    def grow_scores(
        self, weight: Tensor, gradient: Tensor | None, generator: torch.Generator
    ) -> Tensor:
        """Higher = grow first; shaped like `weight`, on its device."""
        raise NotImplementedError


class SET(DynamicSparse):
    """Mocanu et al. 2018: grow at random (uniform scores from the run's own stream)."""

    def grow_scores(
        self, weight: Tensor, gradient: Tensor | None, generator: torch.Generator
    ) -> Tensor:
        return torch.rand(weight.shape, generator=generator).to(weight.device)


class RigL(DynamicSparse):
    """Evci et al. 2020: grow where the dense gradient of the update's minibatch is largest."""

    needs_gradient: ClassVar[bool] = True

    def grow_scores(
        self, weight: Tensor, gradient: Tensor | None, generator: torch.Generator
    ) -> Tensor:
        if gradient is None:
            raise RuntimeError("RigL's mask update needs the dense gradient of its minibatch")
        return gradient.abs()


def _in_unit(key: str, value: object, example: str) -> float:
    """A fraction in (0, 1], or a SweeplabError naming the key."""
    number = float(check_positive(key, value, example=example))
    if number > 1:
        raise SweeplabError(f"{key}={value} is outside (0, 1]; e.g. {key}={example}")
    return number
