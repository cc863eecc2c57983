"""The bad-input catalogue: a value a run cannot honour is refused before any work, in one
line naming the key, the value and the fix; exit 2; no row of any status; no dense model.

Every case asserts exactly that (the `run` fixture): exit 2, exactly one stderr line, the
error, holding the expected text; no row file; no checkpoint in the cache (no dense training
happened); nothing created in the working folder (nor, for paths, at the filesystem root).
The tables are by class: config values (optimizer and schedule values, threshold and quality
modes, trainer and measure settings, seeds, model and data keys, the command line itself),
data keys refused before any download, folders, output paths of `report -o` and `export`, and
files in runs/ that are no row, which `table`, `report` and `run` name and go past (exit 0, one
warning line). Legal but odd input (a quoted unicode folder with a space, a folder from an
environment variable, 10,000 rows) simply works.

Cases run `sweeplab run ...` in this process (the `cli` fixture: sweeplab.cli.main, the same code
path as the command, without paying the imports per case); tests/test_cli.py checks the same
contract through the console entry in a subprocess. Cases covered elsewhere, and not repeated
here:

- tests/test_cli.py: sparsity 1.0, -0.1 and 'abc'; unknown strategy; zero epochs; negative
  lr; 8x8 images for LeNet-300-100; MNIST root missing with no network; a truncated .gz in a
  run; `sweeplab table` on a folder with no runs.
- tests/test_data.py: truncated .gz; short raw IDX; labels outside the class count; missing
  root without network; md5 mismatch on download (nothing left behind).
- tests/test_store.py: a row of a newer schema (read_row); an unwritable results dir
  (write_row); a torn row read directly.
- tests/test_models.py: wrong image shape for LeNet-300-100 and LeNet-5; non-positive MLP width.

Structured pruning's cases (bn_scale without batch norm, a layer ratio that empties a layer)
are refused before dense training, like every other case here.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor, nn

from conftest import CONF, FAST, compose, rows_in, write_idx
from sweeplab.data.download import md5sum
from sweeplab.errors import SweeplabError
from sweeplab.results import identity, store
from sweeplab.results.row import SCHEMA_VERSION
from test_analysis import make_row, write_rows


class NoPrunable(nn.Module):
    """A model without Linear or Conv layers (its only parameter is a per-class bias)."""

    def __init__(self, input_shape: list[int], num_classes: int, **_: object) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1)[:, :1] * 0 + self.bias


def groups(name: str) -> str:
    """The choices of a config group as `sweeplab run` lists them."""
    return ", ".join(sorted(p.stem for p in (CONF / name).glob("*.yaml")))


# overrides -> the text the one error line must contain. FAST is added to each.
CONFIG_CASES = {
    "sparsity_nan": (["pruning.sparsity=nan"], "pruning.sparsity=nan is outside [0, 1)"),
    "sparsity_bool": (["pruning.sparsity=true"], "pruning.sparsity=True is not a number"),
    "sparsity_list": (["pruning.sparsity=[0.5]"], "pruning.sparsity=[0.5] is not a number"),
    "unknown_model": (
        ["model=resnet"],
        f"unknown model 'resnet'; choose one of: {groups('model')}",
    ),
    "unknown_data": (
        ["data=imagenet"],
        f"unknown data 'imagenet'; choose one of: {groups('data')}",
    ),
    "unknown_schedule": (
        ["schedule=cyclic"],
        f"unknown schedule 'cyclic'; choose one of: {groups('schedule')}",
    ),
    "unknown_recovery": (
        ["recovery=magic"],
        f"unknown recovery 'magic'; choose one of: {groups('recovery')}",
    ),
    "unknown_scope": (
        ["pruning.scope=row"],
        "pruning.scope='row' is not one of ['global', 'layer']",
    ),
    "threshold_and_sparsity": (
        ["+pruning.threshold=0.1"],
        "pruning.threshold sets the sparsity itself; also set pruning.sparsity=null",
    ),
    "exclude_unknown_layer": (
        ["+pruning.exclude=[fc9]"],
        "pruning.exclude names unknown layers ['fc9']",
    ),
    "no_prunable_layer": (
        [f"model._target_={__name__}.NoPrunable"],
        "model NoPrunable has no prunable layer (Linear or Conv weights)",
    ),
    "bn_scale_without_batch_norm": (
        ["pruning=bn_scale", "pruning.granularity=neuron", "train.epochs=500"],
        "pruning=bn_scale needs batch norm layers but model MLP has none; use a model with "
        "batch norm (model.batch_norm=true for mlp)",
    ),
    "layer_ratio_empties_a_layer": (
        ["pruning=neuron_l1", "pruning.ratio=0.999", "train.epochs=500"],
        "pruning.ratio=0.999 would remove all 128 channels of layer net.1",
    ),
    "layer_ratio_override_empties_a_layer": (
        ["pruning=neuron_l1", "+pruning.layer_ratio={net.3: 0.995}", "train.epochs=500"],
        "pruning.layer_ratio.net.3=0.995 would remove all 64 channels of layer net.3",
    ),
    "layer_ratio_names_no_prunable_layer": (
        ["pruning=neuron_l1", "+pruning.layer_ratio={net.2: 0.5}", "train.epochs=500"],
        "pruning.layer_ratio names ['net.2'], which outputs no prunable group; choose from",
    ),
    "train_epochs_negative": (["train.epochs=-3"], "train.epochs=-3 must be a positive integer"),
    "train_epochs_fraction": (["train.epochs=2.5"], "train.epochs=2.5 must be a positive integer"),
    "finetune_epochs_negative": (
        ["finetune.epochs=-1"],
        "finetune.epochs=-1 must be a positive integer",
    ),
    "train_batch_zero": (["train.batch_size=0"], "train.batch_size=0 must be a positive integer"),
    "finetune_batch_negative": (
        ["finetune.batch_size=-8"],
        "finetune.batch_size=-8 must be a positive integer",
    ),
    "train_lr_zero": (["train.lr=0"], "train.lr=0 must be a positive number"),
    "train_lr_text": (["train.lr=fast"], "train.lr='fast' must be a positive number"),
    "unknown_optimizer": (["train.optimizer=adamw"], "train.optimizer='adamw' is not one of"),
    "unknown_lr_schedule": (
        ["train.lr_schedule=linear"],
        "train.lr_schedule='linear' is not one of",
    ),
    "step_schedule_without_period": (
        ["train.lr_schedule=step"],
        "train.lr_step_epochs=None must be a positive number",
    ),
    "warmup_as_long_as_training": (["train.warmup_epochs=10"], "is not shorter than"),
    "unknown_train_key": (["+train.lr_shedule=step"], "train.lr_shedule is not a train setting"),
    "seed_text": (["seed=abc"], "seed='abc' is not an integer; use e.g. seed=0"),
    "threads_zero": (["trainer.threads=0"], "trainer.threads=0 must be a positive integer"),
    "inner_steps_zero": (
        ["trainer.inner_steps=0"],
        "trainer.inner_steps=0 must be a positive integer",
    ),
    "unknown_objective": (
        ["+search.objectives=[strategy]", "+search.max_drop=0.01"],
        "search.objectives names 'strategy', which is not a numeric row column; choose from:",
    ),
    # -- optimizer and lr schedule: what torch or Lightning took, or refused mid-run --------
    "momentum_negative": (
        ["train.momentum=-0.5"],
        "train.momentum=-0.5 must be a finite number >= 0; e.g. train.momentum=0.9",
    ),
    "momentum_nan": (["train.momentum=nan"], "train.momentum=nan must be a finite number >= 0"),
    "momentum_text": (["train.momentum=abc"], "train.momentum='abc' must be a finite number"),
    "momentum_one": (["train.momentum=1"], "train.momentum=1 must be below 1; e.g. train.mom"),
    "finetune_momentum_negative": (  # failed only after dense training
        ["finetune.momentum=-1"],
        "finetune.momentum=-1 must be a finite number >= 0; e.g. finetune.momentum=0.9",
    ),
    "weight_decay_inf": (
        ["train.weight_decay=inf"],
        "train.weight_decay=inf must be a finite number >= 0; e.g. train.weight_decay=5e-4",
    ),
    "weight_decay_negative": (
        ["finetune.weight_decay=-0.1"],
        "finetune.weight_decay=-0.1 must be a finite number >= 0",
    ),
    "weight_l1_inf": (["train.weight_l1=inf"], "train.weight_l1=inf must be a finite number"),
    "bn_l1_text": (["train.bn_l1=strong"], "train.bn_l1='strong' must be a finite number >= 0"),
    "warmup_inf": (
        ["train.warmup_epochs=inf"],
        "train.warmup_epochs=inf must be a finite number >= 0; e.g. train.warmup_epochs=1",
    ),
    "lr_gamma_without_step": (  # accepted and ignored: a row with a setting that did nothing
        ["train.lr_gamma=0.5"],
        "train.lr_gamma=0.5 is used by train.lr_schedule=step only, not cosine; set",
    ),
    "lr_step_without_step": (
        ["finetune.lr_step_epochs=3"],
        "finetune.lr_step_epochs=3 is used by finetune.lr_schedule=step only",
    ),
    "lr_gamma_nan": (
        ["train.lr_schedule=step", "train.lr_step_epochs=1", "train.lr_gamma=nan"],
        "train.lr_gamma=nan must be a positive number",
    ),
    "finetune_lr_inf": (["finetune.lr=inf"], "finetune.lr=inf must be a positive number"),
    "optimizer_null": (["train.optimizer=null"], "train.optimizer=None is not one of ['sgd'"),
    "train_epochs_bool": (["train.epochs=true"], "train.epochs=True must be a positive integer"),
    # -- schedules and recoveries --------------------------------------------------------
    "gradual_initial_above_final": (  # accepted: the row said 0.9 requested, 0.95 achieved
        ["schedule=gradual", "schedule.initial_sparsity=0.95", "pruning.sparsity=0.9"],
        "schedule.initial_sparsity=0.95 is above pruning.sparsity=0.9; gradual pruning only "
        "adds zeros: use schedule.initial_sparsity<=0.9",
    ),
    "gradual_end_text": (
        ["schedule=gradual", "schedule.end=late"],
        "schedule.end='late' is not a number; use e.g. schedule.end=0.75",
    ),
    "gradual_frequency_beyond_recovery": (  # refused only after dense training
        ["schedule=gradual", "schedule.frequency=100000"],
        "schedule.frequency=100000: schedule=gradual reaches pruning.sparsity at step 100000 but "
        "recovery trains 10 steps; lower schedule.frequency (at most 10) or raise "
        "finetune.epochs",
    ),
    "gradual_without_recovery_epochs": (
        ["schedule=gradual", "finetune.epochs=0"],
        "schedule=gradual prunes while recovery trains, and finetune.epochs=0 trains 0 steps; "
        "raise it, e.g. finetune.epochs=5",
    ),
    "iterative_rounds_bool": (
        ["schedule=iterative", "schedule.rounds=true"],
        "schedule.rounds=True is not an integer; use e.g. schedule.rounds=5",
    ),
    "schedule_key_not_in_config": (
        ["schedule.rounds=3"],
        "schedule.rounds=3: the config has no key schedule.rounds (Key 'rounds' is not in "
        "struct); check the spelling, or add a key the target takes with +schedule.rounds=3",
    ),
    "schedule_key_the_target_lacks": (
        ["+schedule.rounds=3"],
        "schedule.rounds is not a setting of schedule=oneshot (OneShot); remove it or use one "
        "of ['name']",
    ),
    "weight_rewind_step_beyond_training": (  # refused only after dense training
        ["recovery=weight_rewind", "recovery.step=100000"],
        "recovery.step=100000 is not before the end of dense training (20 optimizer steps); "
        "use recovery.step=0",
    ),
    "distill_alpha_text": (
        ["recovery=distill", "recovery.alpha=half"],
        "recovery.alpha='half' is not a number; use e.g. recovery.alpha=0.5",
    ),
    "weight_sharing_bits_fraction": (
        ["recovery=weight_sharing", "recovery.bits=1.5"],
        "recovery.bits=1.5 is not an integer; use e.g. recovery.bits=5",
    ),
    "weight_rewind_control_text": (
        ["recovery=weight_rewind", "recovery.control=yes"],
        "recovery.control='yes' is not true or false; use e.g. recovery.control=false",
    ),
    # -- threshold and quality modes, and sparsities a model cannot honour -----------------
    "threshold_nan": (  # pruned every weight, then failed measuring, after dense training
        ["pruning.sparsity=null", "+pruning.threshold=nan"],
        "pruning.threshold=nan is not a finite number; e.g. pruning.threshold=0.5",
    ),
    "threshold_inf": (
        ["pruning.sparsity=null", "+pruning.threshold=inf"],
        "pruning.threshold=inf is not a finite number",
    ),
    "threshold_text": (
        ["pruning.sparsity=null", "+pruning.threshold=small"],
        "pruning.threshold='small' is not a number or null; use e.g. pruning.threshold=0.5",
    ),
    "threshold_bool": (
        ["pruning.sparsity=null", "+pruning.threshold=true"],
        "pruning.threshold=True is not a number or null",
    ),
    "quality_nan": (
        ["pruning.sparsity=null", "+pruning.quality=nan"],
        "pruning.quality=nan is not a finite number; e.g. pruning.quality=0.5",
    ),
    "quality_inf": (
        ["pruning.sparsity=null", "+pruning.quality=inf"],
        "pruning.quality=inf is not a finite number",
    ),
    "quality_negative": (
        ["pruning.sparsity=null", "+pruning.quality=-1"],
        "pruning.quality=-1 must be >= 0; Han et al. use ~0.5-2",
    ),
    "threshold_with_iterative": (
        ["pruning.sparsity=null", "+pruning.threshold=0.1", "schedule=iterative"],
        "schedule=iterative needs pruning.sparsity (not threshold mode)",
    ),
    "sparsity_prunes_every_weight": (
        ["pruning.sparsity=0.99999"],
        "pruning.sparsity=0.99999 prunes all 17024 prunable weights of model MLP; keep some: "
        "pruning.sparsity<=0.999941",
    ),
    "exclude_a_string": (
        ["+pruning.exclude=net.1"],
        "pruning.exclude='net.1' is not a list of strings; use e.g. pruning.exclude=[]",
    ),
    "exclude_every_layer": (  # refused only after dense training
        ["+pruning.exclude=[net.1,net.3,net.5]"],
        "model MLP has no prunable layer (Linear or Conv weights); use a model with such "
        "layers or remove layers from pruning.exclude",
    ),
    "layer_scale_with_global_scope": (
        ["+pruning.layer_scale={net.1: 0.5}"],
        "pruning.layer_scale needs pruning.scope=layer; set pruning.scope=layer",
    ),
    "layer_scale_unknown_layer": (  # ignored: the row claimed a scale no layer had
        ["pruning=layer_magnitude", "+pruning.layer_scale={fc9: 0.5}"],
        "pruning.layer_scale names ['fc9'], not prunable layers of model MLP; choose from "
        "['net.1', 'net.3', 'net.5']",
    ),
    "layer_scale_negative": (
        ["pruning=layer_magnitude", "+pruning.layer_scale={net.1: -1}"],
        "pruning.layer_scale.net.1=-1 must be a finite number >= 0",
    ),
    "pruning_key_the_target_lacks": (
        ["+pruning.n_batches=3"],
        "pruning.n_batches is not a setting of pruning=global_magnitude (Magnitude); remove it "
        "or use one of ['distribution', 'erk_power_scale', 'exclude', 'layer_scale', 'name', "
        "'pattern', 'quality', 'scope', 'sparsity', 'threshold']",
    ),
    "hybrid_weight_nan": (
        ["pruning=hybrid", "pruning.weights.magnitude=nan"],
        "pruning.weights.magnitude=nan must be a finite number >= 0",
    ),
    "hybrid_criterion_key": (
        ["pruning=hybrid", "+pruning.criteria.data.sharpness=2"],
        "pruning.criteria.data.sharpness is not a setting of pruning.criteria.data (Taylor)",
    ),
    "block_removal_no_batches": (
        ["pruning=block_removal", "pruning.num_batches=0"],
        "pruning.num_batches=0 must be a positive integer",
    ),
    "block_removal_downsample_text": (  # bool('no') is True
        ["pruning=block_removal", "pruning.include_downsample=no"],
        "pruning.include_downsample='no' is not true or false; use e.g. "
        "pruning.include_downsample=false",
    ),
    "channel_ratio_text": (
        ["pruning=neuron_l1", "+pruning.layer_ratio={net.1: half}"],
        "pruning.layer_ratio={'net.1': 'half'} is not a mapping of numbers or null; use e.g. "
        "pruning.layer_ratio={NAME: 0.5}",
    ),
    # -- trainer and measure -------------------------------------------------------------
    "devices_zero": (
        ["trainer.devices=0"],
        "trainer.devices=0: a run trains on exactly one device; use trainer.devices=1",
    ),
    "devices_two": (["trainer.devices=2"], "trainer.devices=2: a run trains on exactly one"),
    "devices_auto": (["trainer.devices=auto"], "trainer.devices='auto': a run trains on"),
    "accelerator_unknown": (
        ["trainer.accelerator=tpu"],
        "trainer.accelerator='tpu' is not one of ['cpu', 'gpu', 'cuda']; use trainer=cpu",
    ),
    "trainer_key_unknown": (
        ["+trainer.max_steps=10"],
        "trainer.max_steps is not a trainer setting; remove it or use one of ['accelerator', "
        "'devices', 'threads', 'inner_steps', 'precision', 'deterministic', 'benchmark', "
        "'gradient_clip_val', 'gradient_clip_algorithm', 'accumulate_grad_batches', "
        "'num_sanity_val_steps', 'max_time', 'detect_anomaly', 'progress', 'progress_every', "
        "'checkpoint_minutes']",
    ),
    "precision_16_mixed_on_cpu": (
        ["trainer.precision=16-mixed"],
        "trainer.precision=16-mixed is not supported on CPU (Lightning would train in "
        "bf16-mixed instead); use trainer.precision=bf16-mixed or trainer=gpu",
    ),
    "precision_unknown": (
        ["trainer.precision=8"],
        "trainer.precision=8 is not one of ['32-true', '16-mixed', 'bf16-mixed']; use e.g. "
        "trainer.precision=bf16-mixed",
    ),
    "precision_true_half": (
        ["trainer.precision=bf16-true"],
        "trainer.precision=bf16-true keeps the weights in bfloat16 after training, which pruning",
    ),
    "clip_negative": (
        ["trainer.gradient_clip_val=-1"],
        "trainer.gradient_clip_val=-1 must be a positive number; e.g. "
        "trainer.gradient_clip_val=1.0",
    ),
    "clip_algorithm_unknown": (
        ["trainer.gradient_clip_val=1", "trainer.gradient_clip_algorithm=max"],
        "trainer.gradient_clip_algorithm='max' is not one of ['norm', 'value']",
    ),
    "accumulate_zero": (
        ["trainer.accumulate_grad_batches=0"],
        "trainer.accumulate_grad_batches=0 must be a positive integer; e.g. "
        "trainer.accumulate_grad_batches=2",
    ),
    "sanity_steps_below_minus_one": (
        ["trainer.num_sanity_val_steps=-2"],
        "trainer.num_sanity_val_steps=-2 is not an integer >= -1",
    ),
    "max_time_text": (
        ["trainer.max_time=soon"],
        "trainer.max_time='soon' is not a positive number of seconds or DD:HH:MM:SS; use e.g. "
        "trainer.max_time=3600",
    ),
    "deterministic_text": (
        ["trainer.deterministic=yes"],
        "trainer.deterministic='yes' is not true or false or warn",
    ),
    "progress_unknown": (
        ["trainer.progress=tqdm"],
        "trainer.progress='tqdm' is not one of ['auto', 'bar', 'lines', 'off']",
    ),
    "progress_every_negative": (
        ["trainer.progress_every=-1"],
        "trainer.progress_every=-1 must be a finite number >= 0; e.g. trainer.progress_every=10",
    ),
    "threads_negative": (["trainer.threads=-1"], "trainer.threads=-1 must be a positive integer"),
    "latency_text": (
        ["measure.latency=yes"],
        "measure.latency='yes' is not true or false; use measure.latency=false",
    ),
    "logger_title_is_the_runs": (
        ["logger=wandb", "+logger.title=mine"],
        "logger.title is set by the run itself; remove it",
    ),
    "measure_key_unknown": (
        ["+measure.warmup=3"],
        "measure.warmup is not a measure setting; remove it or use one of ['latency',",
    ),
    "checkpoints_null": (
        ["measure.checkpoints=null"],
        "measure.checkpoints=None must be a positive integer",
    ),
    "max_drop_text": (
        ["+search.objectives=[acc_finetuned_val]", "+search.max_drop=some"],
        "search.max_drop='some' must be a fraction of accuracy in [0, 1]; e.g. search.max_drop",
    ),
    # -- seeds, model and data keys --------------------------------------------------------
    "seed_bool": (["seed=true"], "seed=True is not an integer; use e.g. seed=0"),
    "split_seed_beyond_torch": (
        ["data.split_seed=18446744073709551616"],
        "data.split_seed=18446744073709551616 is not an integer in [-2**63, 2**63 - 1); use "
        "e.g. data.split_seed=0",
    ),
    "split_seed_text": (
        ["data.split_seed=abc"],
        "data.split_seed='abc' is not an integer; use e.g. data.split_seed=0",
    ),
    "val_fraction_zero": (  # named data.val_size, which digits does not have
        ["data.val_fraction=0"],
        "data.val_fraction holds out 0 of 1438 images; both parts need some: change "
        "data.val_fraction",
    ),
    "test_fraction_zero": (["data.test_fraction=0"], "data.test_fraction holds out 0 of 1797"),
    "fractions_leave_no_training": (
        ["data.val_fraction=0.6", "data.test_fraction=0.5"],
        "data.val_fraction=0.6 and data.test_fraction=0.5 leave no training images; keep their "
        "sum below 1",
    ),
    "data_key_the_loader_lacks": (
        ["+data.root=/data"],
        "data.root is not a setting of data=digits (load_digits); remove it or use one of "
        "['name', 'split_seed', 'test_fraction', 'val_fraction']",
    ),
    "model_hidden_an_integer": (
        ["model.hidden=128"],
        "model.hidden=128 is not a list of integers; use e.g. model.hidden=[300, 100]",
    ),
    "model_hidden_text": (
        ["model.hidden=[wide,narrow]"],
        "model.hidden=['wide', 'narrow'] is not a list of integers",
    ),
    "model_hidden_fraction": (["model.hidden=[12.7]"], "model.hidden=[12.7] is not a list of"),
    "model_batch_norm_text": (  # bool('yes') is True
        ["model.batch_norm=yes"],
        "model.batch_norm='yes' is not true, false or null; use e.g. model.batch_norm=true",
    ),
    "model_key_the_class_lacks": (
        ["+model.depth=20"],
        "model.depth is not a setting of model=mlp (MLP); remove it or use one of "
        "['batch_norm', 'hidden', 'name']",
    ),
    "model_key_the_run_sets": (
        ["+model.num_classes=5"],
        "model.num_classes is set by the run itself; remove it",
    ),
    "model_target_missing": (
        ["model._target_=nowhere.Net"],
        "model._target_='nowhere.Net' cannot be imported (No module named 'nowhere'); use an "
        "import path such as sweeplab.models.mlp.MLP",
    ),
    "logger_tags_a_string": (
        ["logger=wandb", "logger.tags=baseline"],
        "logger.tags='baseline' is not a list of strings or null",
    ),
    # -- the command line itself -----------------------------------------------------------
    "unknown_launcher": (
        ["hydra/launcher=slurm"],
        "unknown hydra/launcher 'slurm'; choose one of: basic, joblib, stacked, submitit_local, "
        "submitit_slurm (or add conf/hydra/launcher/slurm.yaml)",
    ),
    "unknown_sweeper": (  # 'sampler' is a folder of samplers, not a sweeper
        ["hydra/sweeper=grid"],
        "unknown hydra/sweeper 'grid'; choose one of: basic, optuna, sweeplab (or add",
    ),
    "unknown_sampler": (
        ["hydra/sweeper/sampler=bayes"],
        "unknown hydra/sweeper/sampler 'bayes'; choose one of: cmaes, grid, motpe,",
    ),
    "unknown_logger": (["logger=tensorboard"], "unknown logger 'tensorboard'; choose one of:"),
    "unknown_experiment": (["experiment=han2016"], "unknown experiment 'han2016'; choose one"),
    "unknown_criterion_of_a_hybrid": (
        ["pruning=hybrid", "pruning@pruning.criteria.data=fisher"],
        "In 'pruning/hybrid': Could not find 'pruning/fisher'; choose one of: block_removal,",
    ),
    "override_that_does_not_parse": (
        ["seed=[1,"],
        "cannot parse the override seed=[1, (no viable alternative at input '[1,'); quote",
    ),
    "append_an_existing_key": (
        ["+seed=3"],
        "Could not append to config. An item is already at 'seed'; Either remove + prefix: "
        "'seed=3'",
    ),
    "unresolvable_interpolation": (
        ["train.lr=${train.base_lr}"],
        "train.lr=${train.base_lr} cannot be resolved (Interpolation key 'train.base_lr' not "
        "found); fix the interpolation or give the value itself",
    ),
    "unset_environment_variable": (
        ["data.name=${oc.env:SWEEPLAB_UNSET_FOR_TEST}"],
        "data.name=${oc.env:SWEEPLAB_UNSET_FOR_TEST} cannot be resolved",
    ),
}


def assert_one_line_error(code: int, err: str, message: str) -> None:
    """Exit 2 and exactly one stderr line, the error, which contains message."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("sweeplab: error:"), err
    assert message in lines[0], err


