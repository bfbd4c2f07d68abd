"""The model manifest (``models/manifest.json``): every model's source, licence, sha256 and settings."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import torch

from core.paths import resource

MANIFEST_PATH = resource("models", "manifest.json")


@cache
def manifest() -> dict[str, Any]:
    """The parsed manifest: ``{"models": {model_id: {...}}}``."""
    data: dict[str, Any] = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    return data


def model_entry(model_id: str) -> dict[str, Any]:
    """The manifest entry of one model; ``KeyError`` names the known ids."""
    models: dict[str, Any] = manifest()["models"]
    if model_id not in models:
        raise KeyError(f"{model_id!r} is not in {MANIFEST_PATH.name}; known: {sorted(models)}")
    entry: dict[str, Any] = models[model_id]
    return entry


def match_threshold(model_id: str) -> float:
    """Calibrated cosine-similarity threshold for accepting a face match with this FaceNet model."""
    return float(model_entry(model_id)["match_threshold"])


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hex sha256 over a state_dict's names, dtypes, shapes and float32 values, in key order.

    Unlike the hash of a ``torch.save`` file it depends only on the weights.
    """
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()
