"""The one track schema every catalog layout is normalised to, and the :class:`Track` record.

Audio features follow Spotify's definitions: ``valence``, ``energy``, ``danceability``,
``acousticness`` and the optional ``instrumentalness`` are in [0, 1]; ``loudness`` is in dB (about
-60 to 0); ``tempo`` is in beats per minute. ``popularity`` is Spotify's 0-100 score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

TRACK_URL = "https://open.spotify.com/track/{}"
"""Public web page of a track; ``{}`` is the bare 22-character id."""

ID_PATTERN = re.compile(r"[0-9A-Za-z]{22}")
"""A bare Spotify track id (base-62, 22 characters)."""

FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "valence": (0.0, 1.0),
    "energy": (0.0, 1.0),
    "danceability": (0.0, 1.0),
    "acousticness": (0.0, 1.0),
    "loudness": (-60.0, 10.0),
    "tempo": (0.0, 300.0),
}
"""The audio features a catalog must have, with the closed range a valid value lies in (units above)."""

FEATURES: tuple[str, ...] = tuple(FEATURE_RANGES)
"""Feature column names, in storage order."""

OPTIONAL_FEATURE_RANGES: dict[str, tuple[float, float]] = {"instrumentalness": (0.0, 1.0)}
"""Audio features read when the catalog has them (all three public layouts do), with their valid range.

They describe mood (calm music is mostly instrumental) but not every catalog carries them, so a
catalog without them still imports; a missing or out-of-range value is stored as unknown (null), never
rejected. They are not clustered on (see :mod:`core.music.clustering`); the mood model uses them.
"""

OPTIONAL_FEATURES: tuple[str, ...] = tuple(OPTIONAL_FEATURE_RANGES)
"""Optional feature column names, in storage order (after :data:`FEATURES`)."""

POPULARITY_RANGE = (0, 100)
YEAR_RANGE = (1800, 2100)
"""Years outside this range are stored as unknown (None), not rejected."""

MAX_PER_ARTIST = 2
"""No artist appears more than this many times in one recommendation list."""


@dataclass(frozen=True, slots=True)
class Track:
    """One catalog track.

    ``id`` is the bare 22-character Spotify id; ``artists`` keeps the catalog's order (main artist
    first); ``popularity`` is 0-100; ``year`` and ``genre`` are None when the catalog lacks them;
    ``valence``, ``energy`` and ``danceability`` are Spotify audio features in [0, 1].
    """

    id: str
    name: str
    artists: tuple[str, ...]
    popularity: int
    year: int | None
    genre: str | None
    valence: float
    energy: float
    danceability: float

    @property
    def url(self) -> str:
        """``https://open.spotify.com/track/<id>``."""
        return TRACK_URL.format(self.id)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: exactly ``id, name, artists, popularity, valence, energy, danceability, url``."""
        return {
            "id": self.id,
            "name": self.name,
            "artists": list(self.artists),
            "popularity": self.popularity,
            "valence": self.valence,
            "energy": self.energy,
            "danceability": self.danceability,
            "url": self.url,
        }

    def label(self) -> str:
        """``Artist A, Artist B – Name``, for people."""
        return f"{', '.join(self.artists)} – {self.name}"
