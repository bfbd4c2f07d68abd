"""The emotion networks: small VGG- and ResNet-style classifiers for 48x48 grey faces.

:class:`EmotionNet` (VGG-style): four stages of two 3x3 conv-BN-ReLU layers with 2x2 max-pooling
(48 -> 24 -> 12 -> 6 -> 3), global average pooling, dropout and one linear layer.
:class:`EmotionResNet`: a 3x3 stem, then four stages of basic residual blocks (48 -> 24 -> 12 -> 6),
global average pooling, dropout and one linear layer. Both are small enough to train on a laptop CPU
with bfloat16 autocast, and fast at inference (see ``benchmarks/emotion.py``). A model card's
``architecture`` entry names one of them; :func:`build_network` makes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

INPUT_SIZE = 48
"""Side of the square grey input, pixels."""


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class EmotionNet(nn.Module):
    """VGG-style classifier.

    Args:
        widths: channels of the four stages (default ``(48, 96, 192, 384)``, 2.64M parameters).
        convs_per_stage: 3x3 convolutions per stage (default 2).
        num_classes: output classes (default 7, see :data:`core.vision.emotion.labels.EMOTIONS`).
        dropout: dropout before the classifier (default 0.3).

    ``forward`` takes ``(N, 1, 48, 48)`` normalised floats and returns ``(N, num_classes)`` logits.
    """

    def __init__(
        self,
        widths: Sequence[int] = (48, 96, 192, 384),
        convs_per_stage: int = 2,
        num_classes: int = 7,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for width in widths:
            for _ in range(convs_per_stage):
                layers.append(_conv_bn_relu(c_in, width))
                c_in = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, num_classes)
        )
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN) shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class EmotionResNet(nn.Module):
    """ResNet-style classifier.

    Args:
        widths: channels of the four stages (default ``(32, 64, 128, 256)``, 2.8M parameters).
        blocks_per_stage: basic blocks per stage (default ``(1, 2, 2, 2)``); stages after the first
            halve the resolution in their first block (48 -> 24 -> 12 -> 6).
        num_classes: output classes (default 7).
        dropout: dropout before the classifier (default 0.3).

    The compute per face is about that of the default :class:`EmotionNet` (0.27 GMAC).
    """

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks_per_stage: Sequence[int] = (1, 2, 2, 2),
        num_classes: int = 7,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if len(widths) != len(blocks_per_stage):
            raise ValueError("widths and blocks_per_stage need one entry per stage")
        layers: list[nn.Module] = [_conv_bn_relu(1, widths[0])]
        c_in = widths[0]
        for stage, (width, blocks) in enumerate(zip(widths, blocks_per_stage, strict=True)):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(c_in, width, stride))
                c_in = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, num_classes)
        )
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


ARCHITECTURES = ("vgg", "resnet")
"""Values of a card's ``architecture.type``."""


def architecture_type(architecture: Mapping[str, Any]) -> str:
    """``vgg`` or ``resnet``; cards written before the ResNet existed say ``EmotionNet (VGG-style ...``."""
    kind = str(architecture.get("type", "vgg"))
    return "vgg" if kind.startswith("EmotionNet") else kind


def build_network(architecture: Mapping[str, Any], num_classes: int = 7) -> nn.Module:
    """The untrained network a card's ``architecture`` entry describes."""
    kind = architecture_type(architecture)
    dropout = float(architecture.get("dropout", 0.0))
    if kind == "vgg":
        return EmotionNet(
            architecture["widths"], int(architecture.get("convs_per_stage", 2)), num_classes, dropout
        )
    if kind == "resnet":
        return EmotionResNet(architecture["widths"], architecture["blocks_per_stage"], num_classes, dropout)
    raise ValueError(f"unknown emotion architecture {kind!r}; known: {ARCHITECTURES}")