def assert_no_work(res: Path) -> None:
    """No row of any status and no dense model: the run was refused before training."""
    assert rows_in(res) == []
    assert not list(res.rglob("*.pt")), "dense training happened before the refusal"


@pytest.fixture
def run(tmp_path: Path, cli):
    """Run `sweeplab run FAST OVERRIDES` with results in tmp_path/res; assert the one-line
    refusal, no row, no dense model, and nothing created in the working folder but res."""

    def call(overrides: list[str], message: str, res: Path | None = tmp_path / "res") -> None:
        before = set(tmp_path.iterdir())
        results = [] if res is None else [f"paths.results_dir={res}"]
        proc = cli(["run", *FAST, *overrides, *results], cwd=tmp_path)
        assert_one_line_error(proc.returncode, proc.stderr, message)
        assert_no_work(tmp_path / "res" if res is None else res)
        assert set(tmp_path.iterdir()) - before <= {tmp_path / "res"}

    return call


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_value(case: str, run) -> None:
    overrides, message = CONFIG_CASES[case]
    run(overrides, message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_trainer_without_a_gpu(run) -> None:
    run(["trainer=gpu"], "trainer.accelerator=gpu needs a CUDA GPU and torch sees none on this")


# -- data files -------------------------------------------------------------------------


def mnist_root(tmp_path: Path, side: int = 28, n: int = 48) -> Path:
    """Four raw MNIST-named IDX files of n random side x side images."""
    rng = np.random.default_rng(0)
    root = tmp_path / f"mnist{side}"
    root.mkdir()
    for split in ("train", "t10k"):
        write_idx(root / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, side, side)), False)
        write_idx(root / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), False)
    return root


