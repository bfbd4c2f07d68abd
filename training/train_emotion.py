"""Train one emotion network on FER2013 (Kaggle image-folder layout) and write weights plus a model card.

Run it as ``moodtunes train-emotion --data ../shared/data/fer2013 --out models/emotion/emotion_cnn.pt``.
It uses a GPU when one is available, otherwise the CPU with bfloat16 autocast where the processor
supports it (about 1,100 images/s on 2 cores for the default network). Every epoch writes a
checkpoint next to the output; ``--resume`` continues from it. A fixed seed gives the same shuffles,
augmentations and dropout masks on a resumed run as on an uninterrupted one.

Protocol: the network trains on FER2013 train less a fixed, stratified 10% of it (the *holdout*,
:func:`training.emotion_dataset.holdout_split`, deduplicated against the rest). Every choice (width,
architecture, epochs, ensemble members, test-time augmentation) is made on the holdout; FER2013
PublicTest (``val/``) is never read here: it is scored afterwards, once, by
:mod:`training.emotion_evaluation`, which writes its figures into the card.

Recipe: random affine (rotation, scale, shift, mirror), brightness/contrast jitter and random erasing
on each batch; label smoothing; class weights proportional to ``count ** -power`` (FER2013's
"disgust" class is 16x smaller than "happy"); SGD with Nesterov momentum, linear warm-up then cosine
decay.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from core.vision.emotion.classifier import (
    TTA_MODES,
    EmotionClassifier,
    card_path,
    predict_probabilities,
    to_input,
)
from core.vision.emotion.labels import EMOTIONS
from core.vision.emotion.network import INPUT_SIZE, build_network
from training.emotion_dataset import (
    HOLDOUT_FRACTION,
    HOLDOUT_SEED,
    FaceSet,
    holdout_split,
    load_split,
    subset,
)
from training.emotion_evaluation import predictions_of, tta_scores

DEFAULT_WIDTHS = {"vgg": (48, 96, 192, 384), "resnet": (32, 64, 128, 256)}
"""Stage widths of each architecture when none are given."""


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved in checkpoints and in the model card)."""

    data: Path
    out: Path
    epochs: int = 80
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    class_weight_power: float = 0.3
    architecture: str = "vgg"
    widths: tuple[int, ...] = ()
    """Stage widths; empty = the architecture's default (:data:`DEFAULT_WIDTHS`)."""
    convs_per_stage: int = 2
    """VGG only."""
    blocks_per_stage: tuple[int, ...] = (1, 2, 2, 2)
    """ResNet only."""
    dropout: float = 0.3
    seed: int = 42
    holdout: float = HOLDOUT_FRACTION
    """Share of train held out for choices (0 = train on all of it; then the card has no holdout)."""
    device: str = "auto"
    deterministic: bool = True
    """Deterministic kernels (False lets cuDNN pick the fastest, as the GPU runs did)."""
    resume: bool = False
    checkpoint_every: int = 1
    """Write ``<out>.ckpt`` every this many epochs (0 = never)."""
    limit: int = 0
    """Train on the first ``limit`` shuffled images only (0 = all); for smoke tests."""
    teacher: str = ""
    """Distil from this emotion model (a model file or a network; empty = no teacher): its
    probabilities on each training face (un-augmented) are soft targets, see :func:`distil_loss`."""
    distil_weight: float = 0.5
    """Weight of the soft-target term against the label term (used with ``teacher`` only)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.widths = tuple(self.widths) or DEFAULT_WIDTHS[self.architecture]
        self.blocks_per_stage = tuple(self.blocks_per_stage)

    def checkpoint_path(self) -> Path:
        """Where each epoch's checkpoint goes: ``<out>.ckpt``."""
        return self.out.with_suffix(".ckpt")

    def architecture_card(self) -> dict[str, Any]:
        """The card's ``architecture`` entry, from which :func:`build_network` rebuilds the network."""
        entry: dict[str, Any] = {"type": self.architecture, "widths": list(self.widths)}
        if self.architecture == "vgg":
            entry["convs_per_stage"] = self.convs_per_stage
        else:
            entry["blocks_per_stage"] = list(self.blocks_per_stage)
        entry["dropout"] = self.dropout
        return entry


@dataclass(frozen=True)
class TrainingData:
    """What a run trains on (``fit``) and scores its choices on (``holdout``, None when 0)."""

    fit: FaceSet
    holdout: FaceSet | None
    description: str


