"""Per-layer sensitivity analysis (`sweeplab sensitivity`) and pruning.distribution=sensitivity.

One analysis of the digits MLP (3 layers x 2 rates) and one ordinary run share a results folder
(`mixed`): the rows, their skip on a re-run, the table view and the report's curves, and that
ordinary views, the report and export read the mixed folder as before. The allocation is
checked on its own (exact counts, insensitive layers first, optimal against a brute force) and
end to end on curves written as rows.
"""

from __future__ import annotations

import copy
import io
import json
import math
import shutil
from itertools import product
from pathlib import Path

import pandas as pd
import pytest

from conftest import rows_in
from sweeplab.pruning.allocation import lower_hull, predicted_drop, sensitivity_sparsities
from sweeplab.results import sensitivity, store
from sweeplab.results.row import ResultRow
from sweeplab.results.rows import load_rows

RATES = [0.3, 0.9]
LAYERS = {"net.1": 64 * 128, "net.3": 128 * 64, "net.5": 64 * 10}  # digits MLP [128, 64]
# One dense epoch: the dense model is trained once, then loaded from the cache.
QUICK = ["train.epochs=1", "measure.latency=false"]
ANALYSIS = [*QUICK, f"sensitivity.rates=[{','.join(map(str, RATES))}]"]


def _rows(results: Path) -> list[dict]:
    return [store.read_row(p) for p in rows_in(results)]


def _curve_rows(results: Path) -> list[dict]:
    return [r for r in _rows(results) if r["schedule"] == "sensitivity"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, cli) -> Path:
    """A results folder with one analysis (6 rows) and one ordinary run (1 row)."""
    base = tmp_path_factory.mktemp("mixed")
    results = base / "results"
    proc = cli(["sensitivity", f"paths.results_dir={results}", *ANALYSIS], base)
    assert proc.returncode == 0, proc.stderr
    assert "net.5: val drop (points) at rate 0.3:" in proc.stdout
    proc = cli(["run", f"paths.results_dir={results}", *QUICK, "finetune.epochs=0"], base)
    assert proc.returncode == 0, proc.stderr
    return results


def test_one_row_per_layer_and_rate_pruning_only_that_layer(mixed: Path) -> None:
    rows = _curve_rows(mixed)
    assert sorted((r["layer"], r["rate"]) for r in rows) == sorted(product(LAYERS, RATES))
    assert len({r["run_id"] for r in rows}) == 6 and len({r["dense_id"] for r in rows}) == 1
    for r in rows:
        assert r["status"] == "ok" and r["recovery"] == "none"
        assert r["sparsity_requested"] == r["rate"] == r["config"]["schedule"]["rate"]
        for key in ("acc_val", "acc_test", "acc_drop", "acc_drop_test"):
            assert math.isfinite(r[key])
        assert r["acc_drop"] == pytest.approx(r["acc_dense_val"] - r["acc_val"])
        assert r["acc_drop_test"] == pytest.approx(r["acc_dense_test"] - r["acc_test"])
        # Zeros counted in the pruned model: this layer at its rate, every other layer dense.
        n = LAYERS[r["layer"]]
        expected = {f"{name}.weight": 0.0 for name in LAYERS}
        expected[f"{r['layer']}.weight"] = round(r["rate"] * n) / n
        assert r["layer_sparsity"] == pytest.approx(expected)
        assert r["rate_achieved"] == pytest.approx(expected[f"{r['layer']}.weight"])
    # Pruning 90% of the 640-weight classifier alone costs accuracy: the curve is measured.
    drop = {(r["layer"], r["rate"]): r["acc_drop"] for r in rows}
    assert drop[("net.5", 0.9)] > 0


def test_rerun_skips_finished_points_and_redoes_a_missing_one(mixed: Path, cli) -> None:
    stamps = {p.name: p.stat().st_mtime_ns for p in rows_in(mixed)}
    proc = cli(["sensitivity", f"paths.results_dir={mixed}", *ANALYSIS], mixed.parent)
    assert proc.returncode == 0, proc.stderr
    assert "skip sensitivity of" in proc.stdout and "val drop" not in proc.stdout
    assert {p.name: p.stat().st_mtime_ns for p in rows_in(mixed)} == stamps
    # One point lost: only it is measured again, to the same values (fresh streams per point).
    gone = next(r for r in _curve_rows(mixed) if (r["layer"], r["rate"]) == ("net.3", 0.9))
    store.row_path(mixed, gone["run_id"]).unlink()
    proc = cli(["sensitivity", f"paths.results_dir={mixed}", *ANALYSIS], mixed.parent)
    assert proc.returncode == 0, proc.stderr
    assert "net.3: val drop (points) at rate 0.9:" in proc.stdout
    assert "net.1:" not in proc.stdout and "net.5:" not in proc.stdout
    again = store.read_row(store.row_path(mixed, gone["run_id"]))
    for key in ("acc_val", "acc_test", "acc_drop", "layer_sparsity"):
        assert again[key] == gone[key]


