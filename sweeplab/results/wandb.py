"""W&B for results: the logging mode every W&B run uses, readable run names, logging existing
rows (`sweeplab wandb-log`: once per row and project), and the report logged as one W&B run.

wandb is imported only inside the functions that log.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def wandb_mode() -> str:
    """WANDB_MODE if set, else online with an API key (env or ~/.netrc), else offline."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    netrc = Path.home() / ".netrc"
    try:
        in_netrc = netrc.exists() and "api.wandb.ai" in netrc.read_text()
    except OSError:
        in_netrc = False
    return "online" if os.environ.get("WANDB_API_KEY") or in_netrc else "offline"


def run_name(row: Mapping[str, Any]) -> str:
    """A W&B display name a reader can scan: `global_magnitude-s0.9-seed0` (`-r2` for a
    round's row); the W&B run id stays sweeplab's run id."""
    name = f"{row.get('strategy', '?')}"
    sparsity = row.get("sparsity_requested")
    if isinstance(sparsity, (int, float)) and not isinstance(sparsity, bool):
        name += f"-s{sparsity:g}"
    name += f"-seed{row.get('seed', '?')}"
    rid = str(row.get("run_id", ""))
    return name + (f"-{rid.rsplit('-', 1)[1]}" if "-r" in rid else "")


def logged_marker(results_dir: str | Path, project: str, run_id: str) -> Path:
    """The file that says a run's row was logged to a W&B project (one file per run, so
    parallel workers never write one ledger)."""
    return Path(results_dir) / "wandb" / "logged" / project / run_id


def mark_logged(results_dir: str | Path, project: str, run_id: str) -> None:
    marker = logged_marker(results_dir, project, run_id)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def log_rows(
    results_dir: str | Path, where: Sequence[str] = (), project: str = "sweeplab"
) -> tuple[int, int]:
    """Log the finished rows of a results dir to W&B, one W&B run per row (id = run id,
    readable name, the experiment as group, strategy / schedule / recovery as tags, the config
    flattened, the row in the summary), skipping rows already logged to this project (by
    `logger=wandb` or an earlier call). Returns (logged, skipped)."""
    import wandb

    from sweeplab.results import store
    from sweeplab.results.filters import filter_rows
    from sweeplab.results.rows import flatten_config, load_rows

    rows = filter_rows(load_rows(results_dir), list(where))
    ok = rows[rows["status"] == "ok"]
    logged = skipped = 0
    for rid in ok["run_id"]:
        if logged_marker(results_dir, project, rid).exists():
            skipped += 1
            continue
        row = store.read_row(store.row_path(results_dir, rid))
        config = row.pop("config", None) or {}
        summary = {k: v for k, v in row.items() if k not in ("versions", "seconds")}
        run = wandb.init(
            project=project, id=rid, name=run_name(row), group=str(row.get("experiment")),
            tags=sorted({str(row[k])[:64] for k in ("strategy", "schedule", "recovery") if
                         row.get(k)}),
            config={k: v for k, v in flatten_config(config).items() if k != "logger"},
            mode=wandb_mode(), dir=str(results_dir), job_type="backfill", reinit="finish_previous",
        )  # fmt: skip
        run.summary.update(summary)
        run.finish()
        mark_logged(results_dir, project, rid)
        logged += 1
    return logged, skipped


def sync_hint(run: Any) -> str | None:
    """The `wandb sync` command for an offline run, or None when it is online."""
    if not getattr(run, "offline", False):
        return None
    return f"wandb sync {Path(run.dir).parent}"


def wandb_report(summary: Any, written: Any, project: str = "sweeplab") -> str | None:
    """Log the Pareto table, best-within-Δ, pivot and curves of a report to one W&B run.

    Args:
        summary: analysis.Summary of the report.
        written: report.Written (its PNG files are logged as images).
        project: W&B project.
    Returns:
        The `wandb sync` command when the run is offline, else None.
    """
    import wandb

    from sweeplab.results.analysis import best_within
    from sweeplab.results.render import render
    from sweeplab.results.series import is_dense

    points = summary.points.assign(run_ids=[" ".join(r) for r in summary.points["run_ids"]])
    best = best_within(summary).drop(columns="run_ids")
    kwargs: dict[str, Any] = {}
    if not os.environ.get("WANDB_DIR"):
        kwargs["dir"] = str(written.html.parent)
    run = wandb.init(
        project=project,
        job_type="report",
        name=f"report-{written.html.stem}",
        mode=wandb_mode(),
        config={"delta": summary.delta, "groups": summary.groups, "costs": summary.costs},
        **kwargs,
    )
    logged: dict[str, Any] = {
        "pareto": wandb.Table(dataframe=points.astype({"run_ids": str})),
        "best_within_delta": wandb.Table(dataframe=best),
        "tables_markdown": wandb.Html(f"<pre>{html.escape(render(summary, 'md'))}</pre>"),
    }
    pruned = points[~is_dense(points["series"])]
    for key, sub in pruned.groupby(summary.groups, dropna=False, sort=True):
        name = "/".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        curves = [line.sort_values("compression") for _, line in sub.groupby("series", sort=True)]
        logged[f"acc_vs_compression/{name}"] = wandb.plot.line_series(
            xs=[list(c["compression"]) for c in curves],
            ys=[list(100 * c["acc"]) for c in curves],
            keys=[str(c["series"].iloc[0]) for c in curves],
            title=f"{name}: test accuracy % after finetune vs compression",
            xname="compression",
        )
    for path in written.plots:
        if path.suffix == ".png":
            logged[f"plots/{path.stem}"] = wandb.Image(str(path))
    run.log(logged)
    run.summary.update(
        {f"best/{r['series']}": r["compression"] for r in best.to_dict("records") if r["best"]}
    )
    hint = sync_hint(run)
    run.finish()
    print(f"wandb: report logged to project {project}" + (f"; upload with: {hint}" if hint else ""))
    return hint
