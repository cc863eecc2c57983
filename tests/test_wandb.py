"""W&B: `logger=wandb` writes one offline run per sweep run holding the row; `report --wandb`.

Offline only: WANDB_MODE=offline and every W&B folder inside tmp_path; no network is used.
The offline `.wandb` file is W&B's record log (LevelDB-style 32 KiB blocks of protobuf
records); `records()` reads it so the test checks what `wandb sync` would upload.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import FAST, rows_in, sweeplab
from sweeplab.results import store
from sweeplab.results.wandb import wandb_mode
from test_analysis import write_rows

_BLOCK = 32 * 1024
_HEADER = 7  # ':W&B' + magic (2 bytes) + version; then each chunk: crc (4), length (2), type (1)


def records(path: Path) -> Iterator[Any]:
    """The protobuf records of an offline W&B run file."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk  # FULL/FIRST start a record
        if kind in (1, 4):  # FULL/LAST end it
            record = pb.Record()
            record.ParseFromString(pending)
            yield record


def read_run(path: Path) -> dict[str, Any]:
    """Summary, config, tags and group of one offline run, as the last records left them."""
    out: dict[str, Any] = {"summary": {}, "config": {}, "tags": [], "group": None, "kinds": set()}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        out["kinds"].add(kind)
        if kind == "summary":
            for item in rec.summary.update:
                key = item.key or "/".join(item.nested_key)
                out["summary"][key] = json.loads(item.value_json)
        elif kind == "config":
            for item in rec.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "run":
            out["tags"], out["group"] = list(rec.run.tags), rec.run.run_group
            out["name"], out["id"] = rec.run.display_name, rec.run.run_id
    return out


def wandb_env(tmp_path: Path) -> dict[str, str]:
    """Offline W&B with every folder of its own under tmp_path (nothing in $HOME)."""
    return {
        "WANDB_MODE": "offline",
        "WANDB_API_KEY": "",
        "WANDB_DIR": str(tmp_path / "wandb_dir"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb_cache"),
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb_config"),
        "WANDB_DATA_DIR": str(tmp_path / "wandb_data"),
        "WANDB_SILENT": "true",
        "HOME": str(tmp_path / "home"),
    }


def test_mode_is_offline_without_an_api_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_sweep_with_wandb_logger_writes_offline_runs_holding_the_row(tmp_path: Path) -> None:
    res = tmp_path / "res"
    args = ["run", "-m", "logger=wandb", "pruning=random,global_magnitude",
            "pruning.sparsity=0.5", *FAST, f"paths.results_dir={res}"]  # fmt: skip
    proc = sweeplab(args, cwd=tmp_path, env=wandb_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {p.stem: store.read_row(p) for p in rows_in(res)}  # flat: metrics beside the core
    files = sorted((res / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(rows) == 2 and len(files) == 2
    assert proc.stdout.count("upload it with: wandb sync ") == 2
    runs = [read_run(f) for f in files]
    assert {r["summary"]["run_id"] for r in runs} == set(rows)
    for run in runs:
        row = rows[run["summary"]["run_id"]]
        summary = run["summary"]
        for key in ("acc_finetuned_test", "compression", "sparsity_achieved", "strategy"):
            assert summary[key] == pytest.approx(row[key]) if key != "strategy" else row[key]
        assert summary["layer_sparsity"] == pytest.approx(row["layer_sparsity"])
        assert run["config"]["finetune.epochs"] == 1 and run["config"]["pruning.sparsity"] == 0.5
        assert {row["strategy"], "oneshot", "finetune"} <= set(run["tags"])
        assert run["group"].startswith("sweep-")  # both runs of this multirun in one group
        assert run["id"] == row["run_id"]
        assert run["name"] == f"{row['strategy']}-s0.5-seed0"  # readable; the id is the hash
        assert {"history", "exit"} <= run["kinds"]
    assert len({r["group"] for r in runs}) == 1
    backfill = sweeplab(["wandb-log", str(res)], cwd=tmp_path, env=wandb_env(tmp_path))
    assert "0 row(s) logged to project sweeplab, 2 logged before" in backfill.stdout  # once
    tables = list(
        (res / "wandb").glob("offline-run-*/files/media/table/layer_sparsity_table_*.json")
    )
    assert len(tables) == 2
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["layer", "sparsity"] and len(table["data"]) == 3


def test_report_wandb_logs_tables_and_curves_offline(tmp_path: Path) -> None:
    write_rows(tmp_path / "res")
    out = tmp_path / "report.html"
    proc = sweeplab(
        ["report", str(tmp_path / "res"), "-o", str(out), "--wandb", "--no-plots"],
        cwd=tmp_path,
        env=wandb_env(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.exists() and "upload with: wandb sync " in proc.stdout
    files = list((tmp_path / "wandb_dir" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    run = read_run(files[0])
    assert run["summary"]["best/global_magnitude"] > 1
    logged = {k.rsplit("/", 1)[0]: v for k, v in run["summary"].items() if k.endswith("/_type")}
    assert logged["pareto"] == logged["best_within_delta"] == "table-file"
    assert logged["acc_vs_compression/digits/mlp_table"] == "table-file"  # the line_series chart
    assert logged["tables_markdown"] == "html-file"


def test_wandb_log_backfills_finished_rows_once_with_readable_names(tmp_path: Path) -> None:
    """A finished sweep re-run with logger=wandb logs nothing (its runs are skipped):
    `sweeplab wandb-log` logs the existing rows, once per project; names are readable, the
    W&B id is the run id."""
    from sweeplab.results.wandb import run_name

    res = tmp_path / "res"
    write_rows(res, strategies=("global_magnitude",), sparsities=(0.9,), seeds=(0, 1))
    env = wandb_env(tmp_path)
    first = sweeplab(["wandb-log", str(res)], cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "2 row(s) logged to project sweeplab, 0 logged before" in first.stdout
    files = sorted((res / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2
    runs = [read_run(f) for f in files]
    ids = {f.stem.removeprefix("run-") for f in files}
    assert ids == {r["summary"]["run_id"] for r in runs} == {r["id"] for r in runs}
    assert {r["name"] for r in runs} == {
        "global_magnitude-s0.9-seed0",
        "global_magnitude-s0.9-seed1",
    }
    again = sweeplab(["wandb-log", str(res)], cwd=tmp_path, env=env)
    assert "0 row(s) logged to project sweeplab, 2 logged before" in again.stdout
    assert len(sorted((res / "wandb").glob("offline-run-*/run-*.wandb"))) == 2
    row = {"strategy": "global_magnitude", "sparsity_requested": 0.9, "seed": 0, "run_id": "ab"}
    assert run_name(row) == "global_magnitude-s0.9-seed0"
    assert run_name({**row, "run_id": "ab-r2"}) == "global_magnitude-s0.9-seed0-r2"
