"""Music benchmark: catalog import time and per-request recommendation time.

Generates a synthetic catalog in the Kaggle "Spotify Dataset 1921-2020" ``tracks.csv`` layout
(600,000 rows by default, the size of the real file, about 110 MB; :mod:`tests.synthetic_catalog`,
with 1% duplicate ids, 1% duplicate name+artists and 0.3% invalid rows), then times:

* the import (read, validate, de-duplicate, choose k, cluster, assign) and the Parquet write;
* loading the imported catalog (what a bot start does), also through the cache of a raw CSV;
* single recommendations (every emotion, both policies, n=10, then n=50, the same with a seed (a
  varied list) and a "more tracks" request excluding 40 ids and avoiding 20 recent ones), reporting
  p50 / p95 / max in milliseconds. The first request of each mood sorts that mood's ranking (once per
  catalog); it is timed separately as ``first_request_ms`` and left out of the percentiles.

The same is measured on the real 14k-track shared catalog when present. Targets: import of 600k
rows under 60 s; one recommendation under 5 ms. Prints the figures and writes them as JSON.

    .venv/bin/python benchmarks/music.py [--rows 600000] [--out benchmarks/results/music.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.music.catalog import Catalog  # noqa: E402
from core.music.store import cache_file, import_catalog, load_catalog, read_catalog, save_catalog  # noqa: E402
from core.vision.emotion.labels import EMOTIONS  # noqa: E402
from tests.synthetic_catalog import write_synthetic_catalog  # noqa: E402

SHARED_CSV = ROOT.parent / "shared" / "data" / "spotify" / "tracks.csv"


def percentiles_ms(samples: list[float]) -> dict[str, float]:
    """p50 / p95 / max of durations in seconds, as milliseconds."""
    ordered = sorted(samples)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 4),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 4),
        "max_ms": round(1000 * ordered[-1], 4),
        "requests": len(ordered),
    }


def time_requests(catalog: Catalog, repeats: int) -> dict[str, Any]:
    """Per-request latency over every emotion and policy (n=10), n=50, seeded, and "more tracks"."""
    out: dict[str, Any] = {}
    first = []
    for emotion in EMOTIONS:  # the first request of each plan sorts its ranking: timed on its own
        for policy in ("match", "lift"):
            t0 = time.perf_counter()
            catalog.recommend(emotion=emotion, n=50, policy=policy)
            first.append(time.perf_counter() - t0)
    out["first_request_ms"] = percentiles_ms(first)
    for label, n, seeded in (("n10", 10, False), ("n50", 50, False), ("n10_seeded", 10, True)):
        samples = []
        for r in range(repeats):
            for emotion in EMOTIONS:
                for policy in ("match", "lift"):
                    seed = r if seeded else None
                    t0 = time.perf_counter()
                    catalog.recommend(emotion=emotion, n=n, policy=policy, seed=seed)
                    samples.append(time.perf_counter() - t0)
        out[label] = percentiles_ms(samples)
    shown = {t.id for t in catalog.recommend(emotion="happy", n=40)}
    recent = [t.id for t in catalog.recommend(emotion="happy", n=20, exclude=shown)]
    samples = []
    for r in range(repeats * 14):
        t0 = time.perf_counter()
        catalog.recommend(emotion="happy", n=10, exclude=shown, recent=recent, seed=r)
        samples.append(time.perf_counter() - t0)
    out["more_tracks_n10_exclude40_recent20_seeded"] = percentiles_ms(samples)
    return out


def bench_file(csv_path: Path, workdir: Path, repeats: int) -> dict[str, Any]:
    """Import, store, load and query one CSV; returns the figures."""
    t0 = time.perf_counter()
    catalog = import_catalog(csv_path, progress=False)
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    stored = save_catalog(catalog, workdir / (csv_path.stem + ".parquet"))
    save_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loaded = read_catalog(stored)
    load_s = time.perf_counter() - t0
    # A bot configured with the raw CSV: hash it, find the cached import, read that.
    save_catalog(catalog, cache_file(csv_path, workdir / "cache"))
    t0 = time.perf_counter()
    load_catalog(csv_path, cache_dir=workdir / "cache")
    csv_cached_load_s = time.perf_counter() - t0
    assert loaded.report is not None
    return {
        "file": csv_path.name,
        "csv_mb": round(csv_path.stat().st_size / 1e6, 1),
        "rows_read": loaded.report.rows_read,
        "tracks": len(loaded),
        "report": loaded.report.as_dict(),
        "k": loaded.model.k,
        "criterion": loaded.model.criterion,
        "import_s": round(import_s, 2),
        "save_s": round(save_s, 2),
        "import_and_save_s": round(import_s + save_s, 2),
        "parquet_mb": round(stored.stat().st_size / 1e6, 1),
        "load_s": round(load_s, 3),
        "csv_cached_load_s": round(csv_cached_load_s, 3),
        "recommend": time_requests(loaded, repeats),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (1 if a target is missed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600_000, help="synthetic catalog rows (default 600000)")
    parser.add_argument("--repeats", type=int, default=50, help="rounds of 14 requests per figure")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "music.json")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(),
        },
        "targets": {"import_600k_s": 60, "recommend_ms": 5},
    }
    with tempfile.TemporaryDirectory(prefix="moodtunes-bench-") as tmp:
        work = Path(tmp)
        csv_path = work / "tracks.csv"
        t0 = time.perf_counter()
        planted = write_synthetic_catalog(csv_path, args.rows, "kaggle-1921-2020")
        size_mb = csv_path.stat().st_size / 1e6
        print(
            f"generated {args.rows:,} synthetic rows ({size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s"
        )
        synthetic = bench_file(csv_path, work, args.repeats)
        synthetic["planted"] = planted
        synthetic["report_matches_planted"] = all(synthetic["report"][k] == v for k, v in planted.items())
        results["synthetic_kaggle_1921_2020"] = synthetic
        if SHARED_CSV.is_file():
            results["shared_tracks_csv"] = bench_file(SHARED_CSV, work, args.repeats)
    ok = True
    for key in ("synthetic_kaggle_1921_2020", "shared_tracks_csv"):
        if key not in results:
            continue
        r = results[key]
        rec = r["recommend"]
        print(
            f"{key}: {r['rows_read']:,} rows -> {r['tracks']:,} tracks, k={r['k']}; "
            f"import {r['import_s']:.1f} s + save {r['save_s']:.1f} s; load {r['load_s']:.2f} s "
            f"(from the CSV's cached import: {r['csv_cached_load_s']:.2f} s)"
        )
        for label, figures in rec.items():
            if label == "first_request_ms":
                print(f"  first request of each plan (sorts its ranking): max {figures['max_ms']:.1f} ms")
                continue
            print(
                f"  recommend {label}: p50 {figures['p50_ms']:.3f} ms, p95 {figures['p95_ms']:.3f} ms, "
                f"max {figures['max_ms']:.3f} ms ({figures['requests']} requests)"
            )
        ok &= rec["n10"]["p95_ms"] < 5 and rec["n10_seeded"]["p95_ms"] < 5
    big = results["synthetic_kaggle_1921_2020"]
    ok &= args.rows < 600_000 or big["import_and_save_s"] < 60
    ok &= big["report_matches_planted"]
    print(f"import report matches the planted defects: {big['report_matches_planted']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}; targets {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
