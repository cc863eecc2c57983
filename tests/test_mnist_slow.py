"""Real MNIST acceptance (slow; run with `pytest -m slow`): LeNet-300-100, 10 + 5 epochs."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHARED_MNIST, rows_in, sweeplab
from sweeplab.results import store

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"no MNIST copy at {SHARED_MNIST}")
def test_lenet300_dense_and_global_magnitude_at_92_percent(tmp_path: Path) -> None:
    proc = sweeplab(
        [
            "run",
            "data=mnist",
            f"data.root={SHARED_MNIST}",
            "model=lenet300",
            "train.epochs=10",
            "pruning=global_magnitude",
            "pruning.sparsity=0.92",
            "finetune.epochs=5",
            f"paths.results_dir={tmp_path}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = [store.read_row(p) for p in rows_in(tmp_path)]
    assert row["params_total"] == 266_610
    assert row["acc_dense_test"] >= 0.980
    assert row["acc_finetuned_test"] >= 0.978
    assert abs(row["sparsity_achieved"] - 0.92) * row["params_prunable"] <= 1
