"""Scores to masks (global or per-layer thresholds, exact counts) and masks onto a model.

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


def _count(rate: float, n: int, remaining: int | None) -> int:
    """How many of n weights are pruned after pruning fraction `rate` of the `remaining` ones.

    With no earlier mask this is torch.nn.utils.prune's round(rate * n) (round half to even),
    so masks match torch's; otherwise the survivors are what gets rounded.
    """
    if remaining is None:
        return round(rate * n)
    return n - round((1.0 - rate) * remaining)


def _lowest(flat: Tensor, k: int) -> Tensor:
    """Boolean keep-mask of flat with its k lowest entries off (ties broken by position)."""
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k > 0:
        order = torch.argsort(flat, stable=True)
        keep[order[:k]] = False
    return keep


def _floor_pruned(
    scores: dict[str, Tensor], existing: dict[str, Tensor] | None
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


def threshold(
    scores: dict[str, Tensor],
    rate: float,
    scope: str,
    existing: dict[str, Tensor] | None = None,
    layer_scale: dict[str, float] | None = None,
) -> dict[str, Tensor]:
    """Prune the lowest-scoring fraction `rate` of the surviving weights, an exact count.

    Args:
        scores: name -> score tensor (higher = more important), shaped like the weight.
        rate: fraction in [0, 1) of the weights that `existing` keeps (all, if None) to prune.
        scope: "global" (one threshold across layers) or "layer" (the fraction in each layer).
        existing: masks from earlier rounds; their pruned entries stay pruned.
        layer_scale: scope "layer" only: module name -> multiplier of rate for that layer
            (e.g. {"fc3": 0.5}: the output layer at half rate, Frankle & Carbin 2019).
    Returns:
        name -> float mask (1 keep, 0 prune) on the score's device.
    """
    floored = _floor_pruned(scores, existing)

    def remaining(names: list[str]) -> int | None:
        if existing is None:
            return None
        return sum(
            int(existing[n].count_nonzero()) if n in existing else floored[n].numel() for n in names
        )

    if scope == "layer":
        masks = {}
        for name, s in floored.items():
            layer_rate = rate * (layer_scale or {}).get(name.rsplit(".", 1)[0], 1.0)
            if not 0.0 <= layer_rate < 1.0:
                raise SweeplabError(
                    f"pruning.layer_scale gives layer {name} rate {layer_rate:.3f}, "
                    "outside [0, 1); lower its scale"
                )
            k = _count(layer_rate, s.numel(), remaining([name]))
            masks[name] = _lowest(s.flatten(), k).view_as(s).float()
        return masks
    if scope != "global":
        raise SweeplabError(f"pruning.scope={scope!r} is not one of ['global', 'layer']")
    if layer_scale:
        raise SweeplabError(
            "pruning.layer_scale needs pruning.scope=layer; set pruning.scope=layer"
        )
    flat = torch.cat([s.flatten() for s in floored.values()])
    keep = _lowest(flat, _count(rate, flat.numel(), remaining(list(floored))))
    masks, start = {}, 0
    for name, s in floored.items():
        masks[name] = keep[start : start + s.numel()].view_as(s).float()
        start += s.numel()
    return masks


def cut(
    scores: dict[str, Tensor],
    tau: float | dict[str, float],
    existing: dict[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Threshold mode: prune where score < tau (one value, or one per parameter name)."""
    floored = _floor_pruned(scores, existing)
    return {
        name: (s >= (tau[name] if isinstance(tau, dict) else tau)).float()
        for name, s in floored.items()
    }


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, param = name.rpartition(".")
    return model.get_submodule(module_name), param


def apply_masks(model: nn.Module, masks: dict[str, Tensor]) -> None:
    """Attach masks with torch.nn.utils.prune: weight = weight_orig * mask in every forward.

    Gradients of masked entries are zero through the product, so masked weights stay exactly
    zero under any optimizer (momentum, weight decay and Adam only move weight_orig). A module
    that already carries a mask gets the new one copied in place (later rounds, gradual).
    """
    for name, mask in masks.items():
        module, param = _owner(model, name)
        current = getattr(module, f"{param}_mask", None)
        if current is not None:
            current.copy_(mask)
        else:
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
