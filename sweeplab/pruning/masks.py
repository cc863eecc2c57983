"""Masks on a model: which weights are prunable, attaching, loading, baking in, measuring.

Scores become masks in sweeplab.pruning.budget.

Masks are dict[str, Tensor] keyed by parameter name ("fc1.weight"), 1 = keep, 0 = pruned.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from sweeplab.errors import SweeplabError

# Modules whose `weight` is prunable; biases and norm parameters are not (they still count
# in params_total and compression).
PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_parameters(model: nn.Module, exclude: Iterable[str] = ()) -> dict[str, Tensor]:
    """Weights of the model's Linear and Conv layers, keyed by parameter name.

    Args:
        model: any nn.Module.
        exclude: module names whose weights stay dense (e.g. "fc3").
    Returns:
        name -> weight tensor (the live tensor; the original one if a mask is attached).
    """
    excluded = set(exclude)
    found = {}
    for module_name, module in model.named_modules():
        if isinstance(module, PRUNABLE_TYPES) and module_name not in excluded:
            weight = getattr(module, "weight_orig", module.weight)
            found[f"{module_name}.weight"] = weight
    unknown = excluded - {n for n, _ in model.named_modules()}
    if unknown:
        raise SweeplabError(
            f"pruning.exclude names unknown layers {sorted(unknown)}; use module names"
        )
    if not found:
        raise SweeplabError(
            f"model {type(model).__name__} has no prunable layer (Linear or Conv weights); "
            "use a model with such layers or remove layers from pruning.exclude"
        )
    return found


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, param = name.rpartition(".")
    return model.get_submodule(module_name), param


def current_mask(model: nn.Module, name: str) -> Tensor | None:
    """The mask torch.nn.utils.prune keeps for parameter `name` ("fc1.weight"), or None."""
    module, param = _owner(model, name)
    return getattr(module, f"{param}_mask", None)


def apply_masks(model: nn.Module, masks: dict[str, Tensor]) -> None:
    """Attach masks with torch.nn.utils.prune: weight = weight_orig * mask in every forward.

    Gradients of masked entries are zero through the product, so masked weights stay exactly
    zero under any optimizer (momentum, weight decay and Adam only move weight_orig). A module
    that already carries a mask gets the new one copied in place (later rounds, gradual).
    """
    for name, mask in masks.items():
        current = current_mask(model, name)
        if current is not None:
            current.copy_(mask)
        else:
            module, param = _owner(model, name)
            prune.custom_from_mask(module, param, mask.to(getattr(module, param).device))


def load_unmasked(model: nn.Module, state: dict[str, Tensor]) -> None:
    """Load a plain state_dict into a model whose weights may carry masks (masks stay).

    Args:
        model: the model, possibly with torch.nn.utils.prune reparametrizations.
        state: parameters and buffers of an unmasked model of the same architecture.
    """
    own = model.state_dict()
    mapped = {}
    for key, value in state.items():
        target = f"{key}_orig" if f"{key}_orig" in own else key
        if target not in own:
            raise KeyError(f"{key} has no place in {type(model).__name__}")
        mapped[target] = value
    with torch.no_grad():
        for key, value in mapped.items():
            own[key].copy_(value)


def remove_masks(model: nn.Module) -> None:
    """Make attached masks permanent: weight becomes a plain parameter with zeros in place."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)


def sparsity_of(masks: dict[str, Tensor]) -> float:
    """Fraction of masked-out entries over all masks."""
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    return 1.0 - kept / total


def layer_sparsity(masks: dict[str, Tensor]) -> dict[str, float]:
    """Fraction of masked-out entries per parameter name."""
    return {name: 1.0 - float(m.sum()) / m.numel() for name, m in masks.items()}
