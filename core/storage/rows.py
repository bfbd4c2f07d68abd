"""What the store's queries return: small typed rows, and the constants of what is kept how long."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

JOURNAL_KEEP_S = 31 * 86_400.0
"""Mood journal entries older than this are swept (the history shows 30 days)."""
MAX_SAMPLES_PER_SCOPE = 20
"""Face samples kept per user and chat; enrolling more replaces the oldest."""
PLAYLIST_CLAIM_S = 120.0
"""A playlist being made by a worker that has not finished in this time is taken over by another."""


@dataclass(frozen=True)
class UserSettings:
    """Per-user preferences: tracks per reply (1..50), the mood policy (``match`` or ``lift``) and the
    language chosen with ``/language`` (None: the platform's)."""

    track_count: int
    mood_policy: str
    language: str | None = None


@dataclass(frozen=True)
class UserLanguage:
    """What decides a user's language: their ``/language`` ``choice`` (None: follow the platform) and
    the ``locale`` their platform last reported (None: never reported)."""

    choice: str | None = None
    locale: str | None = None


LOCALE_LIMIT = 35
"""Characters of a platform's language code kept (BCP 47 tags are shorter)."""


@dataclass(frozen=True)
class GalleryRows:
    """Enrolled samples of one chat for one model: ``vectors`` (N, dim) float32, ``user_ids`` (N,);
    ``generation`` is the chat's gallery generation these rows were read at."""

    user_ids: np.ndarray
    vectors: np.ndarray
    names: dict[int, str]
    generation: int = 0


@dataclass(frozen=True)
class Deleted:
    """What :meth:`Store.delete_user` removed, for the confirmation message."""

    users: int
    embeddings: int
    spotify_tokens: int = 0
    journal_entries: int = 0
    ratings: int = 0


@dataclass
class ResultRow:
    """What a photo reply's buttons act on: the emotion and policy, tracks per list, the track ids
    shown so far in the chain and those of the latest list; ``version`` guards concurrent updates."""

    token: str
    user_id: int
    chat_id: int
    emotion: str
    policy: str
    count: int
    shown: list[str] = field(default_factory=list)
    tracks: list[str] = field(default_factory=list)
    version: int = 0


@dataclass(frozen=True)
class Conversation:
    """An open conversation step; an enrolment photo given with /enroll waits as its ``embedding``."""

    step: str
    expires_at: float
    model: str | None = None
    embedding: np.ndarray | None = None
    request: str | None = None
    """The platform request (e.g. a Telegram update) that made this step."""


@dataclass(frozen=True)
class JournalEntry:
    """One photo in the mood journal: when, the emotion the songs followed, and the songs' mood
    (``valence`` and ``energy`` are the means of the songs sent, None when none were sent)."""

    at: float
    emotion: str
    mood: str = ""
    policy: str = "match"
    tracks: int = 0
    valence: float | None = None
    energy: float | None = None


@dataclass(frozen=True)
class JournalState:
    """A user's journal switch: ``enabled``, and the open consent question's token (None if none)."""

    enabled: bool
    ask_token: str | None = None
    ask_until: float | None = None


@dataclass(frozen=True)
class TasteRow:
    """A linked user's cached Spotify taste: artist names (most listened first), top track ids, when it
    was last read (or tried) and whether that read worked."""

    artists: tuple[str, ...]
    tracks: tuple[str, ...]
    fetched_at: float
    ok: bool


@dataclass(frozen=True)
class UpdateClaim:
    """Outcome of :meth:`Store.claim_update`: ``state`` is ``claimed`` (handle it; ``progress``
    messages of its answer were already sent by a worker that died), ``done`` or ``busy``."""

    state: str
    progress: int = 0


@dataclass(frozen=True)
class PlaylistClaim:
    """Outcome of :meth:`Store.claim_playlist`: ``mine`` (make it now), or the ``url`` already made,
    or neither (another worker is making it: wait and ask again)."""

    mine: bool
    url: str | None = None


def _ids(text: str) -> list[str]:
    return text.split() if text else []


def tracks_key(track_ids: Sequence[str]) -> str:
    """A short stable key for a list of track ids (sha256 hex)."""
    return hashlib.sha256(" ".join(track_ids).encode()).hexdigest()


def _user_language(row: Sequence[Any] | None) -> UserLanguage:
    if row is None:
        return UserLanguage()
    return UserLanguage(
        str(row[0]) if row[0] is not None else None, str(row[1]) if row[1] is not None else None
    )
