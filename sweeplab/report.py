"""`sweeplab report`: one self-contained HTML dashboard (offline, no CDN) plus PNG/SVG plots.

The page embeds its data as JSON and draws SVG charts with a little vanilla JavaScript: hover
shows a run's config, clicking a run shows its per-layer sparsity, and strategy and dataset
filters apply to charts and tables alike. Every user-provided string reaches the page either
HTML-escaped or as JSON read through textContent; never as markup.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sweeplab import store
from sweeplab.analysis import Summary, Table, blocks
from sweeplab.errors import SweeplabError


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


def _clean(value: Any) -> Any:
    """NaN and numpy scalars to JSON-ready values."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _table_html(t: Table) -> str:
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
    front = pts[(pts["strategy"] != "dense") & pts["pareto"]]
    front = front if len(front) else pts[pts["strategy"] != "dense"]
    if front.empty:
        return None
    return str(front.sort_values("compression").iloc[-1]["run_ids"][0])


def payload(summary: Summary, rows: pd.DataFrame, results_dir: str | Path, title: str,
            layer_run: str | None) -> dict[str, Any]:  # fmt: skip
    """The data the page's script draws from (plain JSON-ready containers)."""
    from sweeplab.plots import colors

    pts = summary.points
    groups = list(pts.groupby(summary.groups, dropna=False, sort=True).groups)
    group_of = {key if isinstance(key, tuple) else (key,): i for i, key in enumerate(groups)}
    found = blocks(summary, "points")
    names = [s for s in dict.fromkeys(pts["series"]) if s not in set(pts.loc[pts["strategy"]
             == "dense", "series"])]  # fmt: skip
    palette = colors(names)
    series = [
        {"name": n, "strategy": str(pts.loc[pts["series"] == n, "strategy"].iloc[0]),
         "color": palette[n]} for n in names
    ]  # fmt: skip
    index = {n: i for i, n in enumerate(names)}
    out_points, run_series = [], {}
    for r in pts.to_dict("records"):
        g = group_of[tuple(r[k] for k in summary.groups)]
        if r["strategy"] == "dense":
            continue
        s = index[r["series"]]
        out_points.append({
            "g": g, "s": s, "c": _clean(r["compression"]), "sp": _clean(r.get("speedup")),
            "acc": _clean(r["acc"]), "std": _clean(r["acc_std"]),
            "accb": _clean(r["acc_pruned"]), "stdb": _clean(r["acc_pruned_std"]),
            "n": _clean(r["n"]), "sreq": _clean(r["sparsity_requested"]),
            "sach": _clean(r["sparsity"]), "runs": list(r["run_ids"]),
        })  # fmt: skip
        run_series.update({rid: (g, s) for rid in r["run_ids"]})
    dense = []
    for r in summary.series_dense.to_dict("records"):
        key = tuple(r[k] for k in summary.groups)
        if key in group_of and r["series"] in index:
            dense.append({"g": group_of[key], "s": index[r["series"]], "acc": _clean(r["acc"]),
                          "std": _clean(r["acc_std"]), "n": _clean(r["n"])})  # fmt: skip
    config_cols = [c for c in rows.columns if "." in c]
    runs = []
    for r in rows[rows["run_id"].isin(run_series)].to_dict("records"):
        g, s = run_series[r["run_id"]]
        path = store.row_path(results_dir, r["run_id"])
        layers = store.read_row(path).get("layer_sparsity") or {} if path.exists() else {}
        runs.append({
            "id": r["run_id"], "g": g, "s": s, "seed": _clean(r.get("seed")),
            "c": _clean(r.get("compression")), "acc": _clean(r.get("acc_finetuned_test")),
            "accb": _clean(r.get("acc_pruned_test")), "dense": _clean(r.get("acc_dense_test")),
            "sreq": _clean(r.get("sparsity_requested")),
            "sach": _clean(r.get("sparsity_achieved")), "sp": _clean(r.get("speedup_theoretical")),
            "config": {k: _clean(r[k]) for k in config_cols if _clean(r[k]) is not None},
            "layers": {str(k): _clean(v) for k, v in layers.items()},
        })  # fmt: skip
    return {
        "title": title,
        "groups": [
            {"title": b.title, "data": str(b.values["data"]), "model": str(b.values["model"])}
            for b in found
        ],
        "series": series,
        "strategies": sorted({s["strategy"] for s in series}),
        "datasets": sorted({str(b.values["data"]) for b in found}),
        "points": out_points,
        "dense": dense,
        "runs": runs,
        "layerRun": layer_run,
        "delta": summary.delta,
        "costs": summary.costs,
    }


