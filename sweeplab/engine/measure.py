"""Pure measurement functions: each takes models or tensors and returns numbers.

`measure` gives every metric of one result; the pipeline calls it once per result.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from sweeplab.data.base import Splits
from sweeplab.engine import costs
from sweeplab.engine.latency import REPEATS
from sweeplab.engine.plain import plain_copy
from sweeplab.engine.semi_structured import nm_fields
from sweeplab.pruning.masks import layer_sparsity, prunable_parameters, sparsity_of


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


def measure(
    model: nn.Module,
    dense: nn.Module,
    masks: Mapping[str, Tensor],
    splits: Splits,
    *,
    latency: bool = True,
    repeats: int = REPEATS,
    dense_costs: dict[str, float | int] | None = None,
) -> dict[str, object]:
    """Every metric of a pruned model against its dense model: metric name -> value.

    Args:
        model: the pruned (and recovered) model, masks attached; or, with no masks, a
            physically smaller model from a structured pruner.
        dense: the trained dense model.
        masks: the attached masks ({} for a physically smaller model).
        splits: the run's data (test and val accuracy; one example's shape for costs).
        latency: measure CPU inference latency (median and quartiles of `repeats` samples).
        repeats: timed samples per latency figure.
        dense_costs: the dense model's MACs and size from an earlier result of the same run
            (filled on first use), counted once per run; its latency is timed with each result.
    Returns:
        acc_finetuned_test/val, sparsity_achieved, params_*, compression, layer_sparsity,
        the cost fields (sweeplab.engine.costs.cost_fields) and, for N:M masks, the pattern's
        (sweeplab.engine.semi_structured.nm_fields).
    """
    test = accuracy(model, splits.test_x, splits.test_y)
    val = accuracy(model, splits.val_x, splits.val_y)
    if masks:
        achieved, layers = sparsity_of(dict(masks)), layer_sparsity(dict(masks))
        prunable = sum(m.numel() for m in masks.values())
    else:
        from sweeplab.pruning.structured.groups import layer_removed, removed_fraction

        achieved, layers = removed_fraction(dense, model), layer_removed(dense, model)
        prunable = sum(p.numel() for p in prunable_parameters(dense).values())
    nonzero = params_nonzero(model)
    plain = plain_copy(model)
    cost = costs.cost_fields(
        dense,
        plain,
        splits.input_shape,
        latency=latency,
        repeats=repeats,
        threads=1,  # one thread: timings that other processes disturb least
        dense_cache=dense_costs,
    )
    return dict(
        acc_finetuned_test=test,
        acc_finetuned_val=val,
        sparsity_achieved=achieved,
        params_total=params_total(model),
        params_prunable=prunable,
        params_nonzero=nonzero,
        # ShrinkBench: all parameters of the dense model / nonzero parameters now.
        compression=compression(params_total(dense), nonzero),
        layer_sparsity=layers,
        **cost,
        **nm_fields(plain, masks, splits.input_shape, latency=latency, repeats=repeats),
    )
