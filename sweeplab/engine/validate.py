"""Check a run's resolved config before any work: its nodes, trainer, measure and paths.

Every node with a `_target_` (pruning, schedule, recovery, data, model, logger) is checked
against its target's signature (sweeplab.engine.signatures) before any data is loaded or model
trained. The checks work on plain containers; `resolved` makes them from task.py's DictConfig.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sweeplab.engine.signatures import check_node, is_node
from sweeplab.errors import SweeplabError, check_positive

TRAINER_KEYS = (
    "accelerator", "devices", "threads", "inner_steps", "precision", "deterministic", "benchmark",
    "gradient_clip_val", "gradient_clip_algorithm", "accumulate_grad_batches",
    "num_sanity_val_steps", "max_time", "detect_anomaly", "progress", "progress_every",
    "checkpoint_minutes",
)  # fmt: skip
ACCELERATORS = ("cpu", "gpu", "cuda")
MEASURE_KEYS = ("latency", "repeats", "checkpoints", "checkpoint_every")
# Nodes instantiated with arguments the run supplies: a config key of that name would clash.
SUPPLIED = {"model": ("input_shape", "num_classes"), "logger": ("name", "title")}
NODES = ("pruning", "schedule", "recovery", "data", "model", "logger")


def check_known(section: str, values: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """Refuse a key of a section that the run does not read (a typo would be ignored)."""
    for name in values:
        if name not in keys:
            raise SweeplabError(
                f"{section}.{name} is not a {section} setting; remove it or use one of {list(keys)}"
            )


def check_trainer(trainer: Mapping[str, Any]) -> None:
    """The trainer section: known keys, one CPU or CUDA device, positive thread counts, and
    Lightning's settings (engine/trainer_settings.py)."""
    check_known("trainer", trainer, TRAINER_KEYS)
    accelerator = trainer.get("accelerator")
    if accelerator not in ACCELERATORS:
        raise SweeplabError(
            f"trainer.accelerator={accelerator!r} is not one of {list(ACCELERATORS)}; "
            "use trainer=cpu or trainer=gpu"
        )
    devices = trainer.get("devices")
    if isinstance(devices, bool) or devices != 1:
        raise SweeplabError(
            f"trainer.devices={devices!r}: a run trains on exactly one device; use "
            "trainer.devices=1 (runs in parallel: hydra/launcher=joblib or cluster=slurm)"
        )
    if accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SweeplabError(
                f"trainer.accelerator={accelerator} needs a CUDA GPU and torch sees none on "
                "this machine; use trainer=cpu"
            )
    if trainer.get("threads") is not None:
        check_positive("trainer.threads", trainer["threads"], integer=True, example="2")
    check_positive("trainer.inner_steps", trainer.get("inner_steps"), integer=True, example="8")
    from sweeplab.engine.trainer_settings import TrainerSettings

    TrainerSettings.of(trainer)
    if trainer.get("checkpoint_minutes") is not None:
        check_positive("trainer.checkpoint_minutes", trainer["checkpoint_minutes"], example="10")


def check_measure(measure: Mapping[str, Any]) -> None:
    """The measure section: known keys, a true/false latency, positive counts."""
    check_known("measure", measure, MEASURE_KEYS)
    if "latency" in measure and not isinstance(measure["latency"], bool):
        raise SweeplabError(
            f"measure.latency={measure['latency']!r} is not true or false; "
            "use measure.latency=false to skip timing"
        )
    if measure.get("latency"):
        from sweeplab.engine.latency import check_repeats

        check_repeats("measure.repeats", measure.get("repeats"))
    if measure.get("checkpoints") != 0:  # 0: off
        check_positive(
            "measure.checkpoints",
            measure.get("checkpoints"),
            integer=True,
            example="10 (or 0: off)",
        )
    check_positive(
        "measure.checkpoint_every", measure.get("checkpoint_every"), integer=True, example="1000"
    )


def check_paths(paths: Mapping[str, Any]) -> None:
    """paths.results_dir and paths.cache_dir: non-empty folder names (an empty one would put
    rows, the cache and Hydra's folders at the filesystem root)."""
    for name in ("results_dir", "cache_dir"):
        value = paths.get(name)
        if not isinstance(value, str) or not value.strip():
            raise SweeplabError(
                f"paths.{name}={'null' if value is None else repr(value)} is not a folder; "
                f"give one, e.g. paths.{name}="
                + ("results" if name == "results_dir" else "results/cache")
            )


def check_search(search: Mapping[str, Any]) -> None:
    """search.max_drop of a hyper-parameter search: a fraction of accuracy in [0, 1]."""
    drop = search.get("max_drop")
    ok = isinstance(drop, (int, float)) and not isinstance(drop, bool)
    if not ok or not math.isfinite(drop) or not 0 <= drop <= 1:
        raise SweeplabError(
            f"search.max_drop={drop!r} must be a fraction of accuracy in [0, 1]; "
            "e.g. search.max_drop=0.01 (1 point)"
        )


def resolved(cfg: Any) -> dict[str, Any]:
    """The composed config (a DictConfig) as plain containers, every interpolation resolved;
    one that cannot be is a SweeplabError naming its key and the interpolation as written."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as e:
        key = str(getattr(e, "full_key", "") or "?")
        raw: Any = OmegaConf.to_container(cfg, resolve=False)
        for part in key.split("."):
            raw = raw.get(part) if isinstance(raw, dict) else None
        reason = str(getattr(e, "msg", e)).splitlines()[0]
        raise SweeplabError(
            f"{key}={raw} cannot be resolved ({reason}); fix the interpolation or give the "
            "value itself"
        ) from None


def check_config(config: Mapping[str, Any], choices: Mapping[str, str]) -> None:
    """Every check of this module on a resolved config; raises SweeplabError on the first.

    Args:
        config: the resolved config as plain containers.
        choices: group -> the file chosen (`pruning` -> `global_magnitude`), for messages.
    """
    seed = config.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise SweeplabError(f"seed={seed!r} is not an integer; use e.g. seed=0")
    for key in NODES:
        node = config.get(key)
        if node is None:
            continue
        if not is_node(node):
            raise SweeplabError(f"{key} has no _target_; choose a file, e.g. {key}=<name>")
        label = f"{key}={choices.get(key) or node.get('name') or '?'}"
        check_node(node, key, label, SUPPLIED.get(key, ()))
    check_trainer(config.get("trainer") or {})
    check_measure(config.get("measure") or {})
    check_paths(config.get("paths") or {})
    if config.get("search"):
        check_search(config["search"])
