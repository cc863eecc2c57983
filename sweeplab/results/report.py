"""`sweeplab report`: one self-contained HTML dashboard (offline, no CDN) plus PNG/SVG plots.

The page embeds its data as JSON (dashboard.py) and draws SVG charts with a little vanilla
JavaScript: pickers choose the x axis, the y metric and what makes a line, filters take any
varying key, hover shows a config, clicking a run shows its per-layer sparsity; the tables are
rendered here. Every user-provided string reaches the page either
HTML-escaped or as JSON read through textContent; never as markup.
"""

from __future__ import annotations

import html
import importlib.resources
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sweeplab.errors import SweeplabError
from sweeplab.results import store
from sweeplab.results.analysis import Summary
from sweeplab.results.dashboard import payload
from sweeplab.results.filters import filter_rows
from sweeplab.results.layout import Table
from sweeplab.results.series import is_dense
from sweeplab.results.tables import blocks


@dataclass
class Written:
    """What write_report wrote."""

    html: Path
    plot_dir: Path
    plots: list[Path] = field(default_factory=list)
    layer_run: str | None = None


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no `</script>`, `<!--` or line separators."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(raw, escaped)
    return text


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def table_html(t: Table) -> str:
    """A table as an HTML figure; rows carry their strategy (the page's filter reads it)."""
    head = "".join(
        f'<th class="{"num" if a == "r" else "txt"}">{_e(h)}</th>'
        for h, a in zip(t.headers, t.align, strict=True)
    )
    body = []
    for i, row in enumerate(t.rows):
        strategy = t.strategies[i] if t.strategies else ""
        cells = "".join(
            f'<td class="{"num" if a == "r" else "txt"}">{_e(c)}</td>'
            for c, a in zip(row, t.align, strict=True)
        )
        body.append(f'<tr data-strategy="{_e(strategy)}">{cells}</tr>')
    note = f'<p class="note">{_e(t.note)}</p>' if t.note else ""
    return (
        f"<figure><figcaption>{_e(t.caption)}</figcaption><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>{note}</figure>"
    )


def pick_layer_run(summary: Summary, rows: pd.DataFrame, run_id: str | None) -> str | None:
    """The run for the per-layer plot: run_id if given, else the most compressed run on the
    accuracy-vs-params front."""
    if run_id is not None:
        if run_id not in set(rows["run_id"]):
            raise SweeplabError(
                f"--run {run_id} is not among the selected runs; pick a run_id from "
                "`sweeplab table --view points --format json` (or drop --where filters)"
            )
        return run_id
    pts = summary.points
    pruned = pts[~is_dense(pts["series"])]
    front = pruned[pruned["pareto"]]
    front = front if len(front) else pruned
    if front.empty:
        return None
    return str(front.sort_values("compression").iloc[-1]["run_ids"][0])


def render_html(summary: Summary, data: dict[str, Any], plot_files: list[str],
                pivot: str = "sparsity", baseline: str | None = None,
                extra: str = "") -> str:  # fmt: skip
    """The whole page: styles, tables, embedded data and script, nothing fetched; `extra`:
    sections after the tables (the sensitivity section)."""
    sections = []
    for i, block in enumerate(blocks(summary, "all", pivot, baseline)):
        tables = "".join(table_html(t) for t in block.tables)
        sections.append(
            f'<section class="group" data-data="{_e(block.values["data"])}" data-group="{i}">'
            f"<h2>{_e(block.title)}</h2>{tables}</section>"
        )
    links = "".join(f'<li><a href="{_e(p)}">{_e(p)}</a></li>' for p in plot_files)
    static = (
        f'<section><h2>Static plots</h2><p class="note">PNG and SVG files written next to this '
        f"page (links work while the folder stays beside it)</p><ul>{links}</ul></section>"
        if plot_files
        else ""
    )
    title = _e(data["title"])
    return PAGE.format(
        title=title,
        n_runs=len(data["runs"]),
        n_groups=len(data["groups"]),
        sections="".join(sections) + extra,
        static=static,
        data=script_json(data),
        style=asset("report.css"),
        script=asset("report.js"),
    )


