"""Scores to masks: the one place a sparsity target becomes an exact count of pruned weights.

A schedule says how sparse the model must be after each pruning step (a `Target`); a
criterion only scores; `select` keeps the highest scores and prunes the rest, an exact count,
globally (one threshold) or per layer. Masks are dict[str, Tensor] keyed by parameter name
("fc1.weight"), 1 = keep, 0 = pruned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from sweeplab.errors import SweeplabError

SCOPES = ("global", "layer")


@dataclass(frozen=True)
class Target:
    """The sparsity a pruning step must reach, and how its exact count is rounded.

    Attributes:
        sparsity: fraction of all prunable weights pruned once the step is done, in [0, 1).
        per_step: for schedules that prune a fixed share of the survivors per step (one-shot:
            the sparsity itself, of all weights; iterative: 1 - (1 - s)^(1/k)), that share.
            The count is then rounded from the survivors, kept = round((1 - share) *
            survivors), as torch.nn.utils.prune does; a layer_scale multiplies the share.
            None: the share is derived from `sparsity` and the survivors (gradual).
        floor: prune floor(share * survivors) instead of rounding, for criteria whose
            authors count that way (Synaptic-Flow's int() in its pruning rounds).
    """

    sparsity: float
    per_step: float | None = None
    floor: bool = False

    @classmethod
    def oneshot(cls, sparsity: float) -> Target:
        """Prune `sparsity` of all weights in one step."""
        return cls(sparsity, sparsity)

    @classmethod
    def geometric(cls, final: float, steps: int) -> list[Target]:
        """`steps` targets that prune the same share of the survivors each, ending on `final`.

        The share is p = 1 - (1 - final)^(1/steps); after step r the sparsity is
        1 - (1 - p)^r, and the last target's sparsity is `final` itself.
        """
        share = 1.0 - (1.0 - final) ** (1.0 / steps)
        return [
            cls(final if r == steps else 1.0 - (1.0 - share) ** r, share)
            for r in range(1, steps + 1)
        ]

    def share(self, total: int, survivors: int | None) -> float:
        """Fraction of the `survivors` (of `total` weights; None: all) this step prunes."""
        if self.per_step is not None:
            return self.per_step
        remaining = total if survivors is None else survivors
        return max(0.0, 1.0 - (1.0 - self.sparsity) * total / max(remaining, 1))


def _count(share: float, n: int, remaining: int | None, floor: bool = False) -> int:
    """How many of n weights are pruned after pruning fraction `share` of the `remaining` ones.

    With no earlier mask this is torch.nn.utils.prune's round(share * n) (round half to even),
    so masks match torch's; otherwise the survivors are what gets rounded. With `floor`, the
    pruned share of the survivors is floor(share * remaining), as Synaptic-Flow's
    int((1 - density) * numel) counts.
    """
    if floor:
        pool = n if remaining is None else remaining
        return n - pool + math.floor(share * pool)
    if remaining is None:
        return round(share * n)
    return n - round((1.0 - share) * remaining)


def _lowest(flat: Tensor, k: int) -> Tensor:
    """Boolean keep-mask of flat with its k lowest entries off (ties broken by position)."""
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k > 0:
        order = torch.argsort(flat, stable=True)
        keep[order[:k]] = False
    return keep


def _floor_pruned(
    scores: Mapping[str, Tensor], existing: Mapping[str, Tensor] | None
) -> dict[str, Tensor]:
    """Scores as float, with already-pruned entries at -inf so they stay pruned."""
    out = {}
    for name, s in scores.items():
        s = s.detach()
        s = s if s.dtype == torch.float64 else s.float()  # keep float64 (SynFlow's tiny scores)
        if existing is not None and name in existing:
            s = s.masked_fill(existing[name].to(s.device) == 0, float("-inf"))
        out[name] = s
    return out


def select(
    scores: Mapping[str, Tensor],
    target: Target,
    scope: str,
    existing: Mapping[str, Tensor] | None = None,
    layer_scale: Mapping[str, float] | None = None,
) -> dict[str, Tensor]:
    """Masks that reach `target` exactly, pruning the lowest scores first.

    Args:
        scores: name -> score tensor (higher = more important), shaped like the weight; the
            names are the prunable weights (what `exclude` leaves).
        target: the sparsity after this step (see Target for how counts are rounded).
        scope: "global" (one threshold across layers) or "layer" (the share in each layer).
        existing: masks from earlier steps; their pruned entries stay pruned.
        layer_scale: scope "layer" only: module name -> multiplier of the step's share for
            that layer (e.g. {"fc3": 0.5}: the output layer at half rate, Frankle & Carbin).
    Returns:
        name -> float mask (1 keep, 0 prune) on the score's device.
    """
    floored = _floor_pruned(scores, existing)
    total = sum(s.numel() for s in floored.values())
    survivors = None if existing is None else sum(int(m.sum()) for m in existing.values())
    share = target.share(total, survivors)

    def remaining(names: list[str]) -> int | None:
        if existing is None:
            return None
        return sum(
            int(existing[n].count_nonzero()) if n in existing else floored[n].numel() for n in names
        )

    if scope == "layer":
        masks = {}
        for name, s in floored.items():
            layer_share = share * (layer_scale or {}).get(name.rsplit(".", 1)[0], 1.0)
            if not 0.0 <= layer_share < 1.0:
                raise SweeplabError(
                    f"pruning.layer_scale gives layer {name} rate {layer_share:.3f}, "
                    "outside [0, 1); lower its scale"
                )
            k = _count(layer_share, s.numel(), remaining([name]), target.floor)
            masks[name] = _lowest(s.flatten(), k).view_as(s).float()
        return masks
    if scope != "global":
        raise SweeplabError(f"pruning.scope={scope!r} is not one of {list(SCOPES)}")
    if layer_scale:
        raise SweeplabError(
            "pruning.layer_scale needs pruning.scope=layer; set pruning.scope=layer"
        )
    flat = torch.cat([s.flatten() for s in floored.values()])
    pruned = _count(share, flat.numel(), remaining(list(floored)), target.floor)
    keep = _lowest(flat, pruned)
    masks, start = {}, 0
    for name, s in floored.items():
        masks[name] = keep[start : start + s.numel()].view_as(s).float()
        start += s.numel()
    return masks


def cut(
    scores: Mapping[str, Tensor],
    tau: float | Mapping[str, float],
    existing: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Threshold mode: prune where score < tau (one value, or one per parameter name).

    The criterion's scores set the sparsity themselves; there is no target to reach.
    """
    floored = _floor_pruned(scores, existing)
    return {
        name: (s >= (tau[name] if isinstance(tau, Mapping) else tau)).float()
        for name, s in floored.items()
    }


def select_per_layer(
    scores: Mapping[str, Tensor],
    sparsities: Mapping[str, float],
    existing: Mapping[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Masks that prune round(sparsity_l * n_l) of each layer, its lowest scores first.

    Args:
        scores: name -> score tensor (higher = keep).
        sparsities: name -> that layer's sparsity after this step (sweeplab.pruning.distribution).
        existing: masks from earlier steps; their pruned entries stay pruned (a layer already
            sparser than asked keeps its mask).
    Returns:
        name -> float mask (1 keep, 0 prune).
    """
    masks = {}
    for name, s in _floor_pruned(scores, existing).items():
        k = round(sparsities[name] * s.numel())
        if existing is not None and name in existing:
            k = max(k, s.numel() - int(existing[name].count_nonzero()))
        masks[name] = _lowest(s.flatten(), k).view_as(s).float()
    return masks
