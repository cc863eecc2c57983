"""Recovery methods: zeros survive each one; rewinds, re-init, distillation, sharing, penalties."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import CONF, compose
from sweeplab.data.digits import load_digits
from sweeplab.engine.pipeline import Run
from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.snapshots import state_of
from sweeplab.engine.task import build_spec, execute
from sweeplab.engine.train import Distillation, LitClassifier, steps_per_epoch
from sweeplab.pruning.budget import Target

RECOVERIES = sorted(p.stem for p in (CONF / "recovery").glob("*.yaml"))
FAST = ["train.epochs=3", "finetune.epochs=2"]


@pytest.mark.parametrize("recovery", RECOVERIES)
def test_every_recovery_keeps_pruned_weights_at_zero(recovery: str, tmp_path: Path) -> None:
    row = execute(compose([*FAST, f"recovery={recovery}", f"paths.results_dir={tmp_path}"]))
    pruned = round(0.9 * row.params_prunable)
    assert row.status == "ok" and row.recovery == recovery
    assert row.params_nonzero <= row.params_total - pruned
    assert abs(row.sparsity_achieved - 0.9) * row.params_prunable <= 1


@pytest.fixture
def job(tmp_path: Path):
    """A Run with its dense model trained and 80% magnitude masks attached."""
    spec = build_spec(compose([*FAST, f"paths.results_dir={tmp_path}"]), "rid", "did")
    job = Run(spec, load_digits(), torch.device("cpu"))
    job.reset_to(job.init_state)
    job.fit(spec.train, "dense", index=0)
    job.dense_state = state_of(job.model)
    return job, job.prune(Target.oneshot(0.8))


def effective(job: Run, name: str) -> torch.Tensor:
    return job.model.get_submodule(name.rsplit(".", 1)[0]).weight.detach()


def test_weight_rewind_to_zero_restores_initial_values_of_survivors(job, monkeypatch) -> None:
    from sweeplab.engine.recovery import WeightRewind

    job, masks = job
    calls = []
    monkeypatch.setattr(Run, "fit", lambda self, cfg, phase, **kw: calls.append((cfg, kw)))
    job.model(job.splits.train_x[:2])  # refresh .weight = weight_orig * mask
    WeightRewind(step=0).recover(job, masks)
    job.model(job.splits.train_x[:2])
    for name, mask in masks.items():
        assert torch.equal(effective(job, name), job.init_state[name] * mask)
    cfg, kw = calls[0]
    total = job.spec.train.epochs * steps_per_epoch(job.splits, job.spec.train.batch_size)
    assert cfg.epochs == job.spec.train.epochs and kw["lr_window"] == (0, total)


def test_weight_rewind_control_trains_the_same_mask_from_a_random_init(job) -> None:
    """LTH's control: same mask, random re-init, same recipe; the ticket goes on afterwards."""
    from sweeplab.engine.recovery import WeightRewind

    job, masks = job
    torch.manual_seed(0)
    WeightRewind(step=0).recover(job, masks)
    ticket = {k: v.clone() for k, v in job.model.state_dict().items()}

    job.reset_to(job.dense_state)
    seen = []
    original_fit = Run.fit

    def spy(self, cfg, phase, **kw):
        seen.append((phase, {k: v.clone() for k, v in self.model.state_dict().items()}))
        return original_fit(self, cfg, phase, **kw)

    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Run, "fit", spy)
        extra = WeightRewind(step=0, control=True).recover(job, masks)
    assert [phase for phase, _ in seen] == ["retrain", "control"]
    reinit = job.fresh_init("control").state_dict()
    start = seen[1][1]
    for name, mask in masks.items():
        assert torch.equal(start[f"{name}_mask"], mask)  # the ticket's mask
        assert torch.equal(start[f"{name}_orig"], reinit[name])  # on a fresh random init
    for key, value in job.model.state_dict().items():  # the ticket, not the control, goes on
        assert torch.equal(value, ticket[key]), key
    assert 0.0 <= extra["acc_reinit_test"] <= 1.0 and "acc_reinit_val" in extra


