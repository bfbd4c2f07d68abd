"""Prepare and verify every model the application uses, offline (``moodtunes models prepare``)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import torch

from core.config import Settings
from core.paths import resource
from core.vision.emotion.classifier import DEFAULT_WEIGHTS
from core.vision.faces.facenet_weights import MODEL_IDS, WeightsUnavailable, casia_weights, vggface2_weights
from core.vision.manifest import file_sha256, model_entry, state_dict_sha256


def _package_file(relative: str) -> Path:
    package, _, rest = relative.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {package} is not installed")
    return Path(spec.origin).parent / rest


def _check_files(model_id: str) -> Iterator[tuple[str, bool]]:
    for relative, expected in model_entry(model_id)["files"].items():
        try:
            path = (
                _package_file(relative)
                if not relative.startswith("models/")
                else resource("models", *relative.split("/")[1:])
            )
            actual = file_sha256(path)
        except FileNotFoundError as exc:
            yield f"{model_id}: {exc}", False
            continue
        yield (
            f"{model_id}: {relative} sha256 {'matches' if actual == expected else 'DIFFERS'}",
            (actual == expected),
        )


def prepare_models(settings: Settings) -> Iterator[tuple[str, bool]]:
    """Yield ``(line, ok)`` for each check: MTCNN files, FaceNet conversion, emotion weights."""
    yield from _check_files("mtcnn")
    yield from _check_files(MODEL_IDS["casia-webface"])
    try:
        path = casia_weights(settings.cache_dir)
        digest = state_dict_sha256(torch.load(path, map_location="cpu", weights_only=True))
        expected = model_entry(MODEL_IDS["casia-webface"])["converted_state_dict_sha256"]
        yield f"FaceNet CASIA-WebFace converted at {path}", digest == expected
    except WeightsUnavailable as exc:
        yield f"FaceNet CASIA-WebFace: {exc}", False
    if settings.face_weights == "vggface2":
        try:
            yield f"FaceNet VGGFace2 at {vggface2_weights(settings.cache_dir)}", True
        except WeightsUnavailable as exc:
            yield f"FaceNet VGGFace2: {exc}", False
    emotion = settings.emotion_weights or DEFAULT_WEIGHTS
    if settings.emotion_weights is None:
        yield from _check_files("moodtunes-emotion-cnn")
    else:
        yield f"emotion CNN (custom) at {emotion}", emotion.is_file()
