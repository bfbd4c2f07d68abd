"""Spotify account linking as the chat sees it: the link (sent privately), a pasted redirect address,
the confirmation question, unlinking.

Finishing the authorisation in a browser proves only that *someone* consented on Spotify, so it never
links by itself: the account waits (encrypted, 10 minutes) until the user answers "Link the Spotify
account X? Yes / No" in the chat, where only they can press the buttons. The question is the answer
to a pasted redirect address, or, when the callback page finished the authorisation, a private
message through the adapters' notifiers. Where to ask is kept with the OAuth state in the store, so
the process that serves the callback page (any worker) can ask, and a restart between the link and
the callback loses nothing. Adapters register one notifier each with :meth:`SpotifyLinking.on_linked`.
The question sent from the callback page, outside any request of the user, is in the user's stored
language (their ``/language`` choice, else what their platform reported last).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from core.app import texts
from core.app.i18n import DEFAULT, _, speaking
from core.app.people import Person, Place
from core.app.replies import Action, Button, Reply
from core.app.requests import current_request
from core.errors import MoodtunesError
from core.spotify import PendingLink, SpotifyNotConfigured, SpotifyService
from core.spotify.service import CONFIRM_TTL_S, UNNAMED

log = logging.getLogger(__name__)

LinkedCallback = Callable[[Person, Reply], Awaitable[None]]
"""``async notify(person, reply)``: tells a user privately (the question to confirm a Spotify account
authorised on the callback page); adapters ignore people of other platforms."""

LanguageOf = Callable[[int], Awaitable[str]]
"""``await language_of(user)``: the language to tell a user something in, outside a request."""


def account_name(name: str) -> str:
    """A Spotify account's name as a sentence shows it (the stand-in for an unnamed one, translated)."""
    return _(name) if name == UNNAMED else name


def confirm_question(pending: PendingLink) -> Reply:
    """The question "Link the Spotify account X? Yes / No"; its buttons carry the question's token."""
    minutes = round(CONFIRM_TTL_S / 60)
    return Reply(
        _(texts.SPOTIFY_CONFIRM).format(
            name=account_name(pending.display_name),
            spotify_id=pending.spotify_id or _(texts.SPOTIFY_UNKNOWN_ID),
            minutes=minutes,
        ),
        buttons=(
            Button(_(texts.SPOTIFY_CONFIRM_YES), Action.SPOTIFY_YES, pending.confirm),
            Button(_(texts.SPOTIFY_CONFIRM_NO), Action.SPOTIFY_NO, pending.confirm),
        ),
    )


def spotify_off(spotify: SpotifyService) -> str:
    """Why Spotify is off, for the chat (in the current language)."""
    return SpotifyNotConfigured(spotify.disabled_reason or texts.SPOTIFY_OFF).localized()


class SpotifyLinking:
    """The chat side of :class:`~core.spotify.SpotifyService`.

    Args:
        spotify: the Spotify service.
        language_of: the language of a user told something outside a request (default English).
    """

    def __init__(self, spotify: SpotifyService, language_of: LanguageOf | None = None) -> None:
        self.spotify = spotify
        self._language_of = language_of
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
            return Reply(spotify_off(self.spotify), error=True)
        notify = {"person": [person.platform, person.external_id]}
        try:
            url = await self.spotify.start_link(user, notify=notify)
        except MoodtunesError as exc:
            return Reply(exc.localized(), error=True)
        reply = Reply(_(texts.LINK_TEXT), link=url)
        return reply if place.seen_by_sender_only else Reply(_(texts.LINK_SENT_PRIVATELY), direct=reply)

    async def unlink(self, user: int) -> Reply:
        """/unlinkspotify: delete the stored tokens."""
        if not await self.spotify.unlink(user):
            return Reply(_(texts.NOT_LINKED))
        return Reply(_(texts.UNLINKED))

    async def paste(self, user: int, text: str) -> Reply | None:
        """Plain text: a pasted Spotify redirect address gets the question that confirms the account
        (only ``user`` can answer it); any other text gives None."""
        if ("code=" not in text and "error=" not in text) or "state=" not in text:
            return None
        try:
            pending = await self.spotify.finish_link(user, text, current_request())
        except MoodtunesError as exc:
            return Reply(exc.localized(), error=True)
        return confirm_question(pending)

    async def answer(self, user: int, action: Action, token: str) -> Reply:
        """The Yes / No of a confirmation question, pressed by ``user`` (only its owner's press counts)."""
        if action is Action.SPOTIFY_NO:
            await self.spotify.cancel_link(user, token)
            return Reply(_(texts.SPOTIFY_DECLINED), closes_question=True)
        try:
            name = await self.spotify.confirm_link(user, token)
        except MoodtunesError as exc:
            linked = await self.spotify.linked_name(user) if await self.spotify.is_linked(user) else None
            if linked is None:
                return Reply(exc.localized(), error=True, closes_question=True)
            name = linked  # already linked (e.g. this Yes was delivered again after its answer was lost)
        return Reply(_(texts.SPOTIFY_LINKED).format(name=account_name(name)), closes_question=True)

    async def _ask(self, pending: PendingLink) -> None:
        person_ids = pending.notify.get("person")
        if not person_ids:
            return
        person = Person(str(person_ids[0]), str(person_ids[1]))
        language = DEFAULT
        if self._language_of is not None:
            try:
                language = await self._language_of(pending.user_id)
            except Exception:
                log.exception("language of user=%s unknown; asking in English", pending.user_id)
        with speaking(language):
            question = confirm_question(pending)
            for callback in list(self._callbacks):
                try:
                    await callback(person, question)
                except Exception:
                    log.exception("spotify confirmation question failed user=%s", pending.user_id)
