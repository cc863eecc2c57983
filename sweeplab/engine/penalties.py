"""Penalty terms the training objective may add to the cross-entropy."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError


def bn_l1_penalty(model: nn.Module) -> Tensor:
    """Sum of |gamma| over every affine batch norm (network slimming's sparsity term).

    Args:
        model: a model with batch norm layers.
    Returns:
        A scalar tensor with gradient; train.bn_l1 (lambda) times this joins the loss.
    """
    return l1(bn_scales(model))


def l1(tensors: list[Tensor]) -> Tensor:
    """Sum of |x| over the tensors, as a scalar with gradient."""
    return torch.stack([t.abs().sum() for t in tensors]).sum()


def bn_scales(model: nn.Module) -> list[Tensor]:
    """The scales (gamma) of every affine batch norm; refuses a model without any."""
    scales = [
        m.weight
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine
    ]
    if not scales:
        raise SweeplabError(
            f"the batch-norm L1 penalty needs batch norm layers but model {type(model).__name__} "
            "has none; set train.bn_l1=null or use a model with batch norm"
        )
    return scales
