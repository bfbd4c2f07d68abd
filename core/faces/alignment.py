"""Crop faces upright: rotate about the box centre so the eyes are level, then crop and resize.

FaceNet (160x160 RGB) was trained on MTCNN box crops with a margin; the emotion CNN on FER2013's
48x48 grey faces, which are framed tighter. Both crops here share the box centre and differ in margin.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from core.faces.detection import DetectedFace

FACENET_SIZE = 160
"""FaceNet input side, pixels."""
FACENET_MARGIN = 0.1
"""Extra context around the MTCNN box for FaceNet, as a fraction of the box side."""
EMOTION_SIZE = 48
"""Emotion CNN input side, pixels."""
EMOTION_MARGIN = 0.1
"""Context around the box for the emotion crop (FER2013 faces fill most of the frame)."""


def eye_angle(face: DetectedFace) -> float:
    """Angle of the line from the left to the right eye, degrees (0 = level, positive = clockwise)."""
    (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def crop_matrix(face: DetectedFace, size: int, margin: float, rotate: bool = True) -> np.ndarray:
    """2x3 affine matrix taking image pixels to a ``size`` x ``size`` upright crop of the face."""
    x1, y1, x2, y2 = face.box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * (1 + margin)
    matrix = cv2.getRotationMatrix2D((cx, cy), eye_angle(face) if rotate else 0.0, size / side)
    matrix[:, 2] += np.array([size / 2 - cx, size / 2 - cy])
    return matrix


def aligned_crop(
    rgb: np.ndarray, face: DetectedFace, size: int = FACENET_SIZE, margin: float = FACENET_MARGIN
) -> np.ndarray:
    """Upright RGB crop (size, size, 3) uint8 of one face; pixels outside the photo repeat its edge."""
    matrix = crop_matrix(face, size, margin)
    side = max(face.width, face.height) * (1 + margin)
    interpolation = cv2.INTER_AREA if side > 2 * size else cv2.INTER_LINEAR
    if interpolation == cv2.INTER_AREA:
        # warpAffine has no area filter: shrink first so the warp samples a pre-filtered image.
        factor = 2 * size / side
        small = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        matrix = matrix.copy()
        matrix[:, :2] /= factor
        rgb = small
    return cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def emotion_crop(rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
    """Upright grey crop (48, 48) uint8, framed like FER2013's faces."""
    crop = aligned_crop(rgb, face, EMOTION_SIZE, EMOTION_MARGIN)
    return cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
