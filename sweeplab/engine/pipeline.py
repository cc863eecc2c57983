"""One run, top to bottom: data, dense (cached), prune on a schedule, recover, measure.

`Run` is the RunContext (sweeplab.engine.context) that the schedule and the recovery act on;
`run` drives it: the schedule yields one Outcome per result, measured here by
sweeplab.engine.measure.measure and handed to `spec.on_result` at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch
from pytorch_lightning.loggers import Logger
from torch import Tensor, nn

from sweeplab.data.base import Splits, TensorBatches
from sweeplab.engine import snapshots, stack_jobs, stacking, streams
from sweeplab.engine.cache import get_or_train
from sweeplab.engine.checkpoints import RECOVERY_PHASES, TestCheckpoints
from sweeplab.engine.context import Masks, Outcome
from sweeplab.engine.latency import REPEATS
from sweeplab.engine.measure import accuracy, measure
from sweeplab.engine.recipe import TrainConfig
from sweeplab.engine.recovery import Recovery
from sweeplab.engine.resume import Partials
from sweeplab.engine.row_weights import Weights
from sweeplab.engine.schedules import Schedule
from sweeplab.engine.snapshots import state_of
from sweeplab.engine.train import steps_per_epoch
from sweeplab.engine.trainer_settings import DEFAULTS, TrainerSettings
from sweeplab.pruning.base import Pruner
from sweeplab.pruning.budget import Target
from sweeplab.pruning.masks import apply_masks, load_unmasked, remove_masks
from sweeplab.pruning.strategy import ModelPruner, Strategy


@dataclass
class RunSpec:
    """Everything one run needs, already instantiated and checked (no DictConfig here)."""

    run_id: str
    dense_id: str
    dense_sha256: str  # identity.dense_digest: recorded in (and checked against) checkpoints
    seed: int
    load_data: Callable[[], Splits]
    build_model: Callable[[Sequence[int], int], nn.Module]
    train: TrainConfig
    finetune: TrainConfig
    pruner: Strategy
    schedule: Schedule
    recovery: Recovery
    cache_dir: Path
    accelerator: str = "cpu"
    devices: int = 1
    trainer: TrainerSettings = DEFAULTS  # inner_steps, precision, clipping, progress, ...
    run_sha256: str = ""  # identity.run_digest: recorded in recovery fits' partial checkpoints
    logger: Logger | None = None
    latency: bool = True  # measure CPU inference latency (median, quartiles of latency_repeats)
    latency_repeats: int = REPEATS
    # Test accuracy at the last `checkpoints` checkpoints of recovery training, every
    # `checkpoint_every` optimizer steps (0: off). Some papers report the best of them.
    checkpoints: int = 0
    checkpoint_every: int = 1000
    # Called with (dense values, result) as soon as each result exists, so an iterative run's
    # rounds are on disk while later rounds train.
    on_result: Callable[[dict[str, object], Measured], None] | None = None


@dataclass
class Measured:
    """One result (one round); task.py merges it with identity and provenance into a row."""

    values: dict[str, object] = field(default_factory=dict)  # metric name -> value
    seconds: dict[str, float] = field(default_factory=dict)
    round: int | None = None
    requested: float | None = None
    final: bool = True  # the run's last result: its row carries the run's own id
    weights: Weights | None = field(default=None, repr=False)  # the model measured, to save


class Run:
    """A run's state; implements RunContext for its schedule and recovery."""

    def __init__(self, spec: RunSpec, splits: Splits, device: torch.device) -> None:
        self.spec, self.splits, self.device = spec, splits, device
        self.pruner = spec.pruner
        self.seed, self.train, self.finetune = spec.seed, spec.train, spec.finetune
        self.sparsity = spec.pruner.sparsity
        self.structured = spec.pruner.produces == "model"
        self.generator = streams.generator(spec.seed, "scores")  # stochastic criteria
        self.results: list[Measured] = []
        self.seconds: dict[str, float] = {}  # wall seconds per phase of the current result
        self.measured: dict[str, object] = {}  # what fits measured for the current result
        model = self.fresh_init()
        self.init_state = state_of(model)  # a copy: step 0 of dense training
        self.model = model.to(device)
        self.dense_info: dict[str, float] = {}
        self.dense_state: dict[str, Tensor] = {}
        self.dense_source = "trained"
        self.dense_costs: dict[str, float | int] = {}  # counted once, shared by every result
        self.partials = Partials(spec)  # fits resume from them once run() activates them
        self.shares = 0.0  # seconds of stacked fits charged to this run (stacked launches)

    # -- RunContext -----------------------------------------------------------------------
    def steps_per_epoch(self, batch_size: int) -> int:
        return steps_per_epoch(self.splits, batch_size)

    def fresh_init(self, stream: str = "init") -> nn.Module:
        streams.seed_global(self.seed, stream)
        return self.spec.build_model(self.splits.input_shape, self.splits.num_classes)

    def reset_to(self, state: Mapping[str, Tensor] | nn.Module) -> None:
        load_unmasked(
            self.model, dict(state.state_dict() if isinstance(state, nn.Module) else state)
        )

    def dense_model(self) -> nn.Module:
        model = self.spec.build_model(self.splits.input_shape, self.splits.num_classes)
        model.load_state_dict(self.dense_state)
        return model.to(self.device)

    def snapshot(self, step: int) -> Mapping[str, Tensor]:
        """Weights at optimizer step `step` of dense training; cached, else replayed."""
        if step == 0:
            return self.init_state

        def replay(capture: snapshots.Capture) -> None:
            model = self.fresh_init().to(self.device)
            # Same init, streams and recipe as dense training: the replay is that training.
            self.fit(
                self.train, "rewind", model=model, index=0, callbacks=[capture],
                validate=False,
            )  # fmt: skip

        return snapshots.snapshot(
            self.spec.cache_dir, self.spec.dense_id, step, replay, self.device,
            config_sha256=self.spec.dense_sha256,
        )  # fmt: skip

    def fit(
        self,
        recipe: TrainConfig,
        phase: str,
        *,
        model: nn.Module | None = None,
        index: int | None = None,
        **kw,
    ) -> None:
        """Train (the run's model by default) with the run's trainer settings.

        `index` picks the fit's batch order (and augmentation) streams: 0 is dense training's,
        by default a new one per result (round); fits of one round share it (paired).
        """
        kw.setdefault("validate", True)
        index = len(self.results) + 1 if index is None else index
        track = None
        if self.spec.checkpoints and phase in RECOVERY_PHASES and model is None:
            track = TestCheckpoints(self.splits, self.spec.checkpoints, self.spec.checkpoint_every)
            kw["callbacks"] = [*kw.get("callbacks", ()), track]
        kw["callbacks"] = self.partials.callbacks(phase, index, kw.get("callbacks", ()))
        with self.timed(phase):
            info = stack_jobs.fitter()(  # train.fit, or a stacked launch's: its row fields
                model if model is not None else self.model, self.splits, recipe, seed=self.seed,
                index=index, phase=phase, accelerator=self.spec.accelerator,
                devices=self.spec.devices, settings=self.spec.trainer, logger=self.spec.logger,
                **kw,
            )  # fmt: skip
        if info:  # a stacked fit: its row fields, and this run's share of the group's time
            stack_jobs.charge(self, phase, info)
        if track is not None:
            self.measured["acc_checkpoints_test"] = track.accs

    def prune(self, target: Target | None, existing: Masks | None = None) -> Masks:
        if self.pruner.produces == "model":
            structured = cast(ModelPruner, self.pruner)
            with self.timed("prune"):
                example = self.splits.train_x[:1]
                pruned = structured.prune(self.model, example, self.batches(), self.generator)
                self.model = pruned.to(self.device)
            return {}
        pruner = cast(Pruner, self.pruner)
        with self.timed("prune"):
            was_training = self.model.training
            masks = pruner.masks(
                self.model, self.batches(), self.generator, target=target, existing=existing
            )
            self.model.train(was_training)
            apply_masks(self.model, masks)
        return masks

    def evaluate(self) -> tuple[float, float]:
        s = self.splits
        return accuracy(self.model, s.test_x, s.test_y), accuracy(self.model, s.val_x, s.val_y)

    # -- the pipeline's own ---------------------------------------------------------------
    def batches(self) -> TensorBatches:
        """Shuffled training batches for data-driven criteria."""
        batch = self.train.batch_size
        seed = streams.stream_seed(self.seed, "score_batches")
        return TensorBatches(self.splits.train_x, self.splits.train_y, batch, True, seed)

    def dense_values(self) -> dict[str, object]:
        """Row fields of the dense model this run started from."""
        return {
            "acc_dense_test": self.dense_info.get("acc_test"),
            "acc_dense_val": self.dense_info.get("acc_val"),
            "dense_source": self.dense_source,
        }

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the block's wall time to this result's seconds[phase] (nested blocks overlap:
        a gradual schedule's mask updates count in both prune and its training phase)."""
        start, paused = time.perf_counter(), stacking.paused()
        try:
            yield
        finally:  # without the time a stacked launch's job waited for its turn
            elapsed = time.perf_counter() - start - (stacking.paused() - paused)
            self.seconds[phase] = round(self.seconds.get(phase, 0.0) + elapsed, 3)

    def record(self, outcome: Outcome) -> Measured:
        """Measure the recovered model (masks still attached) as one result; hand it on."""
        with self.timed("measure"):
            dense = self.dense_model()
            metrics = measure(
                self.model, dense, outcome.masks, self.splits, latency=self.spec.latency,
                repeats=self.spec.latency_repeats, dense_costs=self.dense_costs,
            )  # fmt: skip
        before = outcome.before
        values: dict[str, object] = {
            "acc_pruned_test": before[0] if before else None,
            "acc_pruned_val": before[1] if before else None,
            "granularity": self.pruner.granularity,
            **metrics,
            **self.measured,
            **outcome.extra,  # recovery-specific fields (weight sharing's size) win
        }
        result = Measured(values, self.seconds, outcome.round, outcome.requested, outcome.final)
        result.weights = Weights.of(self.model, self.structured)
        self.results.append(result)
        self.seconds, self.measured = {}, {}
        if self.spec.on_result is not None:
            self.spec.on_result(self.dense_values(), result)
        self.partials.stored()
        return result


def run(spec: RunSpec) -> Run:
    """Train (or load) the dense model, then let the schedule prune and recover it.

    Returns:
        The finished Run: .results holds one Measured per result row, .model the pruned
        model with its zeros baked in.
    """
    start = time.perf_counter()
    device = torch.device("cuda" if spec.accelerator in ("gpu", "cuda") else "cpu")
    splits = spec.load_data().to(device)
    job = Run(spec, splits, device)
    job.partials.active = True  # record() removes them once a result is stored
    data_seconds = time.perf_counter() - start
    if spec.pruner.trains_sparse:  # static, SET, RigL: no dense model, sparse from the start
        from sweeplab.engine.sparse_training import train_sparse

        return train_sparse(job, data_seconds)

    # A pruner, schedule or recovery that cannot act on this model and data says so now, not
    # after dense training.
    with torch.no_grad():
        spec.pruner.check(job.model, splits.train_x[:2])
    spec.schedule.check_run(job, spec.recovery)
    spec.recovery.check_run(job)

    def train_dense(model: nn.Module, s: Splits = splits) -> dict[str, float]:
        t0 = time.perf_counter()
        job.fit(spec.train, "dense", model=model, index=0)
        test, val = accuracy(model, s.test_x, s.test_y), accuracy(model, s.val_x, s.val_y)
        return {"acc_test": test, "acc_val": val, "train_seconds": time.perf_counter() - t0}

    job.dense_info, source = get_or_train(
        spec.cache_dir, spec.dense_id, job.model, train_dense, config_sha256=spec.dense_sha256
    )
    job.model.to(device)
    job.dense_state = state_of(job.model)
    # Whatever training consumed, what follows starts from the same RNG state whether the
    # dense model was trained now or loaded from the cache.
    streams.seed_global(spec.seed, "layers", 1)
    waited = stacking.paused() - job.shares  # a stacked launch's wait for the dense fit
    dense = time.perf_counter() - start - data_seconds - waited
    job.seconds, job.shares = {"data": round(data_seconds, 3), "dense": round(dense, 3)}, 0.0
    job.dense_source = source
    for outcome in spec.schedule.run(job, spec.recovery):
        job.record(outcome)
    remove_masks(job.model)
    return job
