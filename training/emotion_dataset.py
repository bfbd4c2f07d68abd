"""Read FER2013 in the Kaggle image-folder layout (``<split>/<emotion>/*.jpg``) into arrays.

Also the evaluation protocol's data utilities: :func:`without_duplicates_of` (PublicTest less the
faces that are pixel-identical to training faces), :func:`near_duplicates_of` (faces that are the
same photograph as a training face, re-cropped or re-encoded) and :func:`holdout_split` (the fixed
part of train that every modelling choice is made on, so PublicTest is only ever reported).
"""

from __future__ import annotations

import hashlib
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


def face_hashes(images: np.ndarray) -> np.ndarray:
    """A digest of each face's pixels (N,) as strings: equal digests mean pixel-identical faces."""
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    return np.array([hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in flat])


def duplicates_of(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Boolean mask (N,): which of ``images`` are pixel-identical to some face of ``reference``."""
    return np.isin(face_hashes(images), face_hashes(reference))


NEAR_DUPLICATE_CORRELATION = 0.90
"""Pixel correlation from which two faces count as one photograph. Looked at by eye on random
PublicTest-train pairs (2026-12-01): every pair from 0.90 up was the same photo shifted, re-cropped or
re-encoded; between 0.85 and 0.90 different photos of similar faces begin to appear."""


def near_duplicates_of(
    images: np.ndarray, reference: np.ndarray, threshold: float = NEAR_DUPLICATE_CORRELATION
) -> np.ndarray:
    """Boolean mask (N,): which of ``images`` (N, 48, 48) correlate with some face of ``reference``
    (M, 48, 48) at ``threshold`` or more (Pearson correlation of the pixel vectors; 1 for a
    pixel-identical or brightness/contrast-shifted copy)."""

    def unit(faces: np.ndarray) -> np.ndarray:
        x = faces.reshape(len(faces), -1).astype(np.float32)
        x -= x.mean(axis=1, keepdims=True)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)

    ref = unit(reference)
    query = unit(images)
    best = [(query[i : i + 512] @ ref.T).max(axis=1) for i in range(0, len(query), 512)]
    return np.concatenate(best) >= threshold if best else np.zeros(0, dtype=bool)


def without_duplicates_of(faces: FaceSet, reference: FaceSet) -> FaceSet:
    """``faces`` less every face pixel-identical to one of ``reference`` (e.g. PublicTest less train)."""
    keep = ~duplicates_of(faces.images, reference.images)
    return FaceSet(faces.images[keep], faces.labels[keep])


HOLDOUT_FRACTION = 0.1
"""Share of FER2013 train held out for every modelling choice (width, epochs, members, TTA)."""
HOLDOUT_SEED = 2026
"""Fixes which training faces are held out; never change it, or earlier choices lose their meaning."""


@dataclass(frozen=True)
class HoldoutSplit:
    """Indices into a training split: ``fit`` trains, ``holdout`` scores choices (disjoint, sorted).

    ``moved`` counts the drawn holdout faces that were pixel-identical to a face of the fit part and
    so went back to it; ``near_moved`` those that were the same photograph as a fit face
    (:func:`near_duplicates_of`) and went back too. The holdout shares no photograph with what the
    networks train on.
    """

    fit: np.ndarray
    holdout: np.ndarray
    moved: int
    near_moved: int = 0


def holdout_split(
    faces: FaceSet, fraction: float = HOLDOUT_FRACTION, seed: int = HOLDOUT_SEED
) -> HoldoutSplit:
    """A fixed stratified ``fraction`` of each class, deduplicated against the rest.

    Each class's faces are shuffled with ``seed`` and the first ``round(fraction * count)`` are
    drawn; a drawn face whose pixels equal those of an undrawn face (FER2013 train holds repeats)
    returns to the fit part, and so does one that correlates with a fit face at
    :data:`NEAR_DUPLICATE_CORRELATION` or more (repeated until none is left: a face that returned
    can pull a near copy of itself after it). The holdout is a subset of the one drawn before
    near-duplicates were returned (2026-12-01), so networks trained on that fit part stay clean on
    it. ``fraction`` 0 holds nothing out.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    drawn = np.zeros(len(faces), dtype=bool)
    for label in range(len(EMOTIONS)):
        members = np.flatnonzero(faces.labels == label)
        drawn[rng.permutation(members)[: round(fraction * len(members))]] = True
    hashes = face_hashes(faces.images)
    shared = drawn & np.isin(hashes, hashes[~drawn])
    holdout = drawn & ~shared
    near_moved = 0
    reference = faces.images[~holdout]
    while holdout.any() and len(reference):
        kept = np.flatnonzero(holdout)
        returned = kept[near_duplicates_of(faces.images[kept], reference)]
        if not returned.size:
            break
        holdout[returned] = False
        near_moved += int(returned.size)
        reference = faces.images[returned]  # the rest of the fit part was compared already
    return HoldoutSplit(np.flatnonzero(~holdout), np.flatnonzero(holdout), int(shared.sum()), near_moved)


def subset(faces: FaceSet, index: np.ndarray) -> FaceSet:
    """The faces at ``index``."""
    return FaceSet(faces.images[index], faces.labels[index])
