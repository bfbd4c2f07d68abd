"""Spotify account linking as the chat sees it: the link (sent privately), a pasted redirect address,
unlinking, and telling the user when the callback page finished a link.

Where to tell the user is kept with the OAuth state in the store, so the process that serves the
callback page (any worker) can tell them, and a restart between the link and the callback loses
nothing. Adapters register one notifier each with :meth:`SpotifyLinking.on_linked`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from core.app.people import Person, Place
from core.app.replies import Reply
from core.errors import MoodtunesError
from core.spotify import LinkedAccount, SpotifyService

log = logging.getLogger(__name__)

LinkedCallback = Callable[[Person, Reply], Awaitable[None]]
"""``async notify(person, reply)``: tells a user privately that the Spotify link finished (adapters
ignore people of other platforms)."""

LINK_TEXT = (
    "Open this link to connect your Spotify account (it works once, for 10 minutes). If the page "
    "you land on doesn't load, copy its address and paste it here."
)
LINK_SENT_PRIVATELY = "I've sent you the Spotify link in a private message."


class SpotifyLinking:
    """The chat side of :class:`~core.spotify.SpotifyService`."""

    def __init__(self, spotify: SpotifyService) -> None:
        self.spotify = spotify
        self._callbacks: list[LinkedCallback] = []
        spotify.on_linked(self._linked)

    def on_linked(self, callback: LinkedCallback) -> Callable[[], None]:
        """Register an adapter's notifier; returns the function that unregisters it."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    async def link(self, user: int, person: Person, place: Place) -> Reply:
        """/linkspotify: the authorisation link, only ever for the sender's eyes.

        In a group the link goes in :attr:`Reply.direct` (the adapter delivers it privately); the
        finished-link notice goes to the person privately too.
        """
        if not self.spotify.enabled:
            return Reply(self.spotify.disabled_reason or "Spotify is not configured.", error=True)
        notify = {"person": [person.platform, person.external_id]}
        try:
            url = await self.spotify.start_link(user, notify=notify)
        except MoodtunesError as exc:
            return Reply(str(exc), error=True)
        reply = Reply(LINK_TEXT, link=url)
        return reply if place.seen_by_sender_only else Reply(LINK_SENT_PRIVATELY, direct=reply)

    async def unlink(self, user: int) -> Reply:
        """/unlinkspotify: delete the stored tokens."""
        if not await self.spotify.unlink(user):
            return Reply("Your Spotify account wasn't linked.")
        return Reply(
            "Unlinked: I deleted your Spotify tokens. To revoke moodtunes' access on Spotify's side too, "
            "visit https://www.spotify.com/account/apps/."
        )

    async def paste(self, user: int, text: str) -> Reply | None:
        """Plain text: a pasted Spotify redirect address finishes linking; any other text gives None."""
        if ("code=" not in text and "error=" not in text) or "state=" not in text:
            return None
        try:
            name = await self.spotify.finish_link(user, text)
        except MoodtunesError as exc:
            return Reply(str(exc), error=True)
        return Reply(f"Spotify linked as {name}. Press 'Make a Spotify playlist' under a photo reply.")

    async def _linked(self, account: LinkedAccount) -> None:
        person_ids = account.notify.get("person")
        if not person_ids:
            return
        person = Person(str(person_ids[0]), str(person_ids[1]))
        reply = Reply(
            f"Spotify linked as {account.display_name}. Playlists are on: press 'Make a Spotify playlist'."
        )
        for callback in list(self._callbacks):
            try:
                await callback(person, reply)
            except Exception:
                log.exception("spotify linked notification failed user=%s", account.user_id)
