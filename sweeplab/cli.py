"""`sweeplab run|sensitivity|table|report|export|reproduce`: argument parsing; each command
lives in its layer.

run, sensitivity: sweeplab.engine.launch (arguments go to Hydra unchanged); table and report:
sweeplab.results.commands; export: sweeplab.engine.export_run; reproduce:
sweeplab.reproduce.command.

This module imports neither torch nor Lightning: `sweeplab --help`, `table` and `report` stay fast.
"""

from __future__ import annotations

import argparse
import gc
import sys

from sweeplab.errors import SweeplabError
from sweeplab.results.commands import delta_points


def _run(argv: list[str]) -> int:
    from sweeplab.engine.launch import launch

    return launch(argv[1:], argv[0])  # run or sensitivity: the overrides go to Hydra


def _table(args: argparse.Namespace) -> int:
    from sweeplab.results.commands import Selection, table

    return table(Selection.of(args), args.format, args.view, args.baseline)


def _report(args: argparse.Namespace) -> int:
    from sweeplab.results.commands import Selection, report

    return report(
        Selection.of(args),
        args.output,
        layer_run=args.run,
        title=args.title,
        plots=not args.no_plots,
        wandb_project=args.wandb_project if args.wandb else None,
        baseline=args.baseline,
    )


def _add_selection(p: argparse.ArgumentParser) -> None:
    """Arguments shared by commands that read and aggregate rows."""
    p.add_argument("results_dir", nargs="?", default="results", help="default: results")
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep rows where KEY (a row field or a config key like train.lr) is VALUE "
        "(or one of a comma list); repeatable",
    )
    p.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="COLUMN",
        help="separate tables per value of COLUMN (besides data and model); repeatable",
    )
    p.add_argument(
        "--delta",
        type=delta_points,
        default=1.0,
        help="accuracy points a run may lose against its own dense model for "
        "'best compression within delta' (default 1)",
    )
    p.add_argument(
        "--pivot",
        choices=["sparsity", "compression"],
        default="sparsity",
        help="pivot columns: requested sparsity or achieved compression (default sparsity)",
    )


def _add_table(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "table",
        help="print accuracy pivots, the Pareto table and the best compression within delta",
    )
    _add_selection(p)
    p.add_argument("--format", choices=["md", "csv", "latex", "json"], default="md")
    p.add_argument(
        "--view",
        choices=["all", "pivot", "points", "best", "compare", "sensitivity"],
        default="all",
        help="which tables (default all; csv holds one table, so all writes the points table); "
        "compare: paired differences against --baseline with 95%% CIs and Holm-corrected p; "
        "sensitivity: the curves of `sweeplab sensitivity`, a line per layer",
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="STRATEGY",
        help="the strategy (series label) --view compare compares every other one with",
    )
    p.set_defaults(handler=_table)


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write a self-contained offline HTML dashboard plus PNG/SVG plots"
    )
    _add_selection(p)
    p.add_argument("-o", "--output", default="report.html", help="default: report.html")
    p.add_argument("--title", default=None, help="page title (default: the results dir)")
    p.add_argument(
        "--run", default=None, metavar="RUN_ID", help="run for the per-layer sparsity plot"
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG/SVG files")
    p.add_argument(
        "--baseline",
        default=None,
        metavar="STRATEGY",
        help="also show the paired comparison of every strategy against this one",
    )
    p.add_argument(
        "--wandb",
        action="store_true",
        help="also log the tables and curves to a W&B run (offline unless an API key is set)",
    )
    p.add_argument("--wandb-project", default="sweeplab", help="W&B project (default sweeplab)")
    p.set_defaults(handler=_report)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a finished run's pruned model to a folder that loads with torch alone",
    )
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("out", metavar="OUT", help="folder to create")
    p.add_argument(
        "trusted",
        nargs="*",
        metavar="KEY._target_=CLASS",
        help="your own code the row names, e.g. model._target_=mypackage.Net: a row is data, "
        "and only sweeplab's classes and those named here are built from it",
    )
    p.add_argument("--results-dir", default="results", help="default: results")
    rebuild = "re-run prune and recovery instead of loading the weights saved with the row"
    p.add_argument("--rebuild", action="store_true", help=rebuild)
    # Positionals may also follow the options: RUN_ID OUT --results-dir DIR KEY._target_=CLASS.
    p.set_defaults(handler=_export, trailing="trusted")


