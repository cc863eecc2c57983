"""Hybrid pruning: a weighted sum of two or more criteria's scores, each normalized to ranks.

Normalization: each criterion's scores become their rank among all prunable weights, scaled
to [0, 1] (ties share their average rank). Ranks, not division by the max, because the
criteria live on unrelated scales and shapes: gradient and Taylor scores are heavy-tailed (a
few huge entries would squash the rest toward 0 after dividing by the max, so the criterion
with the flatter distribution would decide almost alone), GraSP's are signed. Ranks make a
weight mean "this share of the ordering", so weights [1, 0] prune exactly like the first
criterion and [0.5, 0.5] trades the two orderings evenly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError
from sweeplab.pruning.base import Pruner
from sweeplab.pruning.gradient import Batch


def rank_normalized(scores: dict[str, Tensor]) -> dict[str, Tensor]:
    """Ranks of all scores together, in [0, 1]; equal scores get their average rank.

    Args:
        scores: name -> score tensor.
    Returns:
        name -> float64 tensor of normalized ranks, shaped like the score.
    """
    flat = torch.cat([s.detach().flatten().double() for s in scores.values()])
    values, inverse, counts = torch.unique(flat, return_inverse=True, return_counts=True)
    end = torch.cumsum(counts, 0).double()  # 1 + the last 0-based rank of each distinct value
    average = end - (counts.double() + 1) / 2
    ranks = average[inverse] / max(flat.numel() - 1, 1)
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = ranks[start : start + s.numel()].view(s.shape)
        start += s.numel()
    return out


def _weight(key: str, value: object) -> float:
    """A weight as a float >= 0, or a SweeplabError naming pruning.weights.<key>."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not float(value) >= 0 or float(value) == float("inf"):
        raise SweeplabError(
            f"pruning.weights.{key}={value!r} must be a finite number >= 0, e.g. 0.5"
        )
    return float(value)


def _as_items(
    criteria: Mapping[str, Pruner] | Sequence[Pruner],
    weights: Mapping[str, float] | Sequence[float],
) -> list[tuple[str, Pruner, float]]:
    """Pair criteria with weights, both given as mappings (by key) or sequences (by order)."""
    if isinstance(criteria, Mapping) != isinstance(weights, Mapping):
        raise SweeplabError(
            "pruning.criteria and pruning.weights must both be mappings (matched by key) or "
            "both lists (matched by position); write them the same way"
        )
    if isinstance(criteria, Mapping):
        if set(criteria) != set(weights):  # type: ignore[arg-type]
            raise SweeplabError(
                f"pruning.weights has keys {sorted(weights)} but pruning.criteria has "
                f"{sorted(criteria)}; give one weight per criterion"
            )
        return [(str(k), c, _weight(str(k), weights[k])) for k, c in criteria.items()]  # type: ignore[index]
    if len(criteria) != len(weights):
        raise SweeplabError(
            f"pruning.weights={list(weights)} has {len(weights)} entries for "
            f"{len(criteria)} criteria; give one weight per criterion"
        )
    return [
        (str(i), c, _weight(str(i), w))
        for i, (c, w) in enumerate(zip(criteria, weights, strict=True))
    ]


class Hybrid(Pruner):
    """Score = sum_i weight_i * rank_i / sum_i weight_i over the sub-criteria's scores.

    Each sub-criterion contributes its `scores()` only: its own sparsity, scope, exclude and
    threshold options are ignored (this pruner's apply), and SynFlow contributes one round
    of scores, not its iterated masks. Sub-criteria score in the order given and share the
    batches and the generator, so the result is deterministic for a seed.

    Args:
        sparsity: fraction of prunable weights to prune.
        criteria: two or more Pruners, by name (a mapping) or in order (a list).
        weights: one non-negative weight per criterion, same form as criteria.
        **kwargs: Pruner's options (scope, name, exclude, ...).
    """

    def __init__(
        self,
        sparsity: float | None = None,
        *,
        criteria: Mapping[str, Pruner] | Sequence[Pruner] = (),
        weights: Mapping[str, float] | Sequence[float] = (),
        **kwargs,
    ) -> None:
        super().__init__(sparsity, **kwargs)
        if len(criteria) < 2:
            raise SweeplabError(
                f"pruning.criteria has {len(criteria)} criteria; a hybrid combines two or more "
                "(for one, use that criterion's own config, e.g. pruning=taylor)"
            )
        items = _as_items(criteria, weights)
        for key, criterion, _ in items:
            if not isinstance(criterion, Pruner):
                raise SweeplabError(
                    f"pruning.criteria.{key} is a {type(criterion).__name__}, not a criterion; "
                    "give it a _target_ such as sweeplab.pruning.taylor.Taylor"
                )
        if sum(w for _, _, w in items) <= 0:
            raise SweeplabError(
                "pruning.weights are all zero; give at least one criterion a positive weight"
            )
        self.items = items

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Iterable[Batch],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        total = sum(w for _, _, w in self.items)
        combined: dict[str, Tensor] = {}
        for _, criterion, weight in self.items:
            if weight == 0:
                continue  # no cost for a criterion switched off (e.g. weights [1, 0])
            ranks = rank_normalized(criterion.scores(model, params, batches, generator))
            for name, r in ranks.items():
                combined[name] = combined.get(name, 0.0) + (weight / total) * r
        return combined
