"""Synthetic track catalogs in the three public CSV layouts, for benchmarks and tests.

Tracks are drawn around six mood centres (happy, energetic, calm, sad, intense, dark) in
(valence, energy, danceability, acousticness) with loudness and tempo following energy and
instrumentalness following the centre (calm music mostly instrumental), so that clustering and the
mood model have structure to find. Defects can be planted (duplicate ids, duplicate
name+artists, missing and out-of-range values) and their counts are returned, so an import can be
checked against them. No real track: ids are random base-62 strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

Layout = Literal["kaggle-1921-2020", "tracks-114k", "spotify-tracks-2017-2019"]
LAYOUTS: tuple[Layout, ...] = ("kaggle-1921-2020", "tracks-114k", "spotify-tracks-2017-2019")

_ALPHABET = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
_CENTRES = np.array(
    [  # valence, energy, danceability, acousticness
        [0.80, 0.75, 0.75, 0.15],  # happy
        [0.60, 0.88, 0.65, 0.08],  # energetic
        [0.55, 0.30, 0.55, 0.70],  # calm
        [0.18, 0.25, 0.45, 0.80],  # sad
        [0.25, 0.88, 0.45, 0.05],  # intense
        [0.20, 0.55, 0.70, 0.20],  # dark
    ]
)
_INSTRUMENTAL = np.array([0.05, 0.05, 0.85, 0.25, 0.10, 0.15])
"""Mean instrumentalness around each centre."""
_GENRES = np.array(["pop", "dance", "acoustic", "sad", "metal", "hip-hop"])


def random_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random 22-character base-62 ids (unique in practice), shape ``(n,)``."""
    chars = _ALPHABET[rng.integers(0, len(_ALPHABET), size=(n, 22))]
    return np.ascontiguousarray(chars).view("<U22").ravel()


