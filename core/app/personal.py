"""What personalises a user's songs: the tracks they said "not this one" to (never again, whatever the
emotion), and the artists they like (their "more like this" songs first, then their Spotify top
artists), ranked up within the mood. :class:`PhotoReplies` asks :meth:`PersonalMusic.for_user` before
every list and hands the result to :meth:`core.music.Catalog.recommend` (``exclude`` and ``prefer``).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.app.taste import SpotifyTaste
from core.storage import Store


@dataclass(frozen=True)
class Personal:
    """One user's ranking hooks: track ids to ``avoid``, artist names to ``prefer`` (most wanted first)."""

    avoid: frozenset[str] = frozenset()
    prefer: tuple[str, ...] = ()


class PersonalMusic:
    """Reads a user's :class:`Personal` hooks from the store (and Spotify, through the taste cache)."""

    def __init__(self, store: Store, taste: SpotifyTaste | None = None) -> None:
        self.store = store
        self.taste = taste

    async def for_user(self, user: int) -> Personal:
        """The user's hooks; empty ones for a user who never rated a song and has no Spotify taste."""
        avoid = await self.store.feedback_tracks(user, "nope")
        liked = await self.store.feedback_liked_artists(user)
        top = await self.taste.artists(user) if self.taste is not None else ()
        prefer: dict[str, str] = {}
        for name in (*liked, *top):
            prefer.setdefault(name.casefold(), name)
        return Personal(frozenset(avoid), tuple(prefer.values()))
