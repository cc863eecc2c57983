"""Schedules: cubic curve values, one row per iterative round, gradual masks, at-init pruning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import compose, rows_in
from sweeplab.engine.schedules import cubic_sparsity
from sweeplab.engine.task import execute
from sweeplab.results import store

FAST = ["train.epochs=3", "finetune.epochs=2"]


def run_cfg(overrides: list[str], tmp: Path):
    """Compose and run one config in-process; returns (final row, all rows sorted by file)."""
    row = execute(compose([*FAST, *overrides, f"paths.results_dir={tmp}"]))
    return row, [store.read_row(p) for p in rows_in(tmp)]


def test_cubic_schedule_quarter_points() -> None:
    # Zhu & Gupta 2017 with s_f = 0.9, s_i = 0 over n steps of dt: quarters of the way.
    values = [cubic_sparsity(t, 0.9, 0.0, start=0, n=4, every=25) for t in (25, 50, 75, 100)]
    assert [round(v, 4) for v in values] == [0.5203, 0.7875, 0.8859, 0.9]
    assert cubic_sparsity(0, 0.9, 0.1, start=10, n=4, every=25) == 0.1  # before t0
    assert cubic_sparsity(500, 0.9, 0.1, start=10, n=4, every=25) == 0.9  # after the end


def test_iterative_writes_one_row_per_round(tmp_path: Path) -> None:
    final, rows = run_cfg(
        ["schedule=iterative", "schedule.rounds=3", "pruning.sparsity=0.875"], tmp_path
    )
    by_round = {r["round"]: r for r in rows}
    assert sorted(by_round) == [1, 2, 3] and final.round == 3
    assert by_round[3]["run_id"] == final.run_id and by_round[1]["run_id"] == f"{final.run_id}-r1"
    # 0.875 = 1 - 0.5^3: each round prunes half of the survivors.
    for r, expected in ((1, 0.5), (2, 0.75), (3, 0.875)):
        assert by_round[r]["sparsity_requested"] == pytest.approx(expected)
        assert (
            abs(by_round[r]["sparsity_achieved"] - expected) * by_round[r]["params_prunable"] <= 1
        )
    assert {r["schedule"] for r in rows} == {"iterative"}
    # The dense model's counts are taken once per run; its latency is timed with every round,
    # in turn with the pruned model's samples.
    assert len({r["flops_dense"] for r in rows}) == 1
    assert all(r["latency_b64_dense_q25_ms"] <= r["latency_b64_dense_q75_ms"] for r in rows)


def test_gradual_follows_the_cubic_curve_and_ends_on_target(tmp_path: Path, monkeypatch) -> None:
    from sweeplab.engine import schedules

    seen: list[list[tuple[int, float]]] = []
    original = schedules.GradualPruning.on_optimizer_step

    def spy(self, module, step):
        original(self, module, step)
        if not seen or seen[-1] is not self.history:
            seen.append(self.history)

    monkeypatch.setattr(schedules.GradualPruning, "on_optimizer_step", spy)
    final, _ = run_cfg(
        ["schedule=gradual", "schedule.frequency=2", "pruning.sparsity=0.8"], tmp_path
    )
    history = seen[-1]
    steps = [s for s, _ in history]
    assert steps[0] == 0 and all(b - a == 2 for a, b in zip(steps, steps[1:], strict=False))
    targets = [t for _, t in history]
    assert targets == sorted(targets) and targets[-1] == 0.8
    assert abs(final.sparsity_achieved - 0.8) * final.params_prunable <= 1
    assert final.acc_pruned_test is None  # pruning happens during training: no "before"


def test_gradual_refuses_a_recovery_that_restarts_training(tmp_path: Path) -> None:
    from sweeplab.errors import SweeplabError

    with pytest.raises(SweeplabError, match="recovery=weight_rewind restarts it"):
        run_cfg(["schedule=gradual", "recovery=weight_rewind"], tmp_path)


def test_at_init_prunes_before_training(tmp_path: Path) -> None:
    final, _ = run_cfg(
        ["schedule=at_init", "recovery=weight_rewind", "pruning.sparsity=0.5"], tmp_path
    )
    # Accuracy right after pruning an untrained model is near chance; training then recovers.
    assert final.acc_pruned_test < 0.3 < final.acc_finetuned_test
    assert abs(final.sparsity_achieved - 0.5) * final.params_prunable <= 1


def test_rewind_snapshot_replays_dense_training_exactly(tmp_path: Path) -> None:
    from sweeplab.data.digits import load_digits
    from sweeplab.engine.pipeline import Run
    from sweeplab.engine.task import build_spec
    from sweeplab.engine.train import steps_per_epoch

    cfg = compose([*FAST, f"paths.results_dir={tmp_path}"])
    spec = build_spec(cfg, "rid", "did")
    job = Run(spec, load_digits(), torch.device("cpu"))
    job.reset_to(job.init_state)
    job.fit(spec.train, "dense", index=0)
    total = spec.train.epochs * steps_per_epoch(job.splits, spec.train.batch_size)
    replay = job.snapshot(total)
    dense = job.model.state_dict()
    assert all(torch.equal(replay[k], dense[k]) for k in replay)
    early = job.snapshot(3)
    assert not torch.equal(early["net.1.weight"], job.init_state["net.1.weight"])
    assert all(torch.equal(early[k], job.snapshot(3)[k]) for k in early)  # cached copy agrees
    assert all(torch.equal(job.snapshot(0)[k], job.init_state[k]) for k in early)