def synthetic_tracks(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` clean tracks: ``id, name, artists`` (tuples), ``popularity, year, genre``, the features and
    ``instrumentalness``."""
    rng = np.random.default_rng(seed)
    blob = rng.integers(0, len(_CENTRES), size=rows)
    base = _CENTRES[blob] + rng.normal(0, 0.09, size=(rows, 4))
    valence, energy, dance, acoustic = np.clip(base, 0, 1).round(4).T
    n_artists = max(rows // 10, 12)
    names = [f"Artist {i}" if i % 50 else f"Artist's Band {i}" for i in range(n_artists)]
    first, second = rng.integers(0, n_artists, size=(2, rows)).tolist()
    featured = (rng.random(rows) < 0.2).tolist()
    artists = [
        (names[a], names[b]) if f and a != b else (names[a],)
        for a, b, f in zip(first, second, featured, strict=True)
    ]
    # Its own stream, so adding it changed none of the other values.
    noise = np.random.default_rng(seed + 3).normal(0, 0.08, size=rows)
    instrumental = np.clip(_INSTRUMENTAL[blob] + noise, 0, 1).round(4)
    return pd.DataFrame(
        {
            "id": random_ids(rng, rows),
            "name": [f"Song {i}" for i in range(rows)],
            "artists": artists,
            "popularity": np.clip(rng.gamma(2.0, 14.0, size=rows), 0, 100).astype(int),
            "year": rng.integers(1960, 2021, size=rows),
            "genre": _GENRES[blob],
            "valence": valence,
            "energy": energy,
            "danceability": dance,
            "acousticness": acoustic,
            "loudness": np.clip(-22 + 18 * energy + rng.normal(0, 2, rows), -60, 5).round(3),
            "tempo": np.clip(85 + 55 * energy + rng.normal(0, 15, rows), 40, 220).round(3),
            "instrumentalness": instrumental,
        }
    )


def plant_defects(frame: pd.DataFrame, seed: int = 0, fraction: float = 0.01) -> dict[str, int]:
    """Turn rows of ``frame`` (in place) into duplicates and bad values; returns what was planted.

    ``fraction`` of the rows become duplicate ids, as many duplicate name+artists (new id, lower
    popularity than the original), a fifth as many get a missing valence and a tenth an energy of 1.5.
    """
    rng = np.random.default_rng(seed + 1)
    n = len(frame)
    half = n // 2
    count = int(n * fraction)
    planted = {"duplicate_ids": count, "duplicate_tracks": count}
    planted["missing"], planted["out_of_range"] = count // 5, count // 10
    later = rng.permutation(np.arange(half, n))
    dup_id, dup_track = later[:count], later[count : 2 * count]
    frame.loc[dup_id, "id"] = frame.loc[dup_id - half, "id"].to_numpy()
    for col in ("name", "artists"):
        frame.loc[dup_track, col] = frame.loc[dup_track - half, col].to_numpy()
    frame.loc[dup_track, "popularity"] = np.minimum(
        frame.loc[dup_track, "popularity"].to_numpy(), frame.loc[dup_track - half, "popularity"].to_numpy()
    )
    frame.loc[dup_track - half, "popularity"] += 1  # the original stays strictly more popular
    frame["popularity"] = frame["popularity"].clip(0, 100)
    taken = np.concatenate([dup_id, dup_id - half, dup_track, dup_track - half])
    clean = rng.permutation(np.setdiff1d(np.arange(n), taken))
    missing = clean[: planted["missing"]]
    out = clean[planted["missing"] : planted["missing"] + planted["out_of_range"]]
    frame.loc[missing, "valence"] = np.nan
    frame.loc[out, "energy"] = 1.5
    return planted


def to_layout(frame: pd.DataFrame, layout: Layout, seed: int = 0) -> pd.DataFrame:
    """The tracks with the columns, names and value formats of one public layout.

    Only the Kaggle 1921-2020 layout carries ``instrumentalness`` here (the real 114k one has it too),
    so the other two exercise catalogs without it.
    """
    rng = np.random.default_rng(seed + 2)
    n = len(frame)
    extra = {
        "duration_ms": rng.integers(90_000, 400_000, size=n),
        "key": rng.integers(0, 12, size=n),
        "mode": rng.integers(0, 2, size=n),
        "speechiness": rng.random(n).round(4),
        "liveness": rng.random(n).round(4),
        "time_signature": 4,
    }
    feats = ["danceability", "energy", "loudness", "acousticness", "valence", "tempo"]
    if layout == "kaggle-1921-2020":
        years = frame["year"].astype(str)
        dates = np.where(rng.random(n) < 0.5, years, years + "-06-15")
        return pd.DataFrame(
            {
                "id": frame["id"],
                "name": frame["name"],
                "popularity": frame["popularity"],
                "duration_ms": extra["duration_ms"],
                "explicit": rng.integers(0, 2, size=n),
                "artists": [repr(list(a)) for a in frame["artists"]],
                "id_artists": "['0000000000000000000000']",
                "release_date": dates,
                **{c: frame[c] for c in ("danceability", "energy")},
                "key": extra["key"],
                "loudness": frame["loudness"],
                "mode": extra["mode"],
                "speechiness": extra["speechiness"],
                "acousticness": frame["acousticness"],
                "instrumentalness": frame["instrumentalness"],
                "liveness": extra["liveness"],
                "valence": frame["valence"],
                "tempo": frame["tempo"],
                "time_signature": extra["time_signature"],
            }
        )
    if layout == "tracks-114k":
        return pd.DataFrame(
            {
                "": np.arange(n),
                "track_id": frame["id"],
                "artists": [";".join(a) for a in frame["artists"]],
                "album_name": "Album",
                "track_name": frame["name"],
                "popularity": frame["popularity"],
                "duration_ms": extra["duration_ms"],
                "explicit": "False",
                **{c: frame[c] for c in feats},
                "track_genre": frame["genre"],
            }
        )
    return pd.DataFrame(
        {
            "": np.arange(n),
            "artist": [a[0] for a in frame["artists"]],
            "track": frame["name"],
            "track_id": "spotify:track:" + frame["id"],
            "popularity": frame["popularity"],
            "year": frame["year"],
            **{c: frame[c] for c in feats},
            "type": "audio_features",
        }
    )


def write_synthetic_catalog(
    path: Path, rows: int, layout: Layout = "kaggle-1921-2020", seed: int = 0, defects: bool = True
) -> dict[str, int]:
    """Write a synthetic CSV of ``rows`` rows in ``layout``; returns the planted defect counts."""
    frame = synthetic_tracks(rows, seed)
    planted = plant_defects(frame, seed) if defects else {}
    to_layout(frame, layout, seed).to_csv(path, index=False)
    return planted
