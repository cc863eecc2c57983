"""SparseGPT (Frantar & Alistarh 2023): prune each layer by OBS reconstruction on calibration data.

The weights a mask keeps are updated to make up for the pruned ones (sweeplab.pruning.obs,
following the authors' `fasterprune`), and written into the model (into weight_orig where a
mask is attached): the criterion declares `updates_weights`. Layers are pruned in forward order,
each calibrated on inputs through the earlier layers as already pruned and updated (the
reference's block-by-block pass, every prunable layer its own block).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError, check_number, check_positive
from sweeplab.pruning import calibration as calib
from sweeplab.pruning import nm
from sweeplab.pruning.budget import Target
from sweeplab.pruning.layerwise import Batches, LayerwisePruner
from sweeplab.pruning.obs import Hessian, block_counts, reconstruct

ROUNDINGS = ("exact", "reference")


def as_columns(weight: Tensor, channels_last: bool) -> Tensor:
    """A weight as (out, input features): weight.flatten(1), the reference's order (in_channel,
    kernel position); channels_last: (kernel position, in_channel), so M consecutive columns
    are M input channels at one kernel position (the N:M groups of sweeplab.pruning.nm)."""
    if channels_last:
        return weight.permute(0, *range(2, weight.dim()), 1).reshape(weight.shape[0], -1)
    return weight.reshape(weight.shape[0], -1)


def from_columns(columns: Tensor, shape: torch.Size, channels_last: bool) -> Tensor:
    """The inverse of as_columns."""
    if channels_last:
        moved = (shape[0], *shape[2:], shape[1])
        return columns.reshape(moved).permute(0, -1, *range(1, len(shape) - 1)).contiguous()
    return columns.reshape(shape)


class SparseGPT(LayerwisePruner):
    """Mask by w^2 / [H^-1]_jj^2 block by block, updating the kept weights (OBS), per layer.

    Args:
        sparsity: fraction of each layer's weights to prune (scope layer; a distribution
            sets per-layer sparsities instead).
        damp: dampening added to H's diagonal, as a fraction of its mean (>= 0).
        blocksize: columns (input features) per block of the lazy batch update (>= 1; a
            multiple of M under an N:M pattern).
        rounding: "exact" (each layer prunes round(s * n), spread over its blocks) or
            "reference" (each block prunes where w^2/d^2 <= its sorted value at
            int(s * block size), as the reference does).
        calibration: calibration examples (first of the run's shuffled training batches).
        **kwargs: Pruner's options (name, exclude, pattern, distribution, layer_scale, ...).
    """

    updates_weights: ClassVar[bool] = True

    def __init__(
        self,
        sparsity: float | None = None,
        *,
        damp: float = 0.01,
        blocksize: int = 128,
        rounding: str = "exact",
        calibration: int = 128,
        scope: str = "layer",
        **kwargs,
    ) -> None:
        super().__init__(sparsity, scope=scope, calibration=calibration, **kwargs)
        self.damp = check_number("pruning.damp", damp, example="0.01")
        self.blocksize = int(
            check_positive("pruning.blocksize", blocksize, integer=True, example="128")
        )
        if rounding not in ROUNDINGS:
            raise SweeplabError(
                f"pruning.rounding={rounding!r} is not one of {list(ROUNDINGS)}; use "
                "pruning.rounding=exact (or reference, the authors' threshold)"
            )
        self.rounding = rounding
        if self.pattern is not None and self.blocksize % self.pattern.m:
            raise SweeplabError(
                f"pruning.blocksize={blocksize} splits the groups of pruning.pattern="
                f"{self.pattern}; use a multiple of {self.pattern.m}, e.g. pruning.blocksize=128"
            )

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
        pattern = self.pattern
        if pattern is not None and not nm.eligible(weight.shape, pattern.m):
            return torch.ones_like(weight), weight  # left dense (nm_excluded), not updated
        channels_last = pattern is not None and weight.dim() > 2
        dtype = torch.promote_types(weight.dtype, torch.float32)
        W = as_columns(weight, channels_last).to(dtype)
        hessian = Hessian(W.shape[1], W.device, dtype)
        for x in inputs:
            rows = calib.features(module, x)
            if channels_last:  # (in_channel, position) -> (position, in_channel)
                rows = rows.view(len(rows), weight.shape[1], -1).transpose(1, 2)
            hessian.add(rows.reshape(len(rows), -1), examples=len(x))
        forced = None if existing is None else as_columns(existing, channels_last).to(W.device) == 0
        options: dict = {"blocksize": self.blocksize, "percdamp": self.damp, "forced": forced}
        if pattern is not None:
            keep = nm.kept_per_group(pattern, target.sparsity)
            options.update(prune_per_group=pattern.m - keep, m=pattern.m)
        elif self.rounding == "reference":
            options["sparsity"] = plan[name]
        else:
            starts = range(0, W.shape[1], self.blocksize)
            sizes = [W.shape[0] * (min(i + self.blocksize, W.shape[1]) - i) for i in starts]
            in_block = [0] * len(sizes)
            if forced is not None:
                in_block = [int(forced[:, i : i + self.blocksize].sum()) for i in starts]
            options["counts"] = block_counts(in_block, sizes, round(plan[name] * W.numel()))
        try:
            new, keep_mask = reconstruct(W, hessian.H, **options)
        except torch.linalg.LinAlgError:
            layer = name.rsplit(".", 1)[0]
            raise SweeplabError(
                f"pruning.damp={self.damp} leaves the calibration Hessian of layer {layer} "
                "singular; raise pruning.damp (e.g. 0.01) or pruning.calibration"
            ) from None
        mask = from_columns(keep_mask.to(weight.dtype), weight.shape, channels_last)
        return mask, from_columns(new, weight.shape, channels_last).to(weight.dtype)

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Batches,
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        raise SweeplabError(
            f"pruning={self.name} chooses its masks while it updates the weights, so it has no "
            "scores to combine; use it on its own, not as a criterion of pruning=hybrid"
        )
