"""The CLI: fast commands import no torch; bad input gets one line, non-zero exit, no row.

Commands run in this process (the `cli` fixture: sweeplab.cli.main) unless only a process shows
what is checked: what a fresh interpreter imports, the exit code through the console entry
(`cli_subprocess`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAST, rows_in, sweeplab
from sweeplab.configs import check_choices
from sweeplab.errors import SweeplabError
from test_analysis import write_rows


def imported_heavy(code: str) -> str:
    heavy = ("torch", "pytorch_lightning", "lightning")
    probe = (
        f"import sys\n{code}\nprint('HEAVY=' + ','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.rsplit("HEAVY=", 1)[1].strip()


def test_help_table_and_report_do_not_import_torch(tmp_path: Path) -> None:
    help_probe = (
        "from sweeplab.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert imported_heavy(help_probe) == ""
    table_probe = f"from sweeplab.cli import main\nmain(['table', {str(tmp_path)!r}])"
    assert imported_heavy(table_probe) == ""
    # With rows, so every table and report code path really runs.
    write_rows(tmp_path / "res")
    res, html = str(tmp_path / "res"), str(tmp_path / "report.html")
    table_probe = f"from sweeplab.cli import main\nassert main(['table', {res!r}]) == 0"
    assert imported_heavy(table_probe) == ""
    report_probe = (
        f"from sweeplab.cli import main\nassert main(['report', {res!r}, '-o', {html!r}]) == 0"
    )
    assert imported_heavy(report_probe) == ""
    assert (tmp_path / "report_plots" / "sparsity_requested_vs_achieved.png").exists()


def test_unknown_group_choice_lists_the_choices() -> None:
    with pytest.raises(
        SweeplabError, match="unknown pruning 'magnitud'; choose one of: .*global_magnitude"
    ):
        check_choices(["-m", "pruning=random,magnitud"])
    check_choices(
        ["pruning=random,global_magnitude", "pruning.sparsity=0.5", "hydra/launcher=basic"]
    )


BAD = {
    "sparsity_one": (["pruning.sparsity=1.0"], "pruning.sparsity=1.0 is outside [0, 1)"),
    "sparsity_negative": (["pruning.sparsity=-0.1"], "pruning.sparsity=-0.1 is outside [0, 1)"),
    "sparsity_text": (["pruning.sparsity=abc"], "pruning.sparsity='abc' is not a number"),
    "unknown_strategy": (["pruning=magnitude"], "unknown pruning 'magnitude'; choose one of:"),
    "zero_epochs": (["train.epochs=0"], "train.epochs=0 must be a positive integer"),
    "negative_lr": (["finetune.lr=-1"], "finetune.lr=-1 must be a positive number"),
    "wrong_shape": (["model=lenet300"], "model=lenet300 expects 1x28x28 images"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_nonzero_exit_and_no_row(case: str, tmp_path: Path, cli) -> None:
    overrides, message = BAD[case]
    proc = cli(["run", *FAST, *overrides, f"paths.results_dir={tmp_path}/res"], cwd=tmp_path)
    assert_one_line_refusal(proc, message)
    assert rows_in(tmp_path / "res") == []


def assert_one_line_refusal(proc, message: str) -> None:
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sweeplab: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_refusal_through_the_console_entry(tmp_path: Path, cli_subprocess) -> None:
    """The exit codes above, through `python -m sweeplab` (cli.entry): a run's refusal leaves
    the process with 2 and one line; so does a table command's (cli.main's return value)."""
    overrides, message = BAD["sparsity_one"]
    args = ["run", *FAST, *overrides, f"paths.results_dir={tmp_path}/res"]
    proc = cli_subprocess(args, cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_line_refusal(proc, message)
    assert rows_in(tmp_path / "res") == []
    proc = cli_subprocess(["table", str(tmp_path / "none")], cwd=tmp_path)
    assert proc.returncode == 2 and "has no runs/ folder" in proc.stderr


def test_missing_mnist_root_without_network(tmp_path: Path, cli) -> None:
    proc = cli(
        ["run", "data=mnist", f"data.root={tmp_path}/none", f"paths.results_dir={tmp_path}/res"],
        cwd=tmp_path,
        env={"SWEEPLAB_MIRROR": "http://127.0.0.1:9/"},
    )
    assert proc.returncode == 2
    assert f"data.root={tmp_path}/none has no train-images-idx3-ubyte(.gz)" in proc.stderr
    assert rows_in(tmp_path / "res") == []


def test_truncated_gz_in_a_run(tiny_idx, tmp_path: Path, cli) -> None:
    root = tiny_idx()
    path = root / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    proc = cli(
        [
            "run",
            "data=mnist",
            f"data.root={root}",
            "data.val_size=8",
            f"paths.results_dir={tmp_path}/res",
        ],
        cwd=tmp_path,
    )
    assert (
        proc.returncode == 2 and "t10k-images-idx3-ubyte.gz is truncated or corrupt" in proc.stderr
    )
    assert rows_in(tmp_path / "res") == []


def test_table_on_empty_dir_says_so(tmp_path: Path, cli) -> None:
    proc = cli(["table", str(tmp_path)], cwd=tmp_path)
    assert proc.returncode == 2 and "has no runs/ folder" in proc.stderr


def test_shell_completion_query_completes_groups(tmp_path: Path) -> None:
    """`sweeplab run -sc install=bash` prints a script that calls `sweeplab -sc query=bash`
    with COMP_LINE holding `sweeplab run ...`; that query failed before (issue 15)."""
    install = sweeplab(["run", "-sc", "install=bash"], cwd=tmp_path)
    assert install.returncode == 0 and "-sc query=bash" in install.stdout
    for line, expected in (
        ("sweeplab run pruning=", {"pruning=random", "pruning=global_magnitude"}),
        ("sweeplab run model=", {"model=lenet5", "model=custom"}),
        ("sweeplab run data=mnist model=l", {"model=lenet5", "model=lenet300"}),
    ):
        env = {"COMP_LINE": line, "COMP_POINT": str(len(line))}
        proc = sweeplab(["-sc", "query=bash"], cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert expected <= set(proc.stdout.split()), (line, proc.stdout)