def test_weight_rewind_control_must_be_a_bool() -> None:
    from sweeplab.engine.recovery import WeightRewind
    from sweeplab.errors import SweeplabError

    with pytest.raises(SweeplabError, match="recovery.control='yes' must be true or false"):
        WeightRewind(control="yes")


def test_retrain_reinitializes_survivors_randomly(job, monkeypatch) -> None:
    from sweeplab.engine.recovery import Retrain

    job, masks = job
    monkeypatch.setattr(Run, "fit", lambda self, cfg, phase, **kw: None)
    Retrain().recover(job, masks)
    job.model(job.splits.train_x[:2])
    fresh = job.fresh_init("control").state_dict()
    for name, mask in masks.items():
        assert torch.equal(effective(job, name), fresh[name] * mask)
        assert not torch.equal(fresh[name], job.init_state[name])


def test_lr_rewind_replays_the_tail_of_training(job, monkeypatch) -> None:
    from sweeplab.engine.recovery import LrRewind

    job, masks = job
    calls = []
    monkeypatch.setattr(Run, "fit", lambda self, cfg, phase, **kw: calls.append((cfg, kw)))
    LrRewind().recover(job, masks)
    cfg, kw = calls[0]
    per_epoch = steps_per_epoch(job.splits, job.spec.train.batch_size)
    total = job.spec.train.epochs * per_epoch
    assert cfg.lr == job.spec.train.lr and cfg.epochs == job.spec.finetune.epochs
    assert kw["lr_window"] == (total - cfg.epochs * per_epoch, total)


def test_distillation_loss() -> None:
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    cfg = TrainConfig(epochs=1, lr=0.1)
    hard = LitClassifier(student, cfg, 1, "finetune", distill=Distillation(teacher, alpha=1.0))
    assert torch.allclose(hard.loss(x, y), F.cross_entropy(student(x), y))
    soft = LitClassifier(student, cfg, 1, "finetune", distill=Distillation(teacher, 0.0, 2.0))
    p_t = F.softmax(teacher(x) / 2, 1)
    kl = (p_t * (p_t.log() - F.log_softmax(student(x) / 2, 1))).sum(1).mean()
    assert torch.allclose(soft.loss(x, y), 4 * kl, atol=1e-6)


def test_weight_sharing_leaves_at_most_2_to_the_bits_values(tmp_path: Path) -> None:
    from sweeplab.models.mlp import MLP

    cfg = [*FAST, "recovery=weight_sharing", "recovery.bits=2", f"paths.results_dir={tmp_path}"]
    spec = build_spec(compose(cfg), "rid", "did")
    job = Run(spec, load_digits(), torch.device("cpu"))
    job.reset_to(job.init_state)
    masks = job.prune(Target.oneshot(spec.pruner.sparsity))
    extra = spec.recovery.recover(job, masks)
    job.model(job.splits.train_x[:2])
    assert isinstance(job.model, MLP)
    for name, mask in masks.items():
        w = effective(job, name)
        assert len(torch.unique(w[mask == 1])) <= 4 and int(w[mask == 0].count_nonzero()) == 0
    assert extra["shared_bits"] == 2 and extra["size_bytes"] > 0


def test_l1_penalty_is_added_and_drives_weights_down() -> None:
    digits = load_digits()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    lit = LitClassifier(model, TrainConfig(epochs=1, lr=0.1, weight_l1=1e-3), 1, "dense")
    lit._penalized = [model[1]]
    x, y = digits.train_x[:16], digits.train_y[:16]
    expected = F.cross_entropy(model(x), y) + 1e-3 * model[1].weight.abs().sum()
    assert torch.allclose(lit.loss(x, y), expected)

    from sweeplab.engine.train import fit

    means = {}
    for l1 in (None, 1e-2):
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        fit(m, digits, TrainConfig(epochs=10, lr=0.05, weight_l1=l1), seed=0, phase="dense")
        means[l1] = float(m[1].weight.abs().mean())
    assert means[1e-2] < 0.7 * means[None]


