"""`sweeplab reproduce`: expressions, value selection, paper-block checks, and a digits sweep."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml

from sweeplab.cli import main
from sweeplab.errors import SweeplabError
from sweeplab.reproduce.command import select_manifest_rows
from sweeplab.reproduce.rules import check_rule, evaluate, expression_names, fmt
from sweeplab.reproduce.schema import ValueSpec, check_paper
from sweeplab.reproduce.values import DERIVED, compute_value
from sweeplab.results.format import thread_counts
from sweeplab.results.rows import flat_row

# ------------------------------------------------------------------------------- expressions

VALUES = {
    "a": 1.5,
    "b": 2,
    "g": pd.Series({0: 97.1, 1: 97.3, 2: 96.0}),
    "l": pd.Series({0: 97.0, 1: 97.4, 2: 95.0}),
    "l01": pd.Series({0: 97.0, 1: 97.4}),  # seed 2 missing
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("a + b * 2", 5.5),
        ("(a + b) * 2", 7.0),
        ("b / 4 - -a", 2.0),
        ("a < b", True),
        ("1 < a < b < 2", False),
        ("1 < a <= 1.5 < b", True),
        ("a == 1.5 and b != 2", False),
        ("a > 2 or b >= 2", True),
        ("not a > 2", True),
        ("sum(g >= l)", 2),
        ("all(g >= l)", False),
        ("any(g > l)", True),
        ("count(g)", 3),
        ("min(g)", 96.0),
        ("max(g)", 97.3),
        ("mean(g - l) > 0", True),
        ("sum(g >= l01)", 1),  # Series compare on the labels both have
        ("count(g - l01)", 2),
        ("abs(a - b)", 0.5),
        ("min(a, b) + max(a, b)", 3.5),
        ("mean(a, b)", 1.75),
        ("sum(g >= l) >= 2 and a <= b", True),
    ],
)
def test_expressions(expr: str, expected: Any) -> None:
    result = evaluate(expr, VALUES)
    assert not isinstance(result, pd.Series)
    assert result == pytest.approx(expected) if isinstance(expected, float) else result == expected


def test_series_results_stay_elementwise() -> None:
    diff = evaluate("g - l", VALUES)
    assert list(diff.index) == [0, 1, 2] and diff.tolist() == pytest.approx([0.1, -0.1, 1.0])
    assert fmt(evaluate("g >= l", VALUES)) == "{0: True, 1: False, 2: True}"
    assert fmt(evaluate("max(g, l)", VALUES)) == "{0: 97.10, 1: 97.40, 2: 96.00}"
    with pytest.raises(SweeplabError, match="gives one value per label; reduce it with all"):
        check_rule(evaluate("g >= l", VALUES), "g >= l")
    with pytest.raises(SweeplabError, match="gives 1.50, not true/false"):
        check_rule(evaluate("a", VALUES), "a")


def test_unknown_name_lists_the_values() -> None:
    with pytest.raises(SweeplabError, match="unknown name 'c'; known values: a, b, g, l, l01"):
        evaluate("a + c", VALUES)


@pytest.mark.parametrize(
    ("expr", "what"),
    [
        ("a.real", "attribute access"),
        ("g.sum()", r"calling g\.sum\(\)"),
        ("__import__('os')", r"calling __import__\(\)"),
        ("open(a)", r"calling open\(\)"),
        ("(lambda: 1)()", "calling"),
        ("lambda: 1", "lambda"),
        ("g[0]", "indexing"),
        ("a ** 2", "Pow"),
        ("a if b else 1", "IfExp"),
        ("'text'", "the constant 'text'"),
        ("sum(g, start=1)", "plain positional arguments"),
        ("[a, b]", "List"),
        ("b in g", "In"),
    ],
)
def test_rejected_syntax(expr: str, what: str) -> None:
    with pytest.raises(SweeplabError, match=f"{what}.* is not allowed"):
        evaluate(expr, VALUES)
    with pytest.raises(SweeplabError, match="is not allowed"):
        expression_names(expr)


def test_syntax_error_and_names() -> None:
    with pytest.raises(SweeplabError, match="is not an expression"):
        evaluate("a <=", VALUES)
    assert expression_names("sum(g16 >= l16) >= 2 and abs(x) < 1") == {"g16", "l16", "x"}


def test_fmt() -> None:
    assert fmt(97.126) == "97.13" and fmt(2.0) == "2.00"
    assert fmt(3) == "3" and fmt(True) == "True" and fmt(float("nan")) == "nan"
    assert fmt(pd.Series({0.9375: 1.0, 0.5: 2})) == "{0.9375: 1.00, 0.5: 2.00}"


# --------------------------------------------------------------------------- value selection


def row(**kw: Any) -> dict[str, Any]:
    base = {
        "run_id": "r0",
        "dense_id": "d0",
        "experiment": "x",
        "status": "ok",
        "strategy": "global_magnitude",
        "seed": 0,
        "sparsity_requested": 0.9375,
        "round": None,
        "acc_finetuned_test": 0.97,
        "acc_pruned_test": 0.5,
        "acc_dense_test": 0.98,
        "params_prunable": 1000,
        "sparsity_achieved": 0.9375,
        "flops": 25.0,
        "flops_dense": 100.0,
        "config": {"pruning": {"ratio": 0.5}},
        "created_at": "2024-01-01T00:00:00",
    }
    return {**base, **kw}


ROWS = [
    row(run_id="g0", seed=0, acc_finetuned_test=0.971),
    row(run_id="g1", seed=1, acc_finetuned_test=0.973, sparsity_requested=0.9375 + 1e-12),
    row(run_id="g2", seed=2, acc_finetuned_test=0.960, created_at="2024-01-02T00:00:00"),
    row(run_id="l0", seed=0, strategy="layer_magnitude", acc_finetuned_test=0.970),
    row(run_id="l1", seed=1, strategy="layer_magnitude", acc_finetuned_test=0.974),
    row(run_id="l2", seed=2, strategy="layer_magnitude", acc_finetuned_test=0.950),
    row(run_id="it-r1", round=1, strategy="iter", acc_finetuned_test=0.90),
    row(run_id="it", round=3, strategy="iter", acc_finetuned_test=0.93),
    row(
        run_id="c", strategy="l1_filter", config={"pruning": {"ratio": 0.3}}, sparsity_achieved=0.3
    ),
    row(run_id="bad", status="failed", strategy="global_magnitude", acc_finetuned_test=0.0),
]


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as load_rows gives them: config keys as dotted columns (config.pruning.ratio is
    the column pruning.ratio), ints with gaps as floats."""
    return pd.DataFrame([flat_row(r) for r in rows])


