"""How FER2013 frames a face, measured against MTCNN's box: the emotion crop's scale.

The emotion CNN learned faces as FER2013 frames them (48x48, from its own face detector); the bot
crops faces from MTCNN boxes (:func:`core.vision.faces.emotion_crop`). This measures, on faces of the
*fit* part of train (never the holdout), the FER frame's side as a multiple of the MTCNN box's longer
side, and the frame centre's offset from the box centre (in box sides; x right, y down), each face
enlarged 4x and set on a grey canvas so that MTCNN has room around it. The shipped
:data:`core.vision.faces.alignment.EMOTION_FRAME` is the median side, rounded to 0.05.

``--check`` then takes the holdout's faces the bot's way (detect, crop upright at each frame scale,
classify with the shipped model) beside their own FER frames. Their canvas repeats the face's edge
pixels (a grey border would punish wider crops for the canvas, not for their framing), which still
puts repeated pixels where a real photo has hair and background: the check shows whether a scale
loses accuracy, the real photos (``training/real_faces_emotion.csv``) are the out-of-sample test.

``--public-test`` scores deduplicated PublicTest the same way at the shipped frame and at the earlier
1.1, once, after the frame was chosen (nothing is chosen on it).

Usage: ``python -m training.emotion_framing --check --public-test`` (the published file,
``benchmarks/results/emotion_framing.json``, which the tests read; about 4 min on 2 cores; without
the flags only the fit part is measured, into ``--out``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.vision.emotion.classifier import EmotionClassifier
from core.vision.faces import FaceDetector
from core.vision.faces.alignment import EMOTION_FRAME, emotion_crop, eye_angle
from core.vision.faces.detection import DetectedFace
from training.emotion_dataset import FaceSet, holdout_split, load_split, subset
from training.emotion_evaluation import predictions_of, public_test_split

ENLARGE = 4
"""Each 48x48 face is enlarged this many times (MTCNN's smallest face is 20 px)..."""
BORDER = 64
"""... and set this many pixels inside the canvas edge."""
SEED = 1
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "emotion_framing.json"
CHECK_SCALES = (0.85, 0.95, 1.0, 1.1, 1.2)
EARLIER_FRAME = 1.1
"""The emotion crop's scale before it was measured (the box grown 10%)."""


@dataclass(frozen=True)
class Framing:
    """Where one FER face's frame sits against the MTCNN box found on it (box at canvas scale)."""

    index: int
    face: DetectedFace
    side: float
    """Frame side / the box's longer side."""
    dx: float
    """(frame centre - box centre) / the box's longer side, x."""
    dy: float
    """The same, y (down)."""


def on_canvas(image: np.ndarray, border: str = "constant") -> np.ndarray:
    """A (48, 48) grey face enlarged :data:`ENLARGE` x inside a border of :data:`BORDER` px:
    RGB (H, W, 3) uint8; ``border`` ``constant`` (grey 128) or ``edge`` (its edge pixels repeated)."""
    big = cv2.resize(
        image, (image.shape[1] * ENLARGE, image.shape[0] * ENLARGE), interpolation=cv2.INTER_CUBIC
    )
    pad = np.pad(big, BORDER, mode="edge") if border == "edge" else np.pad(big, BORDER, constant_values=128)
    return np.repeat(pad[:, :, None], 3, axis=2)


def measure(faces: FaceSet, indices: Iterable[int], detector: FaceDetector) -> list[Framing]:
    """The framing of each face of ``faces`` at ``indices`` where MTCNN finds one (its largest)."""
    found = []
    for index in indices:
        image = faces.images[index]
        detected = detector.detect(on_canvas(image))
        if not len(detected):
            continue
        face = max(detected, key=lambda f: f.side)
        longest = max(face.width, face.height)
        side = ENLARGE * image.shape[0]  # the frame on the canvas (FER faces are square)
        centre = BORDER + side / 2
        x1, y1, x2, y2 = face.box
        found.append(
            Framing(
                int(index),
                face,
                side / longest,
                (centre - (x1 + x2) / 2) / longest,
                (centre - (y1 + y2) / 2) / longest,
            )
        )
    return found


def quantiles(values: Iterable[float]) -> dict[str, float]:
    """10th, 25th, 50th, 75th and 90th percentiles, rounded to 3 places."""
    points = np.percentile(np.fromiter(values, dtype=np.float64), [10, 25, 50, 75, 90])
    return {f"p{q}": round(float(v), 3) for q, v in zip((10, 25, 50, 75, 90), points, strict=True)}


def summary(framings: list[Framing], tried: int) -> dict[str, Any]:
    """The distribution of each measure over ``framings`` (of ``tried`` faces)."""
    return {
        "faces": tried,
        "detected": len(framings),
        "side_over_longer_box_side": quantiles(f.side for f in framings),
        "centre_offset_x": quantiles(f.dx for f in framings),
        "centre_offset_y": quantiles(f.dy for f in framings),
        "box_width_over_height": quantiles(f.face.width / f.face.height for f in framings),
        "eye_angle_degrees": quantiles(eye_angle(f.face) for f in framings),
    }


def crops_at(faces: FaceSet, framings: list[Framing], scale: float) -> np.ndarray:
    """Each measured face cropped the bot's way at frame ``scale`` from its edge-bordered canvas:
    (N, 48, 48) uint8."""
    return np.stack([emotion_crop(on_canvas(faces.images[f.index], "edge"), f.face, scale) for f in framings])


def check(
    faces: FaceSet, framings: list[Framing], classifier: EmotionClassifier, scales: Iterable[float]
) -> dict[str, float]:
    """Accuracy of ``classifier`` on the measured faces in their own FER frames and cropped at each
    of ``scales``."""
    indices = np.array([f.index for f in framings])
    labels = faces.labels[indices]

    def accuracy(images: np.ndarray) -> float:
        probabilities = predictions_of(classifier, FaceSet(images, labels))
        return round(float((probabilities.argmax(1) == labels).mean()), 4)

    scores = {"fer_frames": accuracy(faces.images[indices])}
    for scale in scales:
        scores[f"{scale:g}"] = accuracy(crops_at(faces, framings, scale))
    return scores


def described(classifier: EmotionClassifier) -> str:
    """The model a check read with, as its figures name it."""
    return f"{classifier.weights.name} in {classifier.precision} (precision auto on this CPU)"


def public_test_check(
    data: Path, detector: FaceDetector, classifier: EmotionClassifier, scales: Iterable[float]
) -> dict[str, Any]:
    """:func:`check` on FER2013 PublicTest (``data/val``) less the faces that repeat a training face."""
    public, duplicate, _ = public_test_split(data.resolve())
    distinct = subset(public, np.flatnonzero(~duplicate))
    framings = measure(distinct, range(len(distinct)), detector)
    return {
        "faces": len(distinct),
        "removed_as_training_duplicates": int(duplicate.sum()),
        "detected": len(framings),
        "accuracy_by_frame_scale": check(distinct, framings, classifier, scales),
        "model": described(classifier),
        "note": "scored once, after the frame was chosen on the fit part",
    }


def main(argv: list[str] | None = None) -> int:
    """Measure the framing on the fit part (and, with ``--check``, check scales on the holdout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    parser.add_argument("--faces", type=int, default=3000, help="faces of the fit part measured")
    parser.add_argument("--check", action="store_true", help="score the holdout at several scales")
    parser.add_argument("--public-test", action="store_true", help="score deduplicated PublicTest, once")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    train = load_split(args.data / "train")
    split = holdout_split(train)
    drawn = np.sort(
        np.random.default_rng(SEED).choice(split.fit, min(args.faces, len(split.fit)), replace=False)
    )
    detector = FaceDetector()
    fit = summary(measure(train, drawn, detector), len(drawn))
    result: dict[str, Any] = {
        "protocol": __doc__.split("\n\n")[1].replace("\n", " "),
        "fit": {"drawn_with_seed": SEED, **fit},
        "shipped_frame": EMOTION_FRAME,
    }
    print(json.dumps(fit, indent=1))
    if args.check or args.public_test:  # only these read faces with the model: load it only then
        classifier = EmotionClassifier()
        if args.check:
            holdout = subset(train, split.holdout)
            framings = measure(holdout, range(len(holdout)), detector)
            result["holdout_check"] = {
                "faces": len(holdout),
                "detected": len(framings),
                "accuracy_by_frame_scale": check(holdout, framings, classifier, CHECK_SCALES),
                "model": described(classifier),
            }
            print(json.dumps(result["holdout_check"], indent=1))
        if args.public_test:
            result["public_test"] = public_test_check(
                args.data, detector, classifier, (EMOTION_FRAME, EARLIER_FRAME)
            )
            print(json.dumps(result["public_test"], indent=1))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
