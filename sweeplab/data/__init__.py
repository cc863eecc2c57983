"""Datasets as in-memory tensors: digits (embedded), MNIST and Fashion-MNIST (IDX)."""

from sweeplab.data.base import Splits, TensorBatches

__all__ = ["Splits", "TensorBatches"]
