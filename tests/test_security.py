"""A row is data: `sweeplab export` never imports or calls a `_target_` taken from a row unless
it is one of the project's classes for that section, or one the user names on the command line.

Commands run in this process (the `cli` fixture): what is tested is the refusal, its one line
and exit code 2, and that the planted code never ran."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from conftest import rows_in
from sweeplab.engine.export import load_exported
from sweeplab.engine.row_targets import check_row_targets, project_targets
from sweeplab.errors import SweeplabError
from sweeplab.models.mlp import MLP
from sweeplab.results import identity

TINY = ["train.epochs=1", "finetune.epochs=1", "measure.latency=false"]


def write_marker(path: str) -> str:
    """Planted code: what any callable a row names could do (here: leave a file behind)."""
    Path(path).write_text("ran")
    return path


class Opens:
    """Unpickling this opens (creates) a file: a pickle runs code when it is loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class TinyNet(MLP):
    """A user's own model class (named by `model._target_=test_security.TinyNet`)."""


def _run(cli, results: Path, *overrides: str) -> tuple[str, Path]:
    proc = cli(["run", *TINY, *overrides, f"paths.results_dir={results}"], results.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = rows_in(results)
    return row.stem, row


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, cli) -> tuple[Path, str]:
    """One finished run of the default config: (results dir, run id)."""
    results = tmp_path_factory.mktemp("legit") / "res"
    rid, _ = _run(cli, results)
    return results, rid


def _plant(finished: tuple[Path, str], tmp_path: Path, key: str, node: dict) -> tuple[Path, Path]:
    """A copy of the finished results dir whose row has config[key] = node; (results, row)."""
    results, rid = finished
    planted = tmp_path / "planted"
    shutil.copytree(results, planted)
    path = planted / "runs" / f"{rid}.json"
    row = json.loads(path.read_text())
    row["config"][key] = node
    path.write_text(json.dumps(row))
    return planted, path


def _planted_code(kind: str, tmp: Path, marker: Path) -> dict:
    if kind == "function":  # a function in an importable module
        return {"_target_": "test_security.write_marker", "path": str(marker)}
    pickled = tmp / "weights.pkl"  # a callable that reads files: a pickle loader
    pickled.write_bytes(pickle.dumps(Opens(str(marker))))
    return {"_target_": "pandas.read_pickle", "filepath_or_buffer": str(pickled)}


@pytest.mark.parametrize("kind", ["function", "pickle"])
def test_a_row_naming_code_is_refused_and_the_code_never_runs(
    kind: str, finished, tmp_path: Path, cli
) -> None:
    from hydra.utils import instantiate

    # The planted node is real: Hydra's own block list lets it run.
    probe = tmp_path / "probe"
    instantiate(_planted_code(kind, tmp_path, probe))
    assert probe.exists()

    marker = tmp_path / "marker"
    node = _planted_code(kind, tmp_path, marker)
    planted, row_file = _plant(finished, tmp_path, "pruning", node)
    out = tmp_path / "out"
    proc = cli(["export", finished[1], str(out), "--results-dir", str(planted)], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"sweeplab: error: {row_file} names pruning._target_=")
    assert repr(node["_target_"]) in line and "Traceback" not in proc.stderr
    assert not marker.exists() and not out.exists()


def test_a_sweeplab_function_outside_its_section_is_refused(finished, tmp_path: Path, cli) -> None:
    """Being sweeplab's is not enough: store.atomic_write_text writes any file it is given."""
    marker = tmp_path / "marker"
    node = {"_target_": "sweeplab.results.store.atomic_write_text", "path": str(marker)}
    planted, row_file = _plant(finished, tmp_path, "data", {**node, "text": "x"})
    proc = cli(
        ["export", finished[1], str(tmp_path / "out"), "--results-dir", str(planted)], tmp_path
    )
    assert proc.returncode == 2
    assert f"{row_file} names data._target_='sweeplab.results.store" in proc.stderr
    assert not marker.exists()


def test_a_nested_target_is_checked_and_old_class_paths_still_pass(tmp_path: Path) -> None:
    nested = {"pruning": {"criteria": [{"_target_": "sweeplab.pruning.taylor.Taylor"},
                                       {"_target_": "builtins.exec"}]}}  # fmt: skip
    with pytest.raises(SweeplabError, match=r"pruning\.criteria\.1\._target_='builtins\.exec'"):
        check_row_targets(nested, tmp_path / "r.json", {})
    # Rows written before a class moved name its old path; they map to today's and pass.
    old = {"recovery": {"_target_": "sweeplab.recovery.Finetune"}}
    check_row_targets(identity.current_targets(old), tmp_path / "r.json", {})
    assert "sweeplab.engine.recovery.Finetune" in project_targets()["recovery"]


def test_a_legitimate_row_still_exports(finished, tmp_path: Path, cli) -> None:
    results, rid = finished
    out = tmp_path / "out"
    proc = cli(["export", rid, str(out), "--results-dir", str(results)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_exported(out) is not None


def test_the_users_model_class_is_built_only_when_named_on_the_command_line(
    tmp_path: Path, cli
) -> None:
    results = tmp_path / "res"
    rid, row_file = _run(cli, results, "model._target_=test_security.TinyNet")

    def export(name: str, *trusted: str):
        args = ["export", rid, str(tmp_path / name), *trusted, "--results-dir", str(results)]
        return cli(args, tmp_path)

    refused = export("a")
    assert refused.returncode == 2
    assert f"{row_file} names model._target_='test_security.TinyNet'" in refused.stderr
    assert "model._target_=test_security.TinyNet)" in refused.stderr  # the fix, spelled out
    assert export("b", "model._target_=test_security.Other").returncode == 2
    assert export("c", "model.hidden=[4]").returncode == 2  # only KEY._target_=CLASS
    ok = export("d", "model._target_=test_security.TinyNet")
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert (tmp_path / "d" / "load.py").exists() and not (tmp_path / "a").exists()
