"""The network architectures, and the wrapper that standardises their input. No I/O."""

from __future__ import annotations

import torch
from torch import nn

from digitrec.capsnet import CapsNet
from digitrec.vit import ViT

# Pixels are standardised inside the network (and so inside the ONNX graph) with MNIST's
# statistics over the training digits, in [0, 1] units.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


class CNNModel(nn.Module):
    """The seed app's network, layer for layer: two 3x3 conv blocks, dropout, two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)  # 1568 -> 128
        self.fc2 = nn.Linear(128, 10)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))  # (B, 16, 14, 14)
        x = self.pool(self.relu(self.conv2(x)))  # (B, 32, 7, 7)
        x = self.dropout(x.flatten(1))  # (B, 1568)
        x = self.relu(self.fc1(x))
        return self.fc2(x)  # (B, 10) logits


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max-pooling in place of its squashing units."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5, padding=2),  # (B, 6, 28, 28)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),  # (B, 16, 10, 10)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _conv_bn(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class DigitNet(nn.Module):
    """The default's network: a small batch-norm CNN, about 15 M multiply-adds per image."""

    def __init__(self, width: int = 32, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn(1, width, kernel=5),  # (B, 32, 28, 28)
            nn.MaxPool2d(2),  # (B, 32, 14, 14)
            _conv_bn(width, 2 * width),
            _conv_bn(2 * width, 2 * width),  # (B, 64, 14, 14)
            nn.MaxPool2d(2),  # (B, 64, 7, 7)
            _conv_bn(2 * width, 4 * width),  # (B, 128, 7, 7)
            nn.AdaptiveAvgPool2d(1),  # (B, 128, 1, 1)
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * width, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Ensemble(nn.Module):
    """Averages the logits of several networks of one architecture, trained with other seeds."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(dim=0)


class Standardised(nn.Module):
    """Wraps a network: standardises [0, 1] pixels with MNIST's statistics, divides logits by T.

    Both steps live in the module so that the exported ONNX graph takes raw [0, 1] pixels and
    returns calibrated logits; `temperature` is a buffer, saved and exported with the weights.
    """

    temperature: torch.Tensor

    def __init__(self, net: nn.Module, temperature: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # image: (N, 1, 28, 28) in [0, 1], white on black -> logits (N, 10) / T
        return self.net((image - MNIST_MEAN) / MNIST_STD) / self.temperature


def digitnet_members(net: nn.Module) -> list[DigitNet]:
    """The DigitNets of a bare network or ensemble; an error for other architectures."""
    members = list(net.members) if isinstance(net, Ensemble) else [net]
    if not all(isinstance(m, DigitNet) for m in members):
        raise TypeError("a digit detector reads the feature maps of DigitNets only")
    return members  # type: ignore[return-value]


def feature_channels(net: nn.Module) -> int:
    """How many feature maps `feature_maps` gives for a DigitNet or ensemble of them."""
    last_layers = [m.classifier[-1] for m in digitnet_members(net)]
    return sum(layer.in_features for layer in last_layers if isinstance(layer, nn.Linear))


def feature_maps(members: list[DigitNet], standardised: torch.Tensor) -> torch.Tensor:
    """Each member's last feature maps before pooling, side by side: (N, 128 * members, 7, 7)."""
    return torch.cat([m.features[:-1](standardised) for m in members], dim=1)


class DigitDetector(nn.Module):
    """Says whether a drawing is one digit at all, from the classifier's last feature maps.

    Reads where on the 7x7 grid the features lie, not only their average, so that two digits
    side by side, a letter or a scribble look unlike one digit. Returns one logit per image:
    high for a single digit.
    """

    def __init__(self, channels: int = 256, hidden: int = 64) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(32 * 7 * 7, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.layers(maps)[:, 0]


class Detecting(nn.Module):
    """A standardised DigitNet (or ensemble) with its detector, computed from one pass.

    image (N, 1, 28, 28) in [0, 1] -> (logits (N, 10) divided by T, digit logit (N,) scaled
    and shifted by the detector's calibration: its sigmoid is the probability of one digit).
    """

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(
        self, model: Standardised, detector: DigitDetector, scale: float = 1.0, shift: float = 0.0
    ) -> None:
        super().__init__()
        self.model = model
        self.detector = detector
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        members = digitnet_members(self.model.net)
        standardised = (image - MNIST_MEAN) / MNIST_STD
        maps = [m.features[:-1](standardised) for m in members]
        logits = torch.stack(
            [m.classifier(m.features[-1](x)) for m, x in zip(members, maps, strict=True)]
        ).mean(dim=0)
        digit = self.detector(torch.cat(maps, dim=1)) * self.scale + self.shift
        return logits / self.model.temperature, digit


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "default": DigitNet,
    "seed-cnn": CNNModel,
    "lenet5": LeNet5,
    "vit": ViT,
    "capsnet": CapsNet,
}


def build_model(name: str, members: int = 1) -> nn.Module:
    """A fresh, untrained network of the named architecture (an ensemble if members > 1)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(ARCHITECTURES)}")
    if members > 1:
        return Ensemble([ARCHITECTURES[name]() for _ in range(members)])
    return ARCHITECTURES[name]()
