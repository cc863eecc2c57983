"""A researcher's own model (issue 15): model=custom with the class named on the command line,
run as the README's section shows it, in a fresh process from the folder holding the module."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO, rows_in, sweeplab
from sweeplab.results import store

FAST = ["train.epochs=1", "finetune.epochs=1"]


def readme_section() -> tuple[str, list[str]]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Your own model") : text.index("## Add a strategy")]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    commands = re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()
    return code, commands


def test_readme_custom_model_section_runs_as_written(tmp_path: Path) -> None:
    code, commands = readme_section()
    (tmp_path / "tinynet.py").write_text(code)
    run, table = (c.split()[1:] for c in commands)  # drop "sweeplab"
    res = f"paths.results_dir={tmp_path / 'results'}"
    proc = sweeplab([*run, *FAST, res], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [store.read_row(p) for p in rows_in(tmp_path / "results")]
    assert len(rows) == 2 and {r["model"] for r in rows} == {"TinyNet"}
    assert {r["sparsity_requested"] for r in rows} == {0.5, 0.9}
    assert all(r["status"] == "ok" and r["config"]["model"]["width"] == 32 for r in rows)
    shown = sweeplab([*table[:-2], str(tmp_path / "results"), *table[-2:]], cwd=tmp_path)
    assert shown.returncode == 0 and "TinyNet" in shown.stdout, shown.stderr


def test_custom_model_without_a_class_or_with_a_foreign_key_is_one_line(tmp_path: Path) -> None:
    code, _ = readme_section()
    (tmp_path / "tinynet.py").write_text(code)
    res = f"paths.results_dir={tmp_path / 'results'}"
    missing = sweeplab(["run", "model=custom", res], cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "sweeplab: error: model._target_ is not set; name your class, e.g. "
        "model._target_=mypkg.Net (importable from the working folder or PYTHONPATH)"
    )
    foreign = sweeplab(
        ["run", "model=custom", "model._target_=tinynet.TinyNet", "+model.depth=3", res],
        cwd=tmp_path,
    )
    assert foreign.returncode == 2 and len(foreign.stderr.strip().splitlines()) == 1
    assert "model.depth is not a setting of model=custom (TinyNet)" in foreign.stderr
    assert not (tmp_path / "results" / "runs").exists() or not rows_in(tmp_path / "results")
