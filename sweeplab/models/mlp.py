"""A fully connected ReLU network of any widths."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from sweeplab.errors import SweeplabError


class MLP(nn.Module):
    """Flatten, then Linear-ReLU per hidden width, then a Linear classifier.

    Args:
        input_shape: shape of one example, e.g. (1, 28, 28).
        num_classes: outputs of the classifier.
        hidden: widths of the hidden layers.
        batch_norm: BatchNorm1d after each hidden Linear (network slimming prunes by its scales).
        name: recorded in rows; unused here.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden: Sequence[int] = (300, 100),
        batch_norm: bool | None = None,
        name: str = "mlp",
    ) -> None:
        super().__init__()
        if any(int(h) <= 0 for h in hidden):
            raise SweeplabError(
                f"model.hidden={list(hidden)} has a non-positive width; use e.g. [300, 100]"
            )
        widths = [math.prod(input_shape), *[int(h) for h in hidden]]
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers.append(nn.Linear(fan_in, fan_out))
            if batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(nn.ReLU())
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
