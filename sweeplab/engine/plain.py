"""What cost measurements run on: a model's inference copy and a fixed example input."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sweeplab.pruning.masks import remove_masks


def plain_copy(model: nn.Module) -> nn.Module:
    """A deep copy with attached masks made permanent (zeros in place), the model untouched.

    copy.deepcopy alone fails on a masked model: torch's prune hooks keep `weight` as a
    non-leaf tensor, which deepcopy refuses; the memo hands it a detached clone instead.
    """
    memo: dict[int, object] = {}
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    out = copy.deepcopy(model, memo)
    remove_masks(out)
    return out


def example_input(model: nn.Module, input_shape: Sequence[int], batch_size: int = 1) -> Tensor:
    """A fixed random batch shaped (batch_size, *input_shape) on the model's device."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    return torch.randn((batch_size, *input_shape), generator=generator).to(device)