def _export(args: argparse.Namespace) -> int:
    from sweeplab.engine.export_run import export_command

    return export_command(args.results_dir, args.run_id, args.out, args.trusted, args.rebuild)


def _add_wandb_log(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "wandb-log",
        help="log a results dir's finished rows to W&B, one W&B run per row, each row once per "
        "project (rows a logger=wandb run logged are skipped)",
    )
    p.add_argument("results_dir", nargs="?", default="results", help="default: results")
    p.add_argument("--where", action="append", default=[], help="key=value filter (repeatable)")
    p.add_argument("--project", default="sweeplab", help="W&B project (default sweeplab)")
    p.set_defaults(handler=_wandb_log)


def _wandb_log(args: argparse.Namespace) -> int:
    from sweeplab.results.wandb import log_rows

    logged, skipped = log_rows(args.results_dir, args.where, args.project)
    print(f"wandb: {logged} row(s) logged to project {args.project}, {skipped} logged before")
    return 0


def _add_reproduce(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run a paper's experiment (experiments/NAME.yaml with a paper: block) and print "
        "paper vs. ours with PASS/FAIL per cell",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the experiment (see --list)")
    p.add_argument(
        "overrides",
        nargs=argparse.REMAINDER,  # `*` would refuse overrides after a flag
        metavar="OVERRIDE",
        help="Hydra overrides for the sweep, e.g. paths.results_dir=DIR hydra/launcher=joblib",
    )
    p.add_argument(
        "--list", action="store_true", help="list the experiments with a paper: block and exit"
    )
    p.add_argument(
        "--no-run",
        action="store_true",
        help="skip the sweep; evaluate the ok rows of experiment NAME already in the results dir",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="run the block's 1-epoch smoke overrides; check only that every run finishes",
    )
    p.set_defaults(handler=_reproduce)


_REPRODUCE_FLAGS = {"--list": "list", "--no-run": "no_run", "--smoke": "smoke"}


def _reproduce(args: argparse.Namespace) -> int:
    from sweeplab.reproduce import command as reproduce

    overrides = []
    for arg in args.overrides:  # flags after NAME land here (Hydra overrides never start --)
        if arg in _REPRODUCE_FLAGS:
            setattr(args, _REPRODUCE_FLAGS[arg], True)
        elif arg.startswith("-"):
            raise SweeplabError(
                f"unknown option {arg}; reproduce takes {', '.join(_REPRODUCE_FLAGS)} "
                "and Hydra overrides (key=value)"
            )
        else:
            overrides.append(arg)
    if args.list:
        # `--list hydra.searchpath=[...]`: argparse reads the first override as NAME.
        sys.stdout.write(reproduce.list_text([a for a in (args.name, *overrides) if a]))
        return 0
    if not args.name or "=" in args.name:
        raise SweeplabError("name an experiment: sweeplab reproduce NAME (see --list)")
    return reproduce.reproduce(args.name, overrides, run=not args.no_run, smoke=args.smoke)


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
    sub.add_parser(
        "sensitivity",
        add_help=False,
        help="prune each layer of a run's dense model alone at sensitivity.rates, no "
        "retraining: one row per layer and rate; the overrides of run (e.g. model=lenet5)",
    )
    # One _add_<command> per subcommand; each sets its handler.
    _add_table(sub)
    _add_report(sub)
    _add_export(sub)
    _add_reproduce(sub)
    _add_wandb_log(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] in (["run"], ["sensitivity"]):
            return _run(argv)
        if argv[:1] in (["-sc"], ["--shell-completion"]):  # what the completion script calls
            from sweeplab.engine.launch import complete

            return complete(argv)
        p = parser()
        args, extra = p.parse_known_args(argv)
        # A command's list of positionals (`trailing`) takes those that follow its options.
        if extra and getattr(args, "trailing", None) and not any(a[:1] == "-" for a in extra):
            getattr(args, args.trailing).extend(extra)
        elif extra:
            p.error(f"unrecognized arguments: {' '.join(extra)}")
        return args.handler(args)
    except SweeplabError as e:
        print(f"sweeplab: error: {e}", file=sys.stderr)
        return 2


def entry() -> None:
    """The `sweeplab` command: main(), then an exit without a second of garbage collection.

    At shutdown the interpreter's collections walk every object torch and Lightning created:
    about 1 s after `import pytorch_lightning` (0.15 s once frozen). By then every row and
    table is written and closed, and atexit handlers (wandb, logging) still run; freezing only
    takes the objects alive at exit out of those collections.
    """
    try:
        code = main()
    finally:
        gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
