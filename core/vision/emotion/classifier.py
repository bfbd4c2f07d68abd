"""Emotion inference: 48x48 grey faces in, probabilities for the seven FER2013 classes out.

A model is either one network (``<name>.pt``, an fp16 state_dict, with its JSON card ``<name>.json``
beside it) or an ensemble file (``<name>.json`` with ``"members"``: the ``.pt`` files beside it, each
with its card). The probabilities are the softmax averaged over the members and over the views of
the test-time augmentation (TTA):

- ``none``: the face as given;
- ``flip``: the face and its mirror image (2 views);
- ``tencrop``: five 44x44 crops (four corners and the centre) resized to 48x48, each with its
  mirror image (10 views).

Number formats (``precision``): ``int8`` (the networks quantized after training, see
:mod:`core.vision.emotion.quantized`: 2-3 times as fast as bfloat16 on a CPU with VNNI or AMX),
``bfloat16`` (native on a CPU with AVX512-BF16 or AMX, which the networks were trained with under
autocast; a CUDA GPU with bf16) and ``float32``. ``precision="auto"``, the default, follows the model
file: one that names an int8 model (``"int8_model": "<file>.json"``, the same members with their
quantization) loads it where int8 is native; else bfloat16 where native; else float32, which costs
about four times as much per network on a CPU, so a model file may name a smaller model for that
(``"without_native_bfloat16": "<file>.json"``, members chosen within the same budget timed in
float32), and one for CPUs with AVX2 but neither VNNI nor native bfloat16
(``"without_native_bfloat16_avx2"``: members chosen in int8 with 7-bit activations, exact with AVX2's
16-bit sums; ``auto`` loads its int8 model). A model file that names its ``"precision"`` runs in it
under ``auto``, so its figures are reproduced on any machine.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from core.paths import resource
from core.vision.emotion.labels import EMOTIONS
from core.vision.emotion.network import INPUT_SIZE, build_network
from core.vision.emotion.quantized import (
    QuantizationMismatch,
    avx2,
    avx512_dispatch,
    int8_native,
    quantize,
)

log = logging.getLogger(__name__)

DEFAULT_MODEL = resource("models", "emotion", "emotion_model.json")
"""The model shipped with the project: a model file naming its member network(s) and TTA."""
DEFAULT_WEIGHTS = DEFAULT_MODEL
"""The name older code uses for :data:`DEFAULT_MODEL`."""

TTA_MODES = ("none", "flip", "tencrop")
"""Test-time augmentations, from cheapest to dearest; see the module docstring."""
TTA_VIEWS = {"none": 1, "flip": 2, "tencrop": 10}
"""Forward passes per face and member for each TTA mode."""
CROP_SIZE = 44
"""Side of the ``tencrop`` crops, before they are resized back to 48."""
PRECISIONS = ("auto", "float32", "bfloat16", "int8")
"""Number formats the networks can run in; ``auto``: see the module docstring."""
FLOAT_PRECISIONS = ("float32", "bfloat16")
"""The formats a network's own weights run in (``int8`` is a quantized copy of a float32 network)."""


