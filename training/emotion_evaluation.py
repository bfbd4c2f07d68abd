"""Accuracy of the emotion model on a labelled split: overall, per class, confusion, valence groups."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.vision.emotion.labels import EMOTIONS, VALENCE_GROUPS


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
