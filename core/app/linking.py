"""Spotify account linking as the chat sees it: the link (sent privately), a pasted redirect address,
the confirmation question, unlinking.

Finishing the authorisation in a browser proves only that *someone* consented on Spotify, so it never
links by itself: the account waits (encrypted, 10 minutes) until the user answers "Link the Spotify
account X? Yes / No" in the chat, where only they can press the buttons. The question is the answer
to a pasted redirect address, or, when the callback page finished the authorisation, a private
message through the adapters' notifiers. Where to ask is kept with the OAuth state in the store, so
the process that serves the callback page (any worker) can ask, and a restart between the link and
the callback loses nothing. Adapters register one notifier each with :meth:`SpotifyLinking.on_linked`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from core.app import texts
from core.app.people import Person, Place
from core.app.replies import Action, Button, Reply
from core.errors import MoodtunesError
from core.spotify import PendingLink, SpotifyService
from core.spotify.service import CONFIRM_TTL_S

log = logging.getLogger(__name__)

LinkedCallback = Callable[[Person, Reply], Awaitable[None]]
"""``async notify(person, reply)``: tells a user privately (the question to confirm a Spotify account
authorised on the callback page); adapters ignore people of other platforms."""

LINK_TEXT = (
    "Open this link to connect your Spotify account (it works once, for 10 minutes). If the page "
    "you land on doesn't load, copy its address and paste it here."
)
LINK_SENT_PRIVATELY = "I've sent you the Spotify link in a private message."


def confirm_question(pending: PendingLink) -> Reply:
    """The question "Link the Spotify account X? Yes / No"; its buttons carry the question's token."""
    minutes = round(CONFIRM_TTL_S / 60)
    return Reply(
        texts.SPOTIFY_CONFIRM.format(
            name=pending.display_name, spotify_id=pending.spotify_id or "unknown", minutes=minutes
        ),
        buttons=(
            Button(texts.SPOTIFY_CONFIRM_YES, Action.SPOTIFY_YES, pending.confirm),
            Button(texts.SPOTIFY_CONFIRM_NO, Action.SPOTIFY_NO, pending.confirm),
        ),
    )


class SpotifyLinking:
    """The chat side of :class:`~core.spotify.SpotifyService`."""

    def __init__(self, spotify: SpotifyService) -> None:
        self.spotify = spotify
        self._callbacks: list[LinkedCallback] = []
        spotify.on_pending(self._ask)

    def on_linked(self, callback: LinkedCallback) -> Callable[[], None]:
        """Register an adapter's notifier; returns the function that unregisters it."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    async def link(self, user: int, person: Person, place: Place) -> Reply:
        """/linkspotify: the authorisation link, only ever for the sender's eyes.

        In a group the link goes in :attr:`Reply.direct` (the adapter delivers it privately); the
        confirmation question goes to the person privately too.
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
        """Plain text: a pasted Spotify redirect address gets the question that confirms the account
        (only ``user`` can answer it); any other text gives None."""
        if ("code=" not in text and "error=" not in text) or "state=" not in text:
            return None
        try:
            pending = await self.spotify.finish_link(user, text)
        except MoodtunesError as exc:
            return Reply(str(exc), error=True)
        return confirm_question(pending)

    async def answer(self, user: int, action: Action, token: str) -> Reply:
        """The Yes / No of a confirmation question, pressed by ``user`` (only its owner's press counts)."""
        if action is Action.SPOTIFY_NO:
            await self.spotify.cancel_link(user, token)
            return Reply(texts.SPOTIFY_DECLINED, closes_question=True)
        try:
            name = await self.spotify.confirm_link(user, token)
        except MoodtunesError as exc:
            return Reply(str(exc), error=True, closes_question=True)
        return Reply(texts.SPOTIFY_LINKED.format(name=name), closes_question=True)

    async def _ask(self, pending: PendingLink) -> None:
        person_ids = pending.notify.get("person")
        if not person_ids:
            return
        person = Person(str(person_ids[0]), str(person_ids[1]))
        question = confirm_question(pending)
        for callback in list(self._callbacks):
            try:
                await callback(person, question)
            except Exception:
                log.exception("spotify confirmation question failed user=%s", pending.user_id)
