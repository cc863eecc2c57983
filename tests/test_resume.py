"""Resumable fits (engine/resume.py): a run killed with SIGKILL part-way through dense training
or finetuning resumes from its partial checkpoint and ends with bitwise the weights of a run
never interrupted; a foreign or torn partial checkpoint is ignored with one warning.

The killed runs are this file run as a script (`python tests/test_resume.py ROOT PHASE ...`): a
digits run that, once it has saved its second partial checkpoint of PHASE, drops a marker file
and waits to be killed, so the kill always lands after the same checkpoint, mid-fit.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from conftest import REPO, compose, rows_in

# Single-threaded everywhere: the killed process and this one must compute alike.
BASE = ["measure.latency=false", "~logger", "trainer.threads=1", "train.batch_size=256"]
LONG_DENSE = ["train.epochs=6", "finetune.epochs=1"]
LONG_FINETUNE = ["train.epochs=2", "finetune.epochs=6"]
KILL_AFTER = 2  # partial checkpoints the killed run writes (after epochs 1 and 2)
MARKER = "saved"  # file the killed run writes once it has saved them


def run_digits(root: Path, *overrides: str):  # -> pipeline.Run
    """pipeline.run of a digits MLP run with results and cache under root."""
    from sweeplab.engine import pipeline
    from sweeplab.engine.task import build_spec
    from sweeplab.results import identity

    cfg = compose([*BASE, f"paths.results_dir={root}", *overrides])
    config = OmegaConf.to_container(cfg, resolve=True)
    spec = build_spec(cfg, identity.run_id(config), identity.dense_id(config))  # type: ignore[arg-type]
    return pipeline.run(spec)


def ids(*overrides: str) -> tuple[str, str]:
    """(run id, dense id) of the digits run with these overrides."""
    from sweeplab.results import identity

    config = OmegaConf.to_container(compose([*BASE, *overrides]), resolve=True)
    return identity.run_id(config), identity.dense_id(config)  # type: ignore[arg-type]


def dense_weights(root: Path, dense_id: str) -> dict[str, Tensor]:
    blob = torch.load(root / "cache" / "dense" / f"{dense_id}.pt", weights_only=True)
    return blob["state_dict"]


def assert_bitwise(a: dict[str, Tensor], b: dict[str, Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


@pytest.fixture(autouse=True)
def threads() -> Iterator[None]:
    """build_spec sets torch's threads (trainer.threads=1): put them back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    """(dense weights, final weights) of the uninterrupted run with these overrides (once)."""

    @functools.cache
    def of(*overrides: str) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        root = tmp_path_factory.mktemp("reference")
        job = run_digits(root, *overrides)
        assert not list((root / "cache").rglob("*.partial"))
        final = {k: v.clone() for k, v in job.model.state_dict().items()}
        return dense_weights(root, ids(*overrides)[1]), final

    return of


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """kill(phase): the results folder of a run killed with SIGKILL in `phase` (dense or
    finetune), once per module (per xdist worker that runs a test of it)."""
    plans = {"dense": LONG_DENSE, "finetune": LONG_FINETUNE}

    @functools.cache
    def kill(phase: str) -> Path:
        root = tmp_path_factory.mktemp(f"killed-{phase}")
        log = root / "output.txt"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, __file__, str(root), phase, *plans[phase]],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while not (root / MARKER).exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"run to kill in {phase} ended: {log.read_text()}")
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL, log.read_text()
        finally:
            proc.kill()
            proc.wait()
        return root

    return kill


def test_dense_training_killed_resumes_to_the_same_weights(killed, reference, capsys) -> None:
    root, (_, dense_id) = killed("dense"), ids(*LONG_DENSE)
    partial = root / "cache" / "dense" / f"{dense_id}.partial"
    assert partial.exists() and not (root / "cache" / "dense" / f"{dense_id}.pt").exists()
    run_digits(root, *LONG_DENSE)
    out = capsys.readouterr()
    assert f"resuming dense training of {dense_id} at epoch {KILL_AFTER + 1}/6\n" in out.out
    assert "warning" not in out.err
    assert_bitwise(dense_weights(root, dense_id), reference(*LONG_DENSE)[0])
    assert not partial.exists()  # the trained model is stored: the partial one is gone