def render_html(summary: Summary, data: dict[str, Any], plot_files: list[str],
                pivot: str = "sparsity") -> str:  # fmt: skip
    """The whole page: styles, tables, embedded data and script, nothing fetched."""
    sections = []
    for i, block in enumerate(blocks(summary, "all", pivot)):
        tables = "".join(_table_html(t) for t in block.tables)
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
        sections="".join(sections),
        static=static,
        data=script_json(data),
        style=STYLE,
        script=SCRIPT,
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
    Returns:
        Written: the paths.
    """
    html_path = Path(output)
    if html_path.is_dir():
        raise SweeplabError(f"-o {output} is a directory; give a file name, e.g. -o report.html")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    ok = rows[rows["status"] == "ok"]
    chosen = pick_layer_run(summary, ok, layer_run)
    data = payload(summary, ok, results_dir, title or f"sweeplab: {results_dir}", chosen)
    plot_dir = html_path.parent / f"{html_path.stem}_plots"
    files: list[Path] = []
    if plots:
        from sweeplab.plots import write_plots

        run = next((r for r in data["runs"] if r["id"] == chosen), None)
        layer_row = run and {
            "run_id": chosen,
            "layer_sparsity": run["layers"],
            "strategy": data["series"][run["s"]]["name"],
            "sparsity_requested": run["sreq"],
        }
        files = write_plots(summary, ok, plot_dir, layer_row, [g["title"] for g in data["groups"]])
    rel = [str(p.relative_to(html_path.parent)) for p in files]
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text(render_html(summary, data, rel, pivot), encoding="utf-8")
    tmp.replace(html_path)  # readers never see half a page; mode from the umask, as for plots
    return Written(html_path, plot_dir, files, chosen)


STYLE = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
background:#f6f7f9}
header{background:#1f2937;color:#fff;padding:12px 20px}header h1{margin:0;font-size:20px}
header p{margin:2px 0 0;color:#cbd5e1;font-size:12px}
#filters{display:flex;gap:24px;flex-wrap:wrap;padding:10px 20px;background:#fff;
border-bottom:1px solid #e5e7eb}#filters fieldset{border:0;margin:0;padding:0}
#filters legend{font-weight:600;font-size:12px;color:#555}#filters label{margin-right:10px;
white-space:nowrap}
main{padding:12px 20px}.grid{display:grid;gap:12px;
grid-template-columns:repeat(auto-fill,minmax(580px,1fr))}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:8px 10px}
.card h3{margin:0 0 4px;font-size:14px}
.legend{font-size:12px;display:flex;flex-wrap:wrap;gap:4px 12px}
.legend i{display:inline-block;width:14px;height:3px;margin-right:4px;vertical-align:middle}
svg.chart{width:100%;height:auto;max-width:600px}svg text{font:11px system-ui,sans-serif}
section.group{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:4px 12px;
margin:12px 0;overflow-x:auto}table{border-collapse:collapse;font-size:12px;margin:4px 0}
th,td{padding:2px 8px;border-bottom:1px solid #eee;white-space:nowrap;text-align:left}
th{background:#f3f4f6}.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:8px 0}figcaption{font-weight:600;font-size:12px}
.note{color:#666;font-size:12px;margin:2px 0}
#tip{position:fixed;display:none;pointer-events:none;background:#111827;color:#f9fafb;
font:11px/1.35 ui-monospace,monospace;padding:6px 8px;border-radius:4px;white-space:pre;
max-width:520px;overflow:hidden;z-index:10}
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{style}</style></head>
<body data-ready="0">
<header><h1>{title}</h1><p>{n_runs} runs in {n_groups} group(s). Hover a point for its
config; click a run (small dot) for its per-layer sparsity.</p></header>
<div id="filters"><fieldset id="f-strategy"><legend>strategy</legend></fieldset>
<fieldset id="f-data"><legend>dataset</legend></fieldset></div>
<main><div id="charts" class="grid"></div>
{sections}{static}</main><div id="tip"></div>
<script type="application/json" id="sweeplab-data">{data}</script>
<script>{script}</script>
</body></html>
"""

