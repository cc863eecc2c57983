"""`sweeplab report`: a self-contained offline page, escaped user strings, plots, and the page
really rendering in headless Chromium."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sweeplab.cli import main
from sweeplab.errors import SweeplabError
from sweeplab.results import store
from sweeplab.results.analysis import summarize
from sweeplab.results.report import script_json, write_report
from sweeplab.results.rows import load_rows
from test_analysis import make_row, write_rows

# A strategy name that would run script if it reached the page unescaped, in HTML or in JSON.
EVIL = '</script><script>document.body.dataset.pwned=1</script><img src=x onerror="pwned()">'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def sweep(results: Path) -> None:
    """Two datasets, three strategies (one of them hostile), FLOPs measured."""
    write_rows(results, strategies=("global_magnitude", "random", EVIL), flops=True,
               datasets=("digits", "mnist"))  # fmt: skip
    failed = make_row("digits", "random", 0.7, 0)
    failed.status, failed.error = "failed", "RuntimeError: boom"
    store.write_row(results, failed)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    sweep(tmp_path / "res")
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(tmp_path / "res"), "-o", str(out), "--title", "<b>t</b>"]) == 0
    return out


def test_page_is_self_contained_and_escapes_user_strings(report: Path) -> None:
    page = report.read_text()
    assert EVIL not in page and "<b>t</b>" not in page
    assert html.escape(EVIL, quote=True) in page  # the tables, escaped
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page
    # Exactly our two script elements; the data one holds no '<' at all.
    assert page.count("<script") == 2 and page.count("</script>") == 2
    data = page.split('id="sweeplab-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and EVIL in json.loads(data)["strategies"]
    # Nothing is fetched: no src/href to another origin, no stylesheet links, no imports.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page


def test_script_json_escapes_closing_tags() -> None:
    text = script_json({"s": "</script><!-- \u2028 &"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"s": "</script><!-- \u2028 &"}


def test_plots_are_written_next_to_the_report(report: Path) -> None:
    plots = report.parent / "report_plots"
    names = sorted(p.name for p in plots.iterdir())
    for stem in ("acc_vs_compression-digits_mlp", "acc_vs_flop_speedup-mnist_mlp",
                 "sparsity_requested_vs_achieved"):  # fmt: skip
        assert f"{stem}.png" in names and f"{stem}.svg" in names
    assert any(n.startswith("layer_sparsity-") for n in names)
    assert all((plots / n).stat().st_size > 1000 for n in names)
    assert (plots / "sparsity_requested_vs_achieved.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_layer_run_is_a_clear_error(tmp_path: Path) -> None:
    write_rows(tmp_path)
    rows = load_rows(tmp_path)
    with pytest.raises(SweeplabError, match="--run nope is not among the selected runs"):
        write_report(summarize(rows), rows, tmp_path, tmp_path / "r.html", layer_run="nope")


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]  # fmt: skip
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _body(dom: str) -> dict[str, str]:
    tag = re.search(r"<body([^>]*)>", dom)
    assert tag, dom[:500]
    return {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag.group(1))}


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian: apt-get install chromium); "
    "`make test` installs it when CI=true",
)
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    url = report.resolve().as_uri()
    proc = _chromium(["--dump-dom", url], tmp_path / "profile")
    body = _body(proc.stdout)
    assert body.get("data-ready") == "1", proc.stderr[-2000:]
    assert json.loads(body["data-errors"]) == []
    assert "data-pwned" not in body
    charts = json.loads(body["data-charts"])
    # Two groups (digits, mnist), three strategies each.
    assert charts == {"card-0": 3, "card-1": 3, "sparsity": 3, "layers": 1}
    # Filters and pickers from the URL hash: one strategy, one dataset, FLOP speedup on x.
    filtered = _chromium(["--dump-dom", url + "#strategy=random&data=mnist&x=fsp"], tmp_path / "p2")
    body = _body(filtered.stdout)
    assert json.loads(body["data-errors"]) == []
    assert json.loads(body["data-charts"]) == {"card-1": 1, "sparsity": 1, "layers": 1}
    assert json.loads(body["data-state"])["x"] == "fsp"
    hidden = re.findall(r'<tr data-strategy="([^"]*)" style="display: none;"', filtered.stdout)
    assert hidden and "random" not in hidden
    shot = Path(os.environ.get("SWEEPLAB_SCREENSHOT_DIR", tmp_path)) / "report.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    _chromium([f"--screenshot={shot}", "--window-size=1280,900", url], tmp_path / "p3")
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
