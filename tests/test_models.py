"""Models: the literature's parameter counts, and a clear error for the wrong image shape."""

from __future__ import annotations

import pytest
import torch

from sweeplab.engine.measure import params_total
from sweeplab.errors import SweeplabError
from sweeplab.models.lenet import LeNet5, LeNet300
from sweeplab.models.mlp import MLP


def test_parameter_counts() -> None:
    assert params_total(LeNet300((1, 28, 28), 10)) == 266_610
    assert params_total(LeNet5((1, 28, 28), 10)) == 431_080
    assert (
        params_total(MLP((1, 8, 8), 10, hidden=[128, 64]))
        == 64 * 128 + 128 + 128 * 64 + 64 + 640 + 10
    )


def test_forward_shapes() -> None:
    x = torch.randn(5, 1, 28, 28)
    assert LeNet300((1, 28, 28), 10)(x).shape == (5, 10)
    assert LeNet5((1, 28, 28), 10)(x).shape == (5, 10)
    assert MLP((1, 8, 8), 7, hidden=[3])(torch.randn(2, 1, 8, 8)).shape == (2, 7)


@pytest.mark.parametrize("cls", [LeNet300, LeNet5])
def test_wrong_image_shape_is_named(cls: type) -> None:
    with pytest.raises(
        SweeplabError, match=r"expects 1x28x28 images but the data gives \(1, 8, 8\)"
    ):
        cls((1, 8, 8), 10)


def test_bad_mlp_width() -> None:
    with pytest.raises(SweeplabError, match=r"model.hidden=\[0\]"):
        MLP((1, 8, 8), 10, hidden=[0])


@pytest.mark.parametrize("cls", [LeNet300, LeNet5])
def test_variance_scaling_init_has_std_one_over_sqrt_fan_in(cls: type) -> None:
    torch.manual_seed(0)
    model = cls([1, 28, 28], 10, init="variance_scaling")
    for m in model.modules():
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            fan_in = m.weight[0].numel()
            assert m.weight.std().item() == pytest.approx(fan_in**-0.5, rel=0.15)
            assert m.weight.abs().max().item() <= 2 * fan_in**-0.5 / 0.8796 + 1e-6
            assert torch.count_nonzero(m.bias) == 0


def test_default_init_is_pytorchs_and_unknown_init_is_named() -> None:
    torch.manual_seed(0)
    plain = LeNet300([1, 28, 28], 10)
    torch.manual_seed(0)
    same = LeNet300([1, 28, 28], 10, init="default")
    assert all(
        torch.equal(a, b)
        for a, b in zip(plain.state_dict().values(), same.state_dict().values(), strict=True)
    )
    with pytest.raises(SweeplabError, match="model.init='xavier' is not one of"):
        LeNet300([1, 28, 28], 10, init="xavier")
