"""The face analyzer: photo -> faces -> upright crops -> FaceNet embeddings and emotions, batched.

Models load once in :class:`FaceAnalyzer`; its methods are blocking (torch), so async callers run
them on the one inference thread of :class:`core.vision.worker.InferenceWorker`.

Work per photo is bounded: only its ``max_faces`` largest faces are analysed (the result, a
:class:`~core.vision.faces.FaceList`, says how many were found), and FaceNet and the emotion CNN run
in fixed batches of :data:`BATCH` faces, so a crowd costs at most ``max_faces`` faces' time and
the memory of one batch.
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
from core.vision.faces import DetectedFace, FaceDetector, FaceEmbedder, FaceList, aligned_crop, emotion_crop
from core.vision.faces.facenet_weights import MODEL_IDS
from core.vision.manifest import match_threshold

log = logging.getLogger(__name__)

BATCH = 32
"""Faces per forward pass of FaceNet and of the emotion CNN (the memory of one pass is bounded)."""


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
        settings: ``face_weights``, ``cache_dir``, ``emotion_weights``, ``torch_threads`` and
            ``max_faces`` (the largest faces analysed per photo) are used.
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
        self.max_faces = settings.max_faces
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

    def detect(self, rgb: np.ndarray) -> FaceList[DetectedFace]:
        """Faces in an RGB uint8 (H, W, 3) image, largest first (all found, not only ``max_faces``)."""
        return self.detector.detect(rgb)

    def embed(self, rgb: np.ndarray, faces: list[DetectedFace]) -> np.ndarray:
        """(N, 512) unit embeddings of the given faces of one image, in batches of :data:`BATCH`."""
        if not faces:
            return np.zeros((0, 512), dtype=np.float32)
        return np.concatenate(
            [
                self.embedder.embed(np.stack([aligned_crop(rgb, f) for f in faces[i : i + BATCH]]))
                for i in range(0, len(faces), BATCH)
            ]
        )

    def emotions(self, rgb: np.ndarray, faces: list[DetectedFace]) -> list[EmotionReading | None]:
        """Emotion of each face (None for all when no emotion model is loaded), in batches."""
        if self.emotion is None or not faces:
            return [None] * len(faces)
        readings: list[EmotionReading | None] = []
        for i in range(0, len(faces), BATCH):
            readings += self.emotion.predict(np.stack([emotion_crop(rgb, f) for f in faces[i : i + BATCH]]))
        return readings

    def analyze_many(
        self, images: list[tuple[np.ndarray, list[DetectedFace] | None]]
    ) -> list[list[FaceAnalysis] | Exception]:
        """Analyse several images, their faces together in fixed batches of FaceNet and emotion passes.

        Each item is ``(rgb, faces or None)``; ``None`` detects the faces. Each image's result is a
        :class:`~core.vision.faces.FaceList` of its ``max_faces`` largest faces, largest first, whose
        ``found`` counts all of them. An image that fails yields its exception in place; the others
        are unaffected.
        """
        found: list[FaceList[DetectedFace] | Exception] = []
        for rgb, faces in images:
            try:
                detected = self.detect(rgb) if faces is None else FaceList(faces)
                found.append(detected.carrying(detected[: self.max_faces]))
            except Exception as exc:  # noqa: BLE001 - reported per image to its caller
                found.append(exc)
        jobs = [
            (rgb, face, index)
            for index, ((rgb, _), image_faces) in enumerate(zip(images, found, strict=True))
            if not isinstance(image_faces, Exception)
            for face in image_faces
        ]
        analyses: list[list[FaceAnalysis]] = [[] for _ in images]
        for start in range(0, len(jobs), BATCH):
            batch = jobs[start : start + BATCH]
            embeddings = self.embedder.embed(np.stack([aligned_crop(rgb, face) for rgb, face, _ in batch]))
            readings: list[EmotionReading | None] = (
                list(self.emotion.predict(np.stack([emotion_crop(rgb, face) for rgb, face, _ in batch])))
                if self.emotion is not None
                else [None] * len(batch)
            )
            for (_, face, index), embedding, reading in zip(batch, embeddings, readings, strict=True):
                analyses[index].append(FaceAnalysis(face, embedding, reading))
        return [
            faces if isinstance(faces, Exception) else faces.carrying(done)
            for faces, done in zip(found, analyses, strict=True)
        ]


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
