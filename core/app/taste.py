"""Taste from Spotify: a linked user's top artists, read at most once a day and cached in the store.

:meth:`SpotifyTaste.artists` is called on a photo reply's path. It answers from the cache
(``spotify_taste``) while it is under a day old; otherwise the one worker that claims the refresh in
the store (:meth:`~core.storage.Store.taste_claim`) reads ``/me/top/artists`` and ``/me/top/tracks``
with a short retry policy and an overall time limit, and the others use what is cached. Any failure
(Spotify down or slow, a 403 for a development-mode app or a link made before ``user-top-read`` was
asked for) is one log line and today's behaviour: the last good list if there is one, else none, and
no new attempt for a day. Unlinked users, and bots without Spotify, get nothing. Unlinking (or a
link Spotify revoked) deletes the cache with the token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from core.spotify import RetryPolicy, SpotifyError, SpotifyService
from core.storage import Store

log = logging.getLogger(__name__)

MAX_AGE_S = 86_400.0
"""A user's taste is read from Spotify at most once per this many seconds."""
TIMEOUT_S = 8.0
"""The most a photo reply waits for Spotify's answer (both lists)."""
POLICY = RetryPolicy(max_attempts=2, backoff_s=0.2, backoff_max_s=0.5, max_retry_after_s=2.0, timeout_s=3.0)
"""Retries for the taste read: short, as a reply is waiting."""


class SpotifyTaste:
    """A linked user's preferred artists (Spotify top artists, then the artists of their top tracks).

    Args:
        store: the store (the cache lives there).
        spotify: the Spotify service.
        clock: Unix time (tests pass a fake).
    """

    def __init__(self, store: Store, spotify: SpotifyService, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.spotify = spotify
        self._clock = clock

    async def artists(self, user: int) -> tuple[str, ...]:
        """The user's preferred artists (most listened first), or () when not linked or unknown."""
        if not self.spotify.enabled:
            return ()
        cached = await self.store.taste_get(user)
        kept = cached.artists if cached is not None else ()
        now = self._clock()
        if cached is not None and now - cached.fetched_at < MAX_AGE_S:
            return kept
        if not await self.spotify.is_linked(user):
            return ()
        if not await self.store.taste_claim(user, now, MAX_AGE_S):
            return kept  # another worker is reading it right now
        try:
            async with asyncio.timeout(TIMEOUT_S):
                taste = await self.spotify.top_taste(user, policy=POLICY)
        except (SpotifyError, TimeoutError) as exc:
            log.info("spotify taste unavailable user=%s reason=%s: %s", user, type(exc).__name__, exc)
            return kept
        except Exception:
            log.warning("spotify taste failed user=%s", user, exc_info=True)
            return kept
        names = taste.artist_names()
        await self.store.taste_save(user, names, [t.id for t in taste.tracks], now)
        return names