def mnist(root: Path) -> list[str]:
    return ["data=mnist", f"data.root={root}", "data.val_size=8", "data.download=false"]


def test_corrupt_data_file(run, tmp_path: Path) -> None:
    root = mnist_root(tmp_path)
    (root / "train-images-idx3-ubyte").write_bytes(b"\x12\x34" * 100)  # wrong magic number
    run(mnist(root), "train-images-idx3-ubyte is not an IDX file of unsigned bytes")


def test_missing_data_file_without_download(run, tmp_path: Path) -> None:
    root = mnist_root(tmp_path)
    (root / "t10k-labels-idx1-ubyte").unlink()
    run(mnist(root), f"data.root={root} has no t10k-labels-idx1-ubyte(.gz); put the mnist IDX")


def test_images_of_the_wrong_shape_for_the_model(run, tmp_path: Path) -> None:
    root = mnist_root(tmp_path, side=20)
    run([*mnist(root), "model=lenet5"], "expects 1x28x28 images but the data gives (1, 20, 20)")


def test_md5_mismatch_in_a_run(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A mirror serving files that are not the published ones (their md5 differs).
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_idx(mirror / "train-images-idx3-ubyte.gz", np.zeros((4, 28, 28)))
    monkeypatch.setenv("SWEEPLAB_MIRROR", mirror.as_uri() + "/")
    empty = tmp_path / "empty"
    empty.mkdir()
    got = md5sum(mirror / "train-images-idx3-ubyte.gz")
    run(
        ["data=mnist", f"data.root={empty}"],
        f"has md5 {got}, expected f68b3c2dcbeaaa9fbdd348bbdeb94873",
    )
    assert not any(empty.glob("*.gz"))  # nothing half-downloaded left behind


# Data keys refused before any file is read or downloaded: the mirror serves the real file
# names, so a download that started would leave files in the root.
BEFORE_DOWNLOAD = {
    "val_size_text": (["data.val_size=abc"], "data.val_size='abc' is not an integer; use e.g."),
    "val_size_zero": (["data.val_size=0"], "data.val_size=0 must be a positive integer"),
    "val_size_fraction": (["data.val_size=0.5"], "data.val_size=0.5 is not an integer"),
    "download_text": (  # bool('no') is True: it downloaded
        ["data.download=no"],
        "data.download='no' is not true or false; use e.g. data.download=true",
    ),
    "root_null": (["data.root=null"], "data.root=null is not a string; use e.g. data.root="),
    "split_seed_negative_beyond_torch": (
        ["data.split_seed=-9223372036854775809"],
        "data.split_seed=-9223372036854775809 is not an integer in [-2**63, 2**63 - 1)",
    ),
    "cifar_augment_text": (
        ["data=cifar10", "data.augment=off"],
        "data.augment='off' is not true or false; use e.g. data.augment=true",
    ),
    "idx_name_unknown": (
        ["data.name=kmnist"],
        "data.name='kmnist' is not an IDX dataset; choose one of ['mnist', 'fashion_mnist']",
    ),
}


@pytest.mark.parametrize("case", sorted(BEFORE_DOWNLOAD))
def test_bad_data_key_before_download(
    case: str, run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = mnist_root(tmp_path)
    monkeypatch.setenv("SWEEPLAB_MIRROR", mirror.as_uri() + "/")
    root = tmp_path / "download_here"
    root.mkdir()
    overrides, message = BEFORE_DOWNLOAD[case]
    run(["data=mnist", f"data.root={root}", *overrides], message)
    assert list(root.iterdir()) == []


def test_unknown_init_before_dense_training(run, tmp_path: Path) -> None:
    root = mnist_root(tmp_path)
    run([*mnist(root), "model=lenet5", "model.init=xavier"], "model.init='xavier' is not one of")


# -- paths --------------------------------------------------------------------------------

# Results and cache dirs that are no folder: an empty one put rows, the cache and Hydra's
# folders at the filesystem root; null and unresolvable ones made folders named 'null',
# 'None' or '${nope}' in the working folder.
PATH_CASES = {
    "results_dir_empty": (
        ["paths.results_dir="],
        "paths.results_dir='' is not a folder (an empty one means the filesystem root); give "
        "one, e.g. paths.results_dir=results",
    ),
    "results_dir_blank": (["paths.results_dir=' '"], "paths.results_dir=' ' is not a folder"),
    "results_dir_null": (["paths.results_dir=null"], "paths.results_dir=null is not a folder"),
    "results_dir_unresolvable": (
        ["paths.results_dir=${nope}"],
        "hydra.run.dir cannot be resolved (Interpolation key 'nope' not found); fix the "
        "interpolation in paths.results_dir=${nope}",
    ),
    "cache_dir_empty": (
        ["paths.results_dir=res", "paths.cache_dir="],
        "paths.cache_dir='' is not a folder (an empty one means the filesystem root); give "
        "one, e.g. paths.cache_dir=results/cache",
    ),
    "cache_dir_null": (
        ["paths.results_dir=res", "paths.cache_dir=null"],
        "paths.cache_dir=null is not a folder",
    ),
    "cache_dir_unresolvable": (
        ["paths.results_dir=res", "paths.cache_dir=${paths.scratch}/cache"],
        "paths.cache_dir=${paths.scratch}/cache cannot be resolved (Interpolation key "
        "'paths.scratch' not found); fix the interpolation or give the value itself",
    ),
}


@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_bad_folder(case: str, run) -> None:
    top = set(os.listdir("/"))
    overrides, message = PATH_CASES[case]
    run(overrides, message, res=None)
    assert set(os.listdir("/")) <= top  # no rows, cache or Hydra folder at the root


def test_results_dir_that_cannot_be_written(run, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    run([], f"{blocker}/res", res=blocker / "res")
    assert blocker.read_text() == "not a folder"


def test_cache_dir_that_cannot_be_created(run, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    run([f"paths.cache_dir={blocker}/cache"], f"paths.cache_dir={blocker}/cache cannot be created")


def test_check_writable_names_the_results_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SweeplabError, match=f"paths.results_dir={blocker}/res cannot be written"):
        store.check_writable(blocker / "res")
    store.check_writable(tmp_path / "fresh")
    assert list((tmp_path / "fresh" / "runs").iterdir()) == []  # the probe is gone


# Where `report -o` and `export` write, refused before any row is read or run rebuilt: the
# results dir is empty, so a check after the work would name that instead.
OUTPUT_CASES = {
    "report_under_a_file": (
        ["report", "res", "-o", "a_file/report.html"],
        "-o a_file/report.html cannot be created: {tmp}/a_file is a file; give a file name",
    ),
    "report_into_a_folder": (["report", "res", "-o", "folder"], "-o folder is a directory"),
    "report_empty": (["report", "res", "-o", ""], "-o '' is empty; give a file name, e.g. -o"),
    "export_under_a_file": (
        ["export", "abc", "a_file/model", "--results-dir", "res"],
        "OUT a_file/model cannot be created: {tmp}/a_file is a file; choose a new folder",
    ),
    "export_existing": (
        ["export", "abc", "folder", "--results-dir", "res"],
        "OUT folder already exists; choose a new folder or delete it",
    ),
}


@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_bad_output_path(case: str, tmp_path: Path, cli) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    args, message = OUTPUT_CASES[case]
    proc = cli(args, cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, message.format(tmp=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "folder"]


# -- rows ---------------------------------------------------------------------------------

NESTED = functools.reduce(lambda inner, _: {"a": inner}, range(40), {})
# Files in runs/ that are no row -> what the warning says about them. table, report and run
# name the file and go on; the other rows are read.
ROW_CASES = {
    "torn": ('{"run_id": "abc", "stat', "not whole JSON: Unterminated string"),
    "empty": ("", "not whole JSON: Expecting value"),
    "not_utf8": (b"\xff\xfe\x00", "not whole JSON: 'utf-8' codec can't decode"),
    "a_list": ("[1, 2]", "a JSON list, not an object"),
    "a_string": ('"ok"', "a JSON str, not an object"),
    "null": ("null", "a JSON NoneType, not an object"),
    "no_run_id": ('{"status": "ok"}', "run_id=None is not a text id"),
    "deeply_nested": ("[" * 100_000 + "]" * 100_000, "nested too deeply to read"),
    "nested_config": (json.dumps({"run_id": "abc", "config": NESTED}), "nested deeper than 32"),
    "schema_text": ('{"run_id": "abc", "schema_version": "2"}', "schema_version='2' is not a"),
    "schema_null": ('{"run_id": "abc", "schema_version": null}', "schema_version=None is not"),
    "schema_fraction": ('{"run_id": "abc", "schema_version": 1.5}', "schema_version=1.5 is no"),
    "schema_negative": ('{"run_id": "abc", "schema_version": -1}', "schema_version=-1 is not"),
    "config_a_list": ('{"run_id": "abc", "config": [1]}', "config is a JSON list, not an obj"),
    "metrics_text": ('{"run_id": "abc", "metrics": "good"}', "metrics is a JSON str, not an"),
    "a_directory": (None, "a directory"),
}


def bad_row_file(runs: Path, case: str) -> Path:
    """runs/abc.json holding ROW_CASES[case] (a folder for a_directory)."""
    path = runs / "abc.json"
    content = ROW_CASES[case][0]
    runs.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
        (path / "x").write_text("{}")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def assert_one_warning(err: str, path: Path, problem: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweeplab: warning:"), err
    assert f"{path} is not a valid row ({problem}" in lines[0], err


@pytest.mark.parametrize("case", sorted(ROW_CASES))
def test_table_names_a_file_that_is_no_row_and_goes_on(case: str, tmp_path: Path, cli) -> None:
    write_rows(tmp_path / "res")
    args = ["table", str(tmp_path / "res"), "--format", "csv"]
    clean = cli(args, cwd=tmp_path).stdout
    path = bad_row_file(tmp_path / "res" / "runs", case)
    for _ in range(2):  # the file is named every time, not hidden by the index
        proc = cli(args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert_one_warning(proc.stderr, path, ROW_CASES[case][1])
        assert proc.stdout == clean  # every good row is read


@pytest.mark.parametrize("case", ["torn", "a_directory", "schema_text"])
def test_report_names_a_file_that_is_no_row_and_goes_on(case: str, tmp_path: Path, cli) -> None:
    write_rows(tmp_path / "res")
    path = bad_row_file(tmp_path / "res" / "runs", case)
    proc = cli(["report", str(tmp_path / "res"), "-o", "r.html", "--no-plots"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_one_warning(proc.stderr, path, ROW_CASES[case][1])
    assert (tmp_path / "r.html").exists()


def test_table_refuses_a_row_of_a_newer_schema(tmp_path: Path, cli) -> None:
    newer = SCHEMA_VERSION + 1
    write_row(tmp_path, "abc.json", json.dumps({"run_id": "abc", "schema_version": newer}))
    proc = cli(["table", str(tmp_path)], cwd=tmp_path)
    err = proc.stderr
    assert_one_line_error(
        proc.returncode, err, f"has schema_version={newer}, newer than this sweeplab"
    )
    assert "upgrade sweeplab to read it" in err


def write_row(results: Path, name: str, text: str) -> None:
    (results / "runs").mkdir(parents=True, exist_ok=True)
    (results / "runs" / name).write_text(text)


def own_row(tmp_path: Path, cli) -> tuple[list[str], Path]:
    """The overrides of a tiny run and the path its row will have."""
    overrides = [*FAST, f"paths.results_dir={tmp_path / 'res'}", "measure.latency=false"]
    config = OmegaConf.to_container(compose(overrides), resolve=True)
    rid = identity.run_id({k: v for k, v in config.items() if k != "hydra"})
    return overrides, store.row_path(tmp_path / "res", rid)


def test_run_redoes_a_run_whose_own_row_is_no_row(tmp_path: Path, cli) -> None:
    overrides, path = own_row(tmp_path, cli)
    path.parent.mkdir(parents=True)
    path.write_text("[1, 2]")
    proc = cli(["run", *overrides], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_one_warning(proc.stderr, path, "a JSON list, not an object")
    assert store.read_row(path)["status"] == "ok"  # the new row replaced it


def test_run_refuses_a_folder_where_its_row_belongs(tmp_path: Path, cli) -> None:
    overrides, path = own_row(tmp_path, cli)
    path.mkdir(parents=True)
    proc = cli(["run", *overrides], cwd=tmp_path)
    assert_one_line_error(
        proc.returncode, proc.stderr, f"{path} is a directory where this run's row belongs;"
    )
    assert rows_in(tmp_path / "res") == [path] and path.is_dir()  # no row written
    assert not list((tmp_path / "res").rglob("*.pt"))


# -- legal but odd: these simply work -----------------------------------------------------


def test_quoted_unicode_results_dir_with_a_space(tmp_path: Path, cli) -> None:
    res = tmp_path / "résultats 数据"
    proc = cli(["run", *FAST, f"paths.results_dir='{res}'", "measure.latency=false"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [store.read_row(p)["status"] for p in rows_in(res)] == ["ok"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [res.name]  # no folder named "'"


def test_results_dir_from_an_environment_variable(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPLAB_TEST_SCRATCH", str(tmp_path / "scratch"))
    args = [*FAST, "paths.results_dir=${oc.env:SWEEPLAB_TEST_SCRATCH}/res", "measure.latency=false"]
    proc = cli(["run", *args], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(rows_in(tmp_path / "scratch" / "res")) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scratch"]  # no folder named '${oc'


def test_ten_thousand_rows(tmp_path: Path, cli) -> None:
    runs = tmp_path / "res" / "runs"
    runs.mkdir(parents=True)
    for seed in range(2_500):
        for strategy in ("global_magnitude", "random"):
            for s in (0.5, 0.9):
                row = make_row("digits", strategy, s, seed)
                (runs / f"{row.run_id}.json").write_text(json.dumps(row.to_record()))
    assert len(rows_in(tmp_path / "res")) == 10_000
    for _ in range(2):  # parsed, then from the index
        proc = cli(["table", "res", "--view", "pivot"], cwd=tmp_path)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert "global_magnitude" in proc.stdout
