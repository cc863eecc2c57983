"""Structured strategies through the whole pipeline, cost fields in rows, and `sweeplab export`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from conftest import CONF, compose
from sweeplab.cli import main
from sweeplab.data.digits import load_digits
from sweeplab.engine.task import execute
from sweeplab.errors import SweeplabError

FAST = ["train.epochs=3", "finetune.epochs=2"]
STRUCTURED = sorted(
    p.stem for p in (CONF / "pruning").glob("*.yaml") if "granularity:" in p.read_text()
)
COSTS = ("flops_dense", "flops", "size_dense_bytes", "size_sparse_bytes", "size_bytes")


@pytest.mark.parametrize("strategy", STRUCTURED)
def test_every_structured_file_composes_and_instantiates(strategy: str) -> None:
    pruner = instantiate(compose([f"pruning={strategy}"]).pruning)
    assert pruner.granularity in ("channel", "neuron", "block", "head") and 0 < pruner.ratio < 1


def test_neuron_pruning_runs_end_to_end_with_costs(tmp_path: Path) -> None:
    row = execute(compose([*FAST, "pruning=neuron_l1", f"paths.results_dir={tmp_path}"]))
    assert row.granularity == "neuron" and row.sparsity_requested == 0.5
    assert row.params_total == row.params_nonzero < 17_226  # smaller dense model, no zeros
    assert row.compression == pytest.approx(17_226 / row.params_total)
    assert all(getattr(row, k) > 0 for k in COSTS)
    assert row.flops < row.flops_dense and row.size_bytes < row.size_dense_bytes
    assert row.speedup_theoretical == pytest.approx(row.flops_dense / row.flops)
    assert row.latency_b64_ms > 0 and row.speedup_measured > 0


def test_unstructured_rows_carry_sparse_costs(tmp_path: Path) -> None:
    row = execute(compose([*FAST, "pruning.sparsity=0.9", f"paths.results_dir={tmp_path}"]))
    assert row.granularity == "weight"
    # Sparsity-aware MACs: each layer's MACs times its density, so about 10x fewer.
    assert row.flops == pytest.approx(row.flops_dense * 0.1, rel=0.02)
    assert row.size_sparse_bytes < row.size_dense_bytes


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["schedule=iterative"], "runs with schedule=oneshot only, not schedule=iterative"),
        (["recovery=weight_rewind"], "with pruning=neuron_l1 use recovery=finetune"),
    ],
)
def test_structured_refuses_what_cannot_apply(overrides, message, tmp_path: Path) -> None:
    cfg = compose([*FAST, "pruning=neuron_l1", *overrides, f"paths.results_dir={tmp_path}"])
    with pytest.raises(SweeplabError, match=message):
        execute(cfg)


def test_export_rebuilds_the_run_and_loads_without_sweeplab(tmp_path: Path, capsys) -> None:
    row = execute(compose([*FAST, "pruning=random", f"paths.results_dir={tmp_path}"]))
    out = tmp_path / "exported"
    assert main(["export", row.run_id, str(out), "--results-dir", str(tmp_path)]) == 0
    spec = importlib.util.spec_from_file_location("exported_load", out / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.load(out)
    digits = load_digits()
    with torch.inference_mode():  # an exported program is inference-only: no .eval() needed
        correct = int((model(digits.test_x).argmax(1) == digits.test_y).sum())
    assert correct / len(digits.test_y) == row.acc_finetuned_test
    assert main(["export", row.run_id, str(out), "--results-dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
