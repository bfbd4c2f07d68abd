"""Faces: MTCNN detection, upright crops and FaceNet embeddings."""

from core.faces.alignment import aligned_crop, emotion_crop
from core.faces.detection import DetectedFace, FaceDetector
from core.faces.embedding import EMBEDDING_DIM, FaceEmbedder

__all__ = [
    "EMBEDDING_DIM",
    "DetectedFace",
    "FaceDetector",
    "FaceEmbedder",
    "aligned_crop",
    "emotion_crop",
]
