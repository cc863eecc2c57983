"""Per-layer sparsities from sensitivity curves: the global target at the least summed drop.

A layer's curve is its accuracy drop when it alone is pruned at a list of rates, without
retraining (`sweeplab sensitivity`, Distiller's sensitivity analysis). Between measured rates
the drop is interpolated linearly, from drop 0 at rate 0; no layer is pruned beyond its largest
measured rate.

The allocation is exact on the lower convex hull of each curve (a greedy over hull segments):
a hull is a chain of segments of increasing cost (drop per pruned weight); taking segments
across all layers cheapest first until the target's count of weights is pruned minimizes the
summed hull drop (a fractional knapsack, where greedy is optimal because each layer's segments
come in increasing cost). Where a curve is not convex (pruning more lost less), the hull
bridges the dip; every layer then sits on a measured point except at most one, the layer whose
segment the target ends inside, which sits on an interpolated point of its hull. Equal costs
(e.g. layers whose drops are all 0) go to the layer first in model order.

Counts: the target prunes round(sparsity * total) weights; the rates become whole counts by
the largest remainder, so the counts sum to the target exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sweeplab.errors import SweeplabError

Curve = Sequence[tuple[float, float]]  # (rate, accuracy drop) points, drop a fraction


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def lower_hull(curve: Curve) -> list[tuple[float, float]]:
    """The lower convex hull of (0, 0) and a curve's points, by increasing rate.

    Args:
        curve: (rate, drop) points, rates in (0, 1); a point at rate 0 is replaced by (0, 0).
    Returns:
        The hull's vertices from (0, 0) to the largest rate.
    """
    points = sorted({(float(r), float(d)) for r, d in curve if r > 0})
    hull: list[tuple[float, float]] = []
    for p in [(0.0, 0.0), *points]:
        if hull and hull[-1][0] == p[0]:  # several drops at one rate: the lowest is on the hull
            continue
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) <= 0:
            hull.pop()
        hull.append(p)
    return hull


def _whole_counts(
    raw: Mapping[str, float], counts: Mapping[str, int], target: int
) -> dict[str, int]:
    """Whole pruned counts per layer near `raw` that sum to `target` (largest remainder)."""
    whole = {n: min(math.floor(v + 1e-9), counts[n]) for n, v in raw.items()}
    order = sorted(raw, key=lambda n: -(raw[n] - whole[n]))  # stable: model order on ties
    left = target - sum(whole.values())
    for name in order:
        if left <= 0:
            break
        if whole[name] < counts[name]:
            whole[name] += 1
            left -= 1
    return whole


def sensitivity_sparsities(
    shapes: Mapping[str, Sequence[int]],
    sparsity: float,
    curves: Mapping[str, Curve],
) -> dict[str, float]:
    """Each layer's sparsity for a total target, at the least summed predicted drop.

    Args:
        shapes: parameter name -> weight shape, in model order.
        sparsity: the target over all these weights.
        curves: parameter name -> (rate, drop) points; every layer of `shapes` needs one.
    Returns:
        name -> sparsity (pruned count / weights); the counts sum to round(sparsity * total).
    """
    counts = {name: math.prod(shape) for name, shape in shapes.items()}
    missing = [name for name in counts if not curves.get(name)]
    if missing:
        layer = missing[0].rsplit(".", 1)[0]
        raise SweeplabError(
            f"pruning.distribution=sensitivity has no sensitivity curve for layer {layer} "
            f"({len(missing)} of {len(counts)} layers lack one); run `sweeplab sensitivity` "
            "with this run's overrides first"
        )
    target = round(sparsity * sum(counts.values()))
    segments = []
    reach = 0.0
    for order, (name, n) in enumerate(counts.items()):
        hull = lower_hull(curves[name])
        reach += hull[-1][0] * n
        for (r0, d0), (r1, d1) in zip(hull, hull[1:], strict=False):
            segments.append(((d1 - d0) / ((r1 - r0) * n), order, r0, name, r1))
    if target > math.floor(reach + 1e-9):
        raise SweeplabError(
            f"pruning.sparsity={sparsity:g} prunes {target:,} weights but the sensitivity "
            f"curves reach {math.floor(reach + 1e-9):,} (each layer up to its largest measured "
            "rate); add higher rates, e.g. sensitivity.rates=[...,0.99], and run `sweeplab "
            "sensitivity` again, or lower pruning.sparsity"
        )
    rates = dict.fromkeys(counts, 0.0)
    left = float(target)
    for _cost, _order, r0, name, r1 in sorted(segments):
        if left <= 0:
            break
        weights = (r1 - r0) * counts[name]
        take = min(weights, left)
        rates[name] = r0 + take / counts[name]
        left -= take
    whole = _whole_counts({n: rates[n] * counts[n] for n in counts}, counts, target)
    return {name: whole[name] / counts[name] for name in counts}


def predicted_drop(rates: Mapping[str, float], curves: Mapping[str, Curve]) -> float:
    """The summed drop the curves predict for per-layer rates (linear between their points).

    Args:
        rates: parameter name -> sparsity.
        curves: parameter name -> (rate, drop) points.
    """
    total = 0.0
    for name, rate in rates.items():
        points = [(0.0, 0.0), *sorted((float(r), float(d)) for r, d in curves[name] if r > 0)]
        for (r0, d0), (r1, d1) in zip(points, points[1:], strict=False):
            if r0 <= rate <= r1:
                total += d0 + (d1 - d0) * (rate - r0) / (r1 - r0)
                break
        else:
            total += points[-1][1]
    return total
