"""`sweeplab reproduce NAME`: run a paper's experiment, then print paper vs. ours, cell by cell.

This module finds experiments, runs the block's `before:` sweeps (e.g. `sweeplab sensitivity`,
whose curves the sweep's runs read), then the sweep, each with a manifest of its run ids, picks
those rows (reproduce.selection) and writes the table; the block's schema is reproduce.schema, its
values reproduce.values, its rules reproduce.rules and its table reproduce.render. torch is
imported only to ask whether a GPU-tier run has its GPU.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sweeplab.configs import CONF, check_choices, experiment_files
from sweeplab.errors import SweeplabError
from sweeplab.reproduce.render import compute_minutes, evaluate_cells, render
from sweeplab.reproduce.rules import fmt
from sweeplab.reproduce.schema import Paper, check_paper
from sweeplab.reproduce.selection import (
    Selection,
    column,
    ok_rows,
    phase_seconds,
    select_manifest_rows,
)
from sweeplab.results import store
from sweeplab.results.format import thread_counts
from sweeplab.results.rows import load_rows


def paper_blocks(overrides: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Name -> raw `paper:` block of every experiment file that has one (plain YAML, no Hydra)."""
    import yaml

    blocks = {}
    for name, path in experiment_files(overrides).items():
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise SweeplabError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
        if isinstance(data, dict) and isinstance(data.get("paper"), dict):
            blocks[name] = data["paper"]
    return dict(sorted(blocks.items()))


def list_text(overrides: Iterable[str] = ()) -> str:
    """`sweeplab reproduce --list`: name, tier, expected minutes and short citation per line."""
    lines = [("name", "tier", "minutes", "citation")]
    for name, block in paper_blocks(overrides).items():
        short = str(block.get("citation", "?")).split(". ")[0]
        lines.append((name, str(block.get("tier", "?")), fmt(block.get("minutes", "?")), short))
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    return "".join(
        "  ".join(col.ljust(w) for col, w in zip(line[:3], widths, strict=True)) + f"  {line[3]}\n"
        for line in lines
    )


