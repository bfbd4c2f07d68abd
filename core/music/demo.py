"""Step 5 of ``moodtunes demo``: tracks for the emotion found in the demo photo, and how fast."""

from __future__ import annotations

import statistics
import time

from core.config import Settings
from core.music.errors import CatalogError
from core.music.store import load_catalog
from core.vision.emotion.labels import EMOTIONS

TIMING_REPEATS = 200
"""Requests timed to report the per-request time (the median)."""


def demo_lines(settings: Settings, emotion: str) -> list[str]:
    """The lines the demo prints for ``emotion``: the mood, per-request time and the tracks.

    Every line but the track list starts with ``"5. "``; a missing or unusable catalog gives one
    line saying how to get one. The import of a CSV is cached in ``settings.cache_dir``.
    """
    path = settings.default_catalog
    if path is None:
        return [
            "5. music: no track catalog configured. Set MOODTUNES_CATALOG to a Spotify CSV with audio "
            "features (Kaggle 'Spotify Dataset 1921-2020' or 'Spotify Tracks Dataset'), or run "
            "`moodtunes catalog fetch` (needs internet) to download one"
        ]
    note = ""
    if emotion not in EMOTIONS:
        note, emotion = f" ({emotion!r} is not an emotion I know; using neutral)", "neutral"
    t0 = time.perf_counter()
    try:
        catalog = load_catalog(path, cache_dir=settings.cache_dir)
    except (CatalogError, OSError) as exc:
        return [f"5. music: cannot use the catalog {path}: {exc}"]
    load_s = time.perf_counter() - t0
    n = settings.tracks_default
    tracks = catalog.recommend(emotion=emotion, n=n)
    times = []
    for _ in range(TIMING_REPEATS):
        t0 = time.perf_counter()
        catalog.recommend(emotion=emotion, n=n)
        times.append(time.perf_counter() - t0)
    article = "an" if emotion[0] in "aeiou" else "a"
    lines = [
        f"5. music for {article} {emotion} face{note}: {catalog.mood_of(emotion)}; {len(tracks)} tracks "
        f"from {path.name} ({len(catalog):,} tracks in {catalog.model.k} mood clusters, "
        f"loaded in {load_s:.2f} s)",
        f"   one recommendation takes {1000 * statistics.median(times):.2f} ms "
        f"(median of {TIMING_REPEATS} requests)",
    ]
    lines += [f"   {i:>2}. {t.label()} (popularity {t.popularity}) {t.url}" for i, t in enumerate(tracks, 1)]
    return lines
