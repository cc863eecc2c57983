"""VGG with batch norm for 32x32 images: VGG-16 of Li et al. 2017, VGG-11 of Tanaka et al. 2020.

Both stack conv3x3-BN-ReLU layers with 2x2 max pooling, then average the remaining 2x2 map.
VGG-16 (Li et al. 2017, "Pruning Filters for Efficient ConvNets", the CIFAR model of
Zagoruyko 2015 with BN and no dropout): classifier Linear(512, 512)-BN-ReLU-Linear, bias-free
convs; 15.0M parameters, 313M multiply-accumulates. VGG-11 (Tanaka et al. 2020, after the
lottery-ticket code of Frankle et al.): convs with bias, one Linear(512, classes); 9.2M
parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from sweeplab.errors import SweeplabError
from sweeplab.models.resnet_cifar import require_cifar_shape

# Output channels per conv; "M" is a 2x2 max pool.
PLANS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
}


class VGG(nn.Module):
    """VGG-11 or VGG-16 with batch norm after every conv.

    Args:
        input_shape: shape of one example; must be (3, 32, 32).
        num_classes: outputs of the classifier.
        depth: 11 (Tanaka et al.: one linear layer, conv bias) or 16 (Li et al.: two
            linear layers with BN between, no conv bias).
        name: recorded in rows and named in errors.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 16,
        name: str = "vgg16",
    ) -> None:
        super().__init__()
        require_cifar_shape(name, input_shape)
        if depth not in PLANS:
            raise SweeplabError(f"model.depth={depth} is not one of {sorted(PLANS)}")
        layers: list[nn.Module] = []
        channels = 3
        for spec in PLANS[depth]:
            if spec == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            width = int(spec)
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=depth == 11),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            channels = width
        # Four pools take 32x32 to 2x2; average it to one 512-vector.
        layers.append(nn.AvgPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier: nn.Module
        if depth == 16:
            self.classifier = nn.Sequential(
                nn.Linear(channels, 512),
                nn.BatchNorm1d(512),
                nn.ReLU(),
                nn.Linear(512, num_classes),
            )
        else:
            self.classifier = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))
