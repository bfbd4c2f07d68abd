"""A linked user's taste on Spotify: their top artists and tracks (``GET /me/top/artists`` and
``GET /me/top/tracks``, scope ``user-top-read``), read into plain values.

Spotify answers a paging object ``{"items": [...], "total", "limit", "offset", "next", ...}``; an
artist item has ``id`` and ``name``, a track item ``id``, ``name`` and ``artists`` (simplified artist
objects). Anything unreadable in a page is skipped, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TIME_RANGES = ("short_term", "medium_term", "long_term")
"""Spotify's windows: about 4 weeks, 6 months, a year."""
DEFAULT_TIME_RANGE = "medium_term"
TOP_LIMIT = 20
"""Items read per list (Spotify allows 1-50)."""


@dataclass(frozen=True)
class TopTrack:
    """One of the user's top tracks: bare id, name and artist names."""

    id: str
    name: str
    artists: tuple[str, ...]


@dataclass(frozen=True)
class TopTaste:
    """The user's top artists (names, most listened first) and top tracks."""

    artists: tuple[str, ...] = ()
    tracks: tuple[TopTrack, ...] = ()

    def artist_names(self) -> tuple[str, ...]:
        """Top artists first, then the other artists of the top tracks, each once (any case)."""
        seen: dict[str, str] = {}
        for name in (*self.artists, *(a for t in self.tracks for a in t.artists)):
            seen.setdefault(name.casefold(), name)
        return tuple(seen.values())


def _items(page: Any) -> list[dict[str, Any]]:
    items = page.get("items") if isinstance(page, dict) else None
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def parse_top_artists(page: Any) -> tuple[str, ...]:
    """Artist names of a ``/me/top/artists`` page, in order."""
    return tuple(str(i["name"]) for i in _items(page) if isinstance(i.get("name"), str) and i["name"])


def parse_top_tracks(page: Any) -> tuple[TopTrack, ...]:
    """Tracks of a ``/me/top/tracks`` page, in order (items without an id are skipped)."""
    tracks = []
    for item in _items(page):
        if not isinstance(item.get("id"), str) or not item["id"]:
            continue
        artists: list[Any] = item["artists"] if isinstance(item.get("artists"), list) else []
        names = tuple(
            str(a["name"]) for a in artists if isinstance(a, dict) and isinstance(a.get("name"), str)
        )
        tracks.append(TopTrack(str(item["id"]), str(item.get("name") or ""), names))
    return tuple(tracks)
