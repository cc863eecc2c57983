"""One run, top to bottom: data, dense (cached), prune, finetune, measure."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pytorch_lightning.loggers import Logger
from torch import nn

from sweeplab import metrics
from sweeplab.cache import get_or_train
from sweeplab.data.base import Splits, TensorBatches
from sweeplab.lit import TrainConfig, fit
from sweeplab.pruning.base import Pruner
from sweeplab.pruning.masks import apply_masks, layer_sparsity, remove_masks, sparsity_of


@dataclass
class RunSpec:
    """Everything one run needs, already instantiated and checked (no DictConfig here)."""

    run_id: str
    dense_id: str
    seed: int
    load_data: Callable[[], Splits]
    build_model: Callable[[Sequence[int], int], nn.Module]
    train: TrainConfig
    finetune: TrainConfig
    pruner: Pruner
    cache_dir: Path
    accelerator: str = "cpu"
    devices: int = 1
    inner_steps: int = 8
    logger: Logger | None = None


@dataclass
class Measured:
    """What a run measured; run.py merges it with identity and provenance into a ResultRow."""

    values: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _device(accelerator: str) -> torch.device:
    return torch.device("cuda" if accelerator in ("gpu", "cuda") else "cpu")


def run(spec: RunSpec) -> Measured:
    """Train (or load) the dense model, prune it one-shot, finetune, and measure each stage."""
    out = Measured()
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        out.seconds[phase] = round(now - clock, 3)
        clock = now

    # 1. data: whole splits on the run's device.
    splits = spec.load_data().to(_device(spec.accelerator))
    lap("data")

    # 2. dense: initialized from the seed, trained once per dense_id.
    torch.manual_seed(spec.seed)
    model = spec.build_model(splits.input_shape, splits.num_classes).to(_device(spec.accelerator))

    def train_dense(m: nn.Module) -> dict[str, float]:
        start = time.perf_counter()
        fit(m, splits, spec.train, seed=spec.seed, phase="dense", **_trainer(spec))
        return {
            "acc_test": metrics.accuracy(m, splits.test_x, splits.test_y),
            "acc_val": metrics.accuracy(m, splits.val_x, splits.val_y),
            "train_seconds": time.perf_counter() - start,
        }

    dense, source = get_or_train(spec.cache_dir, spec.dense_id, model, train_dense)
    model.to(_device(spec.accelerator))
    out.values.update(
        acc_dense_test=dense["acc_test"], acc_dense_val=dense["acc_val"], dense_source=source
    )
    # Whatever training consumed, what follows starts from the same RNG state whether the
    # dense model was trained now or loaded from the cache.
    torch.manual_seed(spec.seed + 1)
    lap("dense")

    # 3. prune: one shot, masks keyed by parameter name, attached via torch.nn.utils.prune.
    batches = TensorBatches(splits.train_x, splits.train_y, spec.train.batch_size, True, spec.seed)
    masks = spec.pruner.masks(model, batches, torch.Generator().manual_seed(spec.seed))
    apply_masks(model, masks)
    out.values.update(
        acc_pruned_test=metrics.accuracy(model, splits.test_x, splits.test_y),
        acc_pruned_val=metrics.accuracy(model, splits.val_x, splits.val_y),
    )
    lap("prune")

    # 4. recover: finetune the survivors; masked weights stay exactly zero.
    fit(model, splits, spec.finetune, seed=spec.seed + 1, phase="finetune", **_trainer(spec))
    remove_masks(model)
    lap("finetune")

    # 5. measure.
    total, nonzero = metrics.params_total(model), metrics.params_nonzero(model)
    out.values.update(
        acc_finetuned_test=metrics.accuracy(model, splits.test_x, splits.test_y),
        acc_finetuned_val=metrics.accuracy(model, splits.val_x, splits.val_y),
        sparsity_achieved=sparsity_of(masks),
        params_total=total,
        params_prunable=sum(m.numel() for m in masks.values()),
        params_nonzero=nonzero,
        compression=metrics.compression(total, nonzero),
        layer_sparsity=layer_sparsity(masks),
    )
    lap("measure")
    return out


def _trainer(spec: RunSpec) -> dict[str, object]:
    return {
        "accelerator": spec.accelerator,
        "devices": spec.devices,
        "inner_steps": spec.inner_steps,
        "logger": spec.logger,
    }
