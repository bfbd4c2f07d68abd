"""Quantize the shipped emotion model to int8 and check it on the holdout.

``python -m training.emotion_quantize [--model models/emotion/emotion_model.json] [--data
../shared/data/fer2013] [--faces 2048] [--bits 8]``: fits each member's activation quantization
(:func:`core.vision.emotion.quantized.calibrate`) on ``--faces`` faces drawn (seed 0) from the *fit*
part of train, each with the views of the model's TTA; writes the int8 model file beside the model
(``<model>_int8.json``: the same members and TTA, ``"precision": "int8"`` and the quantization) and
names it in the model file (``"int8_model"``), so ``precision="auto"`` loads it where int8 is native.
Then scores both on the holdout (accuracy, log loss in nats per face, top labels that moved) and
writes that into the int8 model file. PublicTest plays no part; score it once afterwards with
``python -m training.emotion_ensemble score --model-only <model>_int8.json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.vision.emotion.classifier import (
    ACTIVATION_BITS,
    DEFAULT_MODEL,
    INT8_MODEL,
    QUANTIZATION,
    EmotionClassifier,
    load_network,
    native_bfloat16,
    read_model_card,
    to_input,
    tta_views,
)
from core.vision.emotion.quantized import ACTIVATION_BITS as ACTIVATION_WIDTHS
from core.vision.emotion.quantized import ENGINE, calibrate
from training.emotion_dataset import FaceSet, holdout_split, load_split, subset
from training.emotion_evaluation import fit_of, predictions_of

CALIBRATION_FACES = 2048
"""Faces of the fit part the activations are calibrated on (each with its TTA views)."""
CALIBRATION_SEED = 0
BATCH = 256


def calibration_faces(
    train: FaceSet, count: int = CALIBRATION_FACES, seed: int = CALIBRATION_SEED
) -> FaceSet:
    """``count`` faces of the fit part of ``train`` (never the holdout), drawn with ``seed``, in order."""
    fit = holdout_split(train).fit
    drawn = np.sort(np.random.default_rng(seed).choice(fit, min(count, len(fit)), replace=False))
    return subset(train, drawn)


def _batches(images: np.ndarray, mean: float, std: float, tta: str) -> Iterator[torch.Tensor]:
    for start in range(0, len(images), BATCH):
        yield tta_views(to_input(images[start : start + BATCH], mean, std), tta)


def int8_model_file(model_path: Path, faces: FaceSet, described: str, bits: int = 8) -> dict[str, Any]:
    """The int8 model file's contents for the model at ``model_path``, its activations calibrated on
    ``faces`` to ``bits`` (8, or 7 for CPUs without VNNI)."""
    model = read_model_card(model_path)
    members = model.get("members", [model_path.name])  # a network's card names no members: itself
    tta = str(model.get("tta", "flip"))
    activations = {}
    for name in members:
        card, network = load_network(model_path.parent / name)
        mean, std = float(card["input"]["mean"]), float(card["input"]["std"])
        activations[name] = calibrate(network, _batches(faces.images, mean, std, tta), bits)
    return {
        "name": f"{model.get('name', model_path.stem)}-int8",
        "members": members,
        "tta": tta,
        "combine": model.get("combine", "softmax averaged over the members and over the TTA views"),
        "precision": "int8",
        QUANTIZATION: {
            "engine": ENGINE,
            "torch": torch.__version__.split("+")[0],
            "scheme": (
                "static post-training: per-channel symmetric int8 weights (largest magnitude), "
                f"per-tensor unsigned {bits}-bit activations (0..{2**bits - 1}) fitted to a histogram "
                "of the calibration faces; batch norms fused into the convolutions"
            ),
            ACTIVATION_BITS: bits,
            "calibration": described,
            "activations": {name: {k: list(v) for k, v in q.items()} for name, q in activations.items()},
        },
    }


def int8_candidates(candidates: list[Path], train: FaceSet, folder: Path, bits: int = 8) -> dict[Path, Path]:
    """Each candidate network as a one-network int8 model file in ``folder`` (calibrated on the faces
    of ``train`` :func:`quantize_model` uses, to ``bits``, with the views of its card's TTA: the mirror
    where it names none), so ``choose --precision int8`` can time and score it."""
    calibration = calibration_faces(train)
    files = {}
    for path in candidates:
        contents = int8_model_file(path, calibration, f"{len(calibration)} faces of the fit part", bits)
        contents["members"] = [str(path.resolve())]  # the file lies elsewhere; its key stays the name
        files[path] = folder / f"{path.stem}_int8.json"
        files[path].write_text(json.dumps(contents) + "\n")
    return files


def holdout_comparison(
    reference: EmotionClassifier, int8: EmotionClassifier, holdout: FaceSet
) -> dict[str, Any]:
    """Both models on the holdout: accuracy, log loss (nats per face), and top labels that differ."""
    probs = {"reference": predictions_of(reference, holdout), "int8": predictions_of(int8, holdout)}
    fits = {key: fit_of(p, holdout.labels) for key, p in probs.items()}
    return {
        "split": f"holdout of train ({len(holdout)} faces)",
        "holdout_accuracy": round(fits["int8"][0], 4),
        "holdout_log_loss": round(fits["int8"][1], 4),
        "reference": {
            "precision": reference.precision,
            "holdout_accuracy": round(fits["reference"][0], 4),
            "holdout_log_loss": round(fits["reference"][1], 4),
        },
        "labels_changed": int((probs["int8"].argmax(1) != probs["reference"].argmax(1)).sum()),
        "max_probability_change": round(float(np.abs(probs["int8"] - probs["reference"]).max()), 4),
    }


def int8_model_path(model_path: Path) -> Path:
    """Where :func:`quantize_model` writes the int8 model of ``model_path``."""
    return model_path.with_name(f"{model_path.stem}_int8.json")


def quantize_model(
    model_path: Path,
    data: Path,
    faces: int = CALIBRATION_FACES,
    bits: int = 8,
    train: FaceSet | None = None,
) -> dict[str, Any]:
    """Write ``<model>_int8.json`` (activations to ``bits``) beside ``model_path``, name it there, and
    return its contents. ``train``: ``data/train`` already read (else it is read here)."""
    train = load_split(data / "train") if train is None else train
    calibration = calibration_faces(train, faces)
    described = (
        f"{len(calibration)} faces of the fit part of {data.name}/train (drawn with seed {CALIBRATION_SEED}, "
        "never the holdout), each with the views of the model's TTA"
    )
    contents = int8_model_file(model_path, calibration, described, bits)
    out = int8_model_path(model_path)
    out.write_text(json.dumps(contents, indent=2) + "\n")
    holdout = subset(train, holdout_split(train).holdout)
    reference = EmotionClassifier(model_path, precision="bfloat16" if native_bfloat16() else "float32")
    comparison = holdout_comparison(reference, EmotionClassifier(out, precision="int8"), holdout)
    contents["holdout"] = comparison
    out.write_text(json.dumps(contents, indent=2) + "\n")
    main = json.loads(model_path.read_text())
    main[INT8_MODEL] = out.name
    model_path.write_text(json.dumps(main, indent=2) + "\n")
    ref = comparison["reference"]
    print(
        f"{out.name}: holdout {comparison['holdout_accuracy']:.4f}, "
        f"{comparison['holdout_log_loss']:.4f} nats "
        f"({ref['precision']}: {ref['holdout_accuracy']:.4f}, {ref['holdout_log_loss']:.4f}); "
        f"{comparison['labels_changed']} labels of {len(holdout)} moved"
    )
    return contents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    parser.add_argument("--faces", type=int, default=CALIBRATION_FACES)
    parser.add_argument(
        "--bits", type=int, choices=ACTIVATION_WIDTHS, default=8, help="activations: 7 for CPUs without VNNI"
    )
    args = parser.parse_args(argv)
    quantize_model(args.model, args.data, args.faces, args.bits)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
