"""Pure measurement functions: each takes a model or tensors and returns a number."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def params_total(model: nn.Module) -> int:
    """Every parameter, biases and norms included (masked weights count once)."""
    return sum(p.numel() for p in _effective(model).values())


def params_nonzero(model: nn.Module) -> int:
    """Parameters that are not exactly zero, with attached masks applied."""
    return sum(int(torch.count_nonzero(p)) for p in _effective(model).values())


def compression(total: int, nonzero: int) -> float:
    """ShrinkBench's compression ratio: total parameters / nonzero parameters."""
    return total / max(nonzero, 1)


@torch.inference_mode()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 2048) -> float:
    """Top-1 accuracy of model on (x, y), in [0, 1], evaluated in eval mode."""
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
    model.train(was_training)
    return correct / len(x)


def _effective(model: nn.Module) -> dict[str, Tensor]:
    """Parameters as the forward pass sees them: weight_orig * weight_mask where pruned."""
    found: dict[str, Tensor] = {}
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        for name, p in module.named_parameters(recurse=False):
            if name.endswith("_orig"):
                base = name[: -len("_orig")]
                found[prefix + base] = p.detach() * getattr(module, f"{base}_mask")
            else:
                found[prefix + name] = p.detach()
    return found
