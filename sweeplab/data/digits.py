"""scikit-learn's embedded 8x8 digits: the offline default dataset."""

from __future__ import annotations

import torch

from sweeplab.data.base import Splits, carve
from sweeplab.data.classes import DIGITS
from sweeplab.errors import SweeplabError, check_fraction, check_seed


def load_digits(
    name: str = "digits", val_fraction: float = 0.1, test_fraction: float = 0.2, split_seed: int = 0
) -> Splits:
    """Load the 1,797 digits as (N, 1, 8, 8) floats standardized with train statistics.

    Args:
        name: dataset name recorded in rows.
        val_fraction: share of all images held out for validation.
        test_fraction: share of all images held out for test.
        split_seed: seed of the fixed split (not the run seed).
    Returns:
        Splits on the CPU.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    val_fraction = check_fraction("data.val_fraction", val_fraction, example="0.1")
    test_fraction = check_fraction("data.test_fraction", test_fraction, example="0.2")
    if val_fraction + test_fraction >= 1:
        raise SweeplabError(
            f"data.val_fraction={val_fraction} and data.test_fraction={test_fraction} leave no "
            "training images; keep their sum below 1, e.g. data.val_fraction=0.1"
        )
    check_seed("data.split_seed", split_seed)
    bunch = sk_load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    n = len(x)
    (rest_x, rest_y), (test_x, test_y) = carve(
        x, y, round(n * test_fraction), split_seed, "data.test_fraction"
    )
    (train_x, train_y), (val_x, val_y) = carve(
        rest_x, rest_y, round(n * val_fraction), split_seed + 1, "data.val_fraction"
    )
    return Splits.standardized(
        name, (train_x, train_y), (val_x, val_y), (test_x, test_y), num_classes=10,
        raw=("pixel intensities 0-16 (scikit-learn's 8x8 digits)", 1.0), classes=DIGITS,
    )  # fmt: skip