def value(metric: str, where: dict[str, Any] | None = None, agg: str = "mean", by=None) -> Any:
    return compute_value(frame(ROWS), ValueSpec("v", metric, where or {}, agg, by), "exp=x")


def test_where_filters_and_aggregates() -> None:
    g = {"strategy": "global_magnitude", "sparsity_requested": 0.9375}
    assert value("acc", g) == pytest.approx((97.1 + 97.3 + 96.0) / 3)  # failed row ignored
    assert value("acc", g, "median") == pytest.approx(97.1)
    assert value("acc", g, "min") == pytest.approx(96.0)
    assert value("acc", g, "max") == pytest.approx(97.3)
    assert value("acc", g, "std") == pytest.approx(pd.Series([97.1, 97.3, 96.0]).std())
    assert value("acc", g, "count") == 3
    assert value("acc", g, "last") == pytest.approx(96.0)  # the newest row
    assert value("error", {"strategy": "iter", "round": 3}) == pytest.approx(7.0)
    assert value("error", {"strategy": "iter", "round": 1}) == pytest.approx(10.0)
    assert value("acc", {"strategy": "iter"}, "last") == pytest.approx(93.0)  # rounds in order
    assert value("acc", {"round": None}, "count") == 7  # missing rounds match null


def test_derived_metrics() -> None:
    one = {"run_id": "g0"}
    assert value("acc_pruned", one) == pytest.approx(50.0)
    assert value("acc_dense", one) == pytest.approx(98.0)
    assert value("error_dense", one) == pytest.approx(2.0)
    assert value("error_pruned", one) == pytest.approx(50.0)
    assert value("remaining", one) == pytest.approx(6.25)
    assert value("flops_reduction", one) == pytest.approx(75.0)
    assert value("params_prunable", one) == 1000
    nonzero = value("weights_nonzero", one)
    assert nonzero == 62 and isinstance(nonzero, int) and fmt(nonzero) == "62"


