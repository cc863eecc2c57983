"""`sweeplab run|table`: run hands its arguments to Hydra unchanged; table reads rows only.

This module imports neither torch nor Lightning: `sweeplab --help` and `sweeplab table` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sweeplab.errors import SweeplabError

CONF = Path(__file__).resolve().parent.parent / "conf"
_SWEEP_SYNTAX = ("(", "[", "*", "$", "{")


def check_choices(overrides: list[str], conf: Path = CONF) -> None:
    """Reject `group=name` overrides naming a config file that does not exist.

    Hydra would say the same in several lines; this says it in one and lists the choices.
    Sweep syntax beyond comma lists (ranges, globs, interpolations) is left to Hydra.
    """
    for arg in overrides:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.lstrip("+~").split("=", 1)
        group = conf / key
        if "." in key or not group.is_dir() or any(ch in value for ch in _SWEEP_SYNTAX):
            continue
        choices = sorted(p.stem for p in group.glob("*.yaml"))
        for name in value.split(","):
            if name and name != "null" and name not in choices:
                raise SweeplabError(
                    f"unknown {key} {name!r}; choose one of: {', '.join(choices)} "
                    f"(or add conf/{key}/{name}.yaml)"
                )


def _run(overrides: list[str]) -> int:
    check_choices(overrides)
    from sweeplab.run import main as hydra_main

    sys.argv = ["sweeplab run", *overrides]
    hydra_main()
    return 0


def _table(args: argparse.Namespace) -> int:
    from sweeplab.analysis import filter_rows, render, summarize
    from sweeplab.store import collect

    df = collect(args.results_dir)
    if df.empty:
        raise SweeplabError(f"{args.results_dir}/runs has no rows yet; run a sweep first")
    df = filter_rows(df, args.where)
    summary = summarize(df)
    if summary.empty:
        where = " ".join(args.where) or "(no filter)"
        raise SweeplabError(f"no finished runs in {args.results_dir} match {where}")
    sys.stdout.write(render(summary, args.format))
    failed = df[df["status"] == "failed"]
    if len(failed):
        ids = ", ".join(failed["run_id"].head(5))
        print(f"\n{len(failed)} failed run(s) not in the table: {ids}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sweeplab",
        description="Pruning sweeps: compose model x data x strategy x sparsity with Hydra.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run",
        add_help=False,
        help="run one config or a sweep; arguments go to Hydra unchanged "
        "(e.g. -m pruning=random,global_magnitude pruning.sparsity=0.5,0.9)",
    )
    table = sub.add_parser("table", help="print the aggregated Pareto table of a results dir")
    table.add_argument("results_dir", nargs="?", default="results")
    table.add_argument("--format", choices=["md", "csv", "json"], default="md")
    table.add_argument(
        "--where", action="append", default=[], metavar="KEY=VALUE", help="filter rows, repeatable"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["run"]:
            return _run(argv[1:])
        args = parser().parse_args(argv)
        return _table(args)
    except SweeplabError as e:
        print(f"sweeplab: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
