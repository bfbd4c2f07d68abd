"""Read FER2013 in the Kaggle image-folder layout (``<split>/<emotion>/*.jpg``) into arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.vision.emotion.labels import EMOTIONS
from core.vision.emotion.network import INPUT_SIZE

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass(frozen=True)
class FaceSet:
    """Grey faces and labels: ``images`` (N, 48, 48) uint8, ``labels`` (N,) int64 indices into EMOTIONS."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> np.ndarray:
        """Images per class, shape (7,)."""
        return np.bincount(self.labels, minlength=len(EMOTIONS))


def load_split(folder: Path) -> FaceSet:
    """Load every image under ``folder/<emotion>/``, sorted by path (deterministic order).

    Images that are not 48x48 grey are converted and resized. Raises ``FileNotFoundError`` when the
    folder or all of its class folders are missing, ``ValueError`` for an unknown class folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir())
    unknown = [p.name for p in class_dirs if p.name not in EMOTIONS]
    if unknown:
        raise ValueError(f"{folder}: unknown emotion folder(s) {unknown}; expected {list(EMOTIONS)}")
    if not class_dirs:
        raise FileNotFoundError(f"{folder} has no <emotion>/ folders ({', '.join(EMOTIONS)})")
    images: list[np.ndarray] = []
    labels: list[int] = []
    for class_dir in class_dirs:
        label = EMOTIONS.index(class_dir.name)
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with Image.open(path) as img:
                grey = img.convert("L")
                if grey.size != (INPUT_SIZE, INPUT_SIZE):
                    grey = grey.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
                images.append(np.asarray(grey, dtype=np.uint8))
            labels.append(label)
    if not images:
        raise FileNotFoundError(f"{folder} holds no images")
    return FaceSet(np.stack(images), np.asarray(labels, dtype=np.int64))