def compose_experiment(name: str, overrides: list[str]) -> tuple[Any, str]:
    """Compose `experiment=name` plus overrides; returns its raw paper block and results dir.

    Sweep overrides (`seed=0,1,2`) go to the sweep only: compose takes one value per key.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        single = [
            text for text, o in zip(overrides, parsed, strict=True) if not o.is_sweep_override()
        ]
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"experiment={name}", *single])
        block = OmegaConf.to_container(cfg.paper, resolve=True) if "paper" in cfg else None
        return block, str(cfg.paths.results_dir)
    except (HydraException, OmegaConfBaseException) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SweeplabError(
            f"experiment={name} with {' '.join(overrides)} does not compose: {first}"
        ) from None


def run_sweep(
    name: str, overrides: list[str], results_dir: str, command: str = "run"
) -> tuple[int, list[str]]:
    """Run the experiment's sweep in a subprocess (output streams through); returns its exit
    code and the run ids of its jobs, read from a manifest file each job appends to (none for
    `command` sensitivity, whose rows are curves).

    The manifest lives in the results dir, not /tmp, so cluster jobs (submitit) can reach it.
    """
    store.check_writable(results_dir)
    fd, manifest = tempfile.mkstemp(dir=results_dir, prefix=f".reproduce-{name}-", suffix=".ids")
    os.close(fd)
    cmd = [sys.executable, "-m", "sweeplab.cli", command, "-m", f"experiment={name}", *overrides]
    try:
        proc = subprocess.Popen(cmd, env={**os.environ, store.MANIFEST_ENV: manifest})
        try:
            rc = proc.wait()
        except KeyboardInterrupt:
            # A terminal's Ctrl-C reached the sweep too; a `kill -INT` of this process did not.
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
                proc.wait()
            rc = 130
        ids = Path(manifest).read_text().split()
    finally:
        Path(manifest).unlink(missing_ok=True)
    return rc, list(dict.fromkeys(ids))


def _has_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def reproduce(name: str, overrides: list[str], *, run: bool = True, smoke: bool = False) -> int:
    """`sweeplab reproduce NAME [overrides]`: sweep, evaluate the cells, print and write the table.

    Args:
        name: an experiment with a `paper:` block.
        overrides: Hydra overrides for the composition and the sweep.
        run: False (--no-run) evaluates the rows already there, selected by experiment name.
        smoke: run the block's `smoke` overrides and check only that the runs finish.
    Returns:
        0 when every run is ok and every cell passes (smoke: every run ok), 1 otherwise,
        130 when interrupted.
    """
    blocks = paper_blocks(overrides)
    if name not in blocks:
        why = "has no paper: block" if name in experiment_files(overrides) else "is no experiment"
        raise SweeplabError(
            f"{name!r} {why}; experiments with a paper: block: "
            f"{', '.join(blocks) or '(none)'} (see sweeplab reproduce --list)"
        )
    if smoke and not run:
        raise SweeplabError("--smoke runs the sweep and --no-run does not; choose one")
    check_choices(overrides)
    block, results_dir = compose_experiment(name, overrides)
    paper = check_paper(block, f"experiment={name}: paper")
    command = shlex.join(["sweeplab", "reproduce", name, *overrides])
    if not run:
        df = load_rows(results_dir)
        ok = ok_rows(df[column(df, "experiment") == name])
        note = (
            f"every ok row with experiment={name} in {results_dir} ({len(ok)}; --no-run: "
            "no manifest, so rows of older versions of this experiment count too)"
        )
        return _finish(name, paper, Selection(ok, []), command, note, results_dir, 0)

    reason = "--smoke" if smoke else None
    if reason is None and paper.tier == "gpu" and not _has_gpu():
        reason = "tier gpu, no GPU here"
    extra = list(paper.smoke) if reason else []
    if (
        reason
        and not smoke
        and not any(a.lstrip("+").startswith("trainer=") for a in [*overrides, *extra])
    ):
        extra.append("trainer=cpu")
    print(
        f"reproduce {name}: {paper.table} ({paper.citation.split('. ')[0]}), "
        f"about {fmt(paper.minutes)} min cold" + (f"; smoke run ({reason})" if reason else ""),
        flush=True,
    )
    rc, ids = 0, []
    for command_name, *step in [*paper.before, ("run",)]:
        if step or command_name != "run":
            print(f"before the sweep: sweeplab {command_name} {shlex.join(step)}", flush=True)
        step_rc, step_ids = run_sweep(name, [*step, *overrides, *extra], results_dir, command_name)
        rc, ids = (step_rc if step_rc == 130 else rc or step_rc), [*ids, *step_ids]
        if rc == 130:
            break
    if rc == 130:
        print(
            "sweeplab: interrupted; finished runs are kept, the same command resumes",
            file=sys.stderr,
        )
        return 130
    if not ids:
        print(
            f"sweeplab: error: the sweep stopped before any run (exit {rc}); see its output above",
            file=sys.stderr,
        )
        return rc or 1
    selection = select_manifest_rows(load_rows(results_dir), ids)
    if reason:
        finished = int(column(selection.rows, "run_id").isin(ids).sum())
        print(f"smoke run ({reason}): {finished} runs ok, checks not evaluated")
        _print_failed(selection.failed)
        return 0 if rc == 0 and not selection.failed else 1
    note = (
        f"the {len(selection.rows)} ok row(s) of this sweep's {len(ids)} run(s) "
        f"(older rows in {results_dir} are not used)"
    )
    return _finish(name, paper, selection, command, note, results_dir, rc)


def _print_failed(failed: list[str]) -> None:
    if failed:
        print(f"sweeplab: {len(failed)} run(s) failed:", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)


def _finish(
    name: str,
    paper: Paper,
    selection: Selection,
    command: str,
    note: str,
    results_dir: str,
    rc: int,
) -> int:
    """Evaluate, print, and (when every run finished) write tables/NAME.md; the exit code."""
    rows = selection.rows
    results = evaluate_cells(paper, rows, f"experiment={name}'s rows")
    minutes = compute_minutes(phase_seconds(results_dir, rows))
    threads = thread_counts(column(rows, "threads"))
    text = render(name, paper, results, command, note, minutes, threads)
    print(flush=True)
    sys.stdout.write(text)
    sys.stdout.flush()
    path = Path(results_dir) / "tables" / f"{name}.md"
    if rc != 0 or selection.failed:
        _print_failed(selection.failed)
        print(
            f"sweeplab: the sweep had failures (exit {rc}); {path} is not written", file=sys.stderr
        )
        return 1
    store.atomic_write_text(path, text)
    print(f"table written to {path}", file=sys.stderr)
    return 0 if all(r.passed for r in results) else 1
