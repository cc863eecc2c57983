"""A stacked fit (engine/stacked_fit.py) trains each variant as its own train.fit would."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sweeplab.data.digits import load_digits
from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.stacked_fit import fit_stacked
from sweeplab.engine.stacked_model import detached_copy
from sweeplab.engine.train import Distillation, fit
from sweeplab.engine.trainer_settings import DEFAULTS
from sweeplab.pruning.masks import apply_masks

TOL = 2e-5  # batched matmuls round differently from separate ones


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def bn_net(seed: int, sparsity: float, norm: bool = True) -> nn.Module:
    """A small MLP with batch norm, masked at random (each variant its own mask)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32) if norm else nn.Identity(),
        nn.ReLU(), nn.Linear(32, 10),
    )  # fmt: skip
    g = torch.Generator().manual_seed(100 + seed)
    masks = {
        name: (torch.rand(p.shape, generator=g) >= sparsity).float()
        for name, p in model.named_parameters()
        if name.endswith("weight") and p.dim() == 2
    }
    apply_masks(model, masks)
    return model


def request(model: nn.Module, digits, cfg: TrainConfig, seed: int, **kw) -> dict:
    return dict(model=model, splits=digits, cfg=cfg, seed=seed, index=1, phase="finetune",
                settings=DEFAULTS, **kw)  # fmt: skip


def assert_same(a: nn.Module, b: nn.Module, tol: float = TOL) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name, value in sa.items():
        if value.dtype.is_floating_point:
            assert torch.allclose(value, sb[name], atol=tol, rtol=0), (
                name,
                (value - sb[name]).abs().max(),
            )
        else:
            assert torch.equal(value, sb[name]), name


@pytest.mark.parametrize("seeds", [(0, 0, 0), (0, 1, 2)], ids=["shared-batches", "own-batches"])
def test_each_variant_trains_as_its_own_fit(digits, seeds) -> None:
    cfg = TrainConfig(epochs=2, lr=0.05, batch_size=64, weight_decay=5e-4)
    variants = [bn_net(k, s) for k, s in enumerate((0.5, 0.8, 0.9))]
    separate = [detached_copy(m) for m in variants]
    for model, seed in zip(separate, seeds, strict=True):
        fit(model, digits, cfg, seed=seed, index=1, phase="finetune", validate=False)
    errors = fit_stacked([request(m, digits, cfg, s) for m, s in zip(variants, seeds, strict=True)])
    assert errors == [None, None, None]
    for stacked, alone in zip(variants, separate, strict=True):
        assert_same(stacked, alone)  # weights, masks and batch-norm running statistics
        bn = stacked[2]
        assert int(bn.num_batches_tracked) == 2 * 20  # 1258 examples / 64 = 20 steps per epoch
        for module in (stacked[1], stacked[4]):
            assert int(module.weight[module.weight_mask == 0].count_nonzero()) == 0


def test_adam_step_counted_fit_and_lr_window(digits) -> None:
    cfg = TrainConfig(epochs=3, lr=0.01, batch_size=100, optimizer="adam", warmup_epochs=1)
    # No batch norm here: Adam divides by the gradients' size, and the gradient of a bias (or of
    # a constant input pixel's weights) ahead of batch norm is rounding noise, which Adam turns
    # into steps of size lr; two runs that round differently then part (harmlessly for the
    # training loss, visibly in running statistics).
    variants = [bn_net(k, 0.7, norm=False) for k in range(2)]
    separate = [detached_copy(m) for m in variants]
    kw = dict(steps=25, lr_window=(0, 39))
    for k, model in enumerate(separate):
        fit(model, digits, cfg, seed=k, index=1, phase="finetune", validate=False, **kw)
    assert fit_stacked([request(m, digits, cfg, k, **kw) for k, m in enumerate(variants)]) == [
        None, None,
    ]  # fmt: skip
    for stacked, alone in zip(variants, separate, strict=True):
        assert_same(stacked, alone)


def test_a_diverging_variant_fails_alone(digits) -> None:
    cfg = TrainConfig(epochs=2, lr=0.05, batch_size=64)
    variants = [bn_net(k, 0.5) for k in range(3)]
    with torch.no_grad():  # variant 1's logits overflow: its loss is inf, then NaN
        variants[1][4].weight_orig.mul_(1e38)
        variants[1][4].bias.fill_(float("inf"))
    before = {k: v.clone() for k, v in variants[1].state_dict().items()}
    separate = [detached_copy(variants[k]) for k in (0, 2)]
    for model, seed in zip(separate, (0, 2), strict=True):
        fit(model, digits, cfg, seed=seed, index=1, phase="finetune", validate=False)
    with pytest.raises(FloatingPointError) as alone_error:
        fit(detached_copy(variants[1]), digits, cfg, seed=1, index=1, phase="finetune")
    errors = fit_stacked([request(m, digits, cfg, k) for k, m in enumerate(variants)])
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], FloatingPointError)
    assert str(errors[1]) == str(alone_error.value)  # the error a run of its own would give
    assert_same(variants[0], separate[0])
    assert_same(variants[2], separate[1])
    for name, value in variants[1].state_dict().items():  # left as it was
        assert torch.equal(value, before[name]) or torch.isnan(value).all(), name


def test_distillation_from_each_variants_own_teacher(digits) -> None:
    cfg = TrainConfig(epochs=1, lr=0.05, batch_size=64)
    teachers = [bn_net(10 + k, 0.0).eval() for k in range(2)]
    variants = [bn_net(k, 0.8) for k in range(2)]
    separate = [detached_copy(m) for m in variants]
    for k, model in enumerate(separate):
        fit(model, digits, cfg, seed=k, index=1, phase="finetune", validate=False,
            distill=Distillation(teachers[k], 0.3, 2.0))  # fmt: skip
    reqs = [
        request(m, digits, cfg, k, distill=Distillation(teachers[k], 0.3, 2.0))
        for k, m in enumerate(variants)
    ]
    assert fit_stacked(reqs) == [None, None]
    for stacked, alone in zip(variants, separate, strict=True):
        assert_same(stacked, alone)


def test_group_size_follows_the_memory_estimate(digits) -> None:
    from sweeplab.engine.stack_jobs import group_limit, variant_bytes
    from sweeplab.engine.stacking import FitRequest

    cfg = TrainConfig(epochs=1, lr=0.05, batch_size=64)
    req = FitRequest(request(bn_net(0, 0.5), digits, cfg, 0), ("k",))
    weights = sum(t.numel() * 4 for t in [*req.kwargs["model"].parameters(),
                                          *req.kwargs["model"].buffers()])  # fmt: skip
    one = variant_bytes(req)
    # Weights, gradients, two optimizer states, and a minibatch's activations on top.
    assert one > 4 * weights
    assert group_limit(32, 10 * one)([req] * 40) == 10
    assert group_limit(32, 1000 * one)([req] * 40) == 32  # max_variants caps it
    assert group_limit(32, one // 2)([req] * 40) == 1  # never below one variant
