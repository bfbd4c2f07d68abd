"""Calibrate the cosine threshold that accepts a face match, and write ``models/face_calibration.json``.

Protocol (open set, as the bot meets it): in each trial, half of the people of a face set are
enrolled with 3 random photos each; every other photo is a probe, scored against each enrolled user
by :class:`core.vision.gallery.Gallery` (cosine to the user's centroid). A probe of an enrolled person
counts as recognised when its best-matching user is that person and the similarity reaches the
threshold; a probe of anyone else counts as rejected when no user reaches it. Trials repeat with
other people and photos (fixed seed). The threshold chosen is the lowest one at which strangers are
rejected at least ``--reject`` of the time on every face set: naming a stranger as someone else is
worse than asking a known user for another selfie.

Usage: ``python -m training.calibrate_faces [--data ../shared/data/faces] [--weights casia-webface]``
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import load_settings
from core.vision.faces import FaceDetector, FaceEmbedder, aligned_crop
from core.vision.faces.detection import DetectedFace
from core.vision.gallery import Gallery
from core.vision.imaging import read_image_file

THRESHOLDS = np.round(np.arange(0.30, 0.701, 0.01), 2)


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


def main(argv: list[str] | None = None) -> int:
    """Run the calibration and write the JSON report; prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/faces"))
    parser.add_argument("--weights", default="casia-webface")
    parser.add_argument("--reject", type=float, default=0.97, help="stranger rejection to reach")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("face_calibration.json"))
    args = parser.parse_args(argv)

    settings = load_settings(face_weights=args.weights)
    detector = FaceDetector()
    embedder = FaceEmbedder(args.weights, settings.cache_dir)
    sets = [
        embed_folder(folder, detector, embedder) for folder in sorted(args.data.iterdir()) if folder.is_dir()
    ]
    report: dict[str, object] = {"model": embedder.model_id, "protocol": __doc__.split("\n\n")[1], "sets": {}}
    ok = np.ones(len(THRESHOLDS), dtype=bool)
    for faces in sets:
        recognised, rejected = open_set_rates(faces, THRESHOLDS, args.trials)
        ok &= rejected >= args.reject
        report["sets"][faces.name] = {  # type: ignore[index]
            "photos": len(faces.people),
            "people": len(np.unique(faces.people)),
            "leave_one_out_rank1": round(leave_one_out_rank1(faces), 4),
            "by_threshold": {
                f"{t:.2f}": {"recognised": round(float(r), 4), "strangers_rejected": round(float(s), 4)}
                for t, r, s in zip(THRESHOLDS, recognised, rejected, strict=True)
            },
        }
    threshold = float(THRESHOLDS[np.argmax(ok)]) if ok.any() else float(THRESHOLDS[-1])
    report["target_strangers_rejected"] = args.reject
    report["threshold"] = threshold
    for name, info in report["sets"].items():  # type: ignore[attr-defined]
        row = info["by_threshold"][f"{threshold:.2f}"]
        print(
            f"{name}: rank-1 {info['leave_one_out_rank1']:.3f}; at {threshold:.2f}: recognised "
            f"{row['recognised']:.3f}, strangers rejected {row['strangers_rejected']:.3f}"
        )
    print(f"threshold {threshold:.2f} (strangers rejected >= {args.reject} on every set) -> {args.out}")
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
