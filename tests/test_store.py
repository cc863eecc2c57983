"""Rows: atomic files, schema guard, failed runs retried, flat reads, objectives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweeplab.errors import SweeplabError
from sweeplab.results import objectives, store
from sweeplab.results.row import SCHEMA_VERSION, ResultRow
from sweeplab.results.rows import load_rows


def row(rid: str = "abc", status: str = "ok", **kw) -> ResultRow:
    base = dict(
        run_id=rid, dense_id="d1", experiment="t", status=status, data="digits", model="mlp",
        strategy="random", scope="global", schedule="oneshot", recovery="finetune", seed=0,
        sparsity_requested=0.5,
    )  # fmt: skip
    return ResultRow(**{**base, **kw})


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = store.write_row(tmp_path, row())
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["abc.json"]


def test_finished_means_an_ok_row(tmp_path: Path) -> None:
    assert not store.finished(tmp_path, "abc")
    store.write_row(tmp_path, row(status="failed", error="boom"))
    assert not store.finished(tmp_path, "abc")  # failed runs are retried
    store.write_row(tmp_path, row())
    assert store.finished(tmp_path, "abc")
    (tmp_path / "runs" / "abc.json").write_text('{"status": "o')  # torn by hand
    assert not store.finished(tmp_path, "abc")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = store.write_row(tmp_path, row(schema_version=SCHEMA_VERSION + 1))
    with pytest.raises(SweeplabError, match=f"schema_version={SCHEMA_VERSION + 1}, newer"):
        store.read_row(path)


def test_unwritable_results_dir_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SweeplabError, match="cannot be written"):
        store.write_row(blocker, row())


def test_load_rows_reads_every_row(tmp_path: Path) -> None:
    for i in range(3):
        store.write_row(tmp_path, row(rid=f"r{i}", seed=i))
    df = load_rows(tmp_path)
    assert sorted(df["seed"]) == [0, 1, 2] and set(df["status"]) == {"ok"}
    with pytest.raises(SweeplabError, match="no runs/ folder"):
        load_rows(tmp_path / "empty")


def test_file_nests_metrics_and_read_row_is_flat(tmp_path: Path) -> None:
    path = store.write_row(tmp_path, row(metrics={"compression": 4.0}, seconds={"prune": 0.1}))
    on_disk = json.loads(path.read_text())
    assert on_disk["metrics"] == {"compression": 4.0} and "compression" not in on_disk
    flat = store.read_row(path)
    assert flat["compression"] == 4.0 and flat["strategy"] == "random" and "metrics" not in flat
    assert flat == row(metrics={"compression": 4.0}, seconds={"prune": 0.1}).to_dict()


def test_objectives_read_back_from_the_row(tmp_path: Path) -> None:
    metrics = dict(sparsity_achieved=0.9, compression=8.5, acc_dense_val=0.95,
                   acc_finetuned_val=0.945, my_metric=3)  # fmt: skip
    done = row(metrics=metrics)
    store.write_row(tmp_path, done)
    values = objectives.objectives(tmp_path, "abc", ["acc_finetuned_val", "compression"], 0.01)
    assert values == [0.945, 8.5]
    # Within 1 point of dense: the sparsity counts; outside: minus the drop, below any sparsity.
    assert objectives.objectives(tmp_path, "abc", ["sparsity_within_drop"], 0.01) == [0.9]
    assert objectives.objectives(tmp_path, "abc", ["sparsity_within_drop"], 0.001) == [
        pytest.approx(-0.005)
    ]
    # Any numeric metric is an objective, a new one included; core labels are not.
    assert objectives.objectives(tmp_path, "abc", ["my_metric"], 0.01) == [3.0]
    with pytest.raises(SweeplabError, match="names 'strategy', which is not a numeric row"):
        objectives.check_objectives(["strategy"])
    with pytest.raises(SweeplabError, match="no numeric value for objective 'flops'; choose"):
        objectives.objective_values(done.to_dict(), ["flops"], 0.01)
    # The file form (metrics nested) reads the same as the flat one.
    assert objectives.objective_values(done.to_record(), ["compression"], 0.01) == [8.5]


def test_a_torn_row_is_named_and_its_run_redone(tmp_path: Path) -> None:
    path = store.write_row(tmp_path, row())
    path.write_text(path.read_text()[:40])  # an interrupted copy, say; sweeplab never writes so
    with pytest.raises(store.TornRowError, match=r"abc.json is not a valid row \(not whole JSON"):
        store.read_row(path)
    assert not store.finished(tmp_path, "abc")
    path.write_text("[1, 2]")
    with pytest.raises(store.TornRowError, match=r"\(a JSON list, not an object\)"):
        store.read_row(path)
