"""LeNet-300-100 and LeNet-5-Caffe, the MNIST models of the pruning literature."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from sweeplab.errors import SweeplabError
from sweeplab.models import require_shape

INITS = ("default", "variance_scaling")


def initialize(model: nn.Module, init: str | None) -> None:
    """Re-initialize every Conv/Linear weight (biases to zero) by scheme `init`.

    default (or None): PyTorch's, U(+-1/sqrt(fan_in)), left as built.
    variance_scaling: TensorFlow's variance_scaling_initializer as SNIP (Lee et al. 2019)
        used it: truncated normal at +-2 std, std = 1/sqrt(fan_in) after truncation.
    """
    if init in (None, "default"):
        return
    if init not in INITS:
        raise SweeplabError(f"model.init={init!r} is not one of {list(INITS)}")
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            std = 1.0 / math.sqrt(fan_in) / 0.87962566103423978  # TF's truncation correction
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _require_mnist_shape(model: str, input_shape: Sequence[int]) -> None:
    require_shape(model, input_shape, (1, 28, 28), "data=mnist or data=fashion_mnist")


class LeNet300(nn.Module):
    """784-300-100-10 with ReLU (LeCun et al. 1998): 266,610 parameters."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        name: str = "lenet300",
        init: str | None = None,
    ) -> None:
        super().__init__()
        _require_mnist_shape(name, input_shape)
        self.fc1 = nn.Linear(math.prod(input_shape), 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, num_classes)
        self.relu = nn.ReLU()
        initialize(self, init)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    """LeNet-5 as in Caffe's MNIST example: conv 20, conv 50, fc 500, fc 10; 431,080 parameters."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        name: str = "lenet5",
        init: str | None = None,
    ) -> None:
        super().__init__()
        _require_mnist_shape(name, input_shape)
        self.conv1 = nn.Conv2d(1, 20, kernel_size=5)
        self.conv2 = nn.Conv2d(20, 50, kernel_size=5)
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, num_classes)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        initialize(self, init)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.conv1(x))
        x = self.pool(self.conv2(x))
        return self.fc2(self.relu(self.fc1(x.flatten(1))))
