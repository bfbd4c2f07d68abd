"""Face pipeline speed: ours (downscaled MTCNN + upright crops + FaceNet) vs facenet-pytorch defaults.

For every photo in ``../shared/data/photos`` (up to 2048 px) it times detection + alignment +
embedding over repeated runs (p50 and p95, milliseconds), then the same photos through facenet-pytorch's
defaults (``MTCNN(keep_all=True)`` on the full photo, then InceptionResnetV1 on its crops) in the same
run, and prints the ratio. It also checks that both find the same faces (every face of the defaults
with probability >= 0.9 matched by one of ours at IoU >= 0.5, and vice versa), and reports the peak
resident memory with the models loaded. Figures go to stdout and ``benchmarks/results/face_pipeline.json``.

Usage: ``.venv/bin/python benchmarks/face_pipeline.py [--repeats 7] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from core.config import load_settings  # noqa: E402
from core.vision.analyzer import FaceAnalyzer  # noqa: E402
from core.vision.imaging import read_image_file  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..100)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description="face pipeline benchmark")
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "photos")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "face_pipeline.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from facenet_pytorch import MTCNN

    settings = load_settings()
    pipeline = FaceAnalyzer(settings, with_emotion=False)
    default_mtcnn = MTCNN(keep_all=True)
    facenet = pipeline.embedder.model
    photos = sorted(args.photos.glob("*.jpg"))
    images = {p.name: read_image_file(p) for p in photos}
    rss_loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def ours(rgb: np.ndarray) -> list[np.ndarray]:
        faces = pipeline.detect(rgb)
        pipeline.embed(rgb, faces)
        return [np.array(f.box) for f in faces]

    def defaults(rgb: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            boxes, probs = default_mtcnn.detect(rgb)
            crops = default_mtcnn.extract(rgb, boxes, None)
            if crops is not None:
                facenet(crops)
        if boxes is None:
            return []
        return [np.asarray(b, float) for b, p in zip(boxes, probs, strict=True) if p >= 0.9]

    rows = []
    all_ours: list[float] = []
    all_defaults: list[float] = []
    for name, rgb in images.items():
        ours(rgb), defaults(rgb)  # warm-up
        t_ours, t_def = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            our_boxes = ours(rgb)
            t_ours.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            def_boxes = defaults(rgb)
            t_def.append(1000 * (time.perf_counter() - t0))
        same = all(any(iou(d, o) >= 0.5 for o in our_boxes) for d in def_boxes) and all(
            any(iou(o, d) >= 0.5 for d in def_boxes) for o in our_boxes
        )
        row = {
            "photo": name,
            "size": f"{rgb.shape[1]}x{rgb.shape[0]}",
            "faces_ours": len(our_boxes),
            "faces_defaults_p>=0.9": len(def_boxes),
            "same_faces": same,
            "ours_p50_ms": round(statistics.median(t_ours), 1),
            "ours_p95_ms": round(percentile(t_ours, 95), 1),
            "defaults_p50_ms": round(statistics.median(t_def), 1),
            "defaults_p95_ms": round(percentile(t_def, 95), 1),
            "speedup_p50": round(statistics.median(t_def) / statistics.median(t_ours), 1),
        }
        rows.append(row)
        all_ours += t_ours
        all_defaults += t_def
        print(
            f"{name:20s} {row['size']:>10s} faces {row['faces_ours']}/{row['faces_defaults_p>=0.9']} "
            f"same={same!s:5s} ours p50 {row['ours_p50_ms']:6.1f} p95 {row['ours_p95_ms']:6.1f} ms  "
            f"defaults p50 {row['defaults_p50_ms']:6.1f} p95 {row['defaults_p95_ms']:6.1f} ms  "
            f"x{row['speedup_p50']}",
            flush=True,
        )
    summary = {
        "machine": describe(f"{torch.get_num_threads()} torch threads"),
        "torch": torch.__version__,
        "repeats": args.repeats,
        "ours_p50_ms": round(statistics.median(all_ours), 1),
        "ours_p95_ms": round(percentile(all_ours, 95), 1),
        "defaults_p50_ms": round(statistics.median(all_defaults), 1),
        "defaults_p95_ms": round(percentile(all_defaults, 95), 1),
        "speedup_p50": round(statistics.median(all_defaults) / statistics.median(all_ours), 1),
        "all_same_faces": all(r["same_faces"] for r in rows),
        "peak_rss_models_loaded_mb": round(rss_loaded_mb),
        "peak_rss_end_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "photos": rows,
    }
    print(
        f"all photos: ours p50 {summary['ours_p50_ms']} ms, p95 {summary['ours_p95_ms']} ms; defaults p50 "
        f"{summary['defaults_p50_ms']} ms, p95 {summary['defaults_p95_ms']} ms; x{summary['speedup_p50']} "
        f"faster; same faces: {summary['all_same_faces']}; peak RSS "
        f"{summary['peak_rss_models_loaded_mb']} MB loaded, {summary['peak_rss_end_mb']} MB at the end"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
