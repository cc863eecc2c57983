"""Layer budgets: per-layer sparsities from a rule (uniform, ERK, ERK+, sensitivity) for a
total target.

budget.select_per_layer then keeps the top scores of each layer at these sparsities.

ERK is RigL's (google-research/rigl, rigl/sparse_utils.py `get_sparsities_erdos_renyi` with
include_kernel=True): layer l keeps the fraction eps * ((sum of its weight's dimensions) /
(its number of weights)) ** erk_power_scale, eps chosen so that the layers keep what the target
leaves, counted as RigL counts it: the sum over layers of n_l - floor(s * n_l). While some
layer's fraction would exceed 1, every layer with the largest raw fraction is made dense and eps
is found again over the others, which then also carry the dense layers' share (RigL's
`rhs -= n_zeros` for each dense layer). The order of a weight's dimensions does not matter: TF's
[kh, kw, in, out] and torch's [out, in, kh, kw] have the same sum and product.

erk_plus: the first prunable layer (the model's first Linear/Conv in registration order) starts
in the dense set, so it stays dense and counts in the budget: the other layers are pruned more
and the total is the target's. This is the equal-parameter-count rule of Liu et al. 2022's ERK+
(VITA-Group/Random_Pruning, ImageNet/core.py `ERK_plus`), applied to the first layer as RigL's
runs keep it dense (cifar_resnet/resnet_train_eval.py prune_first_layer=False,
imagenet_resnet/imagenet_train_eval.py first_layer_sparsity=0); the classifier is pruned by ERK
as in RigL's runs (prune_last_layer=True, last_layer_sparsity=-1), where Liu et al.'s ERK_plus
keeps the classifier dense instead (fc_density=1).

uniform: every layer at the target (RigL's `get_sparsities_uniform`): scope=layer's masks.

sensitivity: from each layer's measured accuracy drop when pruned alone (`sweeplab
sensitivity`), the sparsities that meet the target with the least summed predicted drop
(sweeplab.pruning.allocation); the engine attaches the curves to the pruner.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from sweeplab.errors import SweeplabError, check_number
from sweeplab.pruning.allocation import Curve, sensitivity_sparsities

DISTRIBUTIONS = ("uniform", "erk", "erk_plus", "sensitivity")


def erk_densities(
    shapes: Mapping[str, Sequence[int]],
    sparsity: float,
    dense: Iterable[str] = (),
    power_scale: float = 1.0,
) -> dict[str, float]:
    """Fraction of weights each layer keeps under Erdos-Renyi-Kernel (see the module docstring).

    Args:
        shapes: parameter name -> weight shape, in model order.
        sparsity: the target, a fraction of all the layers' weights.
        dense: layers kept dense from the start (their weights still count in the budget).
        power_scale: RigL's erk_power_scale (< 1 makes ERK closer to uniform).
    Returns:
        name -> density; 1.0 for dense layers. Negative where the dense layers alone hold
        more than the target keeps (the caller refuses that).
    """
    dense_layers = set(dense)
    eps, raw = 0.0, {}
    while True:
        rhs, divisor, raw = 0, 0.0, {}
        for name, shape in shapes.items():
            n = math.prod(shape)
            zeros = math.floor(sparsity * n)
            if name in dense_layers:
                rhs -= zeros
            else:
                rhs += n - zeros
                raw[name] = (sum(shape) / n) ** power_scale
                divisor += raw[name] * n
        if not raw:
            break
        eps = rhs / divisor
        top = max(raw.values())
        if top * eps <= 1:
            break
        dense_layers |= {name for name, p in raw.items() if p == top}
    return {name: 1.0 if name in dense_layers else eps * raw[name] for name in shapes}


def layer_sparsities(
    distribution: str,
    shapes: Mapping[str, Sequence[int]],
    sparsity: float,
    power_scale: float | None = None,
    curves: Mapping[str, Curve] | None = None,
) -> dict[str, float]:
    """Each layer's sparsity under `distribution` for a total target `sparsity`.

    Args:
        distribution: uniform, erk, erk_plus or sensitivity.
        shapes: parameter name -> weight shape, in model order (the first is erk_plus's dense one).
        sparsity: the target over all these weights.
        power_scale: erk_power_scale (None: 1, RigL's default).
        curves: sensitivity only: parameter name -> (rate, accuracy drop) points.
    Returns:
        name -> sparsity in [0, 1].
    """
    if distribution == "uniform":
        return {name: sparsity for name in shapes}
    if distribution == "sensitivity":
        return sensitivity_sparsities(shapes, sparsity, curves or {})
    first = next(iter(shapes))
    dense = [first] if distribution == "erk_plus" else []
    power = 1.0 if power_scale is None else power_scale
    densities = erk_densities(shapes, sparsity, dense, power)
    if min(densities.values()) <= 0:  # the dense layers hold all the target keeps, or more
        n_first = math.prod(shapes[first])
        total = sum(math.prod(s) for s in shapes.values())
        raise SweeplabError(
            f"pruning.distribution={distribution} keeps the first layer {first.rsplit('.', 1)[0]} "
            f"dense ({n_first:,} of {total:,} weights), as much as pruning.sparsity="
            f"{sparsity:g} leaves or more; use pruning.sparsity<{1 - n_first / total:.4g} or "
            "pruning.distribution=erk"
        )
    return {name: 1.0 - d for name, d in densities.items()}


def check_options(
    distribution: object,
    power_scale: object,
    *,
    modes: Sequence[str],
    layer_scale: Mapping[str, float],
) -> tuple[str | None, float | None]:
    """pruning.distribution and pruning.erk_power_scale, checked against the other options.

    Returns:
        (distribution or None, power scale or None).
    """
    if distribution is None:
        if power_scale is not None:
            raise SweeplabError(
                "pruning.erk_power_scale needs pruning.distribution=erk or erk_plus; set one "
                "or remove pruning.erk_power_scale"
            )
        return None, None
    if distribution not in DISTRIBUTIONS:
        raise SweeplabError(
            f"pruning.distribution={distribution!r} is not one of {list(DISTRIBUTIONS)}"
        )
    name = str(distribution)
    if modes:
        raise SweeplabError(
            f"pruning.distribution={name} sets each layer's sparsity from pruning.sparsity; "
            f"remove pruning.{modes[0]}"
        )
    if layer_scale:
        raise SweeplabError(
            f"pruning.distribution={name} sets each layer's sparsity; remove pruning.layer_scale"
        )
    if power_scale is None:
        return name, None
    if name in ("uniform", "sensitivity"):
        raise SweeplabError(
            f"pruning.erk_power_scale needs pruning.distribution=erk or erk_plus, not {name}"
        )
    return name, check_number("pruning.erk_power_scale", power_scale, example="0.5")
