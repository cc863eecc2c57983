"""CIFAR models: the papers' parameter counts, forward shapes, configs, clear shape errors."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from conftest import compose
from sweeplab.engine.measure import params_total
from sweeplab.errors import SweeplabError
from sweeplab.models.resnet_cifar import ChannelShortcut, ResNetCifar
from sweeplab.models.vgg import VGG

CIFAR = (3, 32, 32)
# Exact counts with 10 classes; He et al. 2016 table 6 rounds them to 0.27M, 0.46M, 0.85M.
COUNTS = {
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet56": 853_018,
    "vgg16": 14_987_722,  # Li et al. 2017 table 1: 1.5e7
    "vgg11": 9_231_114,
}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_config_builds_the_paper_model(name: str) -> None:
    cfg = compose([f"model={name}"])
    model = instantiate(cfg.model, input_shape=CIFAR, num_classes=10)
    assert params_total(model) == COUNTS[name]
    assert model(torch.randn(2, *CIFAR)).shape == (2, 10)


def test_rounded_counts_match_he_et_al() -> None:
    rounded = {d: round(params_total(ResNetCifar(CIFAR, 10, d)) / 1e6, 2) for d in (20, 32, 56)}
    assert rounded == {20: 0.27, 32: 0.46, 56: 0.85}


def test_hundred_classes() -> None:
    assert ResNetCifar(CIFAR, 100, 20)(torch.randn(1, *CIFAR)).shape == (1, 100)
    assert VGG(CIFAR, 100, 11)(torch.randn(2, *CIFAR)).shape == (2, 100)


def test_option_a_shortcut_pads_zero_channels() -> None:
    shortcut = ChannelShortcut(16, 32, stride=2)
    x = torch.rand(2, 16, 8, 8)
    out = shortcut(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0
    assert not list(shortcut.parameters())


@pytest.mark.parametrize("cls", [ResNetCifar, VGG])
def test_wrong_image_shape_is_named(cls: type) -> None:
    with pytest.raises(
        SweeplabError, match=r"expects 3x32x32 images but the data gives \(1, 28, 28\)"
    ):
        cls((1, 28, 28), 10)


def test_unknown_depth() -> None:
    with pytest.raises(SweeplabError, match=r"model.depth=18 is not one of \[20, 32"):
        ResNetCifar(CIFAR, 10, 18)
    with pytest.raises(SweeplabError, match=r"model.depth=19 is not one of \[11, 16\]"):
        VGG(CIFAR, 10, 19)
