"""One run, top to bottom: data, dense (cached), prune on a schedule, recover, measure.

The schedule (sweeplab.engine.schedules) and the recovery (sweeplab.engine.recovery) act on a `Run`:
the run's data, model and dense reference, plus the few operations they share.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from filelock import FileLock
from pytorch_lightning.loggers import Logger
from torch import Tensor, nn

from sweeplab.data.base import Splits, TensorBatches
from sweeplab.engine import measure as metrics
from sweeplab.engine.cache import checkpoint_path, get_or_train, load_state, save_state
from sweeplab.engine.recovery import Recovery
from sweeplab.engine.schedules import Schedule
from sweeplab.engine.train import LitClassifier, StepCallback, TrainConfig, fit
from sweeplab.pruning.base import Pruner
from sweeplab.pruning.masks import (
    apply_masks,
    layer_sparsity,
    load_unmasked,
    prunable_parameters,
    remove_masks,
    sparsity_of,
)


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
    schedule: Schedule
    recovery: Recovery
    cache_dir: Path
    accelerator: str = "cpu"
    devices: int = 1
    inner_steps: int = 8
    logger: Logger | None = None
    latency: bool = True  # measure CPU inference latency (median of latency_repeats)
    latency_repeats: int = 5
    # Test accuracy at the last `checkpoints` checkpoints of recovery training, every
    # `checkpoint_every` optimizer steps (0: off). Some papers report the best of them.
    checkpoints: int = 0
    checkpoint_every: int = 1000
    # Called with (dense values, result) as soon as each result exists, so an iterative run's
    # rounds are on disk while later rounds train.
    on_result: Callable[[dict[str, object], Measured], None] | None = None


@dataclass
class Measured:
    """One result (one round); run.py merges it with identity and provenance into a row."""

    values: dict[str, object] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    round: int | None = None
    requested: float | None = None
    final: bool = True  # the run's last result: its row carries the run's own id


class Run:
    """A run's state and the operations schedules and recoveries share."""

    def __init__(self, spec: RunSpec, splits: Splits, device: torch.device) -> None:
        self.spec, self.splits, self.device = spec, splits, device
        self.pruner, self.recovery = spec.pruner, spec.recovery
        # Structured pruners (sweeplab.pruning.structured) return a physically smaller model.
        self.structured = getattr(spec.pruner, "granularity", "weight") != "weight"
        self.generator = torch.Generator().manual_seed(spec.seed)
        self.results: list[Measured] = []
        self.extra: dict[str, object] = {}
        self.seconds: dict[str, float] = {}  # wall seconds per phase of the current result
        self.init_state = self._state(self.fresh_init(spec.seed))
        self.model = spec.build_model(splits.input_shape, splits.num_classes).to(device)
        self.dense_info: dict[str, float] = {}
        self.dense_state: dict[str, Tensor] = {}
        self.dense_source = "trained"
        self.dense_costs: dict[str, float | int] = {}  # measured once, shared by every result

    # -- the model ------------------------------------------------------------------------
    def fresh_init(self, seed: int) -> nn.Module:
        """The model as initialized from `seed` (the dense model starts from seed = run seed)."""
        torch.manual_seed(seed)
        return self.spec.build_model(self.splits.input_shape, self.splits.num_classes)

    @staticmethod
    def _state(model: nn.Module) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def reset_to(self, source: nn.Module | dict[str, Tensor]) -> None:
        """Load weights into the (possibly masked) model; masks stay attached."""
        state = source.state_dict() if isinstance(source, nn.Module) else source
        load_unmasked(self.model, state)

    def dense_model(self) -> nn.Module:
        """A separate copy of the trained dense model."""
        model = self.spec.build_model(self.splits.input_shape, self.splits.num_classes)
        model.load_state_dict(self.dense_state)
        return model.to(self.device)

    def snapshot(self, step: int) -> dict[str, Tensor]:
        """Weights at optimizer step `step` of dense training (0 = initialization).

        Steps > 0 are cached next to the dense checkpoint; a missing one is recomputed by
        replaying the first `step` steps of the same deterministic dense training.
        """
        if step == 0:
            return self.init_state
        path = checkpoint_path(self.spec.cache_dir, self.spec.dense_id).with_suffix(
            f".step{step}.pt"
        )
        with FileLock(str(path) + ".lock"):
            cached = load_state(path)  # digest-checked; None if missing or damaged
            if cached is not None:
                return {k: v.to(self.device) for k, v in cached[0].items()}
            capture = _Capture(step)
            model = self.fresh_init(self.spec.seed).to(self.device)
            # Same init, seed and recipe as dense training: the replay is that training.
            self.fit(
                self.spec.train, "rewind", model=model, seed=self.spec.seed,
                callbacks=[capture], validate=False,
            )  # fmt: skip
            save_state(path, capture.state)
            return capture.state

    # -- operations -----------------------------------------------------------------------
    def fit(
        self,
        cfg: TrainConfig,
        phase: str,
        *,
        model: nn.Module | None = None,
        seed: int | None = None,
        **kw,
    ) -> None:
        """Train (self.model by default) with the run's trainer settings.

        The batch order is seeded by `seed`, by default a new one per result (round).
        """
        kw.setdefault("validate", True)
        track = None
        if self.spec.checkpoints and phase in RECOVERY_PHASES and model is None:
            track = _TestCheckpoints(self.splits, self.spec.checkpoints, self.spec.checkpoint_every)
            kw["callbacks"] = [*kw.get("callbacks", ()), track]
        with self.timed(phase):
            fit(
                model if model is not None else self.model,
                self.splits,
                cfg,
                seed=self.spec.seed + len(self.results) + 1 if seed is None else seed,
                phase=phase,
                accelerator=self.spec.accelerator,
                devices=self.spec.devices,
                inner_steps=self.spec.inner_steps,
                logger=self.spec.logger,
                **kw,
            )
        if track is not None:
            self.extra["acc_checkpoints_test"] = track.accs

    def batches(self) -> TensorBatches:
        """Shuffled training batches for data-driven criteria."""
        batch = self.spec.train.batch_size
        return TensorBatches(self.splits.train_x, self.splits.train_y, batch, True, self.spec.seed)

    def apply(self, masks: dict[str, Tensor]) -> None:
        apply_masks(self.model, masks)

    def prune(
        self,
        *,
        existing: dict[str, Tensor] | None = None,
        rate: float | None = None,
        sparsity: float | None = None,
    ) -> dict[str, Tensor]:
        """Score, threshold and attach masks; returns them.

        Args:
            existing: earlier masks (what they prune stays pruned).
            rate: fraction of the surviving weights to prune now.
            sparsity: overall target instead of a rate (gradual schedules).
        """
        if self.structured:
            with self.timed("prune"):
                example = self.splits.train_x[:1]
                pruned = self.pruner.prune(self.model, example, self.batches(), self.generator)
                self.model = pruned.to(self.device)
            return {}
        if sparsity is not None:
            total = sum(
                p.numel() for p in prunable_parameters(self.model, self.pruner.exclude).values()
            )
            remaining = total if existing is None else sum(int(m.sum()) for m in existing.values())
            rate = max(0.0, 1.0 - (1.0 - sparsity) * total / max(remaining, 1))
        with self.timed("prune"):
            was_training = self.model.training
            masks = self.pruner.masks(
                self.model, self.batches(), self.generator, existing=existing, rate=rate
            )
            self.model.train(was_training)
            self.apply(masks)
        return masks

    def dense_values(self) -> dict[str, object]:
        """Row fields of the dense model this run started from."""
        return {
            "acc_dense_test": self.dense_info.get("acc_test"),
            "acc_dense_val": self.dense_info.get("acc_val"),
            "dense_source": self.dense_source,
        }

    def evaluate(self) -> tuple[float, float]:
        """(test, val) accuracy of the model as it is now."""
        s = self.splits
        return metrics.accuracy(self.model, s.test_x, s.test_y), metrics.accuracy(
            self.model, s.val_x, s.val_y
        )

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the block's wall time to this result's seconds[phase] (nested blocks overlap:
        a gradual schedule's mask updates count in both prune and its training phase)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[phase] = round(self.seconds.get(phase, 0.0) + elapsed, 3)

    def record(
        self,
        masks: dict[str, Tensor],
        before: tuple[float, float] | None,
        *,
        round: int | None = None,
        requested: float | None = None,
        final: bool = True,
    ) -> None:
        """Measure the recovered model (masks still attached) as one result."""
        from sweeplab.engine import costs

        with self.timed("measure"):
            test, val = self.evaluate()
            dense = self.dense_model()
            total, nonzero = metrics.params_total(self.model), metrics.params_nonzero(self.model)
            if self.structured:
                from sweeplab.pruning.structured.groups import layer_removed, removed_fraction

                achieved, layers = (
                    removed_fraction(dense, self.model),
                    layer_removed(dense, self.model),
                )
                prunable = sum(p.numel() for p in prunable_parameters(dense).values())
            else:
                achieved, layers = sparsity_of(masks), layer_sparsity(masks)
                prunable = sum(m.numel() for m in masks.values())
            cost = costs.cost_fields(
                dense,
                costs.plain_copy(self.model),
                self.splits.input_shape,
                latency=self.spec.latency,
                repeats=self.spec.latency_repeats,
                threads=1,  # one thread: timings that other processes disturb least
                dense_cache=self.dense_costs,
            )
        values: dict[str, object] = dict(
            acc_pruned_test=before[0] if before else None,
            acc_pruned_val=before[1] if before else None,
            acc_finetuned_test=test,
            acc_finetuned_val=val,
            sparsity_achieved=achieved,
            granularity=getattr(self.pruner, "granularity", "weight"),
            params_total=total,
            params_prunable=prunable,
            params_nonzero=nonzero,
            # ShrinkBench: all parameters of the dense model / nonzero parameters now.
            compression=metrics.compression(metrics.params_total(dense), nonzero),
            layer_sparsity=layers,
            **cost,
        )
        values.update(self.extra)  # recovery-specific fields (weight sharing's size) win
        result = Measured(values, self.seconds, round=round, requested=requested, final=final)
        self.results.append(result)
        self.seconds = {}
        if self.spec.on_result is not None:
            self.spec.on_result(self.dense_values(), result)


# The fits that train the pruned model itself (not dense training, replays or LTH's control).
RECOVERY_PHASES = ("finetune", "retrain")


class _TestCheckpoints(StepCallback):
    """Test accuracy at the fit's last `count` checkpoints, `every` optimizer steps apart.

    Checkpoints are counted back from the fit's end (the last one is the final model), as the
    SNIP reference code keeps its last 10 checkpoints, 1000 iterations apart. Evaluation reads
    no random numbers and leaves train mode as it was: training is unchanged.
    """

    def __init__(self, splits: Splits, count: int, every: int) -> None:
        self.splits, self.count, self.every = splits, count, every
        self.accs: list[float] = []

    def on_optimizer_step(self, module: LitClassifier, step: int) -> None:
        left = module.total_steps - step
        if left % self.every == 0 and left < self.count * self.every:
            with torch.no_grad():
                acc = metrics.accuracy(module.model, self.splits.test_x, self.splits.test_y)
            self.accs.append(acc)


class _Capture(StepCallback):
    """Copies the model's weights at one optimizer step, then stops training."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.state: dict[str, Tensor] = {}

    def on_optimizer_step(self, module: LitClassifier, step: int) -> None:
        if step == self.step:
            self.state = Run._state(module.model)
            module.trainer.should_stop = True


def _device(accelerator: str) -> torch.device:
    return torch.device("cuda" if accelerator in ("gpu", "cuda") else "cpu")


def run(spec: RunSpec) -> Run:
    """Train (or load) the dense model, then let the schedule prune and recover it.

    Returns:
        The finished Run: .results holds one Measured per result row, .model the pruned
        model with its zeros baked in.
    """
    start = time.perf_counter()
    device = _device(spec.accelerator)
    splits = spec.load_data().to(device)
    job = Run(spec, splits, device)
    data_seconds = time.perf_counter() - start

    job.reset_to(job.init_state)
    job.model.to(device)
    # A pruner that cannot act on this model says so now, not after dense training.
    check = getattr(spec.pruner, "check", None)
    if check is not None:
        with torch.no_grad():
            check(job.model, splits.train_x[:2])

    def train_dense(model: nn.Module) -> dict[str, float]:
        t0 = time.perf_counter()
        job.fit(spec.train, "dense", model=model, seed=spec.seed)
        test, val = (
            metrics.accuracy(model, splits.test_x, splits.test_y),
            metrics.accuracy(model, splits.val_x, splits.val_y),
        )
        return {"acc_test": test, "acc_val": val, "train_seconds": time.perf_counter() - t0}

    job.dense_info, source = get_or_train(spec.cache_dir, spec.dense_id, job.model, train_dense)
    job.model.to(device)
    job.dense_state = Run._state(job.model)
    # Whatever training consumed, what follows starts from the same RNG state whether the
    # dense model was trained now or loaded from the cache.
    torch.manual_seed(spec.seed + 1)
    job.seconds = {
        "data": round(data_seconds, 3),
        "dense": round(time.perf_counter() - start - data_seconds, 3),
    }

    job.dense_source = source
    spec.schedule.run(job)
    remove_masks(job.model)
    return job
