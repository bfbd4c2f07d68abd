"""Pure helpers for playlists: names, descriptions, track URIs and batches."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

BATCH_SIZE = 100
"""Spotify adds at most 100 items per request."""

_TRACK_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_URI_PREFIX = "spotify:track:"


def track_uris(track_ids: Iterable[str]) -> list[str]:
    """``spotify:track:<id>`` URIs for bare 22-character ids (URIs pass through), first occurrence kept.

    Raises ValueError naming the first id that is not a Spotify track id.
    """
    uris: list[str] = []
    seen: set[str] = set()
    for raw in track_ids:
        tid = raw.strip()
        if tid.startswith(_URI_PREFIX):
            tid = tid[len(_URI_PREFIX) :]
        if not _TRACK_ID.match(tid):
            raise ValueError(f"not a Spotify track id: {raw!r}")
        if tid not in seen:
            seen.add(tid)
            uris.append(_URI_PREFIX + tid)
    return uris


def batches(items: Sequence[str], size: int = BATCH_SIZE) -> list[list[str]]:
    """``items`` cut into lists of at most ``size``, in order."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def clean_mood(mood: str) -> str:
    """The mood as shown in names: one line, trimmed, at most 40 characters (``mixed`` when blank)."""
    text = " ".join(mood.split())[:40]
    return text or "mixed"


def playlist_name(mood: str, day: date) -> str:
    """E.g. ``moodtunes · happy · 2026-11-23``."""
    return f"moodtunes · {clean_mood(mood)} · {day.isoformat()}"


def playlist_description(mood: str, count: int) -> str:
    """One line saying how the playlist was made (Spotify descriptions take no newlines)."""
    songs = "song" if count == 1 else "songs"
    return (
        f"Made by moodtunes: {count} {songs} chosen from a local track catalog to fit the mood "
        f"of a selfie ({clean_mood(mood)})."
    )


def request_mark() -> str:
    """A fresh marker for one create request (``[mt 1a2b3c4d]``), appended to the description so a
    retry can recognise the playlist that a request with a lost answer made after all."""
    return f"[mt {secrets.token_hex(4)}]"


def find_made(page: Any, mark: str, name: str) -> dict[str, Any] | None:
    """The playlist in a ``/me/playlists`` page that a create request with a lost answer made: the one
    whose description carries ``mark``, else (Spotify may leave descriptions out of listings) an empty
    playlist of the same name; at worst that is an earlier failed attempt's leftover, as good to fill
    as a new one. None if there is neither."""
    items = [i for i in (page.get("items") if isinstance(page, dict) else None) or [] if isinstance(i, dict)]
    for item in items:
        if mark in str(item.get("description") or ""):
            return item
    for item in items:
        if item.get("name") == name and _item_count(item) == 0:
            return item
    return None


def _item_count(playlist: dict[str, Any]) -> int | None:
    """``items.total`` (or the older ``tracks.total``) of a playlist object; None when absent."""
    for key in ("items", "tracks"):
        field = playlist.get(key)
        if isinstance(field, dict) and isinstance(field.get("total"), int):
            return int(field["total"])
    return None


def playlist_url(playlist: dict[str, Any]) -> str:
    """The playlist's web address (``external_urls.spotify``, else built from its id)."""
    url = (playlist.get("external_urls") or {}).get("spotify")
    return str(url) if url else f"https://open.spotify.com/playlist/{playlist['id']}"