@pytest.mark.parametrize("recovery", ["finetune", "weight_rewind"])
def test_checkpoint_accuracies_are_recorded_without_changing_training(
    recovery: str, tmp_path: Path
) -> None:
    """measure.checkpoints: test accuracy at the recovery's last checkpoints, the last one the
    final model; the run's other metrics stay bitwise what they are without it."""
    from sweeplab.reproduce.values import DERIVED

    base = [*FAST, f"recovery={recovery}", "measure.latency=false"]
    plain = execute(compose([*base, f"paths.results_dir={tmp_path / 'plain'}"]))
    row = execute(
        compose(
            [*base, "measure.checkpoints=3", "measure.checkpoint_every=4"]
            + [f"paths.results_dir={tmp_path / 'tracked'}"]
        )
    )
    assert row.run_id == plain.run_id  # measuring is not part of the run's identity
    assert plain.acc_checkpoints_test is None
    accs = row.acc_checkpoints_test
    assert len(accs) == 3 and accs[-1] == row.acc_finetuned_test
    for key in ("acc_dense_test", "acc_pruned_test", "acc_finetuned_test", "acc_finetuned_val"):
        assert getattr(row, key) == getattr(plain, key), key
    best = DERIVED["error_best_checkpoint"](row.to_dict())
    assert best == pytest.approx(100 * (1 - max(accs)))
    assert best <= DERIVED["error"](row.to_dict())


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("measure.checkpoints=-2", "measure.checkpoints=-2 must be a positive integer"),
        ("measure.checkpoint_every=0", "measure.checkpoint_every=0 must be a positive integer"),
    ],
)
def test_bad_checkpoint_settings_are_refused(override: str, match: str, tmp_path: Path) -> None:
    from sweeplab.errors import SweeplabError

    with pytest.raises(SweeplabError, match=match):
        build_spec(compose([override, f"paths.results_dir={tmp_path}"]), "r", "d")


def test_weight_rewind_to_step_k_trains_exactly_the_steps_dense_training_had_left(job) -> None:
    """T - k optimizer steps, the cosine lr resuming at k and ending at 0 (open_lth's
    start_step); rounding to whole epochs trained 430 of 560 steps for T = 860, k = 300."""
    from sweeplab.engine.recovery import WeightRewind
    from sweeplab.engine.train import StepCallback

    job, masks = job
    per_epoch = steps_per_epoch(job.splits, job.spec.train.batch_size)
    total = job.spec.train.epochs * per_epoch
    k = per_epoch + per_epoch // 3  # not on an epoch boundary
    lrs: list[float] = []

    class Lr(StepCallback):
        def on_optimizer_step(self, module: LitClassifier, step: int) -> None:
            lrs.append(module.lr_schedulers().get_last_lr()[0])

    real_fit = Run.fit

    def fit(self: Run, cfg: TrainConfig, phase: str, **kw: object) -> None:
        extra = [Lr()] if phase == "retrain" else []  # not the replay of dense training to k
        real_fit(self, cfg, phase, **{**kw, "callbacks": [*kw.get("callbacks", ()), *extra]})

    Run.fit = fit  # type: ignore[method-assign]
    try:
        WeightRewind(step=k).recover(job, masks)
    finally:
        Run.fit = real_fit  # type: ignore[method-assign]
    assert len(lrs) == total - k
    # After the last step the scheduler stands at step T of the dense curve: lr 0.
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    start = job.spec.train.lr * 0.5 * (1 + math.cos(math.pi * (k + 1) / total))
    assert lrs[0] == pytest.approx(start)
