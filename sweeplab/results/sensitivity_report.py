"""The report's sensitivity section: per analysis, a plot (a line per layer, accuracy drop
against the rate it alone is pruned at) and its table (results.sensitivity).

The plot is embedded in the page as a PNG data URI (the page stays one self-contained file)
and, with plots, written beside it as PNG and SVG. A results dir holding only sensitivity rows
gets a page with this section alone (`write_page`).
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: no display on clusters or in CI

import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sweeplab.results import report  # noqa: E402
from sweeplab.results.plots import FORMATS, slug  # noqa: E402
from sweeplab.results.sensitivity import analyses, curve_frame, table  # noqa: E402


@dataclass
class Section:
    """The section's HTML and the plot files it wrote."""

    html: str = ""
    files: list[Path] = field(default_factory=list)


def figure(points: pd.DataFrame, title: str) -> Figure:
    """A line per layer: validation accuracy drop (points) against the rate, from (0, 0)."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for layer, line in points.groupby("layer", sort=False):
        rates = [0.0, *line["rate"].tolist()]
        drops = [0.0, *(100 * line["acc_drop"]).tolist()]
        name = str(layer).replace("$", r"\$")
        ax.plot(rates, drops, "o-", ms=3, label="\u200b" + name if name[:1] == "_" else name)
    ax.axhline(0.0, color="#999", lw=0.8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("rate: fraction of the layer pruned, the other layers dense")
    ax.set_ylabel("validation accuracy drop (points)")
    ax.set_title(title.replace("$", r"\$") + "\nno retraining", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def section(rows: pd.DataFrame, output: str | Path, plots: bool = True) -> Section:
    """The sensitivity section of a report written to `output`; empty without curves.

    Args:
        rows: the selected rows (sensitivity rows among them are shown; others ignored).
        output: the report's HTML file; plot files go to its plot folder.
        plots: also write each plot as PNG and SVG files.
    """
    frame = curve_frame(rows)
    if frame.empty:
        return Section()
    parts, files = [], []
    folder = report.plot_folder(output)
    for (data, model), label, points in analyses(frame):
        title = f"{data} / {model}: sensitivity to {label}"
        fig = figure(points, title)
        image = base64.b64encode(_png(fig)).decode("ascii")
        if plots:
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"sensitivity-{slug(f'{data}_{model}_{label}')}"
            for ext in FORMATS:
                files.append(folder / f"{stem}.{ext}")
                fig.savefig(files[-1], dpi=120, bbox_inches="tight")
        alt = html.escape(f"accuracy drop per layer against the rate: {title}", quote=True)
        parts.append(
            f'<section class="group sensitivity" data-data="{html.escape(data, quote=True)}">'
            f'<h2>{html.escape(title)}</h2><figure><img style="max-width:100%" alt="{alt}" '
            f'src="data:image/png;base64,{image}"></figure>'
            f"{report.table_html(table(label, points))}</section>"
        )
    return Section("".join(parts), files)


def write_page(part: Section, output: str | Path, title: str) -> report.Written:
    """A page with the sensitivity section alone (a results dir without ordinary runs)."""
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    rel = [str(p.relative_to(path.parent)) for p in part.files]
    links = "".join(f'<li><a href="{html.escape(p)}">{html.escape(p)}</a></li>' for p in rel)
    static = f"<section><h2>Static plots</h2><ul>{links}</ul></section>" if rel else ""
    name = html.escape(title)
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{name}</title>'
        f"<style>\n{report.asset('report.css')}</style></head>\n<body><header><h1>{name}</h1>"
        "<p>Sensitivity analyses only (sweeplab sensitivity): no pruning runs to compare.</p>"
        f"</header><main>{part.html}{static}</main></body></html>\n"
    )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return report.Written(path, report.plot_folder(output), list(part.files))
