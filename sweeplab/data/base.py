"""Splits held as whole tensors, and batches taken by index (no per-sample DataLoader)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from sweeplab.errors import SweeplabError


@dataclass(frozen=True)
class Normalization:
    """How a raw input becomes what the splits hold: x = (raw / scale - mean[c]) / std[c].

    mean and std hold one value for every channel, or one per channel c. An export states it,
    so a user feeds a pruned model what it was trained on.
    """

    raw: str  # what a raw input is, e.g. "pixel bytes 0-255"
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass
class Splits:
    """Train/val/test tensors of one dataset; images are float (N, C, H, W), labels int64."""

    name: str
    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    augment: bool = False  # training batches get crop_flip (random crop + flip) on the device
    normalization: Normalization | None = None  # None: the loader did not say
    classes: tuple[str, ...] = ()  # class k's name at index k; () when the loader names none

    @classmethod
    def standardized(
        cls,
        name: str,
        train: tuple[Tensor, Tensor],
        val: tuple[Tensor, Tensor],
        test: tuple[Tensor, Tensor],
        num_classes: int,
        raw: tuple[str, float] = ("as given", 1.0),
        classes: tuple[str, ...] = (),
    ) -> Splits:
        """Build checked splits, standardizing all images with the train split's mean and std.

        raw: what the loader's inputs were before it divided them by a scale, and that scale
        (its images are raw / scale); recorded in `normalization` with the mean and std.
        """
        mean, std = train[0].mean(), train[0].std()
        normalization = Normalization(raw[0], raw[1], (float(mean),), (float(std),))
        return cls(
            name=name,
            train_x=(train[0] - mean) / std,
            train_y=train[1],
            val_x=(val[0] - mean) / std,
            val_y=val[1],
            test_x=(test[0] - mean) / std,
            test_y=test[1],
            num_classes=num_classes,
            normalization=normalization,
            classes=classes,
        ).validate()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def to(self, device: torch.device | str) -> Splits:
        """Move every split to device once; batches are then slices of device tensors."""
        return replace(self, **{k: getattr(self, k).to(device) for k in self._tensor_fields()})

    def validate(self) -> Splits:
        """Check labels lie in [0, num_classes) and splits are non-empty; return self."""
        if self.classes and len(self.classes) != self.num_classes:
            raise SweeplabError(
                f"data={self.name}: {len(self.classes)} class names for {self.num_classes} "
                "classes; name every class or none"
            )
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if len(x) == 0 or len(x) != len(y):
                raise SweeplabError(
                    f"data={self.name}: {split} split has {len(x)} images and {len(y)} labels; "
                    "check the data files"
                )
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= self.num_classes:
                raise SweeplabError(
                    f"data={self.name}: {split} labels span [{lo}, {hi}], outside "
                    f"[0, {self.num_classes}); check the label files"
                )
        return self

    @staticmethod
    def _tensor_fields() -> tuple[str, ...]:
        return ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


def carve(
    x: Tensor, y: Tensor, size: int, seed: int, key: str = "data.val_size"
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Split (x, y) into (rest, held-out of `size`) by a permutation fixed by seed.

    `key` is the config key that set the size, named when it leaves either part empty.
    """
    if not 0 < size < len(x):
        raise SweeplabError(
            f"{key} holds out {size} of {len(x)} images; both parts need some: change {key} "
            f"(1 to {len(x) - 1} images)"
        )
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    keep, held = perm[size:], perm[:size]
    return (x[keep], y[keep]), (x[held], y[held])


class TensorBatches:
    """Iterable of (x, y) batches cut from whole tensors by index.

    Shuffled batches use a fresh permutation each epoch from a seeded generator, so a run is
    repeatable. The last partial batch is kept. With group=k each item holds k consecutive
    batches (k * batch_size examples) of the same sequence, for a consumer that steps k times
    per item; the minibatches themselves are unchanged.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        group: int = 1,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.group = int(group)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def steps(self) -> int:
        """Minibatches per epoch."""
        return -(-len(self.x) // self.batch_size)

    def __len__(self) -> int:
        return -(-self.steps // self.group)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n, b = len(self.x), self.batch_size * self.group
        if self.shuffle:
            perm = torch.randperm(n, generator=self.generator).to(self.x.device)
            for i in range(0, n, b):
                idx = perm[i : i + b]
                yield self.x[idx], self.y[idx]
        else:
            for i in range(0, n, b):
                yield self.x[i : i + b], self.y[i : i + b]
