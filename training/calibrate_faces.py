"""Calibrate the cosine threshold that accepts a face match, and write ``models/face_calibration.json``.

Protocol (open set, as the bot meets it): in each trial, half of the people of a face set are
enrolled with 3 random photos each; every other photo is a probe, scored against each enrolled user
by :class:`core.vision.gallery.Gallery` (cosine to the user's centroid). A probe of an enrolled person
counts as recognised when its best-matching user is that person and the similarity reaches the
threshold; a probe of anyone else counts as rejected when no user reaches it. Trials repeat with
other people and photos (fixed seed). The threshold is chosen on ONE face set (``--calibrate``,
default lfw10: ten people, where strangers are hardest to tell apart) as the lowest at which
strangers are rejected at least ``--reject`` of the time: naming a stranger as someone else is
worse than asking a known user for another selfie. It is then reported on the other face sets,
which had no part in the choice (out of sample); the figures on the calibration set are in-sample.
As a cross-check, the threshold each other set would choose is reported on the calibration set.

Usage: ``python -m training.calibrate_faces [--data ../shared/data/faces] [--weights casia-webface]``
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.config import load_settings
from core.vision.faces import FaceDetector, FaceEmbedder, aligned_crop
from core.vision.faces.detection import DetectedFace
from core.vision.gallery import Gallery
from core.vision.imaging import read_image_file

THRESHOLDS = np.round(np.arange(0.20, 0.701, 0.01), 2)
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "models" / "face_calibration.json"


@dataclass(frozen=True)
class FaceSet:
    """Embeddings (N, 512) and person names (N,) of one folder of ``<person>/<photo>`` files."""

    name: str
    embeddings: np.ndarray
    people: np.ndarray


def central_face(rgb: np.ndarray, faces: list[DetectedFace]) -> DetectedFace:
    """The face nearest the image centre (face-set photos are centred on the named person)."""
    h, w = rgb.shape[:2]
    return min(
        faces,
        key=lambda f: ((f.box[0] + f.box[2]) / 2 - w / 2) ** 2 + ((f.box[1] + f.box[3]) / 2 - h / 2) ** 2,
    )


def embed_folder(folder: Path, detector: FaceDetector, embedder: FaceEmbedder) -> FaceSet:
    """Embed the central face of every photo; photos without a face are skipped."""
    embeddings, people = [], []
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for photo in sorted(person.iterdir()):
            rgb = read_image_file(photo)
            faces = detector.detect(rgb)
            if faces:
                embeddings.append(embedder.embed(aligned_crop(rgb, central_face(rgb, faces))[None])[0])
                people.append(person.name)
    return FaceSet(folder.name, np.stack(embeddings), np.array(people))


def open_set_rates(
    faces: FaceSet, thresholds: np.ndarray, trials: int, samples: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Mean recognition rate and stranger-rejection rate, each shaped like ``thresholds``."""
    rng = np.random.default_rng(seed)
    names = np.unique(faces.people)
    enrolled_count = max(1, len(names) // 2)
    recognised = np.zeros(len(thresholds))
    rejected = np.zeros(len(thresholds))
    for _ in range(trials):
        enrolled = rng.choice(names, enrolled_count, replace=False)
        gallery = {p: rng.choice(np.flatnonzero(faces.people == p), samples, replace=False) for p in enrolled}
        used = np.concatenate(list(gallery.values()))
        probes = np.setdiff1d(np.arange(len(faces.people)), used)
        owners = np.concatenate([np.full(samples, j) for j in range(len(enrolled))])
        scope = Gallery(owners, faces.embeddings[used], {}, threshold=1.0, svm_min_samples=10**9)
        best = scope.user_similarities(faces.embeddings[probes])  # columns follow sorted owners 0..n-1
        picked = enrolled[best.argmax(axis=1)]
        top = best.max(axis=1)
        truth = faces.people[probes]
        known = np.isin(truth, enrolled)
        for i, t in enumerate(thresholds):
            accepted = top >= t
            recognised[i] += np.mean((picked == truth)[known] & accepted[known])
            rejected[i] += np.mean(~accepted[~known])
    return recognised / trials, rejected / trials


def leave_one_out_rank1(faces: FaceSet) -> float:
    """Fraction of photos whose most similar other photo shows the same person."""
    sims = faces.embeddings @ faces.embeddings.T
    np.fill_diagonal(sims, -np.inf)
    return float(np.mean(faces.people[sims.argmax(axis=1)] == faces.people))


def lowest_threshold(rejected: np.ndarray, target: float) -> float:
    """The lowest of :data:`THRESHOLDS` whose stranger rejection reaches ``target`` (else the highest)."""
    ok = rejected >= target
    return float(THRESHOLDS[np.argmax(ok)]) if ok.any() else float(THRESHOLDS[-1])


def _rates_at(info: dict[str, Any], threshold: float) -> dict[str, float]:
    row: dict[str, float] = info["by_threshold"][f"{threshold:.2f}"]
    return row


def main(argv: list[str] | None = None) -> int:
    """Run the calibration and write the JSON report; prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/faces"))
    parser.add_argument("--weights", default="casia-webface")
    parser.add_argument("--calibrate", default="lfw10", help="the face set the threshold is chosen on")
    parser.add_argument("--reject", type=float, default=0.97, help="stranger rejection to reach")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    settings = load_settings(face_weights=args.weights)
    detector = FaceDetector()
    embedder = FaceEmbedder(args.weights, settings.cache_dir)
    sets = [
        embed_folder(folder, detector, embedder) for folder in sorted(args.data.iterdir()) if folder.is_dir()
    ]
    if args.calibrate not in {s.name for s in sets}:
        parser.error(f"no face set {args.calibrate!r} under {args.data}")
    tables: dict[str, dict[str, Any]] = {}
    rejection: dict[str, np.ndarray] = {}
    for faces in sets:
        recognised, rejected = open_set_rates(faces, THRESHOLDS, args.trials)
        rejection[faces.name] = rejected
        tables[faces.name] = {
            "photos": len(faces.people),
            "people": len(np.unique(faces.people)),
            "leave_one_out_rank1": round(leave_one_out_rank1(faces), 4),
            "by_threshold": {
                f"{t:.2f}": {"recognised": round(float(r), 4), "strangers_rejected": round(float(s), 4)}
                for t, r, s in zip(THRESHOLDS, recognised, rejected, strict=True)
            },
        }
    threshold = lowest_threshold(rejection[args.calibrate], args.reject)
    others = [name for name in tables if name != args.calibrate]
    report: dict[str, Any] = {
        "model": embedder.model_id,
        "protocol": __doc__.split("\n\n")[1],
        "target_strangers_rejected": args.reject,
        "calibrated_on": args.calibrate,
        "threshold": threshold,
        "in_sample": {args.calibrate: _rates_at(tables[args.calibrate], threshold)},
        "out_of_sample": {name: _rates_at(tables[name], threshold) for name in others},
        "cross_check": {},
        "sets": tables,
    }
    for name in others:
        chosen = lowest_threshold(rejection[name], args.reject)
        report["cross_check"][name] = {
            "threshold_chosen_on_it": chosen,
            f"on_{args.calibrate}": _rates_at(tables[args.calibrate], chosen),
        }
    print(
        f"threshold {threshold:.2f}: the lowest that rejects strangers >= {args.reject} on {args.calibrate}"
    )
    for kind in ("in_sample", "out_of_sample"):
        for name, row in report[kind].items():
            print(
                f"  {name} ({kind.replace('_', '-')}): recognised {row['recognised']:.3f}, "
                f"strangers rejected {row['strangers_rejected']:.3f}"
            )
    for name, check in report["cross_check"].items():
        row = check[f"on_{args.calibrate}"]
        print(
            f"  cross-check: {name} alone would choose {check['threshold_chosen_on_it']:.2f}; on "
            f"{args.calibrate} that recognises {row['recognised']:.3f}, "
            f"rejects {row['strangers_rejected']:.3f}"
        )
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
