"""Crop faces upright: rotate about the box centre so the eyes are level, then crop and resize.

FaceNet (160x160 RGB) was trained on MTCNN boxes grown by a margin and resized to a square without
keeping the aspect ratio; its crops here do the same (``stretch=True``), which separates strangers
from enrolled users far better than square crops (see ``models/face_calibration.json``). The
emotion CNN was trained on FER2013's square 48x48 grey faces, so its crop keeps the aspect ratio.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from core.vision.faces.detection import DetectedFace

FACENET_SIZE = 160
"""FaceNet input side, pixels."""
FACENET_MARGIN = 0.2
"""Extra context for FaceNet: each side of the MTCNN box grows by this fraction of its length."""
EMOTION_SIZE = 48
"""Emotion CNN input side, pixels."""
EMOTION_FRAME = 0.95
"""Side of the (square) emotion crop as a multiple of the MTCNN box's longer side (its height): how
FER2013 frames its faces, the median over 2,673 faces of the fit part of train, centred on the box
(the median offset is under 0.01 of the side); ``training/emotion_framing.py`` measures it."""


def eye_angle(face: DetectedFace) -> float:
    """Angle of the line from the left to the right eye, degrees (0 = level, positive = clockwise)."""
    (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def crop_matrix(
    face: DetectedFace, size: int, margin: float, stretch: bool, rotate: bool = True
) -> np.ndarray:
    """2x3 affine matrix taking image pixels to a ``size`` x ``size`` upright crop of the face.

    The crop covers the box grown by ``margin`` (a fraction of its sides; negative shrinks it) about
    its centre; with ``stretch`` its width and height are scaled separately to fill the square,
    otherwise the longer side sets one scale.
    """
    x1, y1, x2, y2 = face.box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    width, height = (x2 - x1) * (1 + margin), (y2 - y1) * (1 + margin)
    if not stretch:
        width = height = max(width, height)
    rotation = np.vstack(
        [cv2.getRotationMatrix2D((cx, cy), eye_angle(face) if rotate else 0.0, 1.0), [0, 0, 1]]
    )
    to_crop = np.array(
        [[size / width, 0, size / 2 - cx * size / width], [0, size / height, size / 2 - cy * size / height]]
    )
    return to_crop @ rotation


def _warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply ``matrix`` after cutting out (and, for big faces, area-shrinking) only the region needed."""
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    mapped = corners @ inverse.T
    h, w = rgb.shape[:2]
    x0, y0 = (int(max(0, math.floor(v) - 1)) for v in mapped.min(axis=0))
    x1, y1 = (int(min(lim, math.ceil(v) + 2)) for v, lim in zip(mapped.max(axis=0), (w, h), strict=True))
    if x1 <= x0 or y1 <= y0:  # crop entirely outside the photo
        x0, y0, x1, y1 = 0, 0, w, h
    region = rgb[y0:y1, x0:x1]
    matrix = matrix.copy()
    matrix[:, 2] += matrix[:, :2] @ np.array([x0, y0])
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # output pixels per input pixel
    if scale < 0.5:  # warpAffine has no area filter: shrink first to avoid aliasing
        factor = 2 * scale
        region = cv2.resize(region, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        matrix[:, :2] /= factor
    return cv2.warpAffine(
        region, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def aligned_crop(rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
    """FaceNet input: upright RGB crop (160, 160, 3) uint8; pixels outside the photo repeat its edge."""
    return _warp(rgb, crop_matrix(face, FACENET_SIZE, FACENET_MARGIN, stretch=True), FACENET_SIZE)


def emotion_crop(rgb: np.ndarray, face: DetectedFace, frame: float = EMOTION_FRAME) -> np.ndarray:
    """Emotion CNN input: upright grey crop (48, 48) uint8, square, ``frame`` x the box's longer side
    (as FER2013 frames its faces)."""
    matrix = crop_matrix(face, EMOTION_SIZE, frame - 1.0, stretch=False)
    return cv2.cvtColor(_warp(rgb, matrix, EMOTION_SIZE), cv2.COLOR_RGB2GRAY)
