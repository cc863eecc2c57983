"""Plain nn.Modules; each takes the data's input_shape and num_classes."""

from __future__ import annotations

from collections.abc import Sequence

from sweeplab.errors import SweeplabError


def require_shape(
    model: str, input_shape: Sequence[int], expected: tuple[int, ...], data: str
) -> None:
    """Raise SweeplabError unless input_shape is `expected` (C, H, W), naming data that fits.

    Args:
        model: the model's config name, named in the error.
        input_shape: one example's shape, as the data gives it.
        expected: the shape the model is built for.
        data: the data choices that give it, e.g. "data=mnist or data=fashion_mnist".
    """
    if tuple(input_shape) != expected:
        raise SweeplabError(
            f"model={model} expects {'x'.join(map(str, expected))} images but the data gives "
            f"{tuple(input_shape)}; use {data}, or model=mlp for other shapes"
        )
