"""The report as the place to compare: pickers for x, y and lines, filters by any varying key,
confidence bands, one-line legends with the full config on hover, nothing clipped at 1400 px.
Drawn from the mixed folder of issue 13 (demo, MNIST, iterative, weight rewind).

SWEEPLAB_DOCS_SCREENSHOT=docs/report.png makes the screenshot test write the README's picture
(`make docs/report.png`); with SWEEPLAB_DOCS_RESULTS=DIR it draws that real results dir instead
of the test's folder (whose metrics are made up)."""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import pytest

from issue_folder import write_issue_folder
from sweeplab.cli import main
from sweeplab.results.analysis import summarize
from sweeplab.results.dashboard import payload, varying_keys
from sweeplab.results.rows import load_rows
from test_report import CHROMIUM, _body, _chromium

WIDTH = 1400
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed")

# Runs inside the page after its own script: picks, filters, and what each view drew.
DRIVER = """<script>
(function () {
  var steps = [];
  function record(name) {
    var b = document.body;
    steps.push({ step: name, charts: JSON.parse(b.getAttribute("data-charts")),
      bands: JSON.parse(b.getAttribute("data-bands")),
      layout: JSON.parse(b.getAttribute("data-layout")),
      dashed: document.querySelectorAll('[data-chart="card-0"] polyline[stroke-dasharray="5 4"]')
        .length,
      xlabel: Array.from(document.querySelectorAll('[data-chart="card-0"] text'))
        .map(function (t) { return t.textContent; }).join("|"),
      styles: Array.from(document.querySelectorAll(".card .styles"))[0].textContent,
      titles: Array.from(document.querySelectorAll(".legend .lines .entry"))
        .map(function (e) { return e.title; }),
      hash: location.hash });
  }
  function pick(id, value) {
    var select = document.getElementById(id);
    select.value = value;
    select.dispatchEvent(new Event("change"));
    record(id + "=" + value);
  }
  function untick(key, value) {
    var box = document.querySelector('#filters fieldset[data-key="' + key + '"] input[value="' +
      value + '"]');
    box.checked = false;
    box.dispatchEvent(new Event("change"));
    record(key + "-" + value);
  }
  record("default");
  pick("pick-group", "strategy");
  pick("pick-group", "recovery");
  untick("recovery", "weight_rewind");
  pick("pick-x", "size");
  pick("pick-y", "drop");
  document.body.setAttribute("data-driven", JSON.stringify(steps));
})();
</script>"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("issue")
    write_issue_folder(root / "res")
    out = root / "report.html"
    title = "sweeplab report: demo, MNIST, iterative and weight-rewind runs in one folder"
    args = ["report", str(root / "res"), "-o", str(out), "--no-plots", "--baseline", "random",
            "--title", title]  # fmt: skip
    assert main(args) == 0
    return root


def test_payload_lists_the_keys_a_reader_can_pick(folder: Path) -> None:
    rows = load_rows(folder / "res")
    keys = varying_keys(rows[rows["status"] == "ok"])
    for key in ("data", "strategy", "schedule", "recovery", "experiment", "seed",
                "finetune.epochs", "train.epochs", "pruning.sparsity"):  # fmt: skip
        assert key in keys
    # Choices a column names already, copies of a column, and what does not change a result.
    assert not [k for k in keys if k.endswith(("._target_", ".name")) or k == "pruning.scope"]
    assert not [k for k in keys if k.startswith(("trainer.", "measure.", "paths."))]
    data = payload(summarize(rows), "t", None, {})
    assert len(data["runs"]) == 44 and len(data["groups"]) == 2
    assert data["t"][1] == pytest.approx(4.303, abs=1e-3)  # two degrees of freedom
    run = data["runs"][0]
    # Config keys shared by every run are stored once; each run keeps only what differs.
    assert "recovery._target_" in run["config"] and "train.lr" in data["common"]
    assert run["k"]["series"] and set(data["keys"][0]) == {"key", "name", "bare", "values"}


@needs_chromium
def test_pickers_filters_bands_and_one_line_legends(folder: Path, tmp_path: Path) -> None:
    page = (folder / "report.html").read_text()
    assert "Paired difference" in page  # --baseline's comparison table
    driven = folder / "driven.html"
    driven.write_text(page.replace("</body>", DRIVER + "</body>"))
    proc = _chromium([f"--window-size={WIDTH},1000", "--dump-dom", driven.as_uri()],
                     tmp_path / "profile")  # fmt: skip
    body = _body(proc.stdout)
    assert body.get("data-ready") == "1", proc.stderr[-2000:]
    assert json.loads(body["data-errors"]) == []
    dom = proc.stdout
    selects = {
        p: dom.split(f'id="{p}"')[1].split("</select")[0]
        for p in ("pick-x", "pick-y", "pick-group")
    }
    options = {p: re.findall(r'<option value="([^"]*)"', text) for p, text in selects.items()}
    assert options["pick-x"] == ["c", "fsp", "msp", "size", "lat"]
    assert options["pick-y"] == ["acc", "accb", "drop"]
    assert {"series", "strategy", "schedule", "recovery", "finetune.epochs", "seed"} <= set(
        options["pick-group"]
    )
    steps = {s["step"]: s for s in json.loads(body["data-driven"])}
    default = steps["default"]
    # digits: 3 demo strategies, the iterative and the weight-rewind series; MNIST: 2.
    assert default["charts"] == {"card-0": 5, "card-1": 2, "sparsity": 3, "layers": 1}
    # Bands where a point pools 3 seeds (the demo series), none where every n is 1 (MNIST).
    assert default["bands"]["card-0"] == 3 and default["bands"]["card-1"] == 0
    assert default["dashed"] == 5 and "before recovery" in default["styles"]
    assert "95% CI" in default["styles"] and "own dense models" in default["styles"]
    assert steps["pick-group=strategy"]["charts"]["card-0"] == 3
    assert steps["pick-group=recovery"]["charts"]["card-0"] == 2
    assert steps["recovery-weight_rewind"]["charts"]["card-0"] == 1
    assert "recovery=finetune" in steps["recovery-weight_rewind"]["hash"]
    assert "model size" in steps["pick-x=size"]["xlabel"]
    last = steps["pick-y=drop"]
    assert "accuracy drop" in last["xlabel"] and last["dashed"] == 0
    assert "before recovery" not in last["styles"] and "group=recovery" in last["hash"]
    for step in steps.values():
        layout = step["layout"]
        assert layout["entries"] > 0 and layout["wrapped"] == 0, step
        assert layout["truncated"] == layout["textOutside"] == layout["cardOverflow"] == 0, step
        assert layout["pageOverflow"] is False, step
    # Every line's legend entry has the full config of its runs as a hover title.
    titles = default["titles"]
    assert len(titles) == 7 and all("\nconfig:\n" in t for t in titles)
    rewind = next(t for t in titles if t.startswith("global_magnitude [oneshot, weight_rewind]"))
    assert "recovery._target_ = sweeplab.engine.recovery.WeightRewind" in rewind
    assert "finetune.epochs = 5" in rewind and "seed = 0" in rewind


@needs_chromium
def test_screenshot_at_1400_px(folder: Path, tmp_path: Path) -> None:
    shot = Path(os.environ.get("SWEEPLAB_DOCS_SCREENSHOT") or tmp_path / "report.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    if os.environ.get("SWEEPLAB_DOCS_RESULTS"):  # the README's picture: real runs
        folder = tmp_path / "real"
        folder.mkdir()
        args = [
            "report",
            os.environ["SWEEPLAB_DOCS_RESULTS"],
            "-o",
            str(folder / "report.html"),
            "--no-plots",
            "--title",
            os.environ.get("SWEEPLAB_DOCS_TITLE", "sweeplab report"),
        ]
        assert main(args) == 0
    proc = _chromium(
        [f"--screenshot={shot.resolve()}", f"--window-size={WIDTH},1000", "--hide-scrollbars",
         (folder / "report.html").as_uri()], tmp_path / "profile",
    )  # fmt: skip
    blob = shot.read_bytes()
    assert blob[:4] == b"\x89PNG", proc.stderr[-2000:]
    assert struct.unpack(">II", blob[16:24]) == (WIDTH, 1000)  # IHDR: width, height
    assert 20_000 < len(blob) < 300_000
