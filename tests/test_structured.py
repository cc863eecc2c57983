"""Structured pruning: physical removal stays consistent (residual sums included), exact counts,
exclusions respected, deterministic, and clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sweeplab.engine.measure import params_total
from sweeplab.engine.penalties import bn_l1_penalty
from sweeplab.errors import SweeplabError
from sweeplab.models.mlp import MLP
from sweeplab.models.resnet_cifar import BasicBlock, ChannelShortcut, ResNetCifar
from sweeplab.models.vgg import VGG
from sweeplab.pruning.masks import apply_masks
from sweeplab.pruning.structured.blocks import BlockRemoval
from sweeplab.pruning.structured.criteria import (
    BNScale,
    L1Filter,
    L2Filter,
    RandomFilter,
    StructuredPruner,
    TaylorFilter,
)
from sweeplab.pruning.structured.groups import (
    channel_groups,
    layer_removed,
    remove_channels,
    removed_fraction,
    widths,
)

CIFAR = (3, 32, 32)


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give batch norms non-trivial statistics and affine terms, so channels differ."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


def _batches(n: int = 2, size: int = 8, shape: tuple[int, ...] = CIFAR, classes: int = 10):
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn((size, *shape), generator=g), torch.randint(0, classes, (size,), generator=g))
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def resnet20() -> ResNetCifar:
    torch.manual_seed(0)
    return _randomize_bn(ResNetCifar(CIFAR, 10, 20))


def test_resnet_prune_matches_zeroed_channels(resnet20: ResNetCifar) -> None:
    """Removing channels equals zeroing them in the dense model, residual streams included."""
    x = torch.randn(4, *CIFAR)
    pruner = RandomFilter(0.5, scope="layer")
    plan = pruner.select(resnet20, x[:1], [], torch.Generator().manual_seed(3))
    groups = {g.name: g for g in channel_groups(resnet20, x[:1])}
    # Residual streams are single groups: the stem and every block output of stage 1 share one.
    assert {"conv1", "bn1", "layer1.0.conv2", "layer1.2.bn2"} <= set(groups["conv1"].members)
    hooks = []
    for name, removed in plan.items():
        for _, module, local, root in groups[name].outputs:
            if isinstance(module, (nn.BatchNorm2d, ChannelShortcut)):
                idx = [li for li, ri in zip(local, root, strict=True) if ri in set(removed)]

                def zero(_m, _i, out, idx=idx):
                    out = out.clone()
                    out[:, idx] = 0
                    return out

                hooks.append(module.register_forward_hook(zero))
    with torch.no_grad():
        reference = resnet20(x)
    for h in hooks:
        h.remove()
    pruned = pruner.prune(resnet20, x[:1], [], torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = pruned.eval()(x)
    assert out.shape == (4, 10)
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-4)
    assert params_total(pruned) < params_total(resnet20) * 0.3
    assert widths(resnet20)["layer3.0.conv1"] == 64 and widths(pruned)["layer3.0.conv1"] == 32


def test_vgg_layer_scope_halves_every_conv() -> None:
    model = VGG(CIFAR, 10, 16)
    pruned = L1Filter(0.5).prune(model, torch.randn(1, *CIFAR), [], torch.Generator())
    assert pruned(torch.randn(2, *CIFAR)).shape == (2, 10)
    convs = [m for m in pruned.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [w // 2 for w in (64, 64, 128, 128) + (256,) * 3] + [
        256
    ] * 6
    # Parameters of a VGG-16 with every conv width halved, counted by hand.
    widths_in = [3, 32, 32, 64, 64, 128, 128, 128, 256, 256, 256, 256, 256]
    expected = sum(
        9 * i * c.out_channels + 2 * c.out_channels for i, c in zip(widths_in, convs, strict=True)
    )
    expected += 256 * 512 + 512 + 2 * 512 + 512 * 10 + 10  # classifier: inputs halved only
    assert params_total(pruned) == expected
    assert params_total(model) == 14_987_722  # the input model is left as it was


def test_excluded_layer_keeps_its_filters() -> None:
    model = VGG(CIFAR, 10, 16)
    pruner = L1Filter(0.5, exclude=["features.3"])
    pruned = pruner.prune(model, torch.randn(1, *CIFAR), [], torch.Generator())
    before, after = model.features[3], pruned.features[3]
    assert after.out_channels == 64 and after.in_channels == 32  # inputs follow features.0
    plan = pruner.select(model, torch.randn(1, *CIFAR), [], torch.Generator())
    kept_in = [i for i in range(64) if i not in set(plan["features.0"])]
    assert torch.equal(after.weight, before.weight[:, kept_in])
    assert "features.3" not in plan


def test_global_scope_exact_count_and_no_empty_layer() -> None:
    model = _randomize_bn(VGG(CIFAR, 10, 11, name="vgg11"))
    x = torch.randn(1, *CIFAR)
    groups = channel_groups(model, x)
    total = sum(g.size for g in groups)
    plan = BNScale(0.9, scope="global").select(model, x, [], torch.Generator())
    assert sum(len(v) for v in plan.values()) == round(0.9 * total)
    assert all(len(plan[g.name]) < g.size for g in groups)
    pruned = BNScale(0.9, scope="global").prune(model, x, [], torch.Generator())
    assert pruned(torch.randn(2, *CIFAR)).shape == (2, 10)


def test_neuron_pruning_of_an_mlp() -> None:
    model = MLP((1, 28, 28), 10, hidden=[500, 300])
    pruned = L2Filter(0.8, granularity="neuron").prune(
        model, torch.randn(1, 1, 28, 28), [], torch.Generator()
    )
    assert list(widths(pruned).values()) == [100, 60, 10]  # 784-100-60-10
    assert layer_removed(model, pruned) == {
        "net.1.weight": pytest.approx(0.8),
        "net.3.weight": pytest.approx(1 - 100 * 60 / (500 * 300)),
        "net.5.weight": pytest.approx(0.8),
    }
    assert pruned(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert removed_fraction(model, pruned) == pytest.approx(
        1 - (784 * 100 + 100 * 60 + 600) / (784 * 500 + 500 * 300 + 3000)
    )


@pytest.mark.parametrize("cls", [L1Filter, RandomFilter, TaylorFilter])
def test_deterministic(resnet20: ResNetCifar, cls: type) -> None:
    x = torch.randn(1, *CIFAR)
    a = cls(0.3).select(resnet20, x, _batches(), torch.Generator().manual_seed(5))
    b = cls(0.3).select(resnet20, x, _batches(), torch.Generator().manual_seed(5))
    assert a == b
    assert all(p.grad is None for p in resnet20.parameters())  # scoring leaves no gradients


def test_taylor_scores_use_data(resnet20: ResNetCifar) -> None:
    groups = channel_groups(resnet20, torch.randn(1, *CIFAR))
    scores = TaylorFilter(0.5).group_scores(resnet20, groups, _batches(), torch.Generator())
    assert all(s.shape == (g.size,) and s.std() > 0 for g, s in zip(groups, scores, strict=True))


def test_block_removal(resnet20: ResNetCifar) -> None:
    x = torch.randn(2, *CIFAR)
    data = _batches(n=1, size=4)
    for score in ("loss", "norm"):
        pruner = BlockRemoval(0.5, score=score, num_batches=1)
        names = pruner.select(resnet20, x, data, torch.Generator())
        assert len(names) == round(0.5 * 7)  # 7 identity-shortcut blocks in ResNet-20
        pruned = pruner.prune(resnet20, x, data, torch.Generator())
        kept = {n for n, m in pruned.named_modules() if isinstance(m, BasicBlock)}
        assert kept == {n for n, m in resnet20.named_modules() if isinstance(m, BasicBlock)} - set(
            names
        )
        assert pruned(x).shape == (2, 10)
        assert layer_removed(resnet20, pruned)[f"{names[0]}.conv1.weight"] == 1.0
        assert isinstance(pruner, StructuredPruner) and pruner.granularity == "block"


def test_bn_l1_penalty() -> None:
    model = VGG(CIFAR, 10, 11, name="vgg11")
    penalty = bn_l1_penalty(model)
    gammas = [m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert float(penalty.detach()) == pytest.approx(
        sum(float(g.detach().abs().sum()) for g in gammas)
    )
    penalty.backward()
    assert torch.equal(gammas[0].grad, torch.ones_like(gammas[0]))


def test_remove_channels_directly() -> None:
    model = VGG(CIFAR, 10, 11, name="vgg11")
    remove_channels(model, torch.randn(1, *CIFAR), {"features.0": [0, 5, 7]})
    assert model.features[0].out_channels == 61 and model.features[4].in_channels == 61


def test_errors(resnet20: ResNetCifar) -> None:
    mlp_x = torch.randn(1, 1, 8, 8)
    with pytest.raises(SweeplabError, match="would remove all 2 channels of layer net.1"):
        L1Filter(0.8, granularity="neuron").select(MLP((1, 8, 8), 10, [2]), mlp_x, [], None)
    with pytest.raises(SweeplabError, match="no prunable convolution group"):
        L1Filter(0.5).select(MLP((1, 8, 8), 10, [4]), mlp_x, [], None)
    with pytest.raises(SweeplabError, match="bn_scale needs batch norm"):
        BNScale(0.5, granularity="neuron").select(MLP((1, 8, 8), 10, [4]), mlp_x, [], None)
    with pytest.raises(SweeplabError, match="needs batch norm layers"):
        bn_l1_penalty(MLP((1, 8, 8), 10, [4]))
    with pytest.raises(SweeplabError, match="pruning.ratio=1.0 is outside"):
        L1Filter(1.0)
    with pytest.raises(SweeplabError, match="layer_ratio needs pruning.scope=layer"):
        L1Filter(0.5, scope="global", layer_ratio={"conv1": 0.1})
    with pytest.raises(SweeplabError, match=r"unknown layers \['nope'\]"):
        L1Filter(0.5, exclude=["nope"]).select(resnet20, torch.randn(1, *CIFAR), [], None)
    with pytest.raises(SweeplabError, match="no removable residual block"):
        BlockRemoval(0.5).select(VGG(CIFAR, 10, 11), torch.randn(1, *CIFAR), _batches(), None)
    masked = MLP((1, 8, 8), 10, [4])
    apply_masks(masked, {"net.1.weight": torch.ones(4, 64)})
    with pytest.raises(SweeplabError, match="masks attached"):
        L1Filter(0.5, granularity="neuron").prune(masked, mlp_x, [], None)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet20", "resnet32", "resnet56", "vgg11", "vgg16"])
def test_conv_model_trains_one_epoch_and_prunes(name: str) -> None:
    """1 epoch on 2,000 CIFAR-shaped images (augmented, BN-L1 penalty), then every criterion."""
    from sweeplab.data.augment import crop_flip
    from sweeplab.engine.costs import cost_fields

    depth = int(name.removeprefix("resnet").removeprefix("vgg"))
    torch.manual_seed(0)
    model = (ResNetCifar if name.startswith("resnet") else VGG)(CIFAR, 10, depth, name)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2000, *CIFAR, generator=g), torch.randint(0, 10, (2000,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for i in range(0, len(x), 128):
        batch = crop_flip(x[i : i + 128], g)
        loss = nn.functional.cross_entropy(model(batch), y[i : i + 128])
        (loss + 1e-4 * bn_l1_penalty(model)).backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    data = [(x[i : i + 64], y[i : i + 64]) for i in range(0, 256, 64)]
    pruners = [
        L1Filter(0.5),
        L2Filter(0.5, scope="global"),
        RandomFilter(0.5),
        TaylorFilter(0.5, num_batches=2),
        BNScale(0.5, scope="global"),
    ]
    if name.startswith("resnet"):
        pruners.append(BlockRemoval(0.3, num_batches=2))
    for pruner in pruners:
        pruned = pruner.prune(model, x[:1], data, torch.Generator().manual_seed(0))
        assert pruned.eval()(x[:4]).shape == (4, 10)
        fields = cost_fields(model, pruned, CIFAR, latency=False)
        assert fields["flops"] < fields["flops_dense"], pruner.name
        assert fields["size_bytes"] < fields["size_dense_bytes"], pruner.name