def test_table_view_shows_a_line_per_layer(mixed: Path, cli) -> None:
    proc = cli(["table", str(mixed), "--view", "sensitivity"], mixed.parent)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines()
             if line.startswith("| net.")}  # fmt: skip
    assert sorted(lines) == sorted(LAYERS)
    for r in _curve_rows(mixed):
        cells = [c.strip() for c in lines[r["layer"]].split("|")[1:-1]]
        assert cells[1] == f"{LAYERS[r['layer']]:,}"
        assert cells[2 + RATES.index(r["rate"])] == f"{100 * r['acc_drop']:.2f}"
    # csv holds the test split too, one line per (layer, rate), and no ordinary run.
    proc = cli(["table", str(mixed), "--view", "sensitivity", "--format", "csv"], mixed.parent)
    frame = pd.read_csv(io.StringIO(proc.stdout))
    assert len(frame) == 6 and frame["acc_drop_test"].notna().all()
    assert set(frame["layer"]) == set(LAYERS)


def test_ordinary_views_leave_sensitivity_rows_out(mixed: Path, cli) -> None:
    ordinary = [r["run_id"] for r in _rows(mixed) if r["schedule"] != "sensitivity"]
    assert len(ordinary) == 1
    proc = cli(["table", str(mixed), "--view", "points", "--format", "json"], mixed.parent)
    assert proc.returncode == 0, proc.stderr
    points = json.loads(proc.stdout)
    assert [p["strategy"] for p in points] == ["dense", "global_magnitude"]
    assert points[1]["run_ids"] == ordinary and points[1]["sparsity_requested"] == 0.9
    proc = cli(["table", str(mixed)], mixed.parent)
    assert proc.returncode == 0 and "net.1" not in proc.stdout and "| 0.3 " not in proc.stdout
    # The notebook API aggregates the same way.
    import sweeplab

    summary = sweeplab.summarize(sweeplab.load_rows(mixed))
    assert len(summary.points) == 2 and list(summary.runs["run_id"]) == ordinary


