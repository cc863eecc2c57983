"""Weight sharing's size_bytes counts every shipped tensor, buffers included, as costs.py does."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from conftest import compose
from sweeplab.data.digits import load_digits
from sweeplab.engine.costs import size_dense_bytes
from sweeplab.engine.pipeline import Run
from sweeplab.engine.task import build_spec
from sweeplab.engine.weight_sharing import shared_model_bytes
from sweeplab.models.resnet_cifar import ResNetCifar
from sweeplab.pruning.budget import Target, select
from sweeplab.pruning.masks import apply_masks, prunable_parameters


def _shared_part(masks: dict[str, torch.Tensor], bits: int) -> int:
    """Keep-bitmask, codebook indices of the survivors, one fp32 codebook per layer."""
    prunable = sum(m.numel() for m in masks.values())
    survivors = sum(int(m.sum()) for m in masks.values())
    return math.ceil(prunable / 8) + math.ceil(survivors * bits / 8) + len(masks) * 2**bits * 4


def _by_hand(model: torch.nn.Module, masks: dict[str, torch.Tensor], bits: int) -> int:
    """The encoding written out: shared weights, then every other parameter and buffer dense."""
    rest = 0
    for name, t in model.state_dict().items():
        if name.endswith("_mask") or name.removesuffix("_orig") in masks:
            continue
        rest += t.numel() * (4 if t.is_floating_point() else t.element_size())
    return _shared_part(masks, bits) + rest


def test_resnet20_shared_size_counts_batch_norm_statistics_and_shortcut_indices() -> None:
    torch.manual_seed(0)
    model = ResNetCifar((3, 32, 32), 10)
    params = prunable_parameters(model)
    masks = select({n: w.abs() for n, w in params.items()}, Target.oneshot(0.9), "global")
    apply_masks(model, masks)
    buffers = sum(b.numel() for n, b in model.named_buffers() if not n.endswith("_mask"))
    assert buffers > 0  # running statistics, num_batches_tracked, shortcut indices
    size = shared_model_bytes(model, masks, 5)
    assert size == _by_hand(model, masks, 5)
    # Apart from the masked weights, the shared model ships what the dense size counts.
    prunable = sum(m.numel() for m in masks.values())
    assert size - _shared_part(masks, 5) == size_dense_bytes(model) - 4 * prunable


def test_weight_sharing_recover_reports_buffers_in_size_bytes(tmp_path: Path) -> None:
    cfg = [
        "train.epochs=1",
        "finetune.epochs=1",
        "model.batch_norm=true",
        "recovery=weight_sharing",
        "recovery.bits=3",
        f"paths.results_dir={tmp_path}",
    ]
    spec = build_spec(compose(cfg), "rid", "did")
    job = Run(spec, load_digits(), torch.device("cpu"))
    job.reset_to(job.init_state)
    masks = job.prune(Target.oneshot(spec.pruner.sparsity))
    extra = spec.recovery.recover(job, masks)
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in job.model.modules())
    assert extra["size_bytes"] == _by_hand(job.model, masks, 3)
