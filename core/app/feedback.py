"""Song feedback: "not this one" (the track never comes back for that user, whatever the emotion) and
"more like this" (its artists are ranked up within the mood, never outside it).

Every track list carries a "Rate these songs" button. Its token names the photo reply's result (the
``reply_results`` row the other buttons use), where the list sits in that result's chain of songs, its
length and a short hash of its track ids, and a page: ``rate:<result>.<offset>.<length>.<hash>.<page>``
(under 40 bytes, well within Telegram's 64). Pressing it answers with two pick-one menus of the list's
songs, :data:`RATE_PAGE` at a time ("Not this one..." and "More like this...", with a "Next songs"
button for longer lists); each option carries ``nope:<result>.<track id>`` or ``like:<result>.<track
id>`` (40 bytes). Everything is read back from the store and the catalog, so the menus work after a
restart and on any worker, for as long as the result lives; only the result's owner may use them.
``/like N`` and ``/dislike N`` rate song N of the user's latest list in the chat instead (the console's
way, and a text way everywhere).

Verdicts live in ``track_feedback``, one per user and track (the latest press wins, so a 👍 undoes a 👎);
:mod:`core.app.personal` turns them into the ranking hooks of :meth:`core.music.Catalog.recommend`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable, Sequence

from core.app import texts
from core.app.i18n import _
from core.app.replies import Action, Button, Menu, Reply
from core.music import Catalog, Track
from core.storage import ResultRow, Store

log = logging.getLogger(__name__)

RATE_PAGE = 10
"""Songs per page of the rating menus (Telegram: 2 buttons a song, so 21 buttons at most)."""
LABEL_LIMIT = 100
"""Characters of a menu option's label (Discord's limit)."""
VERDICTS = {Action.NOPE: "nope", Action.LIKE: "like"}


def list_key(track_ids: Sequence[str]) -> str:
    """Six characters that change when a list's track ids do (base64url of their sha256)."""
    digest = hashlib.sha256(" ".join(track_ids).encode()).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:6]


def rate_button(result: ResultRow, tracks: Sequence[Track]) -> Button:
    """The "Rate these songs" button of the list ``tracks``, the newest of ``result``'s chain."""
    offset = len(result.shown) - len(tracks)
    token = f"{result.token}.{offset}.{len(tracks)}.{list_key([t.id for t in tracks])}.0"
    return Button(_(texts.RATE_BUTTON), Action.RATE, token)


def _label(number: int, track: Track) -> str:
    label = f"{number}. {track.name} - {', '.join(track.artists)}"
    return label if len(label) <= LABEL_LIMIT else label[: LABEL_LIMIT - 1] + "…"


class SongFeedback:
    """The rating menus, their presses, and ``/like N`` / ``/dislike N``.

    Args:
        store: the store (results and verdicts).
        catalog: the track catalog (None: nothing to rate).
        clock: Unix time (tests pass a fake).
    """

    def __init__(self, store: Store, catalog: Catalog | None, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.catalog = catalog
        self._clock = clock

    async def press(self, user: int, action: Action, token: str) -> Reply:
        """A press of "Rate these songs" (the menus), or a pick in them (a verdict)."""
        if self.catalog is None:
            return Reply(_(texts.NO_CATALOG), error=True)
        if action is Action.RATE:
            return await self._menus(user, token)
        result_token, _dot, track_id = token.partition(".")
        refused = await self._owned(user, result_token)
        if isinstance(refused, Reply):
            return refused
        return await self.rate(user, track_id, VERDICTS[action])

    async def rate(self, user: int, track_id: str, verdict: str) -> Reply:
        """Store ``verdict`` (``nope`` or ``like``) on a catalog track for the user."""
        track = self.catalog.get(track_id) if self.catalog is not None else None
        if track is None:
            return Reply(_(texts.UNKNOWN_TRACK), error=True)
        await self.store.feedback_set(user, track.id, verdict, track.artists, self._clock())
        log.info("feedback user=%s verdict=%s track=%s", user, verdict, track.id)
        template = texts.NOPE_DONE if verdict == "nope" else texts.LIKE_DONE
        return Reply(_(template).format(song=track.name, artists=", ".join(track.artists)))

    async def rate_number(self, user: int, chat: int, verdict: str, number: int, command: str) -> Reply:
        """``/like N`` or ``/dislike N``: song ``number`` (1-based) of the user's latest list in the chat."""
        if self.catalog is None:
            return Reply(_(texts.NO_CATALOG), error=True)
        result = await self.store.latest_result(user, chat, self._clock())
        if result is None or not result.tracks:
            return Reply(_(texts.RATE_NOTHING), error=True)
        if not 1 <= number <= len(result.tracks):
            return Reply(_(texts.RATE_NUMBER).format(count=len(result.tracks), command=command), error=True)
        return await self.rate(user, result.tracks[number - 1], verdict)

    async def _owned(self, user: int, token: str) -> ResultRow | Reply:
        result = await self.store.get_result(token, self._clock())
        if result is None:
            return Reply(_(texts.EXPIRED), error=True)
        if result.user_id != user:
            return Reply(_(texts.NOT_YOURS), error=True)
        return result

    async def _menus(self, user: int, token: str) -> Reply:
        """The two menus for one page of a list (``token`` from :func:`rate_button`)."""
        assert self.catalog is not None
        parts = token.split(".")
        if len(parts) != 5 or not all(p.isdigit() for p in (parts[1], parts[2], parts[4])):
            return Reply(_(texts.UNKNOWN_BUTTON), error=True)
        result_token, key = parts[0], parts[3]
        offset, length, page = int(parts[1]), int(parts[2]), int(parts[4])
        result = await self._owned(user, result_token)
        if isinstance(result, Reply):
            return result
        ids = result.shown[offset : offset + length]
        if len(ids) != length or list_key(ids) != key:
            return Reply(_(texts.RATE_GONE), error=True)
        first = page * RATE_PAGE
        numbered = [
            (number, track)
            for number, track_id in enumerate(ids[first : first + RATE_PAGE], first + 1)
            if (track := self.catalog.get(track_id)) is not None
        ]
        if not numbered:
            return Reply(_(texts.RATE_GONE), error=True)
        menus = tuple(
            Menu(
                _(placeholder),
                symbol,
                tuple(Button(_label(n, t), action, f"{result.token}.{t.id}") for n, t in numbered),
            )
            for placeholder, symbol, action in (
                (texts.RATE_NOPE, texts.RATE_NOPE_SYMBOL, Action.NOPE),
                (texts.RATE_LIKE, texts.RATE_LIKE_SYMBOL, Action.LIKE),
            )
        )
        buttons: tuple[Button, ...] = ()
        if first + RATE_PAGE < length:
            next_token = f"{result.token}.{offset}.{length}.{key}.{page + 1}"
            buttons = (Button(_(texts.RATE_NEXT), Action.RATE, next_token),)
        last = min(first + RATE_PAGE, length)
        text = _(texts.RATE_PROMPT).format(first=first + 1, last=last, total=length)
        return Reply(text, menus=menus, buttons=buttons)
