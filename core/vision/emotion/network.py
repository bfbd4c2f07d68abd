"""The emotion CNN: a small VGG-style network for 48x48 grey faces.

Four stages of two 3x3 conv-BN-ReLU layers with 2x2 max-pooling (48 -> 24 -> 12 -> 6 -> 3), global
average pooling, dropout and one linear layer. It is small enough to train on a laptop CPU with
bfloat16 autocast, and fast at inference (see ``benchmarks/emotion_speed.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

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
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
