"""LAMP (Lee, Park, Mo, Ahn 2021): layer-adaptive magnitude scores, pruned globally.

Followed: the authors' code (jaeho-lee/layer-adaptive-sparsity, tools/pruners.py
`_normalize_scores` and `_compute_lamp_amounts`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from sweeplab.pruning.base import Pruner
from sweeplab.pruning.masks import current_mask


def lamp_scores(weight: Tensor) -> Tensor:
    """w^2 / (sum of w'^2 over the layer's weights at or after w in ascending order of w^2).

    Computed as the reference's `_normalize_scores` does, in the weight's dtype: sort the
    squares ascending (torch's sort), divide each by the total minus the sum of those before
    it. Within a layer the score grows with |w|, so it only decides how many weights each
    layer keeps.

    Args:
        weight: one layer's weights (pruned entries zero).
    Returns:
        scores shaped like weight.
    """
    squares = weight.detach() ** 2
    ordered, order = squares.reshape(-1).sort(descending=False)
    before = torch.zeros_like(ordered)
    before[1:] = ordered.cumsum(dim=0)[:-1]
    out = torch.zeros_like(ordered)
    out[order] = ordered / (squares.sum() - before)
    return out.view(weight.shape)


class LAMP(Pruner):
    """Score = LAMP score of each weight in its layer; with scope global, one threshold.

    Weights pruned by earlier masks count as zero, as the reference scores the masked weights
    (their scores are 0 and they stay pruned).
    """

    def scores(
        self,
        model: nn.Module,
        params: dict[str, Tensor],
        batches: Iterable[tuple[Tensor, Tensor]],
        generator: torch.Generator,
    ) -> dict[str, Tensor]:
        out = {}
        for name, w in params.items():
            mask = current_mask(model, name)
            out[name] = lamp_scores(w if mask is None else w * mask)
        return out
