"""Tables: Pareto fronts, seed statistics, the dense baseline, formats and filters."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sweeplab.analysis import filter_rows, pareto_front, render, summarize
from sweeplab.errors import SweeplabError


def test_pareto_front() -> None:
    cost = [10, 5, 5, 1, 7]
    gain = [0.9, 0.8, 0.7, 0.5, 0.6]
    # (5, .7) is dominated by (5, .8); (7, .6) by (5, .8).
    assert pareto_front(cost, gain).tolist() == [True, True, False, True, False]


def rows() -> pd.DataFrame:
    out = []
    for seed, dense_acc in ((0, 0.97), (1, 0.95)):
        for strategy, s, acc in (
            ("magnitude", 0.5, 0.94),
            ("magnitude", 0.9, 0.90),
            ("random", 0.9, 0.5),
        ):
            out.append(dict(
                run_id=f"{strategy}{s}{seed}", dense_id=f"d{seed}", status="ok", data="digits",
                model="mlp", strategy=strategy, scope="global", seed=seed, sparsity_requested=s,
                sparsity_achieved=s, params_total=1000, params_nonzero=int(1000 * (1 - s)),
                compression=1 / (1 - s), acc_dense_test=dense_acc, acc_pruned_test=acc - 0.1,
                acc_finetuned_test=acc + 0.01 * seed,
            ))  # fmt: skip
    out.append(dict(run_id="bad", status="failed", data="digits", model="mlp", strategy="random"))
    return pd.DataFrame(out)


def test_summary_has_seed_statistics_dense_baseline_and_front() -> None:
    table = summarize(rows())
    dense = table[table["strategy"] == "dense"].iloc[0]
    assert dense["n"] == 2 and dense["acc"] == pytest.approx(0.96)
    assert dense["compression"] == 1.0 and dense["nonzero"] == 1000
    mag = table[(table["strategy"] == "magnitude") & (table["sparsity_requested"] == 0.9)].iloc[0]
    assert mag["n"] == 2 and mag["acc"] == pytest.approx(0.905)
    assert mag["acc_std"] == pytest.approx(np.std([0.90, 0.91], ddof=1))
    front = dict(
        zip(
            table["strategy"] + table["sparsity_requested"].astype(str),
            table["pareto"],
            strict=True,
        )
    )
    assert front == {
        "dense0.0": True,
        "magnitude0.5": True,
        "magnitude0.9": True,
        "random0.9": False,
    }


def test_markdown_marks_front_and_shows_std() -> None:
    text = render(summarize(rows()), "md")
    assert "### digits / mlp" in text
    line = next(x for x in text.splitlines() if x.startswith("| magnitude | 0.9 "))
    assert "90.50 ± 0.71" in line and line.rstrip().endswith("| * |")
    assert next(x for x in text.splitlines() if x.startswith("| random ")).rstrip().endswith("|  |")


def test_csv_and_json_formats() -> None:
    table = summarize(rows())
    assert render(table, "csv").splitlines()[0].startswith("data,model,strategy")
    assert len(json.loads(render(table, "json"))) == 4


def test_filters() -> None:
    df = rows()
    assert set(filter_rows(df, ["strategy=random"])["strategy"]) == {"random"}
    assert len(filter_rows(df, ["seed=1"])) == 3
    with pytest.raises(SweeplabError, match="no such column"):
        filter_rows(df, ["colour=red"])
    with pytest.raises(SweeplabError, match="not key=value"):
        filter_rows(df, ["data"])
