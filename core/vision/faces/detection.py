"""Face detection with facenet-pytorch's MTCNN on a downscaled copy of the photo.

MTCNN's cost grows with the number of 12x12 windows its first stage scans, that is with
``(image side / smallest face)^2``. A phone photo at full resolution costs ~0.3-0.9 s on 2 cores;
detecting on a copy whose longer side is at most ``max_side`` pixels, with the smallest face set
relative to the photo, costs ~30-80 ms and finds the same faces. Boxes and landmarks are mapped back
to full-resolution coordinates, so crops keep every pixel of the original.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN

from core.vision.faces import mtcnn

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class DetectedFace:
    """One face in full-resolution pixel coordinates.

    Attributes:
        box: ``(x1, y1, x2, y2)`` floats, pixels; may extend past the image edge.
        score: MTCNN's face probability, 0..1.
        landmarks: (5, 2) float array: left eye, right eye, nose, left and right mouth corner (x, y).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    @property
    def width(self) -> float:
        """Box width, pixels."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Box height, pixels."""
        return self.box[3] - self.box[1]

    @property
    def side(self) -> float:
        """Geometric mean of width and height, pixels: the face's size."""
        return float(np.sqrt(max(self.width, 0.0) * max(self.height, 0.0)))

    def rounded_box(self) -> list[int]:
        """The box as four ints, for JSON output."""
        return [round(v) for v in self.box]


class FaceList(list[T]):
    """The faces of one photo, largest first (a plain list of them), and how many the photo has.

    Only the largest faces of a photo are analysed; this list says how many were left out, so the
    reply can say so.

    Attributes:
        found: faces detected in the photo (at least ``len(self)``).
        more: the detector stopped early (a bound on its work), so the photo may have more than ``found``.
    """

    def __init__(self, items: Iterable[T] = (), found: int | None = None, more: bool = False) -> None:
        super().__init__(items)
        self.found = len(self) if found is None else max(found, len(self))
        self.more = more

    @property
    def left_out(self) -> int:
        """Faces found but not in this list."""
        return self.found - len(self)

    def carrying(self, items: Iterable[U]) -> FaceList[U]:
        """``items`` (one per face of this list) with this list's counts."""
        return FaceList(items, self.found, self.more)


class FaceDetector:
    """MTCNN with downscaling.

    Args:
        max_side: the photo is shrunk (never enlarged) so its longer side is at most this many pixels
            before detection (default 640). Smaller is faster and misses smaller faces.
        min_face: smallest face searched for, in pixels of the shrunk copy (default 20, MTCNN's own
            default); with ``max_side=640`` that is ~3% of the photo's longer side.
        thresholds: MTCNN's P-, R- and O-Net thresholds (default ``(0.6, 0.7, 0.7)``).
        min_score: faces below this final probability are dropped (default 0.9). facenet-pytorch's
            defaults keep everything above 0.7; on real photos the 0.7-0.9 band is mostly texture.
        device: torch device (default CPU).
        max_candidates: most candidate boxes sent to MTCNN's second and third networks (default
            :data:`core.vision.faces.mtcnn.MAX_CANDIDATES`, the largest first): bounds the time and
            memory a photo of hundreds of faces costs.

    Differs from ``MTCNN(keep_all=True)`` on the full photo only in ignoring faces smaller than
    ``min_face / scale`` pixels and below ``min_score``, and in the bound on candidates (which
    ordinary photos stay under); ``benchmarks/face_pipeline.py`` checks that both find the same faces
    on the shared photos. A photo too thin for MTCNN's smallest window has no faces (MTCNN raises).
    """

    def __init__(
        self,
        max_side: int = 640,
        min_face: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        min_score: float = 0.9,
        device: str = "cpu",
        max_candidates: tuple[int, int] = mtcnn.MAX_CANDIDATES,
    ) -> None:
        self.max_side = max_side
        self.min_score = min_score
        self.max_candidates = max_candidates
        self._mtcnn = MTCNN(keep_all=True, min_face_size=min_face, thresholds=list(thresholds), device=device)
        # Same results, 1.1-1.8x faster on CPU: NCHW max-pooling over R-/O-Net's many candidate
        # boxes is pathologically slow, channels-last is not.
        for net in (self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet):
            net.to(memory_format=torch.channels_last)
        self._lock = threading.Lock()  # MTCNN modules are not documented as thread-safe

    def scale_for(self, height: int, width: int) -> float:
        """Factor (<= 1) applied to the photo before detection."""
        return min(1.0, self.max_side / max(height, width))

    def detect(self, rgb: np.ndarray) -> FaceList[DetectedFace]:
        """Faces in an RGB uint8 image (H, W, 3), largest first. Empty list when none.

        ``more`` is set on the list when the bound on candidates was reached."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {rgb.shape}")
        height, width = rgb.shape[:2]
        scale = self.scale_for(height, width)
        small = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        with self._lock, torch.inference_mode():
            found = mtcnn.detect(self._mtcnn, np.ascontiguousarray(small), self.max_candidates)
        boxes = np.asarray(found.boxes[:, :4], dtype=np.float64) / scale
        points = np.asarray(found.points, dtype=np.float64) / scale
        probs = np.asarray(found.boxes[:, 4], dtype=np.float64)
        faces = [
            DetectedFace(tuple(float(v) for v in box), float(p), pts)  # type: ignore[arg-type]
            for box, p, pts in zip(boxes, probs, points, strict=True)
            if p >= self.min_score
        ]
        faces.sort(key=lambda f: f.side, reverse=True)
        return FaceList(faces, more=found.capped)