def load_training_data(config: TrainConfig, train_set: FaceSet | None = None) -> TrainingData:
    """FER2013 train (read from ``config.data / "train"`` unless given), split by ``config.holdout``."""
    source = config.data / "train"
    faces = train_set if train_set is not None else load_split(source)
    if not config.holdout:
        return TrainingData(faces, None, f"all of FER2013 train ({len(faces)} faces, {source})")
    split = holdout_split(faces, config.holdout, HOLDOUT_SEED)
    return TrainingData(
        subset(faces, split.fit),
        subset(faces, split.holdout),
        f"FER2013 train less the holdout: {len(split.fit)} faces for training, {len(split.holdout)} "
        f"held out ({config.holdout:.0%} per class, seed {HOLDOUT_SEED}; {split.moved} drawn faces "
        f"that repeat a training face and {split.near_moved} that are near copies of one left in "
        f"training; {source})",
    )


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where the device runs it natively (CUDA, or a CPU with AVX512-BF16/AMX), else None."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        if supported is not None and supported():
            return torch.bfloat16
    return None


AUGMENT_DRAWS = 12
"""Random numbers per face that :func:`augment` takes, besides the erasing noise."""


def augment(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random affine + mirror, brightness/contrast jitter and erasing on a (N, 1, H, W) batch in [0, 1].

    All random numbers come from ``gen`` (on the CPU), drawn in two calls and moved to the batch's
    device at once, so a seed fixes the augmentation on any device.
    """
    n, _, h, w = batch.shape
    draws = torch.rand(n, AUGMENT_DRAWS, generator=gen)
    noise = torch.rand(n, 1, h, w, generator=gen)
    if batch.device.type != "cpu":
        draws = draws.pin_memory().to(batch.device, non_blocking=True)
        noise = noise.pin_memory().to(batch.device, non_blocking=True)
    r = draws.unbind(1)

    angle = (r[0] * 30 - 15) * math.pi / 180
    scale = 0.85 + 0.3 * r[1]
    mirror = torch.where(r[2] < 0.5, -1.0, 1.0)
    shift_x, shift_y = (r[3] * 0.2 - 0.1) * 2, (r[4] * 0.2 - 0.1) * 2  # affine_grid spans [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * mirror, -sin, shift_x], 1), torch.stack([sin * mirror, cos, shift_y], 1)], 1
    )
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    out = F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)

    contrast = (0.7 + 0.6 * r[5]).view(n, 1, 1, 1)
    brightness = (r[6] * 0.2 - 0.1).view(n, 1, 1, 1)
    mean = out.mean(dim=(2, 3), keepdim=True)
    out = ((out - mean) * contrast + mean + brightness).clamp(0, 1)

    # Random erasing: one rectangle of 2-20% of the face, for half of the batch.
    area = (0.02 + 0.18 * r[7]) * h * w
    aspect = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * r[8])
    eh = torch.sqrt(area * aspect).clamp(1, h - 1)
    ew = torch.sqrt(area / aspect).clamp(1, w - 1)
    top = (r[9] * (h - eh)).view(n, 1, 1)
    left = (r[10] * (w - ew)).view(n, 1, 1)
    ys = torch.arange(h, device=batch.device).view(1, h, 1)
    xs = torch.arange(w, device=batch.device).view(1, 1, w)
    box = (ys >= top) & (ys < top + eh.view(n, 1, 1)) & (xs >= left) & (xs < left + ew.view(n, 1, 1))
    erase = (r[11] < 0.5).view(n, 1, 1) & box
    return torch.where(erase.unsqueeze(1), noise, out)


def lr_at(step: float, total: float, warmup: float, peak: float) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1.0, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.inference_mode()
def split_probabilities(
    model: nn.Module,
    faces: FaceSet,
    mean: float,
    std: float,
    device: torch.device,
    tta: str = "flip",
    batch_size: int = 256,
    autocast: bool = False,
) -> np.ndarray:
    """Probabilities (N, 7) for a split (float32 unless ``autocast``, which training's epochs use)."""
    model.eval()
    dtype = autocast_dtype(device) if autocast else None
    out = []
    for start in range(0, len(faces), batch_size):
        batch = to_input(faces.images[start : start + batch_size], mean, std).to(device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out.append(predict_probabilities(model, batch, tta).float().cpu())
    return torch.cat(out).numpy()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def class_weights(counts: np.ndarray, power: float) -> np.ndarray:
    """``count ** -power``, scaled so that the mean weight per training face is 1."""
    counts = counts.astype(np.float64)
    weights = np.maximum(counts, 1) ** -power
    return np.asarray(weights / (weights * counts).sum() * counts.sum())


def make_network(config: TrainConfig) -> nn.Module:
    """The untrained network of ``config``."""
    return build_network(config.architecture_card(), len(EMOTIONS))


def distil_loss(
    logits: torch.Tensor, soft: torch.Tensor, hard_loss: torch.Tensor, weight: float
) -> torch.Tensor:
    """``(1 - weight) * hard_loss + weight * KL(soft || softmax(logits))``, batch mean; ``soft`` (B, 7)."""
    kl = F.kl_div(F.log_softmax(logits, dim=1), soft, reduction="batchmean")
    return (1.0 - weight) * hard_loss + weight * kl


def train(
    config: TrainConfig,
    log: Any = print,
    data: TrainingData | None = None,
    decide_epochs: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """Train (or resume) and write ``config.out`` (fp16 state_dict) and its JSON card; return the card.

    ``data`` defaults to :func:`load_training_data`. ``decide_epochs``, when given, is called once
    at the end of the warm-up (whose learning rates do not depend on the length of the run) and
    sets ``config.epochs``: the run is then the same as one started with that many epochs.
    """
    device = pick_device(config.device)
    dtype = autocast_dtype(device)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cudnn.benchmark = True
    data = data or load_training_data(config)
    train_set = data.fit
    mean = float(train_set.images.mean() / 255.0)
    std = float(train_set.images.std() / 255.0)

    order_rng = np.random.default_rng(config.seed)
    if config.limit:
        keep = order_rng.permutation(len(train_set))[: config.limit]
        train_set = FaceSet(train_set.images[keep], train_set.labels[keep])
    weights = class_weights(train_set.class_counts(), config.class_weight_power)

    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    model = make_network(config).to(device).to(memory_format=torch.channels_last)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0}],
        lr=config.lr,
        momentum=0.9,
        nesterov=True,
    )
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32, device=device),
        label_smoothing=config.label_smoothing,
    )
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    warmup_steps = steps_per_epoch * config.warmup_epochs

    start_epoch, history, elapsed = 0, [], 0.0
    ckpt_path = config.checkpoint_path()
    if config.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch, history, elapsed = ckpt["epoch"], ckpt["history"], ckpt["elapsed"]
        log(f"resumed from {ckpt_path} at epoch {start_epoch}")

    images = torch.from_numpy(train_set.images).unsqueeze(1).to(device)  # (N, 1, 48, 48) uint8
    labels = torch.from_numpy(train_set.labels).to(device)
    soft_targets = None
    if config.teacher:
        t0 = time.perf_counter()
        teacher = EmotionClassifier(Path(config.teacher))  # its own TTA and precision
        soft_targets = torch.from_numpy(predictions_of(teacher, train_set)).to(device)
        seconds = time.perf_counter() - t0
        log(f"teacher {config.teacher}: soft targets for {len(train_set)} faces in {seconds:.0f} s")
    log(
        f"training on {len(train_set)} faces, {config.epochs} epochs, device {device}, "
        f"autocast {dtype}, {sum(p.numel() for p in model.parameters()):,} parameters"
    )
    epoch = start_epoch
    while epoch < config.epochs:
        if decide_epochs is not None and epoch == min(config.warmup_epochs, config.epochs - 1):
            config.epochs = max(epoch + 1, int(decide_epochs()))
            decide_epochs = None
            log(f"running {config.epochs} epochs")
        total_steps = steps_per_epoch * config.epochs
        t0 = time.perf_counter()
        model.train()
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout masks
        gen = torch.Generator().manual_seed(config.seed * 7919 + epoch)  # augmentation
        order = torch.from_numpy(np.random.default_rng(config.seed + epoch).permutation(len(labels)))
        order = order.to(device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        bar = tqdm(
            range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=None
        )
        for i in bar:
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            x = augment(images[idx].float() / 255.0, gen)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            y = labels[idx]
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + i, total_steps, warmup_steps, config.lr)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
                if soft_targets is not None:
                    loss = distil_loss(logits.float(), soft_targets[idx], loss, config.distil_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            correct += (logits.argmax(1) == y).sum()
            loss_sum += loss.detach() * len(y)
        bar.close()
        seconds = time.perf_counter() - t0
        elapsed += seconds
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": round(float(loss_sum) / len(labels), 4),
            "train_acc": round(int(correct) / len(labels), 4),
            "seconds": round(seconds, 1),
        }
        if data.holdout is not None:
            probs = split_probabilities(model, data.holdout, mean, std, device, autocast=True)
            record["holdout_acc"] = round(float(np.mean(probs.argmax(1) == data.holdout.labels)), 4)
        history.append(record)
        log(" ".join(f"{k}={v}" for k, v in record.items()))
        epoch += 1
        if config.checkpoint_every and (epoch % config.checkpoint_every == 0 or epoch == config.epochs):
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = ckpt_path.with_suffix(".ckpt.tmp")
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch,
                    "history": history,
                    "elapsed": elapsed,
                    "config": _config_dict(config),
                },
                tmp,
            )
            tmp.replace(ckpt_path)

    return _write_model(config, model, mean, std, weights, history, elapsed, data, device, dtype)


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    data = asdict(config)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}