# The page's script: vanilla ES2017, no dependencies. It records what it drew (series per chart)
# and any error in <body> data attributes, which the end-to-end test reads from the DOM.
SCRIPT = r"""
(function () {
  "use strict";
  var errors = [];
  function flushErrors() { document.body.setAttribute("data-errors", JSON.stringify(errors)); }
  window.addEventListener("error", function (e) { errors.push(String(e.message)); flushErrors(); });
  var consoleError = console.error;
  console.error = function () {
    errors.push(Array.prototype.map.call(arguments, String).join(" "));
    flushErrors();
    consoleError.apply(console, arguments);
  };
  flushErrors();

  var D = JSON.parse(document.getElementById("sweeplab-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var tip = document.getElementById("tip");
  var counts = {};
  var state = { strategies: new Set(D.strategies), datasets: new Set(D.datasets), run: D.layerRun };
  var layersCard = null;
  var runsById = {};
  D.runs.forEach(function (r) { runsById[r.id] = r; });

  function svg(tag, attrs, parent) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }
  function html(tag, text, parent, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }
  function num(v, d) { return v === null || v === undefined ? "—" : Number(v).toFixed(d); }
  function pct(v) { return v === null || v === undefined ? "—" : (100 * v).toFixed(2); }
  function showTip(ev, lines) {
    tip.textContent = lines.join("\n");
    tip.style.display = "block";
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    if (x + w > window.innerWidth) x = Math.max(0, ev.clientX - w - 14);
    if (y + h > window.innerHeight) y = Math.max(0, window.innerHeight - h - 4);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  function bindTip(node, lines) {
    node.addEventListener("mousemove", function (ev) { showTip(ev, lines()); });
    node.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  }
  function runLines(r) {
    var s = D.series[r.s];
    var out = ["run " + r.id, "series: " + s.name, "data/model: " + D.groups[r.g].title,
      "seed: " + r.seed, "sparsity requested " + num(r.sreq, 4) + ", achieved " + num(r.sach, 4),
      "compression: " + num(r.c, 2) + "x",
      "acc %: dense " + pct(r.dense) + " -> pruned " + pct(r.accb) + " -> finetuned " + pct(r.acc),
      "config:"];
    Object.keys(r.config).sort().forEach(function (k) {
      out.push("  " + k + " = " + r.config[k]);
    });
    return out;
  }
  function pointLines(p) {
    var s = D.series[p.s];
    return ["series: " + s.name, "data/model: " + D.groups[p.g].title,
      "sparsity requested " + num(p.sreq, 4) + ", achieved " + num(p.sach, 4),
      "compression: " + num(p.c, 2) + "x" + (p.sp ? ", FLOP speedup " + num(p.sp, 2) + "x" : ""),
      "acc % after finetune: " + pct(p.acc) + " ± " + pct(p.std) + " (n=" + p.n + ")",
      "acc % before finetune: " + pct(p.accb) + " ± " + pct(p.stdb),
      "runs: " + p.runs.join(" "), "hover a small dot for one run's config"];
  }
  function niceTicks(lo, hi, n) {
    var span = hi - lo || Math.abs(hi) || 1;
    var step = Math.pow(10, Math.floor(Math.log10(span / n)));
    [1, 2, 5, 10].some(function (m) {
      if (span / (step * m) > n) return false;
      step *= m;
      return true;
    });
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) {
      out.push(+t.toFixed(10));
    }
    return out;
  }
  function finite(v) { return typeof v === "number" && isFinite(v); }

  // spec: {id, title, xlabel, ylabel, xlog, diag, count,
  //        lines: [{name, color, dash, band, pts: [{x, y, lo, hi, tip}]}],
  //        dots: [{x, y, color, tip, click}]}
  function chart(parent, spec) {
    var W = 580, H = 330, L = 52, R = 14, T = 26, B = 40;
    var xs = [], ys = [];
    spec.lines.forEach(function (l) { l.pts.forEach(function (p) {
      if (finite(p.x) && finite(p.y)) { xs.push(p.x); ys.push(p.y);
        if (finite(p.lo)) ys.push(p.lo); if (finite(p.hi)) ys.push(p.hi); } }); });
    spec.dots.forEach(function (d) {
      if (finite(d.x) && finite(d.y)) { xs.push(d.x); ys.push(d.y); }
    });
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", "data-chart": spec.id,
      role: "img" }, parent);
    svg("text", { x: L, y: 16, "font-weight": "600" }, root).textContent = spec.title;
    if (!xs.length) {
      svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#888" }, root).textContent =
        "nothing selected";
      counts[spec.id] = 0;
      root.setAttribute("data-series", "0");
      return root;
    }
    var fx = spec.xlog ? function (v) { return Math.log2(v); } : function (v) { return v; };
    var x0 = Math.min.apply(null, xs.map(fx)), x1 = Math.max.apply(null, xs.map(fx));
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (spec.diag) { x0 = Math.min(x0, y0); y0 = x0; x1 = Math.max(x1, y1); y1 = x1; }
    var px = (x1 - x0) * 0.04 || 0.5, py = (y1 - y0) * 0.06 || 1;
    x0 -= px; x1 += px; y0 -= py; y1 += py;
    function sx(v) { return L + (fx(v) - x0) / (x1 - x0) * (W - L - R); }
    function sy(v) { return H - B - (v - y0) / (y1 - y0) * (H - T - B); }
    var axis = svg("g", { stroke: "#e5e7eb" }, root);
    var xt = spec.xlog ? [] : niceTicks(x0, x1, 6);
    if (spec.xlog) for (var e = Math.ceil(x0); e <= Math.floor(x1); e++) xt.push(Math.pow(2, e));
    xt.forEach(function (t) {
      var X = sx(t);
      svg("line", { x1: X, x2: X, y1: T, y2: H - B }, axis);
      svg("text", { x: X, y: H - B + 14, "text-anchor": "middle", fill: "#444", stroke: "none" },
        root).textContent = spec.xlog ? t + "x" : +t.toFixed(4);
    });
    niceTicks(y0, y1, 6).forEach(function (t) {
      var Y = sy(t);
      svg("line", { x1: L, x2: W - R, y1: Y, y2: Y }, axis);
      svg("text", { x: L - 4, y: Y + 4, "text-anchor": "end", fill: "#444" }, root).textContent =
        +t.toFixed(4);
    });
    svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none",
      stroke: "#9ca3af" }, root);
    svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, root).textContent =
      spec.xlabel;
    svg("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle",
      transform: "rotate(-90 12 " + (T + H - B) / 2 + ")" }, root).textContent = spec.ylabel;
    if (spec.diag) {
      svg("line", { x1: sx(x0), y1: sy(x0), x2: sx(x1), y2: sy(x1), stroke: "#9ca3af",
        "stroke-dasharray": "2 3" }, root);
    }
    var series = 0;
    spec.lines.forEach(function (l) {
      var pts = l.pts.filter(function (p) { return finite(p.x) && finite(p.y); });
      if (!pts.length) return;
      if (!l.dash) series += 1;
      if (l.band) {
        var upper = pts.map(function (p) {
          return sx(p.x) + "," + sy(finite(p.hi) ? p.hi : p.y);
        });
        var lower = pts.slice().reverse().map(function (p) {
          return sx(p.x) + "," + sy(finite(p.lo) ? p.lo : p.y);
        });
        svg("polygon", { points: upper.concat(lower).join(" "), fill: l.color, "fill-opacity": 0.13,
          stroke: "none" }, root);
      }
      svg("polyline", { points: pts.map(function (p) { return sx(p.x) + "," + sy(p.y); }).join(" "),
        fill: "none", stroke: l.color, "stroke-width": l.dash ? 1.2 : 2,
        "stroke-dasharray": l.dash ? "5 4" : "none", "stroke-opacity": l.dash ? 0.75 : 1,
        "data-series-name": l.name }, root);
      pts.forEach(function (p) {
        var c = svg("circle", { cx: sx(p.x), cy: sy(p.y), r: l.dash ? 3 : 4.5, class: "pt",
          fill: l.dash ? "#fff" : l.color, stroke: l.color, "stroke-width": 1.5 }, root);
        if (p.tip) bindTip(c, p.tip);
      });
    });
    spec.dots.forEach(function (d) {
      if (!(finite(d.x) && finite(d.y))) return;
      var c = svg("circle", { cx: sx(d.x), cy: sy(d.y), r: 2.6, fill: d.color, "fill-opacity": 0.55,
        stroke: "none", class: "run" }, root);
      bindTip(c, d.tip);
      if (d.click) { c.style.cursor = "pointer"; c.addEventListener("click", d.click); }
    });
    var n = spec.count !== undefined ? spec.count : series;
    counts[spec.id] = n;
    root.setAttribute("data-series", String(n));
    return root;
  }
  function legend(parent, items) {
    var box = html("div", null, parent, "legend");
    items.forEach(function (it) {
      var span = html("span", null, box);
      var sw = html("i", null, span);
      sw.style.background = it.color;
      span.appendChild(document.createTextNode(it.name));
    });
  }
  function visibleSeries(s) { return state.strategies.has(s.strategy); }
  function runDot(r, y, x) {
    var s = D.series[r.s];
    return { x: x, y: y, color: s.color, tip: function () { return runLines(r); },
      click: function () { state.run = r.id; drawLayers(); } };
  }

  function accuracyChart(card, g, key, id, title, xlabel) {
    var lines = [], items = [];
    D.series.forEach(function (s, si) {
      if (!visibleSeries(s)) return;
      var pts = D.points.filter(function (p) { return p.g === g && p.s === si && finite(p[key]); })
        .sort(function (a, b) { return a[key] - b[key]; });
      if (!pts.length) return;
      var dense = D.dense.filter(function (d) { return d.g === g && d.s === si; })[0];
      var head = dense ? [{ x: 1, y: 100 * dense.acc, lo: 100 * (dense.acc - dense.std),
        hi: 100 * (dense.acc + dense.std), tip: function () {
          return ["series: " + s.name, "own dense models: " + pct(dense.acc) + " ± " +
            pct(dense.std) + " (n=" + dense.n + ")"];
        } }] : [];
      lines.push({ name: s.name, color: s.color, band: true, pts: head.concat(pts.map(function (p) {
        return { x: p[key], y: 100 * p.acc, lo: 100 * (p.acc - p.std), hi: 100 * (p.acc + p.std),
          tip: function () { return pointLines(p); } }; })) });
      lines.push({ name: s.name + " (before finetune)", color: s.color, dash: true,
        pts: head.map(function (h) { return { x: h.x, y: h.y }; }).concat(pts.map(function (p) {
          return { x: p[key], y: 100 * p.accb, tip: function () { return pointLines(p); } };
        })) });
      items.push({ name: s.name, color: s.color });
    });
    var dots = D.runs.filter(function (r) { return r.g === g && visibleSeries(D.series[r.s]) &&
      finite(key === "c" ? r.c : r.sp); }).map(function (r) {
        return runDot(r, 100 * r.acc, key === "c" ? r.c : r.sp); });
    chart(card, { id: id, title: title, xlabel: xlabel, ylabel: "test accuracy %", xlog: true,
      lines: lines, dots: dots });
    legend(card, items);
  }

  function drawLayers() {
    var card = layersCard;
    card.textContent = "";
    var r = runsById[state.run];
    html("h3", "Per-layer sparsity" + (r ? " of run " + r.id : ""), card);
    if (!r || !Object.keys(r.layers).length) {
      html("p", "Click a run (small dot) in a chart to see its per-layer sparsity.", card, "note");
      counts["layers"] = 0;
      return;
    }
    html("p", D.series[r.s].name + " · " + D.groups[r.g].title + " · requested " + num(r.sreq, 4) +
      " · achieved " + num(r.sach, 4), card, "note");
    var names = Object.keys(r.layers);
    var W = 580, row = 16, L = 200, T = 8, H = T + names.length * row + 24;
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart",
      "data-chart": "layers" }, card);
    [0, 0.25, 0.5, 0.75, 1].forEach(function (t) {
      var X = L + t * (W - L - 20);
      svg("line", { x1: X, x2: X, y1: T, y2: H - 20, stroke: "#e5e7eb" }, root);
      svg("text", { x: X, y: H - 6, "text-anchor": "middle", fill: "#444" }, root).textContent = t;
    });
    names.forEach(function (n, i) {
      var v = r.layers[n] || 0, Y = T + i * row;
      var label = svg("text", { x: L - 6, y: Y + 11, "text-anchor": "end" }, root);
      label.textContent = n.length > 32 ? "…" + n.slice(-31) : n;
      var bar = svg("rect", { x: L, y: Y + 2, width: Math.max(0, v) * (W - L - 20), height: row - 5,
        fill: D.series[r.s].color }, root);
      bindTip(bar, function () { return [n, "sparsity " + num(v, 4)]; });
    });
    root.setAttribute("data-series", "1");
    counts["layers"] = 1;
    publish();
  }

  function draw() {
    var root = document.getElementById("charts");
    root.textContent = "";
    counts = {};
    D.groups.forEach(function (grp, g) {
      if (!state.datasets.has(grp.data)) return;
      var card = html("div", null, root, "card");
      html("h3", grp.title, card);
      accuracyChart(card, g, "c", "acc-compression-" + g, "Accuracy vs compression",
        "compression (log2): total / nonzero parameters");
      var hasSpeedup = D.points.some(function (p) { return p.g === g && finite(p.sp); });
      if (hasSpeedup) accuracyChart(card, g, "sp", "acc-speedup-" + g, "Accuracy vs FLOP speedup",
        "theoretical FLOP speedup (log2)");
    });
    var sc = html("div", null, root, "card");
    html("h3", "Requested vs achieved sparsity", sc);
    var shown = D.runs.filter(function (r) { return state.datasets.has(D.groups[r.g].data) &&
      visibleSeries(D.series[r.s]); });
    var strategies = new Set(shown.map(function (r) { return D.series[r.s].strategy; }));
    chart(sc, { id: "sparsity", title: "achieved vs requested (dotted: equal)", diag: true,
      xlabel: "requested sparsity", ylabel: "achieved sparsity", lines: [], count: strategies.size,
      dots: shown.map(function (r) { return runDot(r, r.sach, r.sreq); }) });
    layersCard = html("div", null, root, "card");
    drawLayers();
    document.querySelectorAll("tr[data-strategy]").forEach(function (tr) {
      var s = tr.getAttribute("data-strategy");
      tr.style.display = s === "dense" || s === "" || state.strategies.has(s) ? "" : "none";
    });
    document.querySelectorAll("section[data-data]").forEach(function (sec) {
      sec.style.display = state.datasets.has(sec.getAttribute("data-data")) ? "" : "none";
    });
    publish();
  }
  function publish() {
    document.body.setAttribute("data-charts", JSON.stringify(counts));
    document.body.setAttribute("data-ready", "1");
  }
  // Filters live in the URL hash too (#strategy=a,b&data=c), so a filtered view can be shared.
  function readHash() {
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv.length !== 2) return;
      var wanted = kv[1].split(",").map(decodeURIComponent);
      var set = kv[0] === "strategy" ? state.strategies : kv[0] === "data" ? state.datasets : null;
      if (!set) return;
      var all = Array.from(set);
      set.clear();
      all.forEach(function (v) { if (wanted.indexOf(v) >= 0) set.add(v); });
    });
  }
  function writeHash() {
    function enc(set) { return Array.from(set).map(encodeURIComponent).join(","); }
    history.replaceState(null, "", "#strategy=" + enc(state.strategies) + "&data=" +
      enc(state.datasets));
  }
  function filters(id, values, set) {
    var box = document.getElementById(id);
    values.forEach(function (v) {
      var label = html("label", null, box);
      var input = html("input", null, label);
      input.type = "checkbox";
      input.checked = set.has(v);
      input.value = v;
      input.addEventListener("change", function () {
        if (input.checked) set.add(v); else set.delete(v);
        writeHash();
        draw();
      });
      label.appendChild(document.createTextNode(" " + v));
    });
  }
  try {
    readHash();
    filters("f-strategy", D.strategies, state.strategies);
    filters("f-data", D.datasets, state.datasets);
    draw();
  } catch (e) {
    errors.push(String(e && e.stack || e));
    flushErrors();
    throw e;
  }
})();
"""
