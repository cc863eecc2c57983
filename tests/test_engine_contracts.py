"""Engine contracts: the layering, sparsity targets, declarations and the pure measure()."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from sweeplab.errors import SweeplabError
from sweeplab.pruning.budget import Target, select

PACKAGE = Path(__file__).resolve().parent.parent / "sweeplab"


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (at any level, TYPE_CHECKING blocks included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_schedules_and_recoveries_see_only_the_run_context() -> None:
    for name in ("schedules.py", "recovery.py", "weight_sharing.py"):
        assert "sweeplab.engine.pipeline" not in imports_of(PACKAGE / "engine" / name), name


@pytest.mark.parametrize("path", sorted((PACKAGE / "pruning").rglob("*.py")), ids=str)
def test_pruning_is_a_lightning_free_library(path: Path) -> None:
    banned = ("sweeplab.engine", "sweeplab.models", "sweeplab.results", "sweeplab.reproduce")
    banned += ("pytorch_lightning", "lightning")
    for module in imports_of(path):
        assert not module.startswith(banned), (path.name, module)


def test_geometric_targets_end_exactly_on_the_final_sparsity() -> None:
    targets = Target.geometric(0.875, 3)
    assert [t.sparsity for t in targets] == pytest.approx([0.5, 0.75, 0.875])
    assert targets[-1].sparsity == 0.875 and {t.per_step for t in targets} == {0.5}


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("sparsity", [0.3, 0.61, 0.9])
def test_an_absolute_target_over_existing_masks_hits_its_count(scope: str, sparsity: float) -> None:
    g = torch.Generator().manual_seed(0)
    scores = {
        "a.weight": torch.rand(40, 10, generator=g),
        "b.weight": torch.rand(10, 10, generator=g),
    }
    first = select(scores, Target.oneshot(0.2), scope)
    masks = select(scores, Target(sparsity), scope, existing=first)
    kept = sum(int(m.sum()) for m in masks.values())
    assert abs(kept - (1 - sparsity) * 500) <= 1 + (scope == "layer")
    for name, m in masks.items():
        assert int(m[first[name] == 0].sum()) == 0  # what was pruned stays pruned


def test_declarations_refuse_combinations_before_training() -> None:
    from sweeplab.engine import recovery, schedules
    from sweeplab.engine.compatibility import check_combination
    from sweeplab.engine.weight_sharing import WeightSharing
    from sweeplab.pruning.magnitude import Magnitude
    from sweeplab.pruning.structured import L1Filter

    structured = L1Filter(0.5, granularity="neuron", name="neuron_l1")
    assert structured.produces == "model" and Magnitude(0.5).produces == "masks"
    with pytest.raises(SweeplabError, match="acts on the weights a mask keeps"):
        check_combination(structured, schedules.OneShot(), WeightSharing())
    with pytest.raises(SweeplabError, match="runs with schedule=oneshot only"):
        check_combination(structured, schedules.AtInit(), recovery.Finetune())
    with pytest.raises(SweeplabError, match="schedule=iterative needs pruning.sparsity"):
        check_combination(Magnitude(threshold=0.1), schedules.Iterative(), recovery.Finetune())
    with pytest.raises(SweeplabError, match="recovery=retrain restarts it"):
        check_combination(Magnitude(0.5), schedules.Gradual(), recovery.Retrain())
    check_combination(structured, schedules.OneShot(), recovery.Distill())


def test_measure_is_a_pure_function_of_models_masks_and_data() -> None:
    from sweeplab.data.digits import load_digits
    from sweeplab.engine.measure import measure
    from sweeplab.pruning.masks import apply_masks, prunable_parameters

    digits = load_digits()
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    model.load_state_dict(dense.state_dict())
    scores = {k: w.abs() for k, w in prunable_parameters(model).items()}
    masks = select(scores, Target.oneshot(0.75), "global")
    apply_masks(model, masks)
    first = measure(model, dense, masks, digits, latency=False)
    assert first == measure(model, dense, masks, digits, latency=False)
    assert first["sparsity_achieved"] == 0.75 and first["params_prunable"] == 64 * 16 + 16 * 10
    assert first["params_nonzero"] == first["params_total"] - 0.75 * first["params_prunable"]
    assert 0.0 <= first["acc_finetuned_test"] <= 1.0 and first["flops"] < first["flops_dense"]