def native_bfloat16(device: str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 convolutions in hardware (CPU: AVX512-BF16 or AMX, with
    AVX-512 dispatch, which ``ATEN_CPU_CAPABILITY`` may cap: ``quantized.avx512_dispatch``)."""
    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if not avx512_dispatch():
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(precision: str, device: str = "cpu") -> torch.dtype:
    """The float dtype ``precision`` (``auto`` or one of :data:`FLOAT_PRECISIONS`) means on ``device``."""
    if precision not in ("auto", *FLOAT_PRECISIONS):
        raise ValueError(f"unknown float precision {precision!r}; known: auto, {FLOAT_PRECISIONS}")
    if precision == "auto":
        precision = "bfloat16" if native_bfloat16(device) else "float32"
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


WITHOUT_BFLOAT16 = "without_native_bfloat16"
"""Model-file key naming (beside it) the model that ``precision="auto"`` loads without native bfloat16."""
AVX2_MODEL = "without_native_bfloat16_avx2"
"""Model-file key naming (beside it) the model ``auto`` loads without native bfloat16 or VNNI where the
CPU has AVX2: a smaller model, run in its int8 model with 7-bit activations."""
INT8_MODEL = "int8_model"
"""Model-file key naming (beside it) the int8 model ``auto`` loads where int8 is native, ``int8`` always."""
QUANTIZATION = "quantization"
"""Int8 model-file key: ``{"activations": {member file: {activation: [scale, zero point]}},
"activation_bits": 8 or 7, ...}`` (8 where absent)."""
ACTIVATION_BITS = "activation_bits"
"""Key in :data:`QUANTIZATION`: the width of the activations' unsigned codes."""


def card_path(weights: Path) -> Path:
    """The JSON model card that belongs to ``weights`` (an ensemble file is its own card)."""
    return weights.with_suffix(".json")


def read_model_card(weights: Path) -> dict[str, Any]:
    """The card of a network's ``.pt`` or a model ``.json``; FileNotFoundError says how to make one."""
    if not weights.is_file():
        raise FileNotFoundError(f"emotion model not found: {weights} (train with `moodtunes train-emotion`)")
    card: dict[str, Any] = json.loads(card_path(weights).read_text())
    return card


def to_input(images: np.ndarray | torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 faces (N, 48, 48) -> normalised float32 tensor (N, 1, 48, 48): ``(x / 255 - mean) / std``."""
    tensor = torch.as_tensor(images)
    if tensor.ndim != 3 or tuple(tensor.shape[1:]) != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"expected (N, {INPUT_SIZE}, {INPUT_SIZE}) faces, got {tuple(tensor.shape)}")
    return ((tensor.float() / 255.0 - mean) / std).unsqueeze(1)


def tta_views(batch: torch.Tensor, tta: str) -> torch.Tensor:
    """(N, 1, 48, 48) -> (V * N, 1, 48, 48): the views of ``tta``, view-major."""
    if tta not in TTA_VIEWS:
        raise ValueError(f"unknown TTA {tta!r}; known: {TTA_MODES}")
    if tta == "none":
        return batch
    if tta == "flip":
        return torch.cat([batch, torch.flip(batch, dims=[3])])
    side, crop = batch.shape[-1], CROP_SIZE
    corners = [(0, 0), (0, side - crop), (side - crop, 0), (side - crop, side - crop)]
    centre = (side - crop) // 2
    crops = [batch[..., y : y + crop, x : x + crop] for y, x in [*corners, (centre, centre)]]
    resized = F.interpolate(torch.cat(crops), size=(side, side), mode="bilinear", align_corners=False)
    return torch.cat([resized, torch.flip(resized, dims=[3])])


def predict_probabilities(model: nn.Module, batch: torch.Tensor, tta: str = "flip") -> torch.Tensor:
    """Softmax probabilities (N, 7) float32 for a normalised batch, averaged over the views of ``tta``.

    The batch runs in the dtype of ``model``'s parameters (float32 into an int8 network).
    """
    n = batch.shape[0]
    parameter = next(model.parameters(), None)  # an int8 network has none: it takes float32
    views = tta_views(batch, tta).to(torch.float32 if parameter is None else parameter.dtype)
    if views.device.type == "cpu":
        views = views.contiguous(memory_format=torch.channels_last)
    probs = torch.softmax(model(views).float(), dim=1)
    return probs.view(-1, n, probs.shape[1]).mean(dim=0)


@dataclass(frozen=True)
class EmotionReading:
    """The emotion of one face: the top ``label`` and the probability of every class."""

    label: str
    scores: dict[str, float]

    @property
    def confidence(self) -> float:
        """Probability of the top label, 0..1."""
        return self.scores[self.label]


@dataclass(frozen=True)
class Member:
    """One network of a model: its weights file, card, input normalisation and module (eval mode)."""

    weights: Path
    card: dict[str, Any]
    mean: float
    std: float
    model: nn.Module
    parameters: int
    """Weights and biases of the network with its batch norms folded (before any quantization)."""


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm2d into the Conv2d before it (same outputs, fewer passes over memory)."""
    for child in module.children():
        fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        layers = list(module)
        for i in range(len(layers) - 1):
            conv, bn = layers[i], layers[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(conv, bn)
                module[i + 1] = nn.Identity()
    return module


def load_network(weights: Path) -> tuple[dict[str, Any], nn.Module]:
    """One network's card and float32 module (eval mode) from its fp16 ``.pt``."""
    card = read_model_card(weights)
    if tuple(card["classes"]) != EMOTIONS:
        raise ValueError(f"{weights}: classes {card['classes']} differ from {EMOTIONS}")
    model = build_network(card["architecture"], len(EMOTIONS))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return card, model.eval()


def load_member(
    weights: Path,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    qparams: dict[str, Any] | None = None,
    bits: int = 8,
) -> Member:
    """Load one network and its card: in ``dtype`` with batch norms folded (in float32), or int8 from
    its ``bits``-bit activations' ``qparams`` (see :func:`core.vision.emotion.quantized.quantize`;
    CPU only)."""
    card, model = load_network(weights)
    if qparams is not None:
        if device != "cpu":
            raise ValueError(f"int8 networks run on the CPU, not {device}")
        quantized = quantize(model, qparams, bits)
        parameters = sum(p.numel() for p in fold_batchnorm(model).parameters())
        model = quantized
    else:
        model = fold_batchnorm(model).to(device, dtype).to(memory_format=torch.channels_last)
        parameters = sum(p.numel() for p in model.parameters())
    return Member(weights, card, float(card["input"]["mean"]), float(card["input"]["std"]), model, parameters)


class EmotionClassifier:
    """Loads the emotion model once; :meth:`predict` is thread-safe (no grad, eval mode).

    Args:
        weights: a network's ``.pt`` (its ``.json`` card beside it) or an ensemble ``.json``
            (default: the shipped model, :data:`DEFAULT_MODEL`). :attr:`weights` is the file loaded:
            the one named by ``int8_model`` or ``without_native_bfloat16`` where the precision
            followed it.
        device: torch device (default CPU).
        tta: test-time augmentation, one of :data:`TTA_MODES` (default: the one the model's card
            names, which its accuracy figures use; ``flip`` for cards that name none).
        precision: one of :data:`PRECISIONS` (default ``auto``: the model file's int8 model where
            int8 is native, else bfloat16 where native, else float32 and the model file's smaller
            model for it; a model file's own ``precision`` wins). ``float32`` or ``bfloat16`` run
            the model named, as named; ``int8`` its int8 model (ValueError where it has none).
    """

    def __init__(
        self,
        weights: Path | None = None,
        device: str = "cpu",
        tta: str | None = None,
        precision: str = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; known: {PRECISIONS}")
        self.device = device
        self.classes: tuple[str, ...] = EMOTIONS
        path = Path(weights or DEFAULT_MODEL)
        try:
            self._load(path, precision, int8=precision in ("auto", "int8"))
        except QuantizationMismatch as error:
            if precision != "auto":
                raise
            log.warning("the int8 model cannot be built here (%s); loading the float model", error)
            self._load(path, precision, int8=False)
        self.tta = tta or str(self.card.get("tta", "flip"))
        if self.tta not in TTA_VIEWS:
            raise ValueError(f"unknown TTA {self.tta!r}; known: {TTA_MODES}")

    def _load(self, weights: Path, precision: str, int8: bool) -> None:
        """Read the model file at ``weights``, follow the model it names for the hardware (``int8``
        or ``auto`` where int8 is native: its int8 model; ``auto`` without native bfloat16: its
        smaller model for AVX2 in its 7-bit int8 model, else its float32 model), and load the members
        in the precision that leaves. Without ``int8`` no int8 model is followed."""
        self.weights, self.card = weights, read_model_card(weights)
        if self.card.get(INT8_MODEL) and int8 and (precision == "int8" or int8_native(self.device)):
            self._follow(INT8_MODEL, "int8")
        elif precision == "auto" and not native_bfloat16(self.device):
            if int8 and self.card.get(AVX2_MODEL) and self.device == "cpu" and avx2():
                self._follow(AVX2_MODEL, "no native bfloat16 or VNNI, AVX2")
                if self.card.get(INT8_MODEL):  # fallback --precision int8 always writes one
                    self._follow(INT8_MODEL, "int8 with 7-bit activations")
                    precision = "int8"
            elif self.card.get(WITHOUT_BFLOAT16):
                self._follow(WITHOUT_BFLOAT16, f"no native bfloat16 on {self.device}")
        if "members" in self.card:
            paths = [self.weights.parent / name for name in self.card["members"]]
        else:
            paths = [self.weights]
        if precision == "auto" and "precision" in self.card:
            precision = str(self.card["precision"])
        quantization: dict[str, Any] = self.card.get(QUANTIZATION, {})
        qparams: dict[str, Any] = quantization.get("activations", {})
        bits = int(quantization.get(ACTIVATION_BITS, 8))
        if precision == "int8":
            missing = [path.name for path in paths if path.name not in qparams]
            if missing:
                raise QuantizationMismatch(
                    f"{self.weights.name} has no int8 quantization for {missing}: run "
                    "python -m training.emotion_quantize, or choose another precision"
                )
            self.dtype = torch.float32
            if bits == 8 and not int8_native(self.device):
                log.warning("8-bit activations on a CPU without VNNI or AMX: slower, and sums may saturate")
            self.members = [load_member(p, self.device, qparams=qparams[p.name], bits=bits) for p in paths]
            self.activation_bits: int | None = bits
        else:
            self.dtype = resolve_precision(precision, self.device)
            self.members = [load_member(path, self.device, self.dtype) for path in paths]
            self.activation_bits = None
        self.precision = "int8" if precision == "int8" else str(self.dtype).removeprefix("torch.")
        """The number format the networks run in: ``float32``, ``bfloat16`` or ``int8``."""

    def _follow(self, key: str, why: str) -> None:
        """Load the model file that this one names under ``key`` instead."""
        named = self.weights.parent / str(self.card[key])
        log.info("%s: %s instead of %s", why, named.name, self.weights.name)
        self.weights, self.card = named, read_model_card(named)

    @property
    def model(self) -> nn.Module:
        """The first (for a single network, the only) member's module."""
        return self.members[0].model

    @property
    def parameters(self) -> int:
        """Parameters (weights and biases, int8 ones too) of all members together."""
        return sum(m.parameters for m in self.members)

    @torch.inference_mode()
    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """uint8 grey faces (N, 48, 48) -> probabilities (N, 7) float32, rows sum to 1."""
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        total: torch.Tensor | None = None
        for member in self.members:
            batch = to_input(faces, member.mean, member.std).to(self.device)
            probs = predict_probabilities(member.model, batch, self.tta)
            total = probs if total is None else total + probs
        assert total is not None
        return (total / len(self.members)).cpu().numpy()

    def predict(self, faces: np.ndarray) -> list[EmotionReading]:
        """uint8 grey faces (N, 48, 48) -> one :class:`EmotionReading` per face."""
        readings = []
        for row in self.probabilities(faces):
            scores = {name: float(p) for name, p in zip(self.classes, row, strict=True)}
            readings.append(EmotionReading(self.classes[int(row.argmax())], scores))
        return readings
