"""Weight sharing (Han et al. 2016, stage 2): cluster each layer's survivors into 2^bits shared
values, finetune the shared values, and count the bytes of that encoding."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor

from sweeplab.engine.context import Masks, RunContext
from sweeplab.engine.costs import FP32_BYTES, size_dense_bytes
from sweeplab.engine.recovery import Metrics, Recovery
from sweeplab.errors import SweeplabError, check_positive
from sweeplab.pruning.masks import apply_masks, remove_masks


class SharedWeights(torch.nn.Module):
    """Parametrization: weight = codebook[index] * mask (Han et al. 2016, stage 2)."""

    def __init__(self, codebook: Tensor, index: Tensor, mask: Tensor) -> None:
        super().__init__()
        self.codebook = torch.nn.Parameter(codebook)
        self.register_buffer("index", index)
        self.register_buffer("mask", mask)

    def forward(self, weight: Tensor) -> Tensor:
        return self.codebook[self.index] * self.mask


def kmeans_1d(values: Tensor, k: int, iterations: int = 30) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means on scalars with Han et al.'s linear initialization over [min, max].

    Returns:
        (centroids of shape (k,), index of each value's centroid).
    """
    centroids = torch.linspace(float(values.min()), float(values.max()), k, dtype=values.dtype)
    for _ in range(iterations):
        index = (values[:, None] - centroids[None, :]).abs().argmin(1)
        sums = torch.zeros(k, dtype=values.dtype).index_add_(0, index, values)
        counts = torch.bincount(index, minlength=k).to(values.dtype)
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
    index = (values[:, None] - centroids[None, :]).abs().argmin(1)
    return centroids, index


class WeightSharing(Recovery):
    """Han et al. 2016 stage 2: finetune, cluster each layer's survivors into 2^bits shared
    values, then finetune the shared values (gradients of a cluster are summed into its value).

    Args:
        bits: index width; each layer keeps at most 2^bits distinct nonzero values.
    """

    name = "weight_sharing"
    needs_masks = True

    def __init__(self, bits: int = 5, name: str | None = None) -> None:
        self.bits = int(check_positive("recovery.bits", bits, integer=True, example="5"))
        if self.bits > 16:
            raise SweeplabError(f"recovery.bits={bits} is more than 16; use 2-8 as Han et al.")

    def recover(
        self, ctx: RunContext, masks: Masks, callbacks: Sequence[pl.Callback] = ()
    ) -> Metrics:
        from torch.nn.utils import parametrize

        ctx.fit(ctx.finetune, "finetune", callbacks=callbacks)
        model = ctx.model
        remove_masks(model)  # zeros baked in; the sharing parametrization keeps them zero
        shared = []
        for name, mask in masks.items():
            module = model.get_submodule(name.rsplit(".", 1)[0])
            weight = module.weight.detach()
            keep = mask.to(weight.device).bool()
            if not keep.any():
                continue  # global pruning emptied this layer: nothing to share
            centroids, idx = kmeans_1d(weight[keep].double(), 2**self.bits)
            index = torch.zeros(weight.shape, dtype=torch.long, device=weight.device)
            index[keep] = idx.to(weight.device)
            codebook = centroids.to(weight.dtype).to(weight.device)
            parametrize.register_parametrization(
                module, "weight", SharedWeights(codebook, index, mask.to(weight))
            )
            module.parametrizations.weight.original.requires_grad_(False)
            shared.append(module)
        ctx.fit(ctx.finetune, "share", callbacks=())
        for module in shared:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        apply_masks(model, masks)  # re-attach so the measured model carries the same masks
        return {"shared_bits": self.bits, "size_bytes": shared_model_bytes(model, masks, self.bits)}


def shared_model_bytes(model: torch.nn.Module, masks: Masks, bits: int) -> int:
    """Bytes of `model` with its `masks` weights shared at `bits` bits (see shared_size_bytes).

    Everything but the masked weights is counted as costs.size_dense_bytes counts it (buffers
    included: batch-norm statistics, shortcut indices), so this size compares with the
    size_dense_bytes and size_sparse_bytes of other runs.

    Args:
        model: the pruned model (masks attached or folded in).
        masks: name -> mask of every shared weight.
        bits: codebook index width.
    Returns:
        Payload bytes.
    """
    prunable = sum(m.numel() for m in masks.values())
    survivors = sum(int(m.sum()) for m in masks.values())
    # The masked weights are float tensors, which size_dense_bytes counts as fp32.
    other_bytes = size_dense_bytes(model) - FP32_BYTES * prunable
    return shared_size_bytes(survivors, prunable, len(masks), bits, other_bytes)


def shared_size_bytes(
    survivors: int, prunable: int, layers: int, bits: int, other_bytes: int
) -> int:
    """Bytes of a weight-shared sparse model.

    Encoding: a 1-bit keep-mask over every prunable weight, a `bits`-bit codebook index per
    survivor, one fp32 codebook of 2^bits values per layer, and `other_bytes` for every other
    tensor a user ships (parameters and buffers, stored dense).
    """
    return (
        math.ceil(prunable / 8)
        + math.ceil(survivors * bits / 8)
        + layers * (2**bits) * 4
        + other_bytes
    )
