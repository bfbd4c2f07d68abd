"""Emotion commands: ``emotion`` (read faces), ``train-emotion`` and ``eval-emotion``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bot.cli.common import add_json, check_file, emit, error_record, settings_from
from core.errors import MoodtunesError, NoFace
from core.vision.imaging import MIN_SIDE, read_image_file

DEFAULT_DATA = Path("../shared/data/fer2013")
TTA_MODES = ("none", "flip", "tencrop")
"""``core.vision.emotion.classifier.TTA_MODES``, spelt out so that the CLI starts without torch."""
PRECISIONS = ("auto", "float32", "bfloat16", "int8")
"""``core.vision.emotion.classifier.PRECISIONS``, spelt out likewise."""


log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the emotion sub-commands."""
    p = sub.add_parser("emotion", help="the emotion of every face in the photos")
    p.add_argument(
        "--no-detect", action="store_true", help="treat each whole image as one face crop (FER2013)"
    )
    p.add_argument("--weights", type=Path, help="emotion model (default: the shipped one)")
    p.add_argument("--tta", choices=TTA_MODES, help="test-time augmentation (default: the model's own)")
    add_json(p)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(handler=_emotion)

    p = sub.add_parser("train-emotion", help="train one emotion network on FER2013 (image-folder layout)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train/<emotion>/")
    p.add_argument("--out", type=Path, default=Path("models/emotion/emotion_cnn.pt"), help="weights to write")
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate")
    p.add_argument("--architecture", choices=("vgg", "resnet"), default="vgg")
    p.add_argument("--widths", default="", help="channels of the four stages (default 48,96,192,384 for vgg)")
    p.add_argument("--holdout", type=float, default=0.1, help="share of train held out for choices (0: none)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="auto", help="auto (GPU when available), cpu, cuda")
    p.add_argument("--resume", action="store_true", help="continue from <out>.ckpt")
    p.add_argument("--limit", type=int, default=0, help="train on this many images only (smoke runs)")
    p.add_argument("--teacher", type=Path, help="distil from this emotion model (soft targets)")
    p.add_argument("--distil-weight", type=float, default=0.5, help="weight of the soft targets")
    p.set_defaults(handler=_train)

    p = sub.add_parser(
        "eval-emotion",
        help="accuracy on FER2013 PublicTest without the faces that repeat training faces, and in full",
    )
    p.add_argument(
        "--weights", type=Path, help="emotion model, .pt or ensemble .json (default: the shipped one)"
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train/ and val/ (PublicTest)")
    p.add_argument("--tta", choices=TTA_MODES, help="test-time augmentation (default: the model's own)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="number format (default auto: the model's int8 model where the CPU has VNNI or AMX, else "
        "bfloat16 where the CPU has it natively, else the model's AVX2 model in 7-bit int8 where the CPU "
        "has AVX2, else its smaller float32 model)",
    )
    p.add_argument(
        "--holdout",
        action="store_true",
        help="score the held-out part of train instead (where choices are made)",
    )
    add_json(p)
    p.set_defaults(handler=_evaluate)


def _scores(probs: np.ndarray, classes: tuple[str, ...]) -> dict[str, Any]:
    return {
        "label": classes[int(probs.argmax())],
        "scores": {c: round(float(p), 4) for c, p in zip(classes, probs, strict=True)},
    }


def _emotion(args: argparse.Namespace) -> int:
    import cv2

    from core.vision.emotion.classifier import EmotionClassifier
    from core.vision.faces import FaceDetector, emotion_crop

    settings = settings_from(args)
    classifier = EmotionClassifier(args.weights or settings.emotion_weights, tta=args.tta)
    detector = None if args.no_detect else FaceDetector()
    failures = 0
    for path in args.images:
        try:
            rgb = read_image_file(check_file(path), min_side=1 if detector is None else MIN_SIDE)
            if detector is None:
                grey = cv2.resize(
                    cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (48, 48), interpolation=cv2.INTER_AREA
                )
                record = {
                    "file": str(path),
                    **_scores(classifier.probabilities(grey[None])[0], classifier.classes),
                }
                text = f"{path}: {record['label']} {record['scores'][record['label']]:.0%}"
            else:
                found = detector.detect(rgb)
                if not found:
                    raise NoFace("no face found")
                faces = found[: settings.max_faces]  # the largest first, as the chat reads them
                probs = classifier.probabilities(np.stack([emotion_crop(rgb, f) for f in faces]))
                entries = [
                    {"box": f.rounded_box(), **_scores(p, classifier.classes)}
                    for f, p in zip(faces, probs, strict=True)
                ]
                record = {"file": str(path), "faces": entries, "faces_found": len(found)}
                text = f"{path}: " + "; ".join(
                    f"{e['label']} {e['scores'][e['label']]:.0%} at {e['box']}" for e in entries
                )
        except Exception as exc:
            failures += 1
            if not isinstance(exc, MoodtunesError | FileNotFoundError):
                log.error("unexpected failure on %s", path, exc_info=exc)
            emit(error_record(str(path), exc), args.json, "")
            continue
        emit(record, args.json, text)
    return 1 if failures else 0


def _train(args: argparse.Namespace) -> int:
    from training.train_emotion import TrainConfig, train

    if not (args.data / "train").is_dir():
        print(f"moodtunes: {args.data}/train not found (expected train/<emotion>/*.jpg)", file=sys.stderr)
        return 2
    config = TrainConfig(
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        architecture=args.architecture,
        widths=tuple(int(w) for w in args.widths.split(",") if w),
        holdout=args.holdout,
        seed=args.seed,
        device=args.device,
        resume=args.resume,
        limit=args.limit,
        teacher=str(args.teacher or ""),
        distil_weight=args.distil_weight,
    )
    card = train(config)
    holdout = (card.get("holdout") or {}).get("flip") or {}
    print(
        f"wrote {args.out} and {args.out.with_suffix('.json')}; holdout accuracy (flip) "
        f"{holdout.get('accuracy', 'n/a')}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from core.vision.emotion.classifier import DEFAULT_MODEL, EmotionClassifier
    from training.emotion_dataset import holdout_split, load_split, subset
    from training.emotion_evaluation import evaluation_of, public_test_scores

    settings = settings_from(args)
    weights = args.weights or settings.emotion_weights or DEFAULT_MODEL
    classifier = EmotionClassifier(weights, tta=args.tta, precision=args.precision)
    weights = classifier.weights  # the model auto chose for this CPU
    head = {
        "weights": str(weights),
        "tta": classifier.tta,
        "precision": classifier.precision,
        "members": len(classifier.members),
    }
    if args.holdout:
        seen = [m.weights.name for m in classifier.members if not m.card.get("holdout")]
        if seen:
            print(
                f"moodtunes: {', '.join(seen)} trained on the holdout, so it cannot be scored there; "
                "pass --weights with a network trained without it",
                file=sys.stderr,
            )
            return 2
        train = load_split(args.data / "train")
        result = evaluation_of(classifier, subset(train, holdout_split(train).holdout))
        if args.json:
            print(json.dumps({**head, "split": "holdout", **result.as_dict()}))
        else:
            print(f"{weights} (TTA {classifier.tta}) on the holdout of {args.data / 'train'}")
            print(result.table())
        return 0
    scores = public_test_scores(classifier, args.data)
    if args.json:
        print(json.dumps({**head, **scores.as_dict()}))
        return 0
    print(
        f"{weights} (TTA {classifier.tta}) on FER2013 PublicTest ({args.data / 'val'}) less the "
        f"{scores.duplicates} faces pixel-identical to training faces:"
    )
    print(scores.deduplicated.table())
    near = scores.near_deduplicated
    print(
        f"less the {scores.near_duplicates} faces that are a training photo, near-duplicates too "
        f"({near.count}): accuracy {near.accuracy:.4f}, happy/sad/rest {near.happy_sad_rest_accuracy:.4f}"
    )
    print(
        f"with those {scores.duplicates} faces (all {scores.full.count}, as papers report): accuracy "
        f"{scores.full.accuracy:.4f}, happy/sad/rest {scores.full.happy_sad_rest_accuracy:.4f}"
    )
    return 0
