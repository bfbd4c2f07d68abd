"""Emotion inference: 48x48 grey faces in, probabilities for the seven FER2013 classes out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.paths import resource
from core.vision.emotion.labels import EMOTIONS
from core.vision.emotion.network import INPUT_SIZE, EmotionNet

DEFAULT_WEIGHTS = resource("models", "emotion", "emotion_cnn.pt")
"""Weights shipped with the project; the model card sits beside them as ``emotion_cnn.json``."""


def card_path(weights: Path) -> Path:
    """The JSON model card that belongs to ``weights``."""
    return weights.with_suffix(".json")


def to_input(images: np.ndarray | torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 faces (N, 48, 48) -> normalised float32 tensor (N, 1, 48, 48): ``(x / 255 - mean) / std``."""
    tensor = torch.as_tensor(images)
    if tensor.ndim != 3 or tuple(tensor.shape[1:]) != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"expected (N, {INPUT_SIZE}, {INPUT_SIZE}) faces, got {tuple(tensor.shape)}")
    return ((tensor.float() / 255.0 - mean) / std).unsqueeze(1)


def predict_logits(model: EmotionNet, batch: torch.Tensor, flip: bool = True) -> torch.Tensor:
    """Softmax probabilities (N, 7) for a normalised batch; ``flip`` averages with the mirrored face."""
    probs = torch.softmax(model(batch).float(), dim=1)
    if flip:
        probs = (probs + torch.softmax(model(torch.flip(batch, dims=[3])).float(), dim=1)) / 2
    return probs


@dataclass(frozen=True)
class EmotionReading:
    """The emotion of one face: the top ``label`` and the probability of every class."""

    label: str
    scores: dict[str, float]

    @property
    def confidence(self) -> float:
        """Probability of the top label, 0..1."""
        return self.scores[self.label]


class EmotionClassifier:
    """Loads the emotion CNN and its card once; :meth:`predict` is thread-safe (no grad, eval mode).

    Args:
        weights: a ``.pt`` state_dict with a ``.json`` card beside it (default: the shipped model).
        device: torch device (default CPU).
        flip_tta: average each face with its mirror image (default True, as in the card's accuracy).
    """

    def __init__(self, weights: Path | None = None, device: str = "cpu", flip_tta: bool = True) -> None:
        self.weights = Path(weights or DEFAULT_WEIGHTS)
        if not self.weights.is_file():
            raise FileNotFoundError(
                f"emotion weights not found: {self.weights} (train with `moodtunes train-emotion`)"
            )
        self.card: dict[str, Any] = json.loads(card_path(self.weights).read_text())
        arch = self.card["architecture"]
        self.model = EmotionNet(
            widths=arch["widths"],
            convs_per_stage=arch["convs_per_stage"],
            dropout=arch.get("dropout", 0.0),
            num_classes=len(self.card["classes"]),
        )
        state = torch.load(self.weights, map_location="cpu", weights_only=True)
        self.model.load_state_dict({k: v.float() for k, v in state.items()})
        self.model.eval().to(device).to(memory_format=torch.channels_last)
        self.device = device
        self.classes: tuple[str, ...] = tuple(self.card["classes"])
        if self.classes != EMOTIONS:
            raise ValueError(f"{self.weights}: classes {self.classes} differ from {EMOTIONS}")
        self.mean = float(self.card["input"]["mean"])
        self.std = float(self.card["input"]["std"])
        self.flip_tta = flip_tta

    @torch.inference_mode()
    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """uint8 grey faces (N, 48, 48) -> probabilities (N, 7) float32, rows sum to 1."""
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        batch = to_input(faces, self.mean, self.std).to(self.device)
        batch = batch.contiguous(memory_format=torch.channels_last)
        return predict_logits(self.model, batch, self.flip_tta).cpu().numpy()

    def predict(self, faces: np.ndarray) -> list[EmotionReading]:
        """uint8 grey faces (N, 48, 48) -> one :class:`EmotionReading` per face."""
        readings = []
        for row in self.probabilities(faces):
            scores = {name: float(p) for name, p in zip(self.classes, row, strict=True)}
            readings.append(EmotionReading(self.classes[int(row.argmax())], scores))
        return readings