def write_report(
    summary: Summary,
    rows: pd.DataFrame,
    results_dir: str | Path,
    output: str | Path,
    *,
    layer_run: str | None = None,
    title: str | None = None,
    plots: bool = True,
    pivot: str = "sparsity",
    baseline: str | None = None,
    extra: tuple[str, list[Path]] = ("", []),
) -> Written:
    """Write the HTML dashboard and, next to it, the PNG/SVG plots.

    Args:
        summary: from analysis.summarize over rows.
        rows: the selected rows (load_rows, filtered).
        results_dir: where the row files are (per-layer sparsity is read from them).
        output: the HTML file; plots go to <output stem>_plots/ beside it.
        layer_run: run_id for the per-layer plot (default: picked by pick_layer_run).
        title: page title (default: the results dir).
        plots: write the PNG/SVG files.
        pivot: pivot table columns, sparsity or compression.
        baseline: also show the paired comparison against this strategy (--view compare).
        extra: more sections' HTML and the plot files they wrote (the sensitivity section).
    Returns:
        Written: the paths.
    """
    html_path = Path(output)
    if html_path.is_dir():
        raise SweeplabError(f"-o {output} is a directory; give a file name, e.g. -o report.html")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    ok = filter_rows(rows, ["status=ok"])  # summary has points, so some row is ok
    chosen = pick_layer_run(summary, ok, layer_run)
    layers = {}
    for rid in summary.runs["run_id"]:
        path = store.row_path(results_dir, rid)
        layers[rid] = store.read_row(path).get("layer_sparsity") if path.exists() else None
    data = payload(summary, title or f"sweeplab: {results_dir}", chosen, layers)
    plot_dir = plot_folder(html_path)
    files: list[Path] = list(extra[1])
    if plots:
        from sweeplab.results.plots import write_plots

        run = next((r for r in data["runs"] if r["id"] == chosen), None)
        layer_row = run and {
            "run_id": chosen,
            "layer_sparsity": run["layers"],
            "strategy": data["series"][run["s"]]["name"],
            "sparsity_requested": run["sreq"],
        }
        files += write_plots(summary, ok, plot_dir, layer_row, [g["title"] for g in data["groups"]])
    rel = [str(p.relative_to(html_path.parent)) for p in files]
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text(render_html(summary, data, rel, pivot, baseline, extra[0]), encoding="utf-8")
    tmp.replace(html_path)  # readers never see half a page; mode from the umask, as for plots
    return Written(html_path, plot_dir, files, chosen)


def plot_folder(output: str | Path) -> Path:
    """Where a report written to `output` puts its plot files: <output stem>_plots/ beside it."""
    return Path(output).parent / f"{Path(output).stem}_plots"


def asset(name: str) -> str:
    """The text of a file in sweeplab/results/report_assets/ (package data), inlined in a page.

    report.css styles the page; report.js is its script: vanilla ES2017, no dependencies. The
    script records what it drew (series per chart) and any error in <body> data attributes,
    which the end-to-end test reads from the DOM.
    """
    path = importlib.resources.files("sweeplab.results") / "report_assets" / name
    return path.read_text(encoding="utf-8")


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>
{style}</style></head>
<body data-ready="0">
<header><h1>{title}</h1><p>{n_runs} runs in {n_groups} group(s). Pick the axes and what
makes a line; filters apply to the charts (strategy and dataset to the tables too). Hover a
point or a legend entry for its config; click a run (small dot) for its per-layer sparsity.</p>
</header>
<div id="controls"><label>x <select id="pick-x"></select></label>
<label>y <select id="pick-y"></select></label>
<label>lines <select id="pick-group"></select></label></div>
<div id="filters"></div>
<main><div id="charts" class="grid"></div>
{sections}{static}</main><div id="tip"></div>
<script type="application/json" id="sweeplab-data">{data}</script>
<script>
{script}</script>
</body></html>
"""
