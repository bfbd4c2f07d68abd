"""Faces: MTCNN detection, upright crops and FaceNet embeddings."""

from core.vision.faces.alignment import aligned_crop, emotion_crop
from core.vision.faces.detection import DetectedFace, FaceDetector, FaceList
from core.vision.faces.embedding import EMBEDDING_DIM, FaceEmbedder

__all__ = [
    "EMBEDDING_DIM",
    "DetectedFace",
    "FaceDetector",
    "FaceEmbedder",
    "FaceList",
    "aligned_crop",
    "emotion_crop",
]
