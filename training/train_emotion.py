"""Train the emotion CNN on FER2013 (Kaggle image-folder layout) and write weights plus a model card.

Run it as ``moodtunes train-emotion --data ../shared/data/fer2013 --out models/emotion/emotion_cnn.pt``.
It uses a GPU when one is available, otherwise the CPU with bfloat16 autocast where the processor
supports it (about 1,100 images/s on 2 cores for the default network). Every epoch writes a
checkpoint next to the output; ``--resume`` continues from it. A fixed seed gives the same shuffles,
augmentations and dropout masks on a resumed run as on an uninterrupted one.

Recipe: random affine (rotation, scale, shift, mirror), brightness/contrast jitter and random erasing
on each batch; label smoothing; class weights proportional to ``count ** -power`` (FER2013's
"disgust" class is 16x smaller than "happy"); SGD with Nesterov momentum, linear warm-up then cosine
decay. The validation split is only reported, never used to pick an epoch, so its accuracy is honest.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from core.vision.emotion.classifier import card_path, predict_logits, to_input
from core.vision.emotion.labels import EMOTIONS
from core.vision.emotion.network import INPUT_SIZE, EmotionNet
from training.emotion_dataset import FaceSet, load_split
from training.emotion_evaluation import Evaluation, evaluate


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
    widths: tuple[int, ...] = (48, 96, 192, 384)
    convs_per_stage: int = 2
    dropout: float = 0.3
    seed: int = 42
    device: str = "auto"
    resume: bool = False
    limit: int = 0
    """Train on the first ``limit`` shuffled images only (0 = all); for smoke tests."""
    extra: dict[str, Any] = field(default_factory=dict)

    def checkpoint_path(self) -> Path:
        """Where each epoch's checkpoint goes: ``<out>.ckpt``."""
        return self.out.with_suffix(".ckpt")


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


