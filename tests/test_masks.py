"""Masks: exact counts, equality with torch.nn.utils.prune, zeros that survive optimizers.

Every file in conf/pruning/ is checked automatically: a new criterion needs no test edit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from torch import nn
from torch.nn.utils import prune

from conftest import CONF, compose
from sweeplab.data.base import TensorBatches
from sweeplab.models.lenet import LeNet5
from sweeplab.pruning.budget import Target, select
from sweeplab.pruning.masks import apply_masks, prunable_parameters, remove_masks, sparsity_of

# Unstructured strategies; files with a `granularity:` key remove structures physically
# (tests/test_structured.py walks those).
STRATEGIES = sorted(
    p.stem for p in (CONF / "pruning").glob("*.yaml") if "granularity:" not in p.read_text()
)


def small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 16),
        nn.ReLU(),
        nn.Linear(16, 3),
    )


def batches(seed: int = 0) -> TensorBatches:
    g = torch.Generator().manual_seed(seed)
    return TensorBatches(
        torch.randn(32, 1, 8, 8, generator=g), torch.randint(0, 3, (32,), generator=g), 16
    )


def masks_for(strategy: str, sparsity: float, scope: str | None = None, seed: int = 0) -> dict:
    overrides = [f"pruning={strategy}", f"pruning.sparsity={sparsity}"]
    if scope:
        overrides.append(f"pruning.scope={scope}")
    pruner = instantiate(compose(overrides).pruning)
    return pruner.masks(small_model(), batches(), torch.Generator().manual_seed(seed))


def test_global_magnitude_equals_torch_global_unstructured() -> None:
    model = LeNet5((1, 28, 28), 10)
    params = prunable_parameters(model)
    ours = select({k: w.abs() for k, w in params.items()}, Target.oneshot(0.9), "global")

    reference = LeNet5((1, 28, 28), 10)
    reference.load_state_dict(model.state_dict())
    pairs = [(reference.get_submodule(k.rsplit(".", 1)[0]), "weight") for k in params]
    prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=0.9)
    for (module, _), name in zip(pairs, params, strict=True):
        assert torch.equal(ours[name], module.weight_mask), name
    total = sum(w.numel() for w in params.values())
    pruned = sum(int((m == 0).sum()) for m in ours.values())
    assert abs(pruned - 0.9 * total) <= 1


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("sparsity", [0.0, 0.37, 0.9, 0.98])
def test_every_strategy_hits_the_requested_sparsity(
    strategy: str, scope: str, sparsity: float
) -> None:
    declared = get_class(compose([f"pruning={strategy}"]).pruning._target_).scopes
    if scope not in declared:  # a criterion that declares no such scope refuses it
        with pytest.raises(InstantiationException, match=f"pruning.scope='{scope}' is not one"):
            masks_for(strategy, sparsity, scope)
        return
    masks = masks_for(strategy, sparsity, scope)
    if scope == "layer":
        for name, m in masks.items():
            assert abs(int((m == 0).sum()) - sparsity * m.numel()) <= 1, name
    else:
        total = sum(m.numel() for m in masks.values())
        assert abs(int(sum((m == 0).sum() for m in masks.values())) - sparsity * total) <= 1
    assert set(masks) == {"0.weight", "3.weight", "5.weight"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_is_deterministic_for_a_seed(strategy: str) -> None:
    first, again = masks_for(strategy, 0.8, seed=3), masks_for(strategy, 0.8, seed=3)
    assert all(torch.equal(first[k], again[k]) for k in first)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("optimizer", ["sgd_momentum_wd", "adam_wd"])
def test_pruned_weights_stay_zero_after_optimizer_steps(strategy: str, optimizer: str) -> None:
    model = small_model()
    pruner = instantiate(compose([f"pruning={strategy}", "pruning.sparsity=0.7"]).pruning)
    masks = pruner.masks(model, batches(), torch.Generator().manual_seed(0))
    apply_masks(model, masks)
    if optimizer == "adam_wd":
        opt = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=0.1)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    for x, y in list(batches()) * 3:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    remove_masks(model)
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert int((params[name][mask == 0] != 0).sum()) == 0, name
        assert not hasattr(model.get_submodule(name.rsplit(".", 1)[0]), "weight_orig")
    assert sparsity_of(masks) == pytest.approx(0.7, abs=1 / 500)


def test_excluded_layers_stay_dense_and_bad_names_are_named() -> None:
    from sweeplab.errors import SweeplabError
    from sweeplab.pruning.magnitude import Magnitude

    masks = Magnitude(0.9, exclude=["5"]).masks(small_model(), batches(), torch.Generator())
    assert "5.weight" not in masks
    with pytest.raises(SweeplabError, match="fc9"):
        Magnitude(0.9, exclude=["fc9"]).masks(small_model(), batches(), torch.Generator())


def test_model_without_prunable_layer_is_refused() -> None:
    from sweeplab.errors import SweeplabError

    with pytest.raises(SweeplabError, match="no prunable layer"):
        prunable_parameters(nn.Sequential(nn.ReLU()))


def test_strategy_files_exist() -> None:
    assert {"random", "layer_magnitude", "global_magnitude"} <= set(STRATEGIES)
    assert all(
        Path(CONF / "pruning" / f"{s}.yaml").read_text().count("_target_") == 1 for s in STRATEGIES
    )


def test_iterative_20_20_10_gives_the_lottery_ticket_fractions() -> None:
    # Frankle & Carbin 2019: each round prunes 20% of each hidden layer's survivors, 10% of
    # the output layer's; remaining 51.3 / 21.1 / 13.5 / 3.6 % at rounds 3 / 7 / 9 / 15.
    from sweeplab.models.lenet import LeNet300
    from sweeplab.pruning.magnitude import Magnitude

    model = LeNet300((1, 28, 28), 10)
    pruner = Magnitude(0.2, scope="layer", layer_scale={"fc3": 0.5})
    masks, remaining = None, {}
    for r, target in enumerate(Target.geometric(1 - 0.8**15, 15), start=1):
        assert target.per_step == pytest.approx(0.2)
        masks = pruner.masks(model, [], torch.Generator(), target=target, existing=masks)
        remaining[r] = 100 * (1 - sparsity_of(masks))
    for r, expected in ((3, 51.3), (7, 21.1), (9, 13.5), (15, 3.6)):
        assert abs(remaining[r] - expected) <= 0.05, (r, remaining[r])


def test_existing_masks_stay_pruned_even_when_their_scores_are_high() -> None:
    scores = {"a.weight": torch.arange(10.0)}
    first = {"a.weight": (torch.arange(10) < 7).float()}  # pruned the top 3 scores
    masks = select(scores, Target(0.65, 0.5), "global", existing=first)
    assert masks["a.weight"][7:].sum() == 0
    assert int(masks["a.weight"].sum()) == round(0.5 * 7)  # half of the 7 survivors remain


def test_threshold_and_quality_modes() -> None:
    from sweeplab.errors import SweeplabError
    from sweeplab.pruning.magnitude import Magnitude

    model = small_model()
    masks = Magnitude(threshold=0.05).masks(model, [], torch.Generator())
    weights = dict(model.named_parameters())
    for name, m in masks.items():
        assert torch.equal(m.bool(), weights[name].abs() >= 0.05)
    han = Magnitude(quality=1.0, scope="layer").masks(model, [], torch.Generator())
    for name, m in han.items():
        w = weights[name].detach()
        assert torch.equal(m.bool(), w.abs() >= w.std())
    with pytest.raises(SweeplabError, match="also set pruning.sparsity=null"):
        Magnitude(sparsity=0.5, threshold=0.1)
    with pytest.raises(SweeplabError, match="needs pruning.scope=layer"):
        Magnitude(0.5, layer_scale={"3": 0.5}).masks(model, [], torch.Generator())
