"""TrainConfig: the hyperparameters of one training phase (dense training or recovery)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sweeplab.errors import SweeplabError, check_number, check_positive

OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("cosine", "constant", "step")
# Optional non-negative settings and a value each error shows as its fix.
PENALTY_EXAMPLES = {"weight_l1": "1e-5", "weight_l2": "1e-5", "bn_l1": "1e-4", "warmup_epochs": "1"}


@dataclass
class TrainConfig:
    """One training phase (dense training or recovery). lr is per batch of batch_size.

    weight_l1 / weight_l2 add lambda * sum|w| / lambda * sum w^2 over prunable weights to the
    loss (L1-regularized pruning drives weights to zero before magnitude pruning).
    """

    epochs: int
    lr: float
    batch_size: int = 128
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    # Linear warmup over this many epochs (lr rises from lr/steps to lr), then lr_schedule.
    warmup_epochs: float | None = None
    # lr_schedule=step: multiply the lr by lr_gamma every lr_step_epochs (e.g. SNIP's x0.1
    # every 25K iterations)
    lr_step_epochs: float | None = None
    lr_gamma: float | None = None  # None: 0.1
    weight_l1: float | None = None
    weight_l2: float | None = None
    bn_l1: float | None = None  # network slimming: lambda * sum |gamma| of batch-norm scales

    @classmethod
    def of(cls, values: dict, section: str) -> TrainConfig:
        """The config section `section` as a TrainConfig; a key it does not know is named."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SweeplabError(
                f"{section}.{unknown[0]} is not a {section} setting; "
                f"remove it or use one of {known}"
            )
        return cls(**values)

    def check(self, section: str, allow_zero_epochs: bool = False) -> TrainConfig:
        """Raise SweeplabError naming `section.key` for any invalid value; return self.

        Everything torch's optimizers or the lr schedule would refuse (or take and diverge on)
        is refused here, before any data is loaded, naming the key the user set.
        """
        if not (allow_zero_epochs and self.epochs == 0):
            check_positive(f"{section}.epochs", self.epochs, integer=True)
        check_positive(f"{section}.batch_size", self.batch_size, integer=True, example="128")
        check_positive(f"{section}.lr", self.lr, example="0.05")
        if self.optimizer not in OPTIMIZERS:
            raise SweeplabError(
                f"{section}.optimizer={self.optimizer!r} is not one of {list(OPTIMIZERS)}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise SweeplabError(
                f"{section}.lr_schedule={self.lr_schedule!r} is not one of {list(LR_SCHEDULES)}"
            )
        # SGD's momentum: a fraction of the last update kept; at 1 or above updates never decay.
        if check_number(f"{section}.momentum", self.momentum, example="0.9") >= 1:
            raise SweeplabError(
                f"{section}.momentum={self.momentum} must be below 1; e.g. {section}.momentum=0.9"
            )
        check_number(f"{section}.weight_decay", self.weight_decay, example="5e-4")
        for key, example in PENALTY_EXAMPLES.items():
            if getattr(self, key) is not None:
                check_number(f"{section}.{key}", getattr(self, key), example=example)
        if self.lr_schedule == "step":
            check_positive(f"{section}.lr_step_epochs", self.lr_step_epochs, example="30")
            if self.lr_gamma is not None:
                check_positive(f"{section}.lr_gamma", self.lr_gamma, example="0.1")
        else:
            for key in ("lr_step_epochs", "lr_gamma"):
                if getattr(self, key) is not None:
                    raise SweeplabError(
                        f"{section}.{key}={getattr(self, key)} is used by "
                        f"{section}.lr_schedule=step only, not {self.lr_schedule}; set "
                        f"{section}.lr_schedule=step or {section}.{key}=null"
                    )
        if self.warmup_epochs and self.warmup_epochs >= self.epochs > 0:
            raise SweeplabError(
                f"{section}.warmup_epochs={self.warmup_epochs} is not shorter than "
                f"{section}.epochs={self.epochs}; use e.g. {section}.warmup_epochs=1"
            )
        return self