def test_config_where_and_by() -> None:
    assert value("sparsity_achieved", {"config.pruning.ratio": 0.3}) == pytest.approx(0.3)
    assert value("acc", {"config.pruning.missing": None}, "count") == 9
    by = value("acc", {"strategy": "layer_magnitude"}, by="seed")
    assert by.index.name == "seed" and by.name == "v"
    assert by.to_dict() == pytest.approx({0: 97.0, 1: 97.4, 2: 95.0})
    g16 = value("acc", {"strategy": "global_magnitude"}, by="seed")
    assert evaluate("sum(g >= l)", {"g": g16, "l": by}) == 2


def test_empty_selection_names_the_value_and_filter() -> None:
    spec = ValueSpec("pruned_err", "error", {"round": 5}, "mean")
    with pytest.raises(SweeplabError, match=r"value pruned_err: no ok row .* where \{round: 5\}"):
        compute_value(frame(ROWS), spec)
    spec = ValueSpec("fl", "flops", {"run_id": "g0"}, "mean")
    with pytest.raises(SweeplabError, match="1 match but have no flops"):
        compute_value(frame([row(run_id="g0", flops=None)]), spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            ValueSpec("g16", "accuracy", {}),
            r"value g16: metric 'accuracy' is neither a column of exp=x's rows nor a derived "
            r"metric; choose one of acc, ",
        ),
        (
            ValueSpec("g16", "acc", {"sparsity": 0.9}),
            r"value g16: where key 'sparsity' is no column of exp=x's rows; choose from ",
        ),
        (
            ValueSpec("g16", "acc", {"config.pruning.rate": 0.5}),
            r"where key 'config.pruning.rate' is no column of exp=x's rows",
        ),
        (ValueSpec("g16", "acc", {}, by="seeds"), r"value g16: by 'seeds' is no column of exp=x"),
        (ValueSpec("s", "strategy", {}), r"value s: metric 'strategy' is not a number in exp=x"),
        (
            ValueSpec("g", "acc", {"strategy": "global_magnitude", "seed": 7}),
            r"where \{strategy: global_magnitude, seed: 7\} \(seed has: 0, 1, 2\)",
        ),
    ],
)
def test_columns_are_checked_against_the_rows(spec: ValueSpec, message: str) -> None:
    """Rows carry an open set of metrics: names are checked when the rows are there."""
    with pytest.raises(SweeplabError, match=message) as info:
        compute_value(frame(ROWS), spec, "exp=x's rows")
    assert "\n" not in str(info.value)


def test_where_selects_what_table_where_selects() -> None:
    """A paper block's where: and `sweeplab table --where` are one filter (results.filters)."""
    from sweeplab.reproduce.values import select
    from sweeplab.results import filters

    rows = frame(ROWS)
    ok = rows[rows["status"] == "ok"]
    for where in (
        {"strategy": "layer_magnitude", "seed": 1},
        {"strategy": ["global_magnitude", "iter"]},
        {"config.pruning.ratio": 0.3},
    ):
        mine = select(rows, ValueSpec("v", "acc", where), "exp=x")
        clauses = filters.clauses({k.removeprefix("config."): v for k, v in where.items()})
        theirs = filters.filter_rows(ok, clauses)
        assert sorted(mine["run_id"]) == sorted(theirs["run_id"]), where


def test_where_lists_match_any_and_numbers_compare_as_numbers() -> None:
    assert value("acc", {"strategy": ["layer_magnitude", "iter"]}, "count") == 5
    assert value("acc", {"seed": 1.0, "strategy": "layer_magnitude"}) == pytest.approx(97.4)
    assert value("acc", {"sparsity_requested": "0.9375", "seed": 1}, "count") == 2
    rows = frame(ROWS)
    assert rows["params_prunable"].dtype == "int64"
    gappy = frame([*ROWS, row(run_id="f", status="failed", params_prunable=None)])
    assert gappy["params_prunable"].dtype == "float64"  # a failed row has no counts
    spec = ValueSpec("p", "params_prunable", {"run_id": "g0"})
    assert fmt(compute_value(gappy, spec)) == "1000"  # still a count


def test_manifest_selection() -> None:
    rows = [
        row(run_id="aaa"),
        row(run_id="bbb-r1"),
        row(run_id="bbb"),
        row(run_id="old"),  # an earlier version's run: not in the manifest
        row(run_id="ccc", status="failed", error="RuntimeError: boom"),
        row(run_id="dense0", strategy="dense", dense_id="d0"),
        row(run_id="dense9", strategy="dense", dense_id="d9"),
    ]
    sel = select_manifest_rows(frame(rows), ["aaa", "bbb", "ccc", "ddd"])
    assert list(sel.rows["run_id"]) == ["aaa", "bbb-r1", "bbb", "dense0"]
    assert sel.failed == [
        "ccc: RuntimeError: boom",
        "ddd: no row written (see the sweep's output)",
    ]


