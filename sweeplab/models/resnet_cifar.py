"""ResNet-20/32/56 for 32x32 images (He et al. 2016, section 4.2), option A shortcuts.

Option A (the paper's choice for CIFAR): where a stage doubles the width and halves the
resolution, the shortcut subsamples by 2 and pads the new channels with zeros, so it has no
parameters and the counts match the paper: 0.27M, 0.46M, 0.85M.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sweeplab.errors import SweeplabError
from sweeplab.models import require_shape

WIDTHS = (16, 32, 64)  # channels of the three stages
DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}  # depth -> basic blocks per stage (6n + 2)


def require_cifar_shape(model: str, input_shape: Sequence[int]) -> None:
    """Raise SweeplabError unless input_shape is one RGB image of 32x32 pixels."""
    require_shape(model, input_shape, (3, 32, 32), "data=cifar10 or data=cifar100")


class ChannelShortcut(nn.Module):
    """Option A shortcut: subsample by `stride`, then route input channels to output channels.

    `index[o]` names the input channel copied to output channel o; the value in_channels
    stands for a zero channel (the padding). Structured pruning edits `index` (see
    sweeplab.pruning.structured.groups), so the map stays right after channels are removed.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels, self.stride = in_channels, stride
        front = (out_channels - in_channels) // 2
        index = torch.full((out_channels,), in_channels, dtype=torch.long)
        index[front : front + in_channels] = torch.arange(in_channels)
        self.register_buffer("index", index)

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        zero = x.new_zeros(x.shape[0], 1, x.shape[2], x.shape[3])
        return torch.cat([x, zero], 1).index_select(1, self.index)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = (
            nn.Identity()
            if stride == 1 and in_channels == out_channels
            else ChannelShortcut(in_channels, out_channels, stride)
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    def bypass(self) -> nn.Module:
        """What replaces this block when it is removed: its shortcut.

        The block's input is a ReLU output (>= 0), so relu(shortcut(x)) = shortcut(x).
        """
        return self.shortcut


class ResNetCifar(nn.Module):
    """ResNet-(6n+2): a 3x3 stem, three stages of n basic blocks, global pooling, a classifier.

    Args:
        input_shape: shape of one example; must be (3, 32, 32).
        num_classes: outputs of the classifier.
        depth: 20, 32, 44, 56 or 110.
        name: recorded in rows and named in errors.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 20,
        name: str = "resnet20",
    ) -> None:
        super().__init__()
        require_cifar_shape(name, input_shape)
        if depth not in DEPTHS:
            raise SweeplabError(f"model.depth={depth} is not one of {sorted(DEPTHS)}")
        blocks = DEPTHS[depth]
        self.conv1 = nn.Conv2d(3, WIDTHS[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.relu = nn.ReLU()
        stages: list[nn.Module] = []
        in_channels = WIDTHS[0]
        for i, width in enumerate(WIDTHS):
            layers = []
            for j in range(blocks):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(BasicBlock(in_channels, width, stride))
                in_channels = width
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(WIDTHS[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.pool(x).flatten(1))
