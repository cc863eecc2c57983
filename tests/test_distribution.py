"""Layer budgets: ERK against a transcription of RigL's code entry by entry, ERK+, uniform,
exact per-layer counts that sum to the target, the row, refusals.

Reference: google-research/rigl, rigl/sparse_utils.py `get_sparsities_erdos_renyi` (commit
d39fc7d), transcribed below with its TF mask variables replaced by (name, shape) records.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import FAST, compose, rows_in
from sweeplab.engine.task import instantiate
from sweeplab.errors import SweeplabError
from sweeplab.models.lenet import LeNet5, LeNet300
from sweeplab.models.resnet_cifar import ResNetCifar
from sweeplab.pruning.budget import Target
from sweeplab.pruning.distribution import layer_sparsities
from sweeplab.pruning.magnitude import Magnitude
from sweeplab.pruning.masks import prunable_parameters
from test_nm import refusal_check

MODELS = {
    "lenet300": lambda: LeNet300((1, 28, 28), 10),
    "lenet5": lambda: LeNet5((1, 28, 28), 10),
    "resnet20": lambda: ResNetCifar((3, 32, 32), 10, depth=20),
}


def shapes_of(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(w.shape) for name, w in prunable_parameters(model).items()}


class _Shape:
    def __init__(self, shape: tuple[int, ...]) -> None:
        self._shape = list(shape)

    def as_list(self) -> list[int]:
        return list(self._shape)


class _Mask:
    """What the reference reads of a TF mask variable: .name and .shape.as_list()."""

    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        self.name, self.shape = f"{name}/mask:0", _Shape(shape)


def _mask_extract_name_fn(mask_name: str) -> str:
    return re.findall("(.+)/mask:0", mask_name)[0]


def _get_n_zeros(size: int, sparsity: float) -> int:
    return int(np.floor(sparsity * size))


def rigl_get_sparsities_erdos_renyi(
    all_masks, default_sparsity, custom_sparsity_map, include_kernel,
    extract_name_fn=_mask_extract_name_fn, erk_power_scale=1.0,
):  # fmt: skip
    """rigl/sparse_utils.py get_sparsities_erdos_renyi, logging removed."""
    is_eps_valid = False
    dense_layers = set()
    while not is_eps_valid:
        divisor = 0
        rhs = 0
        raw_probabilities = {}
        for mask in all_masks:
            var_name = extract_name_fn(mask.name)
            shape_list = mask.shape.as_list()
            n_param = np.prod(shape_list)
            n_zeros = _get_n_zeros(n_param, default_sparsity)
            if var_name in dense_layers:
                rhs -= n_zeros
            elif var_name in custom_sparsity_map:
                pass
            else:
                n_ones = n_param - n_zeros
                rhs += n_ones
                if include_kernel:
                    raw_probabilities[mask.name] = (
                        np.sum(shape_list) / np.prod(shape_list)
                    ) ** erk_power_scale
                else:
                    n_in, n_out = shape_list[-2:]
                    raw_probabilities[mask.name] = (n_in + n_out) / (n_in * n_out)
                divisor += raw_probabilities[mask.name] * n_param
        eps = rhs / divisor
        max_prob = np.max(list(raw_probabilities.values()))
        max_prob_one = max_prob * eps
        if max_prob_one > 1:
            is_eps_valid = False
            for mask_name, mask_raw_prob in raw_probabilities.items():
                if mask_raw_prob == max_prob:
                    var_name = extract_name_fn(mask_name)
                    dense_layers.add(var_name)
        else:
            is_eps_valid = True

    sparsities = {}
    for mask in all_masks:
        var_name = extract_name_fn(mask.name)
        if var_name in custom_sparsity_map:
            sparsities[mask.name] = custom_sparsity_map[var_name]
        elif var_name in dense_layers:
            sparsities[mask.name] = 0.0
        else:
            probability_one = eps * raw_probabilities[mask.name]
            sparsities[mask.name] = 1.0 - probability_one
    return sparsities


@pytest.mark.parametrize("model", sorted(MODELS))
def test_erk_equals_rigls_get_sparsities_entry_by_entry(model: str) -> None:
    shapes = shapes_of(MODELS[model]())
    masks = [_Mask(name, shape) for name, shape in shapes.items()]
    made_dense = 0
    for sparsity in (0.2, 0.5, 0.8, 0.9, 0.95, 0.98):
        for power in (1.0, 0.5):
            ours = layer_sparsities("erk", shapes, sparsity, power)
            theirs = rigl_get_sparsities_erdos_renyi(
                masks, sparsity, {}, True, erk_power_scale=power
            )
            assert list(ours) == list(shapes)
            for name in shapes:
                assert ours[name] == theirs[f"{name}/mask:0"], name  # the same float operations
            made_dense += sum(v == 0.0 for v in ours.values())
    assert made_dense > 0  # the loop that makes layers dense ran


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("distribution", ["erk", "erk_plus", "uniform"])
def test_masks_prune_each_layers_count_and_sum_to_the_target(model: str, distribution: str) -> None:
    net = MODELS[model]()
    shapes = shapes_of(net)
    sparsity = 0.9 if not (distribution == "erk_plus" and model == "lenet300") else 0.1
    masks = Magnitude(sparsity, distribution=distribution).masks(net, [], torch.Generator())
    wanted = layer_sparsities(distribution, shapes, sparsity)
    for name, mask in masks.items():
        assert int((mask == 0).sum()) == round(wanted[name] * mask.numel()), name
    total = sum(m.numel() for m in masks.values())
    pruned = sum(int((m == 0).sum()) for m in masks.values())
    assert abs(pruned - sparsity * total) <= len(masks)  # each layer rounds once
    if distribution == "uniform":
        return
    # RigL's budget: the layers keep sum(n - floor(s n)) weights, dense ones included.
    kept = sum((1 - wanted[k]) * math.prod(s) for k, s in shapes.items())
    assert kept == pytest.approx(sum(math.prod(s) - math.floor(sparsity * math.prod(s))
                                     for s in shapes.values()), rel=1e-9)  # fmt: skip


def test_erk_plus_keeps_the_first_layer_dense_and_the_rest_proportional_to_erk() -> None:
    shapes = shapes_of(MODELS["resnet20"]())  # at 0.9 ERK itself leaves conv1 dense
    plus = layer_sparsities("erk_plus", shapes, 0.98)
    erk = layer_sparsities("erk", shapes, 0.98)
    first = next(iter(shapes))
    assert first == "conv1.weight" and plus[first] == 0.0 and erk[first] > 0
    ratios = {k: (1 - plus[k]) / (1 - erk[k]) for k in shapes if k != first and erk[k] > 0}
    assert max(ratios.values()) == pytest.approx(min(ratios.values()), rel=1e-12)
    assert max(ratios.values()) < 1  # the rest pay for the dense first layer
    assert plus["fc.weight"] > 0  # the classifier is pruned, as in RigL's runs
    with pytest.raises(SweeplabError, match=r"keeps the first layer fc1 dense \(235,200 of"):
        layer_sparsities("erk_plus", shapes_of(MODELS["lenet300"]()), 0.9)


def test_uniform_equals_scope_layer_masks() -> None:
    net = MODELS["lenet5"]()
    uniform = Magnitude(0.8, distribution="uniform").masks(net, [], torch.Generator())
    layer = Magnitude(0.8, scope="layer").masks(net, [], torch.Generator())
    assert all(torch.equal(uniform[k], layer[k]) for k in layer)


def test_iterative_distribution_keeps_earlier_masks_and_ends_on_the_target() -> None:
    pruner = instantiate(compose(["pruning=random", "pruning.distribution=erk"]).pruning)
    net, masks = MODELS["lenet5"](), None
    generator = torch.Generator().manual_seed(0)
    for target in Target.geometric(0.9, 3):
        new = pruner.masks(net, [], generator, target=target, existing=masks)
        if masks is not None:
            assert all(bool((new[k] <= masks[k]).all()) for k in new)
        masks = new
    wanted = layer_sparsities("erk", shapes_of(net), 0.9)
    for name, mask in masks.items():
        assert int((mask == 0).sum()) == round(wanted[name] * mask.numel()), name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(distribution="gauss"), "pruning.distribution='gauss' is not one of ['uniform',"),
        (dict(erk_power_scale=0.5), "pruning.erk_power_scale needs pruning.distribution=erk"),
        (dict(distribution="uniform", erk_power_scale=0.5), "erk or erk_plus, not uniform"),
        (dict(distribution="erk", erk_power_scale=-1), "pruning.erk_power_scale=-1 must be"),
        (dict(distribution="erk", sparsity=None, threshold=0.1), "remove pruning.threshold"),
        (
            dict(distribution="erk", scope="layer", layer_scale={"fc1": 0.5}),
            "remove pruning.layer_",
        ),
    ],
)
def test_bad_distribution_options_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(SweeplabError, match=re.escape(message)):
        Magnitude(**{"sparsity": 0.9, **kwargs})


def test_erk_plus_that_leaves_nothing_is_refused_before_training(tmp_path: Path, cli) -> None:
    refusal_check(tmp_path, cli)(
        ["pruning.distribution=erk_plus"],
        "pruning.distribution=erk_plus keeps the first layer net.1 dense (8,192 of 17,024 "
        "weights), as much as pruning.sparsity=0.9 leaves or more; use pruning.sparsity<0.5188 "
        "or pruning.distribution=erk",
    )


def test_an_erk_run_records_its_layer_sparsities(tmp_path: Path, cli) -> None:
    res = tmp_path / "res"
    args = ["run", *FAST, "pruning=snip", "schedule=at_init", "pruning.distribution=erk",
            "measure.latency=false", f"paths.results_dir={res}"]  # fmt: skip
    proc = cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (row,) = [json.loads(p.read_text()) for p in rows_in(res)]
    shapes = {"net.1.weight": (128, 64), "net.3.weight": (64, 128), "net.5.weight": (10, 64)}
    wanted = layer_sparsities("erk", shapes, 0.9)
    layers = row["metrics"]["layer_sparsity"]
    assert set(layers) == set(shapes)
    for name, shape in shapes.items():
        n = math.prod(shape)
        assert layers[name] == round(wanted[name] * n) / n, name
    assert row["config"]["pruning"]["distribution"] == "erk"