# ------------------------------------------------------------------------ paper-block checks

PAPER: dict[str, Any] = {
    "citation": "Han, Pool, Tran, Dally 2015. Learning both Weights and Connections. NeurIPS.",
    "table": "Table 1, LeNet-300-100",
    "setting": "MNIST, LeNet-300-100",
    "tier": "cpu",
    "minutes": 6,
    "deviations": ["one seed"],
    "values": {
        "dense_err": {"metric": "error_dense", "where": {}, "agg": "mean"},
        "pruned_err": {"metric": "error", "where": {"round": 3}},
        "g16": {"metric": "acc", "where": {"strategy": "global_magnitude"}, "by": "seed"},
        "ratio": {"metric": "acc", "where": {"config.pruning.ratio": 0.5}},
    },
    "cells": [
        {
            "label": "error % at 12x",
            "paper": 1.59,
            "ours": "pruned_err",
            "pass": "pruned_err <= 2.0 and pruned_err <= dense_err + 0.2",
            "tolerance": "one seed",
        },
        {
            "label": "seeds",
            "paper": None,
            "ours": "count(g16)",
            "pass": "all(g16 > 0)",
            "tolerance": "ordering only",
        },
    ],
}


def mutate(path: str, new: Any) -> dict[str, Any]:
    block = copy.deepcopy(PAPER)
    *parents, last = path.split("/")
    node: Any = block
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if new is KeyError:
        del node[last]
    else:
        node[int(last) if isinstance(node, list) else last] = new
    return block


def test_good_block_validates() -> None:
    paper = check_paper(PAPER)
    assert paper.tier == "cpu" and paper.smoke == ["train.epochs=1", "finetune.epochs=1"]
    assert paper.values["g16"].by == "seed" and paper.cells[0].rule.startswith("pruned_err")


@pytest.mark.parametrize(
    ("path", "new", "message"),
    [
        ("tier", "tpu", r"paper\.tier='tpu' must be cpu or gpu"),
        ("minutes", 0, r"paper\.minutes=0 must be a positive number"),
        ("minutes", "six", r"paper\.minutes='six' is missing or invalid"),
        ("citation", KeyError, r"paper\.citation=None is missing or invalid"),
        ("deviations", "none", r"paper\.deviations='none' must be a list of strings"),
        ("smoke", [1], r"paper\.smoke=\[1\] must be a list of strings"),
        ("extra", 1, r"paper has unknown key 'extra'"),
        ("cells", [], r"paper\.cells=\[\] must be a non-empty list"),
        ("values/g16/metric", 3, r"paper\.values\.g16\.metric=3 is missing or not a name"),
        ("values/g16/metric", KeyError, r"paper\.values\.g16\.metric=None is missing"),
        ("values/g16/agg", "avg", r"paper\.values\.g16\.agg='avg' is unknown; choose one of"),
        ("values/g16/by", ["seed"], r"paper\.values\.g16\.by=\['seed'\] is not a column name"),
        ("values/g16/where", {1: 0.9}, r"where key=1 is not a column name"),
        ("values/g16/where", [], r"paper\.values\.g16\.where=\[\] must be a mapping"),
        ("values/g16/where/seed", {"a": 1}, r"where\.seed=\{'a': 1\} must be a number, a str"),
        ("values/g16/where/seed", [], r"where\.seed=\[\] must be a number, a string"),
        ("values/g16/wher", {}, r"paper\.values\.g16 has unknown key 'wher'"),
        ("values/sum", {"metric": "acc"}, r"value name 'sum'"),
        ("cells/0/pass", KeyError, r"paper\.cells\[0\]\.pass=None is missing or invalid"),
        ("cells/0/tolerance", KeyError, r"paper\.cells\[0\]\.tolerance=None is missing"),
        ("cells/0/paper", [1], r"paper\.cells\[0\]\.paper=\[1\] must be a number"),
        ("cells/1/ours", "count(g17)", r"cells\[1\]\.ours uses 'g17', which is not a value"),
        ("cells/1/pass", "g16.all()", r"cells\[1\]\.pass='g16.all\(\)': calling g16.all"),
    ],
)
def test_bad_block_is_one_line_naming_the_key(path: str, new: Any, message: str) -> None:
    with pytest.raises(SweeplabError, match=message) as info:
        check_paper(mutate(path, new))
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------- end to end: digits

