"""The face analyzer: photo -> faces -> upright crops -> FaceNet embeddings and emotions, batched.

Models load once in :class:`FaceAnalyzer`; its methods are blocking (torch), so async callers run
them on the one inference thread of :class:`core.vision.worker.InferenceWorker`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from core.config import Settings
from core.vision.emotion.classifier import DEFAULT_WEIGHTS, EmotionClassifier, EmotionReading
from core.vision.faces import DetectedFace, FaceDetector, FaceEmbedder, aligned_crop, emotion_crop
from core.vision.faces.facenet_weights import MODEL_IDS
from core.vision.manifest import match_threshold

log = logging.getLogger(__name__)


class Analyzer(Protocol):
    """What the inference worker needs of the models: their id, match threshold, and the batch call."""

    model_id: str
    threshold: float

    def analyze_many(
        self, images: list[tuple[np.ndarray, list[DetectedFace] | None]]
    ) -> list[list[FaceAnalysis] | Exception]: ...


@dataclass(frozen=True)
class FaceAnalysis:
    """One face: where it is, its (512,) unit embedding, and its emotion (None without a model)."""

    face: DetectedFace
    embedding: np.ndarray
    emotion: EmotionReading | None


class FaceAnalyzer:
    """Detector, embedder and emotion classifier, loaded once from the settings.

    Args:
        settings: ``face_weights``, ``cache_dir``, ``emotion_weights`` and ``torch_threads`` are used.
        detector: a :class:`FaceDetector` to use instead of the default one.
        with_emotion: load the emotion CNN (default True; a missing file only logs a warning when
            a custom path was not requested).
    """

    def __init__(
        self, settings: Settings, detector: FaceDetector | None = None, with_emotion: bool = True
    ) -> None:
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        self.detector = detector or FaceDetector()
        self.embedder = FaceEmbedder(settings.face_weights, settings.cache_dir)
        self.model_id = self.embedder.model_id
        self.threshold = match_threshold(self.model_id)
        self.emotion: EmotionClassifier | None = None
        if with_emotion:
            weights = settings.emotion_weights or DEFAULT_WEIGHTS
            if weights.is_file() or settings.emotion_weights is not None:
                self.emotion = EmotionClassifier(weights)
            else:
                log.warning("no emotion model at %s; emotions are off", weights)

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in an RGB uint8 (H, W, 3) image, largest first."""
        return self.detector.detect(rgb)

    def embed(self, rgb: np.ndarray, faces: list[DetectedFace]) -> np.ndarray:
        """(N, 512) unit embeddings of the given faces of one image."""
        if not faces:
            return np.zeros((0, 512), dtype=np.float32)
        return self.embedder.embed(np.stack([aligned_crop(rgb, f) for f in faces]))

    def emotions(self, rgb: np.ndarray, faces: list[DetectedFace]) -> list[EmotionReading | None]:
        """Emotion of each face (None for all when no emotion model is loaded)."""
        if self.emotion is None or not faces:
            return [None] * len(faces)
        return list(self.emotion.predict(np.stack([emotion_crop(rgb, f) for f in faces])))

    def analyze_many(
        self, images: list[tuple[np.ndarray, list[DetectedFace] | None]]
    ) -> list[list[FaceAnalysis] | Exception]:
        """Analyse several images with one FaceNet and one emotion forward pass for all their faces.

        Each item is ``(rgb, faces or None)``; an image that fails yields its exception in place,
        the others are unaffected.
        """
        found: list[list[DetectedFace] | Exception] = []
        for rgb, faces in images:
            try:
                found.append(self.detect(rgb) if faces is None else faces)
            except Exception as exc:  # noqa: BLE001 - reported per image to its caller
                found.append(exc)
        crops, grey, owners = [], [], []
        for index, ((rgb, _), image_faces) in enumerate(zip(images, found, strict=True)):
            if isinstance(image_faces, Exception):
                continue
            for face in image_faces:
                crops.append(aligned_crop(rgb, face))
                if self.emotion is not None:
                    grey.append(emotion_crop(rgb, face))
                owners.append(index)
        embeddings = self.embedder.embed(np.stack(crops)) if crops else np.zeros((0, 512), np.float32)
        readings: list[EmotionReading | None] = (
            list(self.emotion.predict(np.stack(grey)))
            if self.emotion is not None and grey
            else [None] * len(crops)
        )
        results: list[list[FaceAnalysis] | Exception] = [f if isinstance(f, Exception) else [] for f in found]
        cursor = {i: 0 for i in range(len(images))}
        for row, owner in enumerate(owners):
            owner_faces = found[owner]
            out = results[owner]
            assert isinstance(owner_faces, list) and isinstance(out, list)
            out.append(FaceAnalysis(owner_faces[cursor[owner]], embeddings[row], readings[row]))
            cursor[owner] += 1
        return results


class LazyAnalyzer:
    """A :class:`FaceAnalyzer` loaded on first use (CLI commands that may never need the models).

    ``model_id`` and ``threshold`` are known from the settings without loading anything.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_id = MODEL_IDS[settings.face_weights]
        self.threshold = match_threshold(self.model_id)
        self._loaded: FaceAnalyzer | None = None
        self._lock = threading.Lock()

    def analyze_many(
        self, images: list[tuple[np.ndarray, list[DetectedFace] | None]]
    ) -> list[list[FaceAnalysis] | Exception]:
        """:meth:`FaceAnalyzer.analyze_many`, loading the models the first time."""
        with self._lock:
            if self._loaded is None:
                self._loaded = FaceAnalyzer(self.settings)
        return self._loaded.analyze_many(images)
