"""Trainer settings reach training: precision, clipping, accumulation, max_time, sanity steps,
deterministic / benchmark / detect_anomaly (and are put back after the fit); config parsing.

Refusals of bad values are in tests/test_bad_input.py's table (trainer section); identity in
tests/test_identity.py.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from sweeplab.data.digits import load_digits
from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.train import StepCallback, fit
from sweeplab.engine.trainer_settings import TrainerSettings
from sweeplab.errors import SweeplabError
from sweeplab.models.mlp import MLP

CFG = TrainConfig(epochs=1, lr=0.05, batch_size=64)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def model(digits) -> nn.Module:
    torch.manual_seed(0)
    return MLP(digits.input_shape, 10, hidden=[32])


class GradNorms(StepCallback):
    """The gradients' total 2-norm and largest entry as the optimizer stepped with them."""

    def __init__(self) -> None:
        self.norms: list[float] = []
        self.largest: list[float] = []

    def on_optimizer_step(self, module, step: int) -> None:
        grads = [p.grad for p in module.model.parameters() if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        self.largest.append(max(float(g.abs().max()) for g in grads))


class Seen(StepCallback):
    """What the process looked like while training ran."""

    def __init__(self) -> None:
        self.steps = 0
        self.sanity_batches = 0
        self.flags: dict[str, object] = {}
        self.dtypes: set[torch.dtype] = set()
        self.autocast: set[bool] = set()

    def on_train_start(self, trainer, pl_module) -> None:
        first = next(m for m in pl_module.model.modules() if isinstance(m, nn.Linear))

        def hook(module, inputs, output) -> None:
            if pl_module.training:
                self.dtypes.add(output.dtype)
                self.autocast.add(torch.is_autocast_enabled("cpu"))

        first.register_forward_hook(hook)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.flags = {
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "benchmark": torch.backends.cudnn.benchmark,
            "anomaly": torch.is_anomaly_enabled(),
        }

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        self.sanity_batches += trainer.sanity_checking

    def on_optimizer_step(self, module, step: int) -> None:
        self.steps = step


def test_bf16_mixed_trains_under_bf16_autocast_on_cpu(digits) -> None:
    net, seen = model(digits), Seen()
    fit(net, digits, CFG, seed=0, phase="dense", callbacks=[seen],
        settings=TrainerSettings(precision="bf16-mixed"))  # fmt: skip
    assert seen.dtypes == {torch.bfloat16} and seen.autocast == {True}
    assert all(p.dtype == torch.float32 for p in net.parameters())  # mixed: fp32 weights
    fp32 = Seen()
    fit(model(digits), digits, CFG, seed=0, phase="dense", callbacks=[fp32])
    assert fp32.dtypes == {torch.float32} and fp32.autocast == {False}


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_gradient_clip_norm_bounds_every_step(digits, precision: str) -> None:
    free, clipped = GradNorms(), GradNorms()
    fit(model(digits), digits, CFG, seed=0, phase="dense", callbacks=[free],
        settings=TrainerSettings(precision=precision))  # fmt: skip
    settings = TrainerSettings(precision=precision, gradient_clip_val=0.05)
    fit(model(digits), digits, CFG, seed=0, phase="dense", callbacks=[clipped], settings=settings)
    assert min(free.norms) > 0.05  # clipping had work to do at every step
    assert len(clipped.norms) == len(free.norms)
    assert max(clipped.norms) <= 0.05 * (1 + 1e-4)


def test_gradient_clip_value_bounds_every_entry(digits) -> None:
    free, clipped = GradNorms(), GradNorms()
    fit(model(digits), digits, CFG, seed=0, phase="dense", callbacks=[free])
    settings = TrainerSettings(gradient_clip_val=0.001, gradient_clip_algorithm="value")
    fit(model(digits), digits, CFG, seed=0, phase="dense", callbacks=[clipped], settings=settings)
    assert min(free.largest) > 0.001
    assert max(clipped.largest) <= float(torch.tensor(0.001))  # 0.001 in float32


def test_accumulating_two_batches_equals_doubling_the_batch(digits) -> None:
    # 1258 training images = 17 batches of 74 = 34 of 37: every group of two is whole.
    assert len(digits.train_x) == 1258
    cfg = TrainConfig(epochs=2, lr=0.05, batch_size=74)  # SGD, momentum, cosine
    doubled, accumulated, plain = model(digits), model(digits), model(digits)
    fit(doubled, digits, cfg, seed=0, phase="dense")
    half = dataclasses.replace(cfg, batch_size=37)
    two = TrainerSettings(accumulate_grad_batches=2)
    fit(accumulated, digits, half, seed=0, phase="dense", settings=two)
    fit(plain, digits, half, seed=0, phase="dense")
    for (name, a), b, c in zip(
        doubled.state_dict().items(), accumulated.state_dict().values(),
        plain.state_dict().values(), strict=True,
    ):  # fmt: skip
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
        assert not torch.allclose(c, a, atol=1e-3), name  # accumulation did something


def test_max_time_stops_the_fit_and_steps_the_unfinished_group(digits) -> None:
    net, seen = model(digits), Seen()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    # One minibatch per Lightning batch: the timer stops the fit after the first, with its
    # gradient waiting for two more; the fit's end steps with it.
    settings = TrainerSettings(max_time=1e-6, accumulate_grad_batches=3)
    cfg = dataclasses.replace(CFG, epochs=20)
    fit(net, digits, cfg, seed=0, phase="dense", inner_steps=1, callbacks=[seen], settings=settings)
    assert seen.steps == 1  # of 20 epochs x 20 minibatches
    assert any(not torch.equal(start[k], v) for k, v in net.state_dict().items())


def test_sanity_steps_deterministic_benchmark_and_anomaly_reach_the_trainer(digits) -> None:
    seen = Seen()
    fit(model(digits), digits, CFG, seed=0, phase="dense", callbacks=[seen])
    assert seen.sanity_batches == 0
    assert seen.flags == {"deterministic": False, "benchmark": False, "anomaly": False}
    settings = TrainerSettings(
        num_sanity_val_steps=1, deterministic=True, benchmark=True, detect_anomaly=True
    )
    fit(model(digits), digits, CFG, seed=0, phase="dense", callbacks=[seen], settings=settings)
    assert seen.sanity_batches == 1
    assert seen.flags == {"deterministic": True, "benchmark": True, "anomaly": True}
    # Process-wide flags are put back: the next run of a sweep in this process starts clean.
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cudnn.benchmark and not torch.is_anomaly_enabled()


def test_config_values_become_settings() -> None:
    values = {
        "accelerator": "cpu", "precision": "bf16", "max_time": "00:01:02:03",
        "gradient_clip_val": 1, "accumulate_grad_batches": 4, "progress": "lines",
        "progress_every": 0, "deterministic": "warn", "benchmark": None, "inner_steps": 3,
    }  # fmt: skip
    s = TrainerSettings.of(values)
    assert (s.precision, s.max_time, s.gradient_clip_val) == ("bf16-mixed", 3723.0, 1.0)
    assert (s.accumulate_grad_batches, s.progress, s.progress_every) == (4, "lines", 0.0)
    assert s.deterministic == "warn" and s.benchmark is None and s.inner_steps == 3
    assert TrainerSettings.of({"precision": 32, "max_time": 90}).max_time == 90.0
    assert TrainerSettings.of({"accelerator": "gpu", "precision": 16}).precision == "16-mixed"
    with pytest.raises(SweeplabError, match="use trainer.precision=bf16-mixed or trainer=gpu"):
        TrainerSettings.of({"accelerator": "cpu", "precision": "16-mixed"})


def test_16_mixed_clips_unscaled_gradients_and_steps_through_the_scaler(digits, monkeypatch):
    """The GPU path of 16-mixed, on CPU: Lightning's MixedPrecision plugin with a GradScaler
    (sweeplab refuses 16-mixed on CPU only because Lightning would switch it to bf16)."""
    from pytorch_lightning.plugins.precision import MixedPrecision

    kwargs = TrainerSettings.trainer_kwargs

    def with_scaler(self: TrainerSettings) -> dict:
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        return {
            **kwargs(self),
            "precision": None,
            "plugins": [MixedPrecision("16-mixed", "cpu", scaler)],
        }

    monkeypatch.setattr(TrainerSettings, "trainer_kwargs", with_scaler)
    free, clipped, seen = GradNorms(), GradNorms(), Seen()
    settings = TrainerSettings(precision="16-mixed")
    net = model(digits)
    fit(net, digits, CFG, seed=0, phase="dense", callbacks=[free, seen], settings=settings)
    assert seen.dtypes == {torch.float16}
    assert 0.05 < max(free.norms) < 100  # unscaled (x1024 while scaled) when the step ran
    assert all(torch.isfinite(p).all() for p in net.parameters())
    settings = dataclasses.replace(settings, gradient_clip_val=0.05)
    fit(model(digits), digits, CFG, seed=0, phase="dense", callbacks=[clipped], settings=settings)
    assert max(clipped.norms) <= 0.05 * (1 + 1e-4)


class OptimizerSteps(StepCallback):
    """Counts the optimizer's real steps (a post-step hook on it) and their minibatch numbers."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.minibatch = 0

    def on_train_start(self, trainer, pl_module) -> None:
        trainer.optimizers[0].register_step_post_hook(
            lambda *_: self.steps.append(self.minibatch + 1)
        )

    def on_optimizer_step(self, module, step: int) -> None:
        self.minibatch = step


def test_accumulation_groups_restart_each_epoch_and_halve_the_steps(digits) -> None:
    # 1258 images / batch 100 = 13 minibatches an epoch: 6 pairs, then the 13th alone.
    cfg = TrainConfig(epochs=2, lr=0.05, batch_size=100)
    one, two = OptimizerSteps(), OptimizerSteps()
    fit(model(digits), digits, cfg, seed=0, phase="dense", callbacks=[one])
    settings = TrainerSettings(accumulate_grad_batches=2)
    fit(model(digits), digits, cfg, seed=0, phase="dense", callbacks=[two], settings=settings)
    assert one.steps == list(range(1, 27))
    assert two.steps == [2, 4, 6, 8, 10, 12, 13, 15, 17, 19, 21, 23, 25, 26]