def test_report_draws_the_curves_beside_the_runs(mixed: Path, cli, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    proc = cli(["report", str(mixed), "-o", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert "digits / mlp: sensitivity to global_magnitude" in page
    assert all(f'<td class="txt">{layer}</td>' in page for layer in LAYERS)
    assert page.count('src="data:image/png;base64,') == 1
    for r in _curve_rows(mixed):
        assert f'<td class="num">{100 * r["acc_drop"]:.2f}</td>' in page
    data = page.split('id="sweeplab-data">')[1].split("</script>")[0]
    assert [run["id"] for run in json.loads(data)["runs"]] == [
        r["run_id"] for r in _rows(mixed) if r["schedule"] != "sensitivity"
    ]
    plots = out.parent / "report_plots"
    assert (plots / "sensitivity-digits_mlp_global_magnitude.png").stat().st_size > 0
    assert (plots / "sensitivity-digits_mlp_global_magnitude.svg").stat().st_size > 0


def test_the_plot_has_a_line_per_layer(mixed: Path) -> None:
    from sweeplab.results.sensitivity_report import figure

    frame = sensitivity.curve_frame(load_rows(mixed))
    ax = figure(frame, "t").axes[0]
    curves = {line.get_label(): line for line in ax.get_lines() if line.get_label() in LAYERS}
    assert sorted(curves) == sorted(LAYERS)
    for layer, line in curves.items():
        mine = frame[frame["layer"] == layer]
        assert list(line.get_xdata()) == [0.0, *RATES]
        assert list(line.get_ydata()) == pytest.approx([0.0, *(100 * mine["acc_drop"])])


def test_a_folder_of_sensitivity_rows_alone(mixed: Path, cli, tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    (alone / "runs").mkdir(parents=True)
    for r in _curve_rows(mixed):
        shutil.copy(store.row_path(mixed, r["run_id"]), alone / "runs")
    proc = cli(["table", str(alone)], tmp_path)
    assert proc.returncode == 2 and "--view sensitivity" in proc.stderr
    proc = cli(["report", str(alone), "-o", str(tmp_path / "r.html"), "--no-plots"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "r.html").read_text()
    assert "sensitivity to global_magnitude" in page and "net.5" in page
    assert not (tmp_path / "r_plots").exists()


def test_export_in_a_mixed_folder(mixed: Path, cli, tmp_path: Path) -> None:
    run = next(r for r in _rows(mixed) if r["schedule"] != "sensitivity")
    proc = cli(
        ["export", run["run_id"], str(tmp_path / "a"), "--results-dir", str(mixed)], tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert f"exported {run['run_id']} (saved weights)" in proc.stdout
    point = _curve_rows(mixed)[0]["run_id"]
    proc = cli(["export", point, str(tmp_path / "b"), "--results-dir", str(mixed)], tmp_path)
    assert proc.returncode == 2 and "is a sensitivity row" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "b").exists()


def test_a_channel_group_alone(mixed: Path, cli, tmp_path: Path) -> None:
    """neuron_l1: each group (a hidden layer's neurons) loses round(rate * size) neurons; only
    its own layer and the next one's inputs shrink."""
    proc = cli(["sensitivity", f"paths.results_dir={tmp_path}", f"paths.cache_dir={mixed}/cache",
                *QUICK, "pruning=neuron_l1", "sensitivity.rates=[0.5]"], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = {r["layer"]: r for r in _curve_rows(tmp_path)}
    assert sorted(rows) == ["net.1", "net.3"]  # the classifier's outputs stay
    # net.1: 64 of 128 neurons, each with 64 inputs, a bias and an output weight to 64 units.
    assert rows["net.1"]["params_removed"] == 64 * (64 + 1 + 64)
    assert rows["net.3"]["params_removed"] == 32 * (128 + 1 + 10)
    assert rows["net.1"]["layer_unit"] == "channels" and rows["net.1"]["layer_size"] == 128


def _curves_as_rows(mixed: Path, target: Path, drops: dict[str, list[float]]) -> None:
    """The mixed folder's analysis copied to target with other drops (rows are data)."""
    for r in _curve_rows(mixed):
        if r["strategy"] != "global_magnitude" or r["layer"] not in drops:
            continue
        record = json.loads(store.row_path(mixed, r["run_id"]).read_text())
        record["metrics"]["acc_drop"] = drops[r["layer"]][RATES.index(r["rate"])]
        store.write_row(target, ResultRow(**copy.deepcopy(record)))


def test_distribution_sensitivity_prunes_the_insensitive_layers(mixed: Path, cli) -> None:
    results = mixed.parent / "allocated"
    # net.1 loses much at any rate; net.3 nothing up to 0.9; net.5 little per weight.
    _curves_as_rows(mixed, results, {"net.1": [0.3, 0.6], "net.3": [0.0, 0.0],
                                     "net.5": [0.001, 0.002]})  # fmt: skip
    proc = cli(["run", f"paths.results_dir={results}", f"paths.cache_dir={mixed}/cache", *QUICK,
                "finetune.epochs=0", "pruning.distribution=sensitivity", "pruning.sparsity=0.5"],
               mixed.parent)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    row = next(r for r in _rows(results) if r["schedule"] != "sensitivity")
    layers = row["layer_sparsity"]
    total = sum(LAYERS.values())
    pruned = sum(layers[f"{k}.weight"] * n for k, n in LAYERS.items())
    assert round(pruned) == round(0.5 * total)  # the global target, to the weight
    # net.3 first (free up to 0.9), then net.5 (cheaper per weight), net.1 only the rest.
    one = 1 / 8192  # whole counts: the largest remainder moves a layer by one weight at most
    assert layers["net.3.weight"] == pytest.approx(0.9, abs=one)
    assert layers["net.5.weight"] == pytest.approx(0.9, abs=1 / 640)
    rest = (round(0.5 * total) - 0.9 * 8192 - 0.9 * 640) / 8192
    assert layers["net.1.weight"] == pytest.approx(rest, abs=one) and rest < 0.1


def test_distribution_sensitivity_without_curves_is_refused_before_training(
    mixed: Path, cli, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    args = [*QUICK, f"paths.cache_dir={cache}", "pruning.distribution=sensitivity"]
    proc = cli(["run", f"paths.results_dir={tmp_path / 'none'}", *args], tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "run `sweeplab sensitivity`" in proc.stderr
    # A layer without its curve: refused by the pruner's check, still before dense training.
    partial = tmp_path / "partial"
    _curves_as_rows(mixed, partial, {"net.1": [0.1, 0.2], "net.3": [0.1, 0.2]})
    proc = cli(["run", f"paths.results_dir={partial}", *args], tmp_path)
    assert proc.returncode == 2 and "no sensitivity curve for layer net.5" in proc.stderr
    assert not list(cache.rglob("*.pt")) and len(rows_in(partial)) == 4


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sensitivity.rates=[0,0.5]", "holds 0"),
        ("sensitivity.rates=[0.5,1.0]", "sensitivity.rates=1.0 is outside [0, 1)"),
        ("sensitivity.rates=[]", "is not a list of rates"),
        ("pruning=rigl", "trains sparse from initialization"),
        ("pruning.pattern=2:4 pruning.sparsity=null", "N:M pattern"),
    ],
)
def test_refusals_are_one_line(override: str, message: str, cli, tmp_path: Path) -> None:
    args = [f"paths.results_dir={tmp_path}", *QUICK, *override.split()]
    proc = cli(["sensitivity", *args], tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not rows_in(tmp_path)


# -- the allocation on its own ------------------------------------------------------------


def test_allocation_meets_the_target_exactly() -> None:
    shapes = {"a.weight": (300, 7), "b.weight": (13, 11), "c.weight": (5, 3, 3, 3)}
    curves = {n: [(r, (i + 1) * r**2) for r in (0.2, 0.5, 0.8, 0.95)] for i, n in enumerate(shapes)}
    total = sum(math.prod(s) for s in shapes.values())
    for sparsity in (0.01, 0.33, 0.5, 0.777, 0.9):
        s = sensitivity_sparsities(shapes, sparsity, curves)
        counts = {n: s[n] * math.prod(shapes[n]) for n in shapes}
        assert all(abs(c - round(c)) < 1e-6 for c in counts.values())
        assert sum(round(c) for c in counts.values()) == round(sparsity * total)


def test_allocation_is_optimal_on_convex_curves() -> None:
    """Two layers of 100 weights, convex curves: no split of the target on a 1% grid has a
    smaller predicted drop; uniform has a larger one."""
    shapes = {"a.weight": (100,), "b.weight": (100,)}
    curves = {"a.weight": [(r, 2 * r**2) for r in (0.25, 0.5, 0.75, 0.95)],
              "b.weight": [(r, r**3) for r in (0.25, 0.5, 0.75, 0.95)]}  # fmt: skip
    s = sensitivity_sparsities(shapes, 0.6, curves)
    best = predicted_drop(s, curves)
    for k in range(25, 96):
        split = {"a.weight": (120 - k) / 100, "b.weight": k / 100}
        if split["a.weight"] <= 0.95:
            assert best <= predicted_drop(split, curves) + 1e-12
    assert best < predicted_drop({"a.weight": 0.6, "b.weight": 0.6}, curves)
    assert s["b.weight"] > s["a.weight"]


def test_allocation_refusals_name_the_fix() -> None:
    from sweeplab.errors import SweeplabError

    shapes = {"a.weight": (10,), "b.weight": (10,)}
    with pytest.raises(SweeplabError, match="no sensitivity curve for layer b"):
        sensitivity_sparsities(shapes, 0.5, {"a.weight": [(0.5, 0.1)]})
    with pytest.raises(SweeplabError, match=r"reach 10 .*sensitivity.rates"):
        sensitivity_sparsities(shapes, 0.6, {n: [(0.5, 0.1)] for n in shapes})


def test_lower_hull_bridges_dips() -> None:
    assert lower_hull([(0.5, 0.4), (0.25, 0.3), (0.75, 0.5), (1e-9, 0.0)])[0] == (0.0, 0.0)
    assert lower_hull([(0.25, 0.3), (0.5, 0.1), (0.75, 0.5)]) == [(0.0, 0.0), (0.5, 0.1),
                                                                  (0.75, 0.5)]  # fmt: skip


def test_reproduce_reads_no_sensitivity_rows(mixed: Path) -> None:
    """`reproduce --no-run` takes every ok row of an experiment: not its sensitivity rows."""
    from sweeplab.reproduce.selection import ok_rows as _ok

    rows = load_rows(mixed)
    assert len(rows) == 7 and list(_ok(rows)["schedule"]) == ["oneshot"]