SWEEP = {
    "defaults": [{"override /data": "digits"}, {"override /model": "mlp"}],
    "model": {"hidden": [16]},
    "train": {"epochs": 2},
    "finetune": {"epochs": 1},
    "measure": {"latency": False},
    "hydra": {"sweeper": {"params": {"pruning.sparsity": "0.5,0.8", "seed": 0}}},
}
CELLS = [
    {
        "label": "acc at 2x",
        "paper": 95.5,
        "ours": "acc50",
        "pass": "acc50 >= 0 and acc50 <= 100",
        "tolerance": "any accuracy: this checks the plumbing",
    },
    {
        "label": "surviving weights at 5x",
        "paper": "about 237",
        "ours": "nonzero",
        "pass": "235 <= nonzero <= 239",
        "tolerance": "one weight of rounding",
    },
    {
        "label": "runs of this sweep",
        "paper": None,
        "ours": "n",
        "pass": "n == 2",
        "tolerance": "older rows are not counted",
    },
    {
        "label": "pruned no better than dense, per seed",
        "paper": None,
        "ours": "by_seed",
        "pass": "sum(by_seed <= dense + 100) >= 1",
        "tolerance": "-",
    },
]


def paper_block(cells: list[dict[str, Any]], tier: str = "cpu") -> dict[str, Any]:
    return {
        "citation": "Nobody 2024. A tiny check. Nowhere.",
        "table": "Table 0",
        "setting": "digits, mlp [16], 2 sparsities",
        "tier": tier,
        "minutes": 0.5,
        "deviations": ["not a paper"],
        "values": {
            "acc50": {"metric": "acc", "where": {"sparsity_requested": 0.5}},
            "nonzero": {"metric": "weights_nonzero", "where": {"sparsity_requested": 0.8}},
            "n": {"metric": "acc", "agg": "count"},
            "dense": {"metric": "acc_dense"},
            "by_seed": {"metric": "acc", "by": "seed"},
        },
        "cells": cells,
    }


def write_experiment(folder: Path, name: str, body: dict[str, Any]) -> None:
    (folder / "experiment").mkdir(parents=True, exist_ok=True)
    text = "# @package _global_\n" + yaml.safe_dump(body, sort_keys=False)
    (folder / "experiment" / f"{name}.yaml").write_text(text)


