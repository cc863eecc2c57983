"""Static plots of a summary (matplotlib, Agg backend): PNG and SVG files for papers and slides.

No pyplot: each figure is a plain matplotlib Figure, so nothing global is touched and no
display is needed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no display on clusters or in CI

import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from sweeplab.results.analysis import Summary  # noqa: E402
from sweeplab.results.palette import colors  # noqa: E402
from sweeplab.results.series import is_dense, natural_rank  # noqa: E402

FORMATS = ("png", "svg")


def slug(text: str) -> str:
    """A file-name-safe form of a user-provided label."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.")[:80] or "group"


def _label(text: Any) -> str:
    # '$' would start mathtext; a leading '_' hides a legend entry.
    out = str(text).replace("$", r"\$")
    return "\u200b" + out if out.startswith("_") else out


def _save(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = []
    for ext in FORMATS:
        path = out_dir / f"{stem}.{ext}"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    return paths


def _curves(summary: Summary, sub: pd.DataFrame, x: str, key: tuple) -> list[dict[str, Any]]:
    """Per series: x, after/before accuracy with std, the series' own dense point first."""
    dense = summary.series_dense
    for k, v in zip(summary.groups, key, strict=True):
        dense = dense[dense[k] == v]
    out = []
    pruned = sub[~is_dense(sub["series"])]
    for series in natural_rank(pruned["series"]):
        line = pruned[pruned["series"] == series].sort_values(x)
        base = dense[dense["series"] == series]
        head = [(1.0, base["acc"].iloc[0], base["acc_std"].iloc[0])] if len(base) else []
        points = head + list(zip(line[x], line["acc"], line["acc_std"], strict=True))
        before = head + list(zip(line[x], line["acc_pruned"], line["acc_pruned_std"], strict=True))
        out.append({"series": series, "after": points, "before": before})
    return out


def _accuracy_figure(curves: list[dict[str, Any]], palette: dict[str, str], xlabel: str,
                     title: str) -> Figure:  # fmt: skip
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for curve in curves:
        color = palette[curve["series"]]
        xs, ys, sd = (list(v) for v in zip(*curve["after"], strict=True))
        ys = [100 * y for y in ys]
        sd = [100 * s for s in sd]
        ax.plot(xs, ys, "o-", color=color, label=_label(curve["series"]), ms=4)
        ax.fill_between(
            xs, [y - s for y, s in zip(ys, sd, strict=True)],
            [y + s for y, s in zip(ys, sd, strict=True)], color=color, alpha=0.15, lw=0,
        )  # fmt: skip
        bx, by, _ = zip(*curve["before"], strict=True)
        ax.plot(bx, [100 * y for y in by], "x--", color=color, alpha=0.7, ms=4, lw=1)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy %")
    ax.set_title(
        _label(title) + "\nsolid: after finetune (±std band over seeds); dashed: before finetune",
        fontsize=10,
    )
    ax.grid(True, alpha=0.3)
    if curves:
        ax.legend(fontsize=8, loc="best")
    return fig


def _sparsity_figure(rows: pd.DataFrame, palette: dict[str, str]) -> Figure:
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    for strategy, sub in rows.groupby("strategy", sort=True):
        ax.scatter(sub["sparsity_requested"], sub["sparsity_achieved"], s=14,
                   color=palette.get(str(strategy), "#333"), label=_label(strategy))  # fmt: skip
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls=":")
    ax.set_xlabel("requested sparsity")
    ax.set_ylabel("achieved sparsity (prunable weights)")
    ax.set_title("Requested vs achieved sparsity", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _layers_figure(run: dict[str, Any]) -> Figure:
    layers = run.get("layer_sparsity") or {}
    fig = Figure(figsize=(7, max(2.5, 0.28 * len(layers) + 1)))
    ax = fig.add_subplot()
    names = list(layers)
    ax.barh(range(len(names)), [layers[n] for n in names], color="#1f77b4")
    ax.set_yticks(range(len(names)), [_label(n) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("sparsity")
    ax.set_title(
        _label(f"Per-layer sparsity of run {run.get('run_id')} ({run.get('strategy')}, "
               f"requested {run.get('sparsity_requested')})"), fontsize=10,
    )  # fmt: skip
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def write_plots(
    summary: Summary,
    rows: pd.DataFrame,
    out_dir: str | Path,
    layer_run: dict[str, Any] | None = None,
    titles: Sequence[str] | None = None,
) -> list[Path]:
    """Write every plot as PNG and SVG into out_dir.

    Args:
        summary: from analysis.summarize.
        rows: the ok rows it was built from (for requested vs achieved sparsity).
        out_dir: created if missing.
        layer_run: a full row (with layer_sparsity) for the per-layer plot, or None.
        titles: one title per group, in group order (default: the group values joined).
    Returns:
        The written files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pts = summary.points
    palette = colors(pts.loc[~is_dense(pts["series"]), "series"])  # as the HTML page does
    written: list[Path] = []
    grouped = list(pts.groupby(summary.groups, dropna=False, sort=True))
    for i, (key, sub) in enumerate(grouped):
        title = titles[i] if titles else " / ".join(str(k) for k in key)
        fig = _accuracy_figure(
            _curves(summary, sub, "compression", key), palette, "compression (log2)", title
        )
        written += _save(fig, out, f"acc_vs_compression-{slug(title)}")
        if "speedup" in sub.columns and sub["speedup"].notna().any():
            curves = _curves(summary, sub[sub["speedup"].notna()], "speedup", key)
            fig = _accuracy_figure(curves, palette, "theoretical FLOP speedup (log2)", title)
            written += _save(fig, out, f"acc_vs_flop_speedup-{slug(title)}")
    strategy_colors = colors(rows["strategy"].astype(str))
    written += _save(_sparsity_figure(rows, strategy_colors), out, "sparsity_requested_vs_achieved")
    if layer_run and layer_run.get("layer_sparsity"):
        written += _save(_layers_figure(layer_run), out, f"layer_sparsity-{layer_run['run_id']}")
    return written