def augment(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random affine + mirror, brightness/contrast jitter and erasing on a (N, 1, H, W) batch in [0, 1].

    All random numbers come from ``gen`` (on the CPU), so a seed fixes the augmentation.
    """
    n = batch.shape[0]

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return (torch.rand(*(shape or (n,)), generator=gen) * (high - low) + low).to(batch.device)

    angle = uniform(-15, 15) * math.pi / 180
    scale = uniform(0.85, 1.15)
    mirror = torch.where(uniform(0, 1) < 0.5, -1.0, 1.0).to(batch.device)
    shift = uniform(-0.1, 0.1, n, 2) * 2  # affine_grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * mirror, -sin, shift[:, 0]], 1), torch.stack([sin * mirror, cos, shift[:, 1]], 1)],
        1,
    )
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    out = F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)

    contrast = uniform(0.7, 1.3).view(n, 1, 1, 1)
    brightness = uniform(-0.1, 0.1).view(n, 1, 1, 1)
    mean = out.mean(dim=(2, 3), keepdim=True)
    out = ((out - mean) * contrast + mean + brightness).clamp(0, 1)

    # Random erasing: one rectangle of 2-20% of the face, for half of the batch.
    h, w = batch.shape[2:]
    area = uniform(0.02, 0.2) * h * w
    aspect = torch.exp(uniform(math.log(0.3), math.log(3.3)))
    eh = torch.sqrt(area * aspect).clamp(1, h - 1)
    ew = torch.sqrt(area / aspect).clamp(1, w - 1)
    top = uniform(0, 1) * (h - eh)
    left = uniform(0, 1) * (w - ew)
    ys = torch.arange(h, device=batch.device).view(1, h, 1)
    xs = torch.arange(w, device=batch.device).view(1, 1, w)
    box = (
        (ys >= top.view(n, 1, 1))
        & (ys < (top + eh).view(n, 1, 1))
        & (xs >= left.view(n, 1, 1))
        & (xs < (left + ew).view(n, 1, 1))
    )
    erase = (uniform(0, 1) < 0.5).view(n, 1, 1) & box
    noise = uniform(0, 1, n, h, w)
    return torch.where(erase.unsqueeze(1), noise.unsqueeze(1), out)


def lr_at(step: float, total: float, warmup: float, peak: float) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1.0, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.inference_mode()
def predict_split(
    model: EmotionNet,
    faces: FaceSet,
    mean: float,
    std: float,
    device: torch.device,
    flip: bool = True,
    batch_size: int = 512,
    autocast: bool = True,
) -> np.ndarray:
    """Predicted class indices (N,) for a split (``autocast`` as in training, else float32)."""
    model.eval()
    dtype = autocast_dtype(device) if autocast else None
    out = []
    for start in range(0, len(faces), batch_size):
        batch = to_input(faces.images[start : start + batch_size], mean, std).to(device)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out.append(predict_logits(model, batch, flip).argmax(1).cpu())
    return torch.cat(out).numpy()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def train(config: TrainConfig, log: Any = print) -> dict[str, Any]:
    """Train (or resume) and write ``config.out`` (fp16 state_dict) and its JSON card; return the card."""
    device = pick_device(config.device)
    dtype = autocast_dtype(device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    train_set = load_split(config.data / "train")
    val_dir = config.data / "val"
    val_set = load_split(val_dir) if val_dir.is_dir() else None
    mean = float(train_set.images.mean() / 255.0)
    std = float(train_set.images.std() / 255.0)

    order_rng = np.random.default_rng(config.seed)
    if config.limit:
        keep = order_rng.permutation(len(train_set))[: config.limit]
        train_set = FaceSet(train_set.images[keep], train_set.labels[keep])
    counts = train_set.class_counts().astype(np.float64)
    weights = np.maximum(counts, 1) ** -config.class_weight_power
    weights = weights / (weights * counts).sum() * counts.sum()  # mean weight per sample = 1

    _seed_all(config.seed)
    model = EmotionNet(config.widths, config.convs_per_stage, len(EMOTIONS), config.dropout)
    model = model.to(device).to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
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
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = steps_per_epoch * config.warmup_epochs

    start_epoch, history, elapsed = 0, [], 0.0
    ckpt_path = config.checkpoint_path()
    if config.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch, history, elapsed = ckpt["epoch"], ckpt["history"], ckpt["elapsed"]
        log(f"resumed from {ckpt_path} at epoch {start_epoch}")

    images = torch.from_numpy(train_set.images).unsqueeze(1)  # (N, 1, 48, 48) uint8, stays on CPU
    labels = torch.from_numpy(train_set.labels)
    log(
        f"training on {len(train_set)} faces, {config.epochs} epochs, device {device}, "
        f"autocast {dtype}, {sum(p.numel() for p in model.parameters()):,} parameters"
    )
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        model.train()
        torch.manual_seed(config.seed * 1000 + epoch)  # dropout masks
        gen = torch.Generator().manual_seed(config.seed * 7919 + epoch)  # augmentation
        order = torch.from_numpy(np.random.default_rng(config.seed + epoch).permutation(len(labels)))
        seen, correct, loss_sum = 0, 0, 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", leave=False)
        for i in bar:
            idx = order[i * config.batch_size : (i + 1) * config.batch_size]
            x = augment(images[idx].to(device).float() / 255.0, gen)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            y = labels[idx].to(device)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + i, total_steps, warmup_steps, config.lr)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                logits = model(x)
                loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        bar.close()
        elapsed += time.perf_counter() - t0
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": round(loss_sum / seen, 4),
            "train_acc": round(correct / seen, 4),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        if val_set is not None:
            record["val_acc"] = round(
                float(np.mean(predict_split(model, val_set, mean, std, device) == val_set.labels)), 4
            )
        history.append(record)
        log(" ".join(f"{k}={v}" for k, v in record.items()))
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = ckpt_path.with_suffix(".ckpt.tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch + 1,
                "history": history,
                "elapsed": elapsed,
                "config": _config_dict(config),
            },
            tmp,
        )
        tmp.replace(ckpt_path)

    return _write_model(config, model, mean, std, weights, history, elapsed, val_set, device, dtype)


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    data = asdict(config)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}


def _write_model(
    config: TrainConfig,
    model: EmotionNet,
    mean: float,
    std: float,
    weights: np.ndarray,
    history: list[dict[str, Any]],
    elapsed: float,
    val_set: FaceSet | None,
    device: torch.device,
    dtype: torch.dtype | None,
) -> dict[str, Any]:
    config.out.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().cpu().half() if v.is_floating_point() else v.cpu()
        for k, v in model.state_dict().items()
    }
    torch.save(state, config.out)
    validation: dict[str, Any] | None = None
    if val_set is not None:
        # Score exactly what ships: the float16 weights, run in float32 as EmotionClassifier runs them.
        shipped = EmotionNet(config.widths, config.convs_per_stage, len(EMOTIONS), config.dropout)
        shipped.load_state_dict({k: v.float() for k, v in state.items()})
        shipped = shipped.to(memory_format=torch.channels_last)
        cpu = torch.device("cpu")
        with_flip = evaluate(predict_split(shipped, val_set, mean, std, cpu, autocast=False), val_set.labels)
        no_flip = evaluate(
            predict_split(shipped, val_set, mean, std, cpu, flip=False, autocast=False), val_set.labels
        )
        validation = {
            "split": str(config.data / "val"),
            **with_flip.as_dict(),
            "accuracy_without_flip": round(no_flip.accuracy, 4),
        }
    card = {
        "name": "moodtunes-emotion-cnn",
        "architecture": {
            "type": "EmotionNet (VGG-style, core/emotion/network.py)",
            "widths": list(config.widths),
            "convs_per_stage": config.convs_per_stage,
            "dropout": config.dropout,
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
        "inference": "softmax averaged over the face and its mirror image",
        "training": {
            "data": f"FER2013 train split, {len(history) and config.data / 'train'}",
            "epochs": len(history),
            "batch_size": config.batch_size,
            "optimizer": "SGD nesterov 0.9",
            "lr": config.lr,
            "schedule": f"linear warm-up {config.warmup_epochs} epochs, cosine to 0",
            "weight_decay": config.weight_decay,
            "label_smoothing": config.label_smoothing,
            "class_weights": {e: round(float(w), 3) for e, w in zip(EMOTIONS, weights, strict=True)},
            "augmentation": "affine (rotation +-15 deg, scale 0.85-1.15, shift +-10%, mirror), "
            "brightness +-0.1, contrast 0.7-1.3, random erasing p=0.5",
            "seed": config.seed,
            "device": str(device),
            "autocast": str(dtype),
            "seconds": round(elapsed, 1),
            "history": history,
        },
        "validation": validation,
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
    saved["widths"] = tuple(saved["widths"])
    config = TrainConfig(**saved)
    device = torch.device("cpu")
    model = EmotionNet(config.widths, config.convs_per_stage, len(EMOTIONS), config.dropout)
    model.load_state_dict(ckpt["model"])
    model = model.to(memory_format=torch.channels_last)
    train_set = load_split(config.data / "train")
    mean, std = float(train_set.images.mean() / 255.0), float(train_set.images.std() / 255.0)
    counts = train_set.class_counts().astype(np.float64)
    weights = np.maximum(counts, 1) ** -config.class_weight_power
    weights = weights / (weights * counts).sum() * counts.sum()
    val_dir = config.data / "val"
    val_set = load_split(val_dir) if val_dir.is_dir() else None
    return _write_model(
        config,
        model,
        mean,
        std,
        weights,
        ckpt["history"],
        ckpt["elapsed"],
        val_set,
        device,
        autocast_dtype(device),
    )


def evaluation_of(model_path: Path, split: Path) -> Evaluation:
    """Accuracy of a saved model (``.pt`` + card) on a labelled split folder, with mirror averaging."""
    from core.vision.emotion.classifier import EmotionClassifier

    clf = EmotionClassifier(model_path)
    faces = load_split(split)
    predicted = np.concatenate(
        [clf.probabilities(faces.images[s : s + 512]).argmax(1) for s in range(0, len(faces), 512)]
    )
    return evaluate(predicted, faces.labels)
