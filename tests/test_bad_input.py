"""The bad-input catalogue: each case is one line naming the value and the fix, exit 2, no row.

Cases run `sweeplab run ...` in this process (the `cli` fixture: sweeplab.cli.main, the same code
path as the command, without paying the imports per case); tests/test_cli.py checks the same
contract through the console entry in a subprocess. Cases covered elsewhere, and not repeated
here:

- tests/test_cli.py: sparsity 1.0, -0.1 and 'abc'; unknown strategy; zero epochs; negative
  lr; 8x8 images for LeNet-300-100; MNIST root missing with no network; a truncated .gz in a
  run; `sweeplab table` on a folder with no runs.
- tests/test_data.py: truncated .gz; short raw IDX; labels outside the class count; missing
  root without network; md5 mismatch on download (nothing left behind).
- tests/test_store.py: a row of a newer schema (read_row); an unwritable results dir
  (write_row).
- tests/test_models.py: wrong image shape for LeNet-300-100 and LeNet-5; non-positive MLP width.

Structured pruning's cases (bn_scale without batch norm, a layer ratio that empties a layer)
are refused before dense training, like every other case here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from conftest import CONF, FAST, rows_in, write_idx
from sweeplab.data.download import md5sum
from sweeplab.errors import SweeplabError
from sweeplab.results import store
from sweeplab.results.row import SCHEMA_VERSION


class NoPrunable(nn.Module):
    """A model without Linear or Conv layers (its only parameter is a per-class bias)."""

    def __init__(self, input_shape: list[int], num_classes: int, **_: object) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)[:, :1] * 0 + self.bias


def groups(name: str) -> str:
    """The choices of a config group as `sweeplab run` lists them."""
    return ", ".join(sorted(p.stem for p in (CONF / name).glob("*.yaml")))


# overrides -> the text the one error line must contain. FAST is added to each.
CONFIG_CASES = {
    "sparsity_nan": (["pruning.sparsity=nan"], "pruning.sparsity=nan is outside [0, 1)"),
    "sparsity_bool": (["pruning.sparsity=true"], "pruning.sparsity=True is not a number"),
    "sparsity_list": (["pruning.sparsity=[0.5]"], "pruning.sparsity=[0.5] is not a number"),
    "unknown_model": (
        ["model=resnet"],
        f"unknown model 'resnet'; choose one of: {groups('model')}",
    ),
    "unknown_data": (
        ["data=imagenet"],
        f"unknown data 'imagenet'; choose one of: {groups('data')}",
    ),
    "unknown_schedule": (
        ["schedule=cyclic"],
        f"unknown schedule 'cyclic'; choose one of: {groups('schedule')}",
    ),
    "unknown_recovery": (
        ["recovery=magic"],
        f"unknown recovery 'magic'; choose one of: {groups('recovery')}",
    ),
    "unknown_scope": (
        ["pruning.scope=row"],
        "pruning.scope='row' is not one of ['global', 'layer']",
    ),
    "threshold_and_sparsity": (
        ["+pruning.threshold=0.1"],
        "pruning.threshold sets the sparsity itself; also set pruning.sparsity=null",
    ),
    "exclude_unknown_layer": (
        ["+pruning.exclude=[fc9]"],
        "pruning.exclude names unknown layers ['fc9']",
    ),
    "no_prunable_layer": (
        [f"model._target_={__name__}.NoPrunable"],
        "model NoPrunable has no prunable layer (Linear or Conv weights)",
    ),
    "bn_scale_without_batch_norm": (
        ["pruning=bn_scale", "pruning.granularity=neuron", "train.epochs=500"],
        "pruning=bn_scale needs batch norm layers but model MLP has none; use a model with "
        "batch norm (model.batch_norm=true for mlp)",
    ),
    "layer_ratio_empties_a_layer": (
        ["pruning=neuron_l1", "pruning.ratio=0.999", "train.epochs=500"],
        "pruning.ratio=0.999 would remove all 128 channels of layer net.1",
    ),
    "layer_ratio_override_empties_a_layer": (
        ["pruning=neuron_l1", "+pruning.layer_ratio={net.3: 0.995}", "train.epochs=500"],
        "pruning.layer_ratio.net.3=0.995 would remove all 64 channels of layer net.3",
    ),
    "layer_ratio_names_no_prunable_layer": (
        ["pruning=neuron_l1", "+pruning.layer_ratio={net.2: 0.5}", "train.epochs=500"],
        "pruning.layer_ratio names ['net.2'], which outputs no prunable group; choose from",
    ),
    "train_epochs_negative": (["train.epochs=-3"], "train.epochs=-3 must be a positive integer"),
    "train_epochs_fraction": (["train.epochs=2.5"], "train.epochs=2.5 must be a positive integer"),
    "finetune_epochs_negative": (
        ["finetune.epochs=-1"],
        "finetune.epochs=-1 must be a positive integer",
    ),
    "train_batch_zero": (["train.batch_size=0"], "train.batch_size=0 must be a positive integer"),
    "finetune_batch_negative": (
        ["finetune.batch_size=-8"],
        "finetune.batch_size=-8 must be a positive integer",
    ),
    "train_lr_zero": (["train.lr=0"], "train.lr=0 must be a positive number"),
    "train_lr_text": (["train.lr=fast"], "train.lr='fast' must be a positive number"),
    "unknown_optimizer": (["train.optimizer=adamw"], "train.optimizer='adamw' is not one of"),
    "unknown_lr_schedule": (
        ["train.lr_schedule=linear"],
        "train.lr_schedule='linear' is not one of",
    ),
    "step_schedule_without_period": (
        ["train.lr_schedule=step"],
        "train.lr_step_epochs=None must be a positive number",
    ),
    "warmup_as_long_as_training": (["train.warmup_epochs=10"], "is not shorter than"),
    "unknown_train_key": (["+train.lr_shedule=step"], "train.lr_shedule is not a train setting"),
    "seed_text": (["seed=abc"], "seed='abc' is not an integer; use e.g. seed=0"),
    "threads_zero": (["trainer.threads=0"], "trainer.threads=0 must be a positive integer"),
    "inner_steps_zero": (
        ["trainer.inner_steps=0"],
        "trainer.inner_steps=0 must be a positive integer",
    ),
    "unknown_objective": (
        ["+search.objectives=[strategy]", "+search.max_drop=0.01"],
        "search.objectives names 'strategy', which is not a numeric row column; choose from:",
    ),
}


def assert_one_line_error(code: int, err: str, message: str) -> None:
    errors = [line for line in err.splitlines() if line.startswith("sweeplab: error:")]
    assert code == 2, err
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


@pytest.fixture
def run(tmp_path: Path, cli):
    """Run `sweeplab run FAST OVERRIDES` with results in tmp_path/res; assert no row is left."""

    def call(overrides: list[str], message: str, res: Path = tmp_path / "res") -> None:
        proc = cli(["run", *FAST, *overrides, f"paths.results_dir={res}"], cwd=tmp_path)
        assert_one_line_error(proc.returncode, proc.stderr, message)
        assert rows_in(res) == []

    return call


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_value(case: str, run) -> None:
    overrides, message = CONFIG_CASES[case]
    run(overrides, message)


# -- data files -------------------------------------------------------------------------


def mnist_root(tmp_path: Path, side: int = 28, n: int = 48) -> Path:
    """Four raw MNIST-named IDX files of n random side x side images."""
    rng = np.random.default_rng(0)
    root = tmp_path / f"mnist{side}"
    root.mkdir()
    for split in ("train", "t10k"):
        write_idx(root / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, side, side)), False)
        write_idx(root / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), False)
    return root


def mnist(root: Path) -> list[str]:
    return ["data=mnist", f"data.root={root}", "data.val_size=8", "data.download=false"]


def test_corrupt_data_file(run, tmp_path: Path) -> None:
    root = mnist_root(tmp_path)
    (root / "train-images-idx3-ubyte").write_bytes(b"\x12\x34" * 100)  # wrong magic number
    run(mnist(root), "train-images-idx3-ubyte is not an IDX file of unsigned bytes")


def test_missing_data_file_without_download(run, tmp_path: Path) -> None:
    root = mnist_root(tmp_path)
    (root / "t10k-labels-idx1-ubyte").unlink()
    run(mnist(root), f"data.root={root} has no t10k-labels-idx1-ubyte(.gz); put the mnist IDX")


def test_images_of_the_wrong_shape_for_the_model(run, tmp_path: Path) -> None:
    root = mnist_root(tmp_path, side=20)
    run([*mnist(root), "model=lenet5"], "expects 1x28x28 images but the data gives (1, 20, 20)")


def test_md5_mismatch_in_a_run(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A mirror serving files that are not the published ones (their md5 differs).
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_idx(mirror / "train-images-idx3-ubyte.gz", np.zeros((4, 28, 28)))
    monkeypatch.setenv("SWEEPLAB_MIRROR", mirror.as_uri() + "/")
    empty = tmp_path / "empty"
    got = md5sum(mirror / "train-images-idx3-ubyte.gz")
    run(
        ["data=mnist", f"data.root={empty}"],
        f"has md5 {got}, expected f68b3c2dcbeaaa9fbdd348bbdeb94873",
    )
    assert not any(empty.glob("*.gz"))  # nothing half-downloaded left behind


# -- paths and rows ---------------------------------------------------------------------


def test_results_dir_that_cannot_be_written(run, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    run([], f"{blocker}/res", res=blocker / "res")
    assert blocker.read_text() == "not a folder"


def test_cache_dir_that_cannot_be_created(run, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    run([f"paths.cache_dir={blocker}/cache"], f"paths.cache_dir={blocker}/cache cannot be created")


def test_check_writable_names_the_results_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SweeplabError, match=f"paths.results_dir={blocker}/res cannot be written"):
        store.check_writable(blocker / "res")
    store.check_writable(tmp_path / "fresh")
    assert list((tmp_path / "fresh" / "runs").iterdir()) == []  # the probe is gone


def write_row(results: Path, name: str, text: str) -> None:
    (results / "runs").mkdir(parents=True, exist_ok=True)
    (results / "runs" / name).write_text(text)


def test_table_refuses_a_row_of_a_newer_schema(tmp_path: Path, cli) -> None:
    newer = SCHEMA_VERSION + 1
    write_row(tmp_path, "abc.json", json.dumps({"run_id": "abc", "schema_version": newer}))
    proc = cli(["table", str(tmp_path)], cwd=tmp_path)
    err = proc.stderr
    assert_one_line_error(
        proc.returncode, err, f"has schema_version={newer}, newer than this sweeplab"
    )
    assert "upgrade sweeplab to read it" in err


def test_table_names_a_torn_row_file(tmp_path: Path, cli) -> None:
    write_row(tmp_path, "abc.json", '{"run_id": "abc", "stat')  # e.g. an interrupted copy
    proc = cli(["table", str(tmp_path)], cwd=tmp_path)
    err = proc.stderr
    assert_one_line_error(proc.returncode, err, "abc.json is not a whole JSON row")
    assert "delete it and run the sweep again" in err
