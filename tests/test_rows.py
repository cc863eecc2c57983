"""Open metrics: a new metric is a column everywhere rows are read; schema 1 rows still load;
`sweeplab.load_rows` and the results package stay free of torch."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sweeplab.cli import main
from sweeplab.errors import SweeplabError
from sweeplab.results import store
from sweeplab.results.analysis import summarize
from sweeplab.results.filters import filter_rows
from sweeplab.results.render import render
from sweeplab.results.row import CORE, SCHEMA_VERSION, ResultRow
from sweeplab.results.rows import load_rows
from test_analysis import write_rows

REPO = Path(__file__).resolve().parents[1]


def with_metric(rows: list[ResultRow], values: list[float]) -> list[ResultRow]:
    return [
        dataclasses.replace(r, metrics={**r.metrics, "my_metric": v})
        for r, v in zip(rows, values, strict=True)
    ]


def test_a_new_metric_is_a_column_for_filters_groups_and_tables(tmp_path: Path, capsys) -> None:
    written = write_rows(tmp_path, strategies=("random",), sparsities=(0.5, 0.9), seeds=(0, 1))
    for row in with_metric(written, [1.5, 1.5, 2.5, 2.5]):
        store.write_row(tmp_path, row)
    df = load_rows(tmp_path)
    assert sorted(df["my_metric"]) == [1.5, 1.5, 2.5, 2.5]
    assert len(filter_rows(df, ["my_metric=1.5"])) == 2
    summary = summarize(df, by=["my_metric"])
    assert summary.groups == ["data", "model", "my_metric"]
    assert "### digits / mlp / my_metric=1.5" in render(summary, "md", "points")
    assert main(["table", str(tmp_path), "--where", "my_metric=2.5", "--by", "my_metric"]) == 0
    out = capsys.readouterr().out
    assert "my_metric=2.5" in out and "my_metric=1.5" not in out


def test_schema_1_rows_load_to_the_same_columns(tmp_path: Path) -> None:
    written = write_rows(tmp_path / "v2", strategies=("random",), sparsities=(0.5,), seeds=(0,))
    (row,) = with_metric(written, [1.5])
    store.write_row(tmp_path / "v2", row)
    # Schema 1 kept every metric at top level beside the core.
    record = {**{k: v for k, v in row.to_record().items() if k != "metrics"}, **row.metrics}
    record["schema_version"] = 1
    path = store.row_path(tmp_path / "v1", row.run_id)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    assert store.read_row(path) == {**row.to_dict(), "schema_version": 1}
    v1, v2 = load_rows(tmp_path / "v1"), load_rows(tmp_path / "v2")
    pd.testing.assert_frame_equal(
        v1.drop(columns="schema_version"), v2.drop(columns="schema_version"), check_like=True
    )
    assert v2["schema_version"].tolist() == [SCHEMA_VERSION] and SCHEMA_VERSION == 2


def test_row_reads_metrics_as_attributes_and_refuses_core_names() -> None:
    row = ResultRow(
        run_id="r", dense_id="d", experiment="t", data="digits", model="mlp", strategy="random",
        scope="global", schedule="oneshot", recovery="finetune", seed=0, sparsity_requested=0.5,
        metrics={"compression": 2.0},
    )  # fmt: skip
    assert row.compression == 2.0 and row.flops is None  # not measured
    assert row.to_dict()["compression"] == 2.0 and "metrics" not in row.to_dict()
    assert set(row.to_record()) == {*CORE, "metrics"}
    with pytest.raises(SweeplabError, match="metric 'seed' has the name of a row core field"):
        dataclasses.replace(row, metrics={"seed": 1})


def test_load_rows_is_lazy_and_results_never_import_torch() -> None:
    code = (
        "import sys, importlib, pkgutil, sweeplab, sweeplab.results as r\n"
        "assert 'pandas' not in sys.modules\n"
        "assert sweeplab.load_rows is importlib.import_module('sweeplab.results.api').load_rows\n"
        "for m in pkgutil.iter_modules(r.__path__):\n"
        "    importlib.import_module(f'sweeplab.results.{m.name}')\n"
        "bad = {'torch', 'pytorch_lightning', 'lightning'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