def test_finetune_killed_resumes_to_the_same_weights(killed, reference, capsys) -> None:
    root, (run_id, _) = killed("finetune"), ids(*LONG_FINETUNE)
    partial = root / "cache" / "partial" / f"{run_id}.finetune1.partial"
    assert partial.exists()
    job = run_digits(root, *LONG_FINETUNE)
    out = capsys.readouterr()
    assert f"resuming finetune training of {run_id} at epoch {KILL_AFTER + 1}/6\n" in out.out
    assert "resuming dense" not in out.out and "warning" not in out.err
    assert_bitwise(job.model.state_dict(), reference(*LONG_FINETUNE)[1])
    assert not partial.exists()  # the result is stored: its fit's partial checkpoint is gone


def interrupted(root: Path, overrides: list[str], saves: int = KILL_AFTER) -> None:
    """Run in this process, stopped by an exception once it has saved `saves` dense partial
    checkpoints (a kill, minus the process)."""
    from sweeplab.engine import resume

    class Stop(Exception):
        pass

    real, count = resume.save_state, []

    def save_then_stop(path: Path, state, info=None, *, owner) -> None:
        real(path, state, info, owner=owner)
        count.append(path)
        if len(count) == saves:
            raise Stop

    resume.save_state = save_then_stop
    try:
        with pytest.raises(Stop):
            run_digits(root, *overrides)
    finally:
        resume.save_state = real


def test_another_dense_models_partial_checkpoint_is_ignored_once(
    tmp_path, reference, capsys
) -> None:
    other = [*LONG_DENSE, "seed=1"]
    interrupted(tmp_path / "other", other)
    (_, theirs), (_, ours) = ids(*other), ids(*LONG_DENSE)
    dense = tmp_path / "ours" / "cache" / "dense"
    dense.mkdir(parents=True)
    (tmp_path / "other" / "cache" / "dense" / f"{theirs}.partial").rename(dense / f"{ours}.partial")
    capsys.readouterr()
    run_digits(tmp_path / "ours", *LONG_DENSE)
    out = capsys.readouterr()
    warnings = [line for line in out.err.splitlines() if "warning" in line]
    assert len(warnings) == 1, out.err
    assert (
        f"holds partial dense training of {theirs}, not partial dense training of {ours}"
        in (warnings[0])
    )
    assert f"starting dense training of {ours} at its first epoch" in warnings[0]
    assert "resuming" not in out.out
    assert_bitwise(dense_weights(tmp_path / "ours", ours), reference(*LONG_DENSE)[0])


