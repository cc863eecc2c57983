"""LAMP against a transcription of its authors' code, mask by mask, one-shot and iterative.

Reference: jaeho-lee/layer-adaptive-sparsity (commit 94e53b1), tools/pruners.py
`prune_weights_reparam`, `prune_weights_lamp`, `_compute_lamp_amounts`, `_normalize_scores`,
`_count_unmasked_weights`, `prune_weights_l1predefined` and tools/utils.py `get_weights`,
`get_modules`, transcribed below (torch.nn.utils.prune does the per-layer pruning there too).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from conftest import compose
from sweeplab.engine.task import instantiate
from sweeplab.pruning.budget import Target
from sweeplab.pruning.lamp import LAMP, lamp_scores
from sweeplab.pruning.masks import apply_masks


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 8, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, 10),
    )  # fmt: skip


# -- the reference ----------------------------------------------------------------------


def _get_modules(model):
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def _get_weights(model):
    return [m.weight for m in _get_modules(model)]


def _count_unmasked_weights(model):
    return torch.FloatTensor([m.weight_mask.sum() for m in _get_modules(model)])


def _normalize_scores(scores):
    sorted_scores, sorted_idx = scores.view(-1).sort(descending=False)
    scores_cumsum_temp = sorted_scores.cumsum(dim=0)
    scores_cumsum = torch.zeros(scores_cumsum_temp.shape, device=scores.device)
    scores_cumsum[1:] = scores_cumsum_temp[: len(scores_cumsum_temp) - 1]
    sorted_scores /= scores.sum() - scores_cumsum
    new_scores = torch.zeros(scores_cumsum.shape, device=scores.device)
    new_scores[sorted_idx] = sorted_scores
    return new_scores.view(scores.shape)


def _compute_lamp_amounts(model, amount):
    unmaskeds = _count_unmasked_weights(model)
    num_surv = int(np.round(unmaskeds.sum() * (1.0 - amount)))
    flattened_scores = [_normalize_scores(w**2).view(-1) for w in _get_weights(model)]
    concat_scores = torch.cat(flattened_scores, dim=0)
    topks, _ = torch.topk(concat_scores, num_surv)
    threshold = topks[-1]
    final_survs = [
        torch.ge(score, threshold * torch.ones(score.size()).to(score.device)).sum()
        for score in flattened_scores
    ]
    return [1.0 - (final_surv / unmaskeds[idx]) for idx, final_surv in enumerate(final_survs)]


def reference_lamp(
    model: nn.Module, amounts: list[float], between: Callable[[nn.Module, int], None] | None = None
) -> list[torch.Tensor]:
    """prune_weights_reparam, then prune_weights_lamp once per amount (iterate.py's loop);
    `between(model, r)` stands for the retraining before round r > 0."""
    for m in _get_modules(model):
        prune.identity(m, name="weight")
    for r, amount in enumerate(amounts):
        if r and between is not None:
            between(model, r)
            model(torch.zeros(1, 1, 8, 8))  # training's forward passes refresh m.weight
        layer_amounts = _compute_lamp_amounts(model, amount)
        for idx, m in enumerate(_get_modules(model)):
            prune.l1_unstructured(m, name="weight", amount=float(layer_amounts[idx]))
    return [m.weight_mask.clone() for m in _get_modules(model)]


# -- the tests --------------------------------------------------------------------------


def test_scores_on_a_hand_example() -> None:
    # Squares 9, 1, 4 sorted: 1, 4, 9 (sum 14): 1/14, 4/(4+9), 9/9.
    scores = lamp_scores(torch.tensor([3.0, -1.0, 2.0]))
    assert torch.allclose(scores, torch.tensor([1.0, 1 / 14, 4 / 13]))


@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.98])
def test_oneshot_masks_equal_the_authors_code_entry_by_entry(sparsity: float) -> None:
    ours = LAMP(sparsity).masks(small_model(), [], torch.Generator())
    theirs = reference_lamp(small_model(), [sparsity])
    assert list(ours) == ["0.weight", "2.weight", "5.weight", "7.weight"]
    for (name, mask), ref in zip(ours.items(), theirs, strict=True):
        assert torch.equal(mask, ref), name
    # Layer-adaptive: the layers end at different sparsities (not one global magnitude cut).
    per_layer = {round(1 - float(m.mean()), 3) for m in ours.values()}
    assert len(per_layer) == 4


def retrain(model: nn.Module, r: int) -> None:
    """Stand-in for retraining: survivors move (weight_orig scaled by 0.5-1.5 at random), so
    some pruned weights become larger than survivors; the scores must ignore them."""
    g = torch.Generator().manual_seed(r)
    with torch.no_grad():
        for m in _get_modules(model):
            m.weight_orig.mul_(torch.rand(m.weight_orig.shape, generator=g) + 0.5)


def test_iterative_masks_equal_the_authors_loop_entry_by_entry() -> None:
    # iterate.py prunes amount_per_it = 0.2 of the survivors each iteration, scoring the
    # masked weights, with retraining in between.
    model, masks = small_model(1), None
    pruner = instantiate(compose(["pruning=lamp"]).pruning)
    for r in range(1, 5):
        if r > 1:
            retrain(model, r - 1)
        masks = pruner.masks(model, [], torch.Generator(), target=Target(1 - 0.8**r, 0.2),
                             existing=masks)  # fmt: skip
        apply_masks(model, masks)
    theirs = reference_lamp(small_model(1), [0.2] * 4, between=retrain)
    for (name, mask), ref in zip(masks.items(), theirs, strict=True):
        assert torch.equal(mask, ref), name


def test_lamp_differs_from_global_magnitude_at_high_sparsity() -> None:
    from sweeplab.pruning.magnitude import Magnitude

    lamp = LAMP(0.98).masks(small_model(), [], torch.Generator())
    magnitude = Magnitude(0.98).masks(small_model(), [], torch.Generator())
    assert any(not torch.equal(lamp[k], magnitude[k]) for k in lamp)
    # Within a layer LAMP keeps the largest weights, like magnitude.
    w = dict(small_model().named_parameters())["5.weight"].detach().abs()
    kept = lamp["5.weight"].bool()
    assert float(w[kept].min()) >= float(w[~kept].max())