def results_with_old_rows(res: Path) -> Path:
    """A results dir holding an older version's rows of experiment tiny (one ok, one failed)."""
    (res / "runs").mkdir(parents=True)
    for rid, status in (("0ld000000000", "ok"), ("0ld000000001", "failed")):
        old = row(run_id=rid, experiment="tiny", status=status, sparsity_requested=0.5)
        (res / "runs" / f"{rid}.json").write_text(json.dumps({**old, "acc_finetuned_test": 0.0}))
    return res


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A search-path folder of tiny experiments, and a results dir where `reproduce tiny` has
    run (over an older version's rows): the tests below reuse its runs in any order."""
    tmp = tmp_path_factory.mktemp("reproduce")
    conf = tmp / "conf"
    impossible = [*CELLS[:1], {**CELLS[0], "label": "impossible", "pass": "acc50 > 100"}]
    write_experiment(conf, "tiny", {**SWEEP, "paper": paper_block(CELLS)})
    write_experiment(conf, "tiny_fail", {**SWEEP, "paper": paper_block(impossible)})
    bad = copy.deepcopy(SWEEP)
    bad["hydra"]["sweeper"]["params"]["pruning.sparsity"] = "0.5,1.5"
    write_experiment(conf, "tiny_bad", {**bad, "paper": paper_block(CELLS)})
    gpu = {**SWEEP, "train": {"epochs": 7}, "paper": {**paper_block(CELLS, "gpu")}}
    gpu["paper"]["smoke"] = ["train.epochs=2"]  # = tiny's runs: the smoke run finds them done
    write_experiment(
        conf, "tiny_gpu", {**gpu, "defaults": [*SWEEP["defaults"], {"override /trainer": "gpu"}]}
    )
    write_experiment(conf, "nopaper", SWEEP)
    res = results_with_old_rows(tmp / "res")
    overrides = [f"hydra.searchpath=[file://{conf}]", f"paths.results_dir={res}"]
    assert main(["reproduce", "tiny", *overrides]) == 0
    return res, overrides


def test_reproduce_passes_and_writes_what_it_prints(lab, capfd, tmp_path) -> None:
    res = results_with_old_rows(tmp_path / "res")  # its own: the sweep runs here, not reused
    overrides = [lab[1][0], f"paths.results_dir={res}"]
    assert main(["reproduce", "tiny", *overrides]) == 0
    out, err = capfd.readouterr()
    table = (res / "tables" / "tiny.md").read_text()
    assert out.endswith(table), out[-2000:]
    assert table.startswith("## tiny\n\n- citation: Nobody 2024. A tiny check. Nowhere.\n")
    assert "- command: `sweeplab reproduce tiny 'hydra.searchpath=[file://" in table
    assert "  - not a paper\n" in table
    assert "| cell | paper | ours | pass rule | tolerance | result |" in table
    assert "| runs of this sweep | - | 2 | `n == 2` | older rows are not counted | PASS |" in table
    assert "| surviving weights at 5x | about 237 | 23" in table
    assert "| pruned no better than dense, per seed | - | {0: " in table
    assert table.endswith("4/4 cells pass\n") and "FAIL" not in table
    assert "- rows: the 2 ok row(s) of this sweep's 2 run(s) (older rows in" in table
    assert f"- torch threads: {torch.get_num_threads()} (every row)\n" in table
    assert "sweep: 2 ok, 0 skipped" in out + err  # the sweep's own output streams through
    assert not list(res.glob(".reproduce-*"))  # the manifest is removed


def test_impossible_rule_fails_and_reuses_finished_runs(lab, capfd) -> None:
    res, overrides = lab
    assert main(["reproduce", "tiny_fail", *overrides]) == 1
    out, err = capfd.readouterr()
    assert "sweep: 0 ok, 2 skipped" in out + err
    assert "| impossible | 95.5 |" in out and out.rstrip().endswith("1/2 cells pass")
    assert "| FAIL |" in out
    assert (res / "tables" / "tiny_fail.md").read_text() in out


def test_failed_run_exits_nonzero_and_writes_no_table(lab, capfd) -> None:
    res, overrides = lab
    assert main(["reproduce", "tiny_bad", *overrides]) == 1
    out, err = capfd.readouterr()
    assert "no row written" in err and "pruning.sparsity=1.5 is outside [0, 1)" in err
    assert "is not written" in err and not (res / "tables" / "tiny_bad.md").exists()


def test_gpu_tier_without_gpu_is_a_smoke_run(lab, capfd, monkeypatch) -> None:
    res, overrides = lab
    monkeypatch.setattr("sweeplab.reproduce.command._has_gpu", lambda: False)
    assert main(["reproduce", "tiny_gpu", *overrides]) == 0
    out, _ = capfd.readouterr()
    assert "smoke run (tier gpu, no GPU here): 2 runs ok, checks not evaluated" in out
    assert not (res / "tables" / "tiny_gpu.md").exists()


def test_no_run_uses_every_row_of_the_experiment(lab, capfd) -> None:
    res, overrides = lab
    assert main(["reproduce", "tiny", "--no-run", *overrides]) == 1
    out, _ = capfd.readouterr()
    assert "--no-run: no manifest, so rows of older versions of this experiment count too" in out
    assert "| runs of this sweep | - | 3 | `n == 2` |" in out  # 2 runs + the old ok row
    assert out.endswith((res / "tables" / "tiny.md").read_text())


def test_list_and_unknown_names(lab, capsys) -> None:
    _, overrides = lab
    assert main(["reproduce", "--list", *overrides]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "tier", "minutes", "citation"]
    mine = [line for line in lines if line.startswith("tiny")]
    assert [line.split()[:3] for line in mine] == [
        ["tiny", "cpu", "0.50"],
        ["tiny_bad", "cpu", "0.50"],
        ["tiny_fail", "cpu", "0.50"],
        ["tiny_gpu", "gpu", "0.50"],
    ]
    assert mine[0].endswith("  Nobody 2024") and len({line.index("Nobody") for line in mine}) == 1
    assert not any(line.startswith(("nopaper", "demo ")) for line in lines)
    assert main(["reproduce", "nosuch", *overrides]) == 2
    err = capsys.readouterr().err
    assert "'nosuch' is no experiment; experiments with a paper: block: " in err
    assert "tiny, tiny_bad, tiny_fail, tiny_gpu" in err
    assert main(["reproduce", "nopaper", *overrides]) == 2
    assert "'nopaper' has no paper: block" in capsys.readouterr().err
    assert main(["reproduce", "tiny", "-m", *overrides]) == 2
    assert "unknown option -m; reproduce takes --list, --no-run" in capsys.readouterr().err


def test_experiment_check_covers_paper_blocks(lab) -> None:
    """test_experiments.py's check on files with a paper: block (experiments/ may have none)."""
    from test_experiments import check_experiment

    _, overrides = lab
    folder = Path(overrides[0].split("file://", 1)[1].rstrip("]")) / "experiment"
    for name in ("tiny", "tiny_gpu"):
        check_experiment(folder / f"{name}.yaml", (overrides[0],))
    broken = folder.parent.parent / "broken" / "experiment"
    broken.mkdir(parents=True)
    paper = paper_block([{**CELLS[0], "pass": "acc51 > 0"}])
    write_experiment(broken.parent, "broken", {**SWEEP, "paper": paper})
    with pytest.raises(SweeplabError, match=r"cells\[0\]\.pass uses 'acc51', which is not a value"):
        check_experiment(broken / "broken.yaml", (f"hydra.searchpath=[file://{broken.parent}]",))


def test_percent_metrics_carry_no_float_noise_that_flips_a_rule_at_its_bound() -> None:
    # 100 * (1 - 0.981) is 1.9000000000000017 in floats: `error <= 1.9` would fail.
    assert DERIVED["error"]({"acc_finetuned_test": 0.981}) == 1.9
    assert DERIVED["error_dense"]({"acc_dense_test": 0.972}) == 2.8
    assert DERIVED["acc"]({"acc_finetuned_test": 0.9807}) == 98.07
    assert DERIVED["error_best_checkpoint"]({"acc_checkpoints_test": [0.97, 0.981]}) == 1.9


def test_thread_counts_flag_rows_of_mixed_thread_counts() -> None:
    """The same run id at 1 and 2 threads may differ (float summation order): a table says so."""
    assert thread_counts([2, 2]) == "2 (every row)"
    assert thread_counts([None, float("nan")]) is None  # rows older than the field
    assert thread_counts([2, None]) == "2 (1 row), not recorded (1 row)"
    mixed = thread_counts([2, 1, 2, None])
    assert mixed == (
        "1 (1 row), 2 (2 rows), not recorded (1 row): results can differ across thread counts"
    )


def test_paired_ordering_claim_prints_its_statistic() -> None:
    """Item 15: a pass rule states "global >= layer, paired, p < 0.05"; the cell shows p, n,
    the mean difference and its CI (scipy's one-sided ttest_rel is the reference)."""
    from scipy import stats

    g = pd.Series([97.6, 97.9, 97.1], index=pd.Index([0, 1, 2], name="seed"))
    lay = pd.Series([97.2, 97.5, 96.9, 90.0], index=pd.Index([0, 1, 2, 3], name="seed"))
    p = evaluate("paired_p(g, l)", {"g": g, "l": lay})
    expected = stats.ttest_rel([97.6, 97.9, 97.1], [97.2, 97.5, 96.9], alternative="greater")
    assert p == pytest.approx(expected.pvalue)  # seed 3 has no pair: left out
    assert fmt(p) == (
        f"p = {expected.pvalue:.3g} (paired t, one-sided, n = 3; mean diff +0.33 "
        "[+0.05, +0.62] 95% CI)"
    )
    assert evaluate("paired_p(g, l) < 0.05", {"g": g, "l": lay}) is True
    assert evaluate("paired_p(l, g) < 0.05", {"g": g, "l": lay}) is False  # one-sided
    same = evaluate("paired_p(g, g) < 0.05", {"g": g})
    assert same is False and fmt(evaluate("paired_p(g, g)", {"g": g})).startswith("p undefined")
    with pytest.raises(SweeplabError, match="paired_p.*by: seed"):
        evaluate("paired_p(1, 2)", {})
    with pytest.raises(SweeplabError, match="takes two values with by:, got 1"):
        evaluate("paired_p(g)", {"g": g})
