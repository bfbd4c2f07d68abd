"""Emotion CNN: model size and CPU inference time per face, batch 1 and batch 32.

Usage: ``.venv/bin/python benchmarks/emotion.py [--repeats 50]``; figures go to stdout and
``benchmarks/results/emotion.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.vision.emotion.classifier import DEFAULT_WEIGHTS, EmotionClassifier  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description="emotion CNN benchmark")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "emotion.json")
    args = parser.parse_args()
    clf = EmotionClassifier()
    faces = np.random.default_rng(0).integers(0, 255, (32, 48, 48), dtype=np.uint8)
    result: dict[str, object] = {
        "machine": f"{platform.node()} {platform.machine()}, {torch.get_num_threads()} torch threads",
        "weights_bytes": DEFAULT_WEIGHTS.stat().st_size,
        "parameters": sum(p.numel() for p in clf.model.parameters()),
        "mirror_averaging": clf.flip_tta,
    }
    for batch in (1, 32):
        clf.probabilities(faces[:batch])
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            clf.probabilities(faces[:batch])
            times.append(1000 * (time.perf_counter() - t0))
        p50 = statistics.median(times)
        result[f"batch{batch}_p50_ms"] = round(p50, 3)
        result[f"batch{batch}_per_face_ms"] = round(p50 / batch, 3)
        per_face = p50 / batch
        print(f"batch {batch:2d}: {p50:.2f} ms per call, {per_face:.3f} ms per face (p50)")
    print(f"weights {result['weights_bytes'] / 1e6:.2f} MB, {result['parameters']:,} parameters")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
