"""Accuracy of the emotion model on a labelled split: overall, per class, confusion, valence groups.

FER2013 PublicTest is scored three ways (:func:`public_test_scores`): without its 240 faces that are
pixel-identical to training faces (the headline, as the quality issue defines it), without the
near-duplicates too (faces that are the same photograph as a training face, re-cropped or
re-encoded: the strictest figure), and in full (the figure papers quote).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from core.vision.emotion.classifier import EmotionClassifier
from core.vision.emotion.labels import EMOTIONS, VALENCE_GROUPS
from training.emotion_dataset import (
    NEAR_DUPLICATE_CORRELATION,
    FaceSet,
    duplicates_of,
    load_split,
    near_duplicates_of,
)


@dataclass(frozen=True)
class Evaluation:
    """Scores of predictions against labels (both (N,) class indices)."""

    accuracy: float
    per_class_recall: dict[str, float]
    confusion: np.ndarray
    """(7, 7) counts; row = true class, column = predicted class."""
    happy_sad_rest_accuracy: float
    count: int

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form (for the model card and ``--json``)."""
        return {
            "count": self.count,
            "accuracy": round(self.accuracy, 4),
            "happy_sad_rest_accuracy": round(self.happy_sad_rest_accuracy, 4),
            "per_class_recall": {k: round(v, 4) for k, v in self.per_class_recall.items()},
            "confusion": self.confusion.tolist(),
        }

    def table(self) -> str:
        """The confusion matrix as aligned text, with per-class recall."""
        width = max(len(e) for e in EMOTIONS) + 1
        head = "true\\pred".ljust(width) + "".join(e[:7].rjust(8) for e in EMOTIONS) + "  recall"
        lines = [head]
        for i, name in enumerate(EMOTIONS):
            row = "".join(str(int(c)).rjust(8) for c in self.confusion[i])
            lines.append(name.ljust(width) + row + f"  {self.per_class_recall[name]:.3f}")
        lines.append(
            f"accuracy {self.accuracy:.4f} on {self.count} faces; "
            f"happy/sad/rest {self.happy_sad_rest_accuracy:.4f}"
        )
        return "\n".join(lines)


def evaluate(predicted: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Compare predicted class indices with true ones (both shape (N,))."""
    predicted = np.asarray(predicted, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if predicted.shape != labels.shape or predicted.ndim != 1:
        raise ValueError("predicted and labels must be 1-d arrays of the same length")
    n = len(EMOTIONS)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    support = confusion.sum(axis=1)
    recall = {EMOTIONS[i]: float(confusion[i, i] / support[i]) if support[i] else 0.0 for i in range(n)}
    group = np.array([VALENCE_GROUPS[e] for e in EMOTIONS])
    coarse = float(np.mean(group[predicted] == group[labels])) if len(labels) else 0.0
    accuracy = float(np.mean(predicted == labels)) if len(labels) else 0.0
    return Evaluation(accuracy, recall, confusion, coarse, len(labels))


def tta_scores(probs: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, object]:
    """A card's ``holdout`` section from each TTA mode's probabilities (N, 7): the count, and the
    accuracy per mode (the full evaluation for ``flip``, the mode a single network ships with)."""
    scores: dict[str, object] = {"count": len(labels)}
    for tta, p in probs.items():
        result = evaluate(p.argmax(1), labels)
        scores[tta] = result.as_dict() if tta == "flip" else round(result.accuracy, 4)
    return scores


def fit_of(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, log loss in nats per face) of probabilities (N, 7) against labels (N,)."""
    accuracy = float(np.mean(probs.argmax(1) == labels))
    truth = probs[np.arange(len(labels)), labels]
    return accuracy, float(-np.mean(np.log(np.clip(truth, 1e-12, None))))


def predictions_of(classifier: EmotionClassifier, faces: FaceSet, batch_size: int = 256) -> np.ndarray:
    """Probabilities (N, 7) of a loaded model on a split, as the application computes them."""
    if len(faces) == 0:
        return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
    return np.concatenate(
        [classifier.probabilities(faces.images[s : s + batch_size]) for s in range(0, len(faces), batch_size)]
    )


def evaluation_of(model: Path | EmotionClassifier, faces: FaceSet | Path) -> Evaluation:
    """Accuracy of a model (path or loaded) on a split (loaded, or a folder of ``<emotion>/`` images)."""
    classifier = model if isinstance(model, EmotionClassifier) else EmotionClassifier(model)
    faces = faces if isinstance(faces, FaceSet) else load_split(faces)
    return evaluate(predictions_of(classifier, faces).argmax(1), faces.labels)


@dataclass(frozen=True)
class PublicTestScores:
    """A model on FER2013 PublicTest: without the faces pixel-identical to train faces (the headline),
    without the near-duplicates of train faces too, and in full (to compare with published figures)."""

    deduplicated: Evaluation
    full: Evaluation
    duplicates: int
    near_deduplicated: Evaluation
    near_duplicates: int
    """Faces removed for near_deduplicated: the pixel-identical ones and those correlating >= 0.90."""

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form, as the model card stores it."""
        return {
            "split": "FER2013 PublicTest (val/)",
            "deduplicated": {
                "removed": self.duplicates,
                "note": "less the faces pixel-identical to a FER2013 train face",
                **self.deduplicated.as_dict(),
            },
            "near_deduplicated": {
                "removed": self.near_duplicates,
                "note": (
                    "less the faces pixel-identical to a FER2013 train face or correlating with one at "
                    f">= {NEAR_DUPLICATE_CORRELATION} (the same photograph re-cropped or re-encoded)"
                ),
                **self.near_deduplicated.as_dict(),
            },
            "full": self.full.as_dict(),
        }


@cache
def public_test_split(data: Path) -> tuple[FaceSet, np.ndarray, np.ndarray]:
    """PublicTest (``data/val``) and two masks (N,): pixel-identical to a ``data/train`` face, and
    that or a near-duplicate of one. Cached: scoring several models reads the splits once."""
    public = load_split(data / "val")
    train = load_split(data / "train").images
    duplicate = duplicates_of(public.images, train)
    return public, duplicate, duplicate | near_duplicates_of(public.images, train)


def public_test_scores(model: Path | EmotionClassifier, data: Path) -> PublicTestScores:
    """Score a model on ``data/val`` (FER2013 PublicTest), deduplicated against ``data/train`` and in full."""
    classifier = model if isinstance(model, EmotionClassifier) else EmotionClassifier(model)
    public, duplicate, near = public_test_split(Path(data).resolve())
    predicted = predictions_of(classifier, public).argmax(1)
    return PublicTestScores(
        evaluate(predicted[~duplicate], public.labels[~duplicate]),
        evaluate(predicted, public.labels),
        int(duplicate.sum()),
        evaluate(predicted[~near], public.labels[~near]),
        int(near.sum()),
    )
