"""Training: repeatable, chunking is speed-only, masked weights stay zero through finetune."""

from __future__ import annotations

import pytest
import torch

from sweeplab.data.digits import load_digits
from sweeplab.engine.measure import accuracy
from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.train import fit
from sweeplab.models.mlp import MLP
from sweeplab.pruning.magnitude import Magnitude
from sweeplab.pruning.masks import apply_masks, remove_masks


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def trained(digits, inner_steps: int, cfg: TrainConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    model = MLP(digits.input_shape, 10, hidden=[32])
    fit(model, digits, cfg, seed=0, phase="dense", inner_steps=inner_steps)
    return model


def test_inner_steps_is_speed_only(digits) -> None:
    # 1258 images / batch 100 = 13 minibatches: chunks of 5 leave a short last chunk.
    cfg = TrainConfig(epochs=2, lr=0.05, batch_size=100)
    a, b = trained(digits, 1, cfg), trained(digits, 5, cfg)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_training_learns_and_repeats(digits) -> None:
    cfg = TrainConfig(epochs=5, lr=0.05, batch_size=64)
    a, b = trained(digits, 8, cfg), trained(digits, 8, cfg)
    assert accuracy(a, digits.test_x, digits.test_y) > 0.85
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_finetune_keeps_pruned_weights_at_zero(digits, optimizer: str) -> None:
    model = trained(digits, 8, TrainConfig(epochs=2, lr=0.05, batch_size=64))
    masks = Magnitude(0.8).masks(model, [], torch.Generator())
    apply_masks(model, masks)
    cfg = TrainConfig(epochs=2, lr=0.01, batch_size=64, optimizer=optimizer, weight_decay=0.01)
    fit(model, digits, cfg, seed=1, phase="finetune")
    remove_masks(model)
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert int(params[name][mask == 0].count_nonzero()) == 0, name
        assert int(params[name][mask == 1].count_nonzero()) > 0, name


def lr_curve(cfg: TrainConfig, total: int, lr_window: tuple[int, int] | None = None) -> list:
    """The learning rate at every optimizer step of a fit, read from its scheduler."""
    from sweeplab.engine.train import LitClassifier

    lit = LitClassifier(torch.nn.Linear(2, 2), cfg, total, "dense", lr_window=lr_window)
    conf = lit.configure_optimizers()
    if isinstance(conf, torch.optim.Optimizer):
        return [conf.param_groups[0]["lr"]] * total
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_warmup_rises_linearly_over_its_epochs_then_follows_the_schedule(schedule: str) -> None:
    # 10 epochs of 20 steps, warmup 1.5 epochs = 30 steps.
    cfg = TrainConfig(epochs=10, lr=0.1, lr_schedule=schedule, warmup_epochs=1.5)
    plain = lr_curve(TrainConfig(epochs=10, lr=0.1, lr_schedule=schedule), 200)
    warm = lr_curve(cfg, 200)
    assert warm[0] == pytest.approx(plain[0] / 30)
    assert warm[14] == pytest.approx(plain[14] * 15 / 30)
    assert warm[29] == pytest.approx(plain[29])
    assert warm[30:] == pytest.approx(plain[30:])
    # A fit replaying a curve's tail (lr rewinding) starts mid-curve: no warmup there.
    tail = lr_curve(cfg, 50, lr_window=(150, 200))
    assert tail == pytest.approx(plain[150:])


def test_negative_warmup_is_refused() -> None:
    # (warmup as long as training: tests/test_bad_input.py, through the command)
    from sweeplab.errors import SweeplabError

    with pytest.raises(SweeplabError, match="warmup_epochs=-1 must be a finite number >= 0"):
        TrainConfig(epochs=10, lr=0.1, warmup_epochs=-1).check("train")


def test_step_schedule_multiplies_the_lr_by_gamma_every_lr_step_epochs() -> None:
    # 10 epochs of 20 steps; x0.5 every 2.5 epochs = 50 steps.
    cfg = TrainConfig(epochs=10, lr=0.1, lr_schedule="step", lr_step_epochs=2.5, lr_gamma=0.5)
    lrs = lr_curve(cfg, 200)
    assert lrs[0] == lrs[49] == pytest.approx(0.1)
    assert lrs[50] == lrs[99] == pytest.approx(0.05)
    assert lrs[199] == pytest.approx(0.1 * 0.5**3)
    default_gamma = lr_curve(
        TrainConfig(epochs=10, lr=0.1, lr_schedule="step", lr_step_epochs=5), 200
    )
    assert default_gamma[100] == pytest.approx(0.01)
