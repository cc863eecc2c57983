"""Progress: plain lines off a terminal (throttled), a TQDM bar on one, [i/N] and the sweep's
ETA before each run's first line."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
import torch

from conftest import FAST
from sweeplab.data.digits import load_digits
from sweeplab.engine import progress
from sweeplab.engine.progress import EpochLines, PhaseBar, phase_label, progress_callbacks
from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.sweep_position import duration, position
from sweeplab.engine.train import fit
from sweeplab.engine.trainer_settings import TrainerSettings
from sweeplab.models.mlp import MLP

LINE = re.compile(
    r"^  (dense|finetune round 2)  epoch (\d+)/3  loss \d+\.\d{3}  val \d+\.\d%  "
    r"[\d.]+ s/epoch  ETA \d+ s$"
)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def train(digits, settings: TrainerSettings, phase: str = "dense", index: int = 0) -> None:
    torch.manual_seed(0)
    model = MLP(digits.input_shape, 10, hidden=[16])
    cfg = TrainConfig(epochs=3, lr=0.05, batch_size=128)
    fit(model, digits, cfg, seed=0, phase=phase, index=index, settings=settings)


def test_lines_off_a_terminal_one_per_epoch(digits, capsys) -> None:
    assert not sys.stdout.isatty()  # pytest captures: what CI, SLURM logs and `| tee` see
    train(digits, TrainerSettings(progress="auto", progress_every=0))
    lines = capsys.readouterr().out.splitlines()
    assert [LINE.match(line).group(2) for line in lines] == ["1", "2", "3"], lines  # type: ignore[union-attr]
    assert lines[-1].endswith("ETA 0 s")
    train(digits, TrainerSettings(progress="lines", progress_every=0), "finetune", index=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(line.startswith("  finetune round 2  epoch") for line in lines)


def test_short_fits_print_no_lines(digits, capsys) -> None:
    train(digits, TrainerSettings(progress="auto", progress_every=10))  # the config's default
    train(digits, TrainerSettings(progress="off", progress_every=0))
    assert capsys.readouterr().out == ""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_progress_bar_named_by_phase_and_epoch(digits, monkeypatch) -> None:
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    settings = TrainerSettings(progress="auto", progress_every=0)
    callbacks, enabled = progress_callbacks(settings, "dense", 0)
    assert enabled and [type(c) for c in callbacks] == [PhaseBar]
    train(digits, settings)
    text = screen.getvalue()
    assert "dense epoch 1/3" in text and "dense epoch 3/3" in text
    assert re.search(r"loss=\d\.\d{3}, val=\d+\.\d%, fit ETA=\d+ s", text), text[-500:]
    assert not LINE.search(text)  # no plain lines on a terminal
    lines, enabled = progress_callbacks(TrainerSettings(progress="lines"), "dense", 0)
    assert not enabled and [type(c) for c in lines] == [EpochLines]
    # joblib workers share the terminal: bars would overwrite each other, so they print lines.
    monkeypatch.setattr(progress, "workers", lambda: 2)
    shared, enabled = progress_callbacks(settings, "dense", 0)
    assert not enabled and [type(c) for c in shared] == [EpochLines]


def test_labels_and_positions() -> None:
    assert [phase_label("dense", 0), phase_label("finetune", 1)] == ["dense", "finetune"]
    assert phase_label("finetune", 3) == "finetune round 3"
    assert position(1, 3, []) == "[1/3] "
    assert position(2, 3, [4.0]) == "[2/3, sweep ETA 8 s] "  # this run and the next
    assert position(3, 8, [30.0, 50.0], workers=2) == "[3/8, sweep ETA 2 min 00 s] "
    assert [duration(59.4), duration(3725)] == ["59 s", "1 h 02 min"]


def test_a_sweep_prints_i_of_n_and_then_its_eta(tmp_path: Path, cli) -> None:
    fast = [*FAST, "train.epochs=1", "measure.latency=false", f"paths.results_dir={tmp_path}"]
    proc = cli(["run", "-m", "pruning.sparsity=0.5,0.8,0.9", *fast], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [line for line in proc.stdout.splitlines() if "] run  " in line]
    assert [line[:6] for line in runs] == ["[1/3] ", "[2/3, ", "[3/3, "], proc.stdout
    eta = re.compile(r"\[\d/3, sweep ETA \d+ s\] run  \w{12}: data=digits")
    assert all(eta.match(line) for line in runs[1:]), runs
    again = cli(["run", "-m", "pruning.sparsity=0.5,0.8,0.9", *fast], tmp_path)
    skips = [line[:11] for line in again.stdout.splitlines() if "] skip " in line]
    assert skips == ["[1/3] skip ", "[2/3] skip ", "[3/3] skip "], again.stdout
    single = cli(["run", "pruning.sparsity=0.5", *fast], tmp_path)
    assert single.stdout.startswith("skip "), single.stdout  # no sweep, no [i/N]
