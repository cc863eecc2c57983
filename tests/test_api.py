"""The Python API (sweeplab.load_rows / table / summarize / plot) and the README's notebook
block, run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sweeplab
from conftest import REPO
from sweeplab.errors import SweeplabError
from sweeplab.results.commands import Selection, table
from test_analysis import write_rows


@pytest.fixture
def results(tmp_path: Path) -> Path:
    write_rows(
        tmp_path / "results",
        strategies=("global_magnitude", "layer_magnitude", "random"),
        sparsities=(0.5, 0.9),
        seeds=(0, 1, 2),
    )
    return tmp_path / "results"


def test_load_rows_filters_like_table_where(results: Path) -> None:
    everything = sweeplab.load_rows(results)
    by_map = sweeplab.load_rows(results, where={"strategy": ["random"], "seed": [0, 1]})
    by_clause = sweeplab.load_rows(results, where=["strategy=random", "seed=0,1"])
    assert len(everything) == 18 and len(by_map) == len(by_clause) == 4
    assert set(by_map["run_id"]) == set(by_clause["run_id"])
    with pytest.raises(SweeplabError, match="strategy"):
        sweeplab.load_rows(results, where={"strategy": "nope"})


def test_table_is_what_the_command_prints(results: Path, capsys) -> None:
    rows = sweeplab.load_rows(results)
    for view in ("pivot", "compare"):
        text = sweeplab.table(rows, view=view, baseline="layer_magnitude")
        assert table(Selection(str(results)), view=view, baseline="layer_magnitude") == 0
        assert capsys.readouterr().out == text
    assert sweeplab.summarize(rows).points["n"].max() == 3


def test_readme_notebook_block_runs(results: Path, monkeypatch) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Notebooks") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) == 5
    monkeypatch.chdir(results.parent)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    written = sorted(p.suffix for p in (results.parent / "plots").iterdir())
    assert ".png" in written and ".svg" in written