def test_torn_partial_checkpoint_is_ignored(tmp_path, reference, capsys) -> None:
    interrupted(tmp_path, LONG_DENSE)
    _, dense_id = ids(*LONG_DENSE)
    partial = tmp_path / "cache" / "dense" / f"{dense_id}.partial"
    data = partial.read_bytes()
    partial.write_bytes(data[: len(data) // 2])  # a copy cut short
    capsys.readouterr()
    run_digits(tmp_path, *LONG_DENSE)
    out = capsys.readouterr()
    warnings = [line for line in out.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"checkpoint {partial} is unusable" in warnings[0], out.err
    assert "resuming" not in out.out
    assert_bitwise(dense_weights(tmp_path, dense_id), reference(*LONG_DENSE)[0])
    assert not partial.exists()


class Dropout(nn.Module):
    """A small conv net with dropout: every random stream a fit reads is in play."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Dropout(0.3),
            nn.Linear(256, 10),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


SETTINGS = {  # trainer settings whose loop keeps state of its own (engine/stepping.py)
    "fp32": {},
    "accumulate_clip": {"accumulate_grad_batches": 2, "gradient_clip_val": 0.5},
    "bf16": {"precision": "bf16-mixed"},
}


def fit_streams(
    path: Path | None, epochs: int = 4, minutes: float | None = None, watch=None, settings="fp32"
):
    """Fit the dropout net on augmented digits, with a Resume at path (None: none), the
    callback `watch` and the trainer settings SETTINGS[settings]."""
    from sweeplab.data.digits import load_digits
    from sweeplab.engine import resume
    from sweeplab.engine.recipe import TrainConfig
    from sweeplab.engine.train import fit
    from sweeplab.engine.trainer_settings import TrainerSettings

    torch.manual_seed(0)
    model = Dropout()
    splits = dataclasses.replace(load_digits(), augment=True)
    # A step schedule: the lr is not yet 0 at the end, where a cosine's would hide extra steps.
    cfg = TrainConfig(
        epochs=epochs, lr=0.05, batch_size=256, weight_decay=5e-4, lr_schedule="step",
        lr_step_epochs=1, lr_gamma=0.7,
    )  # fmt: skip
    who = resume.owner("d", "sha", "dense", 0)
    callbacks = [] if path is None else [resume.Resume(path, who, "dense training of d", minutes)]
    callbacks += [watch] if watch is not None else []
    # 5 steps an epoch: the last of the 4 epochs stops after 3 of them (weight rewinding's case).
    steps = epochs * 5 - 2
    fit(
        model, splits, cfg, seed=3, phase="dense", callbacks=callbacks, steps=steps,
        settings=TrainerSettings(inner_steps=2, **SETTINGS[settings]),
    )  # fmt: skip
    return model


@pytest.mark.parametrize("settings", sorted(SETTINGS))
def test_every_random_stream_resumes(settings: str, tmp_path, capsys) -> None:
    """Batch order, crops and flips, dropout, the step count: a resumed fit draws what the
    whole fit drew and stops where it stopped (also accumulating, clipping, in bf16)."""
    import pytorch_lightning as pl

    class Stop(Exception):
        pass

    class Epochs(pl.Callback):
        """Records the epochs trained; raises Stop at the start of epoch `stop`."""

        def __init__(self, stop: int | None = None) -> None:
            self.stop, self.seen = stop, []

        def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            if trainer.current_epoch == self.stop:
                raise Stop
            self.seen.append(trainer.current_epoch)

    whole = fit_streams(None, settings=settings)  # no checkpoints at all: they change nothing
    path = tmp_path / "p.pt"
    with pytest.raises(Stop):
        fit_streams(path, watch=Epochs(stop=3), settings=settings)
    resumed = fit_streams(path, watch=(epochs := Epochs()), settings=settings)
    assert "resuming dense training of d at epoch 4/4" in capsys.readouterr().out
    assert epochs.seen == [3]  # loggers and progress bars count on from the checkpoint
    assert_bitwise(resumed.state_dict(), whole.state_dict())


def test_checkpoint_minutes_spaces_checkpoints(tmp_path) -> None:
    from sweeplab.engine import resume

    every = tmp_path / "every.pt"
    fit_streams(every, epochs=3)
    state = torch.load(every, weights_only=True)["state_dict"]
    extra = torch.load(io.BytesIO(state[resume.EXTRA].numpy().tobytes()), weights_only=True)
    assert extra["epoch"] == 2  # saved before the last epoch, never after it
    rarely = tmp_path / "rarely.pt"
    fit_streams(rarely, epochs=3, minutes=60)
    assert not rarely.exists()


@pytest.mark.parametrize("trainer", [[], ["trainer.precision=bf16-mixed"]])
def test_a_recovery_fits_checkpoint_records_the_run_id_in_full(trainer: list[str]) -> None:
    """The owner's config digest is the run id's (trainer settings that change results too)."""
    from sweeplab.engine.task import build_spec
    from sweeplab.results import identity

    config = OmegaConf.to_container(compose([*BASE, *trainer]), resolve=True)
    spec = build_spec(compose([*BASE, *trainer]), "rid", "did")
    assert spec.run_sha256[:12] == identity.run_id(config)  # type: ignore[arg-type]


def test_checkpoint_minutes_must_be_positive(tmp_path, cli) -> None:
    proc = cli(["run", "trainer.checkpoint_minutes=0", f"paths.results_dir={tmp_path}"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "sweeplab: error: trainer.checkpoint_minutes=0 must be a positive number; "
        "e.g. trainer.checkpoint_minutes=10"
    ]
    assert not rows_in(tmp_path)


def _killable(root: Path, phase: str, overrides: list[str]) -> None:
    """The killed run: saves KILL_AFTER partial checkpoints of `phase`, then waits to be killed."""
    from sweeplab.engine import resume

    real = resume.save_state

    def save(path: Path, state, info=None, *, owner) -> None:
        real(path, state, info, owner=owner)
        saved.append(owner["phase"])
        if saved.count(phase) == KILL_AFTER:
            (root / MARKER).touch()
            time.sleep(120)  # the test kills it long before

    saved: list[object] = []
    resume.save_state = save
    run_digits(root, *overrides)


if __name__ == "__main__":
    torch.set_num_threads(1)
    _killable(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