def holdout_scores(
    model: nn.Module, holdout: FaceSet, mean: float, std: float, device: torch.device
) -> dict[str, Any]:
    """Holdout accuracy for every TTA mode (the full evaluation for ``flip``)."""
    probs = {tta: split_probabilities(model, holdout, mean, std, device, tta) for tta in TTA_MODES}
    return tta_scores(probs, holdout.labels)


def _write_model(
    config: TrainConfig,
    model: nn.Module,
    mean: float,
    std: float,
    weights: np.ndarray,
    history: list[dict[str, Any]],
    elapsed: float,
    data: TrainingData,
    device: torch.device,
    dtype: torch.dtype | None,
) -> dict[str, Any]:
    config.out.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().cpu().half() if v.is_floating_point() else v.cpu()
        for k, v in model.state_dict().items()
    }
    torch.save(state, config.out)
    holdout: dict[str, Any] | None = None
    if data.holdout is not None:
        # Score exactly what ships: the float16 weights, run in float32 as EmotionClassifier runs them.
        shipped = make_network(config)
        shipped.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        shipped = shipped.to(device).to(memory_format=torch.channels_last)
        holdout = holdout_scores(shipped, data.holdout, mean, std, device)
    card = {
        "name": "moodtunes-emotion-cnn",
        "architecture": {
            **config.architecture_card(),
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "classes": list(EMOTIONS),
        "input": {
            "size": INPUT_SIZE,
            "channels": "grey",
            "scale": "x / 255",
            "mean": round(mean, 6),
            "std": round(std, 6),
            "normalisation": "(x / 255 - mean) / std",
        },
        "tta": "flip",
        "inference": "softmax averaged over the views of the TTA (flip: the face and its mirror image)",
        "training": {
            "data": data.description,
            "epochs": len(history),
            "batch_size": config.batch_size,
            "optimizer": "SGD nesterov 0.9",
            "lr": config.lr,
            "schedule": f"linear warm-up {config.warmup_epochs} epochs, cosine to 0",
            "weight_decay": config.weight_decay,
            "label_smoothing": config.label_smoothing,
            "class_weight_power": config.class_weight_power,
            "class_weights": {e: round(float(w), 3) for e, w in zip(EMOTIONS, weights, strict=True)},
            **({"teacher": config.teacher, "distil_weight": config.distil_weight} if config.teacher else {}),
            "augmentation": "affine (rotation +-15 deg, scale 0.85-1.15, shift +-10%, mirror), "
            "brightness +-0.1, contrast 0.7-1.3, random erasing p=0.5",
            "seed": config.seed,
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
            "autocast": str(dtype),
            "deterministic": config.deterministic,
            "seconds": round(elapsed, 1),
            "history": history,
        },
        "holdout": holdout,
        "public_test": None,
        "weights_file": config.out.name,
        "weights_dtype": "float16",
        "sha256": _sha256(config.out),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    card_path(config.out).write_text(json.dumps(card, indent=2) + "\n")
    return card


def export_checkpoint(checkpoint: Path, out: Path) -> dict[str, Any]:
    """Write weights and card from an epoch checkpoint (e.g. of an unfinished run); returns the card."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    saved = dict(ckpt["config"])
    saved["data"], saved["out"] = Path(saved["data"]), Path(out)
    config = TrainConfig(**saved)
    device = torch.device("cpu")
    model = make_network(config)
    model.load_state_dict(ckpt["model"])
    model = model.to(memory_format=torch.channels_last)
    data = load_training_data(config)
    mean, std = float(data.fit.images.mean() / 255.0), float(data.fit.images.std() / 255.0)
    weights = class_weights(data.fit.class_counts(), config.class_weight_power)
    return _write_model(
        config,
        model,
        mean,
        std,
        weights,
        ckpt["history"],
        ckpt["elapsed"],
        data,
        device,
        autocast_dtype(device),
    )
