"""Statistics across seeds: intervals, paired tests and Holm's correction against scipy."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sweeplab.cli import main
from sweeplab.results import store
from sweeplab.results.stats import compare, holm, mean_ci, paired


def test_mean_ci_is_students_t_interval() -> None:
    xs = [0.91, 0.93, 0.92, 0.95]
    ci = mean_ci(xs)
    low, high = stats.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=stats.sem(xs))
    assert ci.n == 4 and ci.mean == pytest.approx(np.mean(xs))
    assert (ci.low, ci.high) == (pytest.approx(low), pytest.approx(high))
    one = mean_ci([0.9])
    assert one.n == 1 and one.low is None and one.high is None


def test_paired_matches_scipys_related_t_test() -> None:
    a, b = [0.95, 0.96, 0.94, 0.97], [0.93, 0.95, 0.93, 0.94]
    result = paired(a, b)
    assert result.p == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert result.diff.mean == pytest.approx(np.mean(np.subtract(a, b)))
    assert result.diff.low < result.diff.mean < result.diff.high
    assert paired([0.9], [0.8]).p is None  # one pair: no test
    assert paired([0.9, 0.8], [0.8, 0.7]).p is None  # identical differences: no spread


def test_holm_step_down() -> None:
    # Holm 1979: sorted p * (m - rank), made monotone; untested entries stay None.
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert holm([0.5, 0.2]) == pytest.approx([0.5, 0.4])
    assert holm([]) == []


def _rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(5):
        dense = f"d{seed}"
        shared = rng.normal(0, 0.02)  # the dense model's luck, common to both strategies
        for sparsity in (0.5, 0.9):
            base = 0.9 - 0.1 * sparsity + shared
            rows.append(("global", sparsity, dense, base + 0.02 + rng.normal(0, 0.002)))
            rows.append(("layer", sparsity, dense, base))
            rows.append(("random", sparsity, dense, base + rng.normal(0, 0.002)))
    return pd.DataFrame(rows, columns=["series", "sparsity_requested", "dense_id", "acc"])


def test_compare_pairs_on_the_dense_model_and_corrects_across_cells() -> None:
    table = compare(_rows(), "layer", ["sparsity_requested"], metric="acc")
    assert len(table) == 4 and set(table["series"]) == {"global", "random"}
    g = table[table["series"] == "global"]
    assert (g["n"] == 5).all() and g["diff"].to_numpy() == pytest.approx([0.02, 0.02], abs=2e-3)
    assert g["significant"].all()  # pairing removes the dense models' spread (0.02)
    assert not table[table["series"] == "random"]["significant"].any()
    # Holm over the table's 4 tests: the smallest p is multiplied by 4.
    assert table["p_holm"].min() == pytest.approx(4 * table["p"].min())
    # Unpaired, the same global cell would drown in the dense models' spread.
    rows = _rows()
    at = rows[rows["sparsity_requested"] == 0.5]
    unpaired = stats.ttest_ind(at[at.series == "global"].acc, at[at.series == "layer"].acc)
    assert unpaired.pvalue > g["p"].iloc[0] and math.isfinite(unpaired.pvalue)


def test_compare_skips_points_the_baseline_lacks() -> None:
    rows = _rows()
    rows = rows[~((rows.series == "layer") & (rows.sparsity_requested == 0.9))]
    table = compare(rows, "layer", ["sparsity_requested"], metric="acc")
    assert set(table["sparsity_requested"]) == {0.5}


def test_table_view_compare_on_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`sweeplab table --view compare --baseline S`: one line per strategy and sparsity, the
    pairs counted over seeds; a constant difference has no spread, so no p; csv is tidy."""
    from test_tables_mixed import mixed_row

    for seed in range(3):
        for s in (0.5, 0.9):
            for recovery in ("finetune", "lr_rewind"):
                store.write_row(tmp_path, mixed_row("global_magnitude", s, seed, recovery=recovery))
            store.write_row(tmp_path, mixed_row("l1_filter", s, seed))
    base = "global_magnitude [finetune]"
    assert main(["table", str(tmp_path), "--view", "compare", "--baseline", base]) == 0
    out = capsys.readouterr().out
    assert f"vs {base}" in out and "Holm" in out
    lines = [line for line in out.splitlines() if line.startswith("| global_magnitude [lr_rewind]")]
    assert len(lines) == 2 and all("| 3 |" in line and "-0.50" in line for line in lines)
    assert all("—" in line for line in lines)  # lr_rewind is 0.5 points lower in every pair
    assert main(["table", str(tmp_path), "--view", "compare", "--baseline", base,
                 "--format", "csv"]) == 0  # fmt: skip
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert {"data", "model", "series", "n", "diff", "p_holm"} <= set(frame.columns)
    assert main(["table", str(tmp_path), "--view", "compare"]) == 2
    assert "--baseline" in capsys.readouterr().err


def test_report_shows_the_comparison_with_a_baseline(tmp_path: Path) -> None:
    from test_tables_mixed import mixed_row

    for seed in range(2):
        for recovery in ("finetune", "lr_rewind"):
            store.write_row(tmp_path, mixed_row("global_magnitude", 0.5, seed, recovery=recovery))
    html = tmp_path / "r.html"
    base = "global_magnitude [finetune]"
    args = ["report", str(tmp_path), "-o", str(html), "--no-plots"]
    assert main([*args, "--baseline", base]) == 0
    assert f"vs {base}" in html.read_text() and "Holm" in html.read_text()
    assert main(args) == 0 and "Paired difference" not in html.read_text()


def test_compare_baseline_may_be_a_strategy_and_groups_without_it_are_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`--baseline STRATEGY` names that strategy's series where it has only one; under --by
    recovery, groups without it are left out in md and csv alike, and a name matching nothing
    is one line listing the choices."""
    from test_tables_mixed import mixed_row

    for seed in range(2):
        store.write_row(tmp_path, mixed_row("global_magnitude", 0.5, seed))
        store.write_row(tmp_path, mixed_row("l1_filter", 0.5, seed))
        store.write_row(tmp_path, mixed_row("global_magnitude", 0.9, seed, recovery="lr_rewind"))
    args = ["table", str(tmp_path), "--view", "compare", "--by", "recovery"]
    assert main([*args, "--baseline", "l1_filter"]) == 0
    out = capsys.readouterr().out
    assert out.count("Paired difference") == 1 and "recovery=lr_rewind" not in out
    assert main([*args, "--baseline", "l1_filter", "--format", "csv"]) == 0
    assert set(pd.read_csv(io.StringIO(capsys.readouterr().out))["recovery"]) == {"finetune"}
    assert main([*args, "--baseline", "magnitude"]) == 2
    assert "choose a strategy or one of" in capsys.readouterr().err
