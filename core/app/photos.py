"""Photo replies: faces, emotions and songs for a photo, and the buttons under the reply.

One face: the songs follow its emotion. Several: they follow the group, a blend of the faces'
emotions in which bigger faces weigh more (:func:`core.music.group.blend_faces`), and the reply says
so ("mostly happy: 4 of 6 faces"). The songs avoid the user's recent tracks for the same emotion, and
the mood line says why these songs ("calm: instrumental, quiet, acoustic").

A reply's buttons carry a random token; what they act on (the emotion, the policy, the songs shown
so far, the playlist made) is a row of ``reply_results`` in the store, so a press works on any worker
and after a restart, until the result expires. Two presses racing on two workers never lose an
update (optimistic versioning) and never make two playlists of one list (a claim in the store).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

import numpy as np

from core.app import texts
from core.app.feedback import rate_button
from core.app.i18n import _
from core.app.linking import spotify_off
from core.app.personal import Personal
from core.app.replies import Action, Button, FaceLine, Reply, emotion_name
from core.errors import MoodtunesError
from core.music import Catalog, Track
from core.music.group import GroupMood, blend_faces
from core.music.moods import plan_for
from core.spotify import SpotifyService
from core.storage import ResultRow, Store
from core.vision.annotate import annotate
from core.vision.faces import FaceList
from core.vision.recognizer import IdentifiedFace

log = logging.getLogger(__name__)

RECENT_REPLIES = 3
"""A user's last replies for the same emotion whose songs are not sent again while others fit."""
PLAYLIST_WAIT_S = 60.0
"""How long a press waits for the same playlist being made on another worker."""
UPDATE_RETRIES = 5
"""Times a button press re-reads its result after another press changed it first."""


class PhotoReplies:
    """Builds photo replies and answers their buttons.

    Args:
        store: the store (results live there).
        catalog: the track catalog, or None (replies then say how to configure one).
        spotify: for the playlist button.
        result_ttl_s: how long a reply's buttons keep working, seconds.
        clock: Unix time (tests pass a fake).
        personal: ``await personal(user)`` gives the user's ranking hooks (songs never to send again,
            artists to rank up within the mood; :mod:`core.app.personal`); None: none.
    """

    def __init__(
        self,
        store: Store,
        catalog: Catalog | None,
        spotify: SpotifyService,
        result_ttl_s: float,
        clock: Callable[[], float] = time.time,
        personal: Callable[[int], Awaitable[Personal]] | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.spotify = spotify
        self.result_ttl_s = result_ttl_s
        self._clock = clock
        self._personal = personal

    async def reply(self, user: int, chat: int, rgb: np.ndarray, faces: list[IdentifiedFace]) -> Reply:
        """The reply to a photo with ``faces`` (at least one): annotated photo, faces and songs."""
        lines = tuple(face_line(f) for f in faces)
        main = next((f for f in faces if f.match.user_id == user), faces[0])
        group = group_mood(faces)
        if group is not None:
            emotion = group.emotion
        else:
            emotion = main.analysis.emotion.label if main.analysis.emotion else "neutral"
        settings = await self.store.get_settings(user)
        photo = await asyncio.to_thread(annotate, rgb, lines)
        heading = headline(faces, main, user, group)
        if self.catalog is None:
            return Reply(f"{heading}\n\n{_(texts.NO_CATALOG)}", faces=lines, photo=photo, emotion=emotion)
        result = ResultRow(
            secrets.token_urlsafe(9), user, chat, emotion, settings.mood_policy, settings.track_count
        )
        recent = await self.store.recent_tracks(user, emotion, RECENT_REPLIES)
        tracks = self._next_tracks(result, recent, await self._hooks(user))
        await self.store.add_result(result, self.result_ttl_s, self._clock())
        return self._tracks_reply(result, tracks, heading, faces=lines, photo=photo)

    async def press(self, user: int, action: Action, token: str) -> Reply:
        """A press of a photo reply's button (playlist, lift, match, more)."""
        hooks: Personal | None = None
        for _attempt in range(UPDATE_RETRIES):
            result = await self.store.get_result(token, self._clock())
            if result is None:
                return Reply(_(texts.EXPIRED), error=True)
            if result.user_id != user:
                return Reply(_(texts.NOT_YOURS), error=True)
            if action is Action.PLAYLIST:
                return await self._playlist(result)
            heading = _(texts.MORE_SONGS)
            if action in (Action.LIFT, Action.MATCH):
                result.policy = action.value
                result.shown = []
                heading = _(texts.LIFTING) if action is Action.LIFT else _(texts.MATCHING)
            hooks = hooks or await self._hooks(user)
            tracks = self._next_tracks(result, personal=hooks)
            if await self.store.update_result(result):
                return self._tracks_reply(result, tracks, heading)
        log.warning("button press lost %d races token=%s", UPDATE_RETRIES, token)
        return Reply(_(texts.SORRY), error=True)

    async def _hooks(self, user: int) -> Personal:
        return await self._personal(user) if self._personal is not None else Personal()

    def _next_tracks(
        self, result: ResultRow, recent: set[str] | None = None, personal: Personal | None = None
    ) -> list[Track]:
        """The next list for the result (never a song already shown in its chain nor one the user said
        "not this one" to, the user's recent ones only when nothing else is left, their preferred
        artists first within the mood); updates ``result``."""
        assert self.catalog is not None
        personal = personal or Personal()
        tracks = self.catalog.recommend(
            emotion=result.emotion,
            n=result.count,
            policy=result.policy,
            exclude=set(result.shown) | personal.avoid,
            recent=recent or (),
            prefer=personal.prefer,
        )
        result.shown = [*result.shown, *(t.id for t in tracks)]
        result.tracks = [t.id for t in tracks]
        return tracks

    def _tracks_reply(
        self,
        result: ResultRow,
        tracks: list[Track],
        heading: str,
        faces: tuple[FaceLine, ...] = (),
        photo: bytes | None = None,
    ) -> Reply:
        assert self.catalog is not None
        mood = mood_line(self.catalog, result.emotion, result.policy)
        other = (
            Button(_(texts.BUTTON_MATCH), Action.MATCH, result.token)
            if result.policy == "lift"
            else Button(_(texts.BUTTON_LIFT), Action.LIFT, result.token)
        )
        buttons = [other, Button(_(texts.BUTTON_MORE), Action.MORE, result.token)]
        if tracks:
            buttons.append(rate_button(result, tracks))
        if self.spotify.enabled:
            buttons.insert(0, Button(_(texts.BUTTON_PLAYLIST), Action.PLAYLIST, result.token))
        text = heading if tracks else f"{heading}\n\n{_(texts.RUN_OUT)}"
        return Reply(
            text,
            faces=faces,
            photo=photo,
            tracks=tuple(tracks),
            mood=mood,
            buttons=tuple(buttons),
            emotion=result.emotion,
        )

    async def _playlist(self, result: ResultRow) -> Reply:
        """One playlist per track list, whoever presses and on whichever worker."""
        if not self.spotify.enabled:
            return Reply(spotify_off(self.spotify), error=True)
        if not await self.spotify.is_linked(result.user_id):
            return Reply(_(texts.PLAYLIST_LINK_FIRST))
        ids = result.tracks
        if not ids:
            return Reply(_(texts.PLAYLIST_EMPTY), error=True)
        deadline = self._clock() + PLAYLIST_WAIT_S
        while True:
            claim = await self.store.claim_playlist(result.token, ids, self._clock())
            if claim.url is not None:
                return _playlist_ready(len(ids), claim.url)
            if claim.mine:
                break
            if self._clock() > deadline:
                return Reply(_(texts.PLAYLIST_BUSY))
            await asyncio.sleep(0.25)  # a double tap (maybe on another worker) is making this very list
        url: str | None = None
        try:
            url = await self.spotify.create_playlist(result.user_id, ids, result.emotion)
        except MoodtunesError as exc:
            return Reply(exc.localized(), error=True)
        finally:
            await self.store.finish_playlist(result.token, ids, url)
        return _playlist_ready(len(ids), url)


def _playlist_ready(count: int, url: str) -> Reply:
    return Reply(_(texts.PLAYLIST_READY).format(count=count, url=url), link=url)


def mood_line(catalog: Catalog, emotion: str, policy: str) -> str:
    """Why these songs, in the current language: ``"calm: instrumental, quiet, acoustic"`` (the words
    of :meth:`core.music.Catalog.explain`; in English exactly its line), with ``"; lifting towards
    happy: ..."`` for a lifting plan."""
    plan = plan_for(emotion, None, policy)
    start = _mood_part(catalog, plan.start.name)
    if plan.goal.name == plan.start.name:
        return start
    return _(texts.MOOD_LIFTING).format(start=start, goal=_mood_part(catalog, plan.goal.name))


def _mood_part(catalog: Catalog, mood: str) -> str:
    """``"calm: instrumental, quiet"`` for one mood (``catalog.explain(mood=...)`` is ``"mood: words"``)."""
    explained = catalog.explain(mood=mood)
    prefix = f"{mood}: "
    name = _(texts.MOOD_NAMES[mood]) if mood in texts.MOOD_NAMES else mood
    if not explained.startswith(prefix):
        return name
    words = ", ".join(_(word) for word in explained[len(prefix) :].split(", "))
    return _(texts.MOOD_LINE).format(mood=name, words=words)


def face_line(face: IdentifiedFace) -> FaceLine:
    """How one face is shown: name (or unknown), emotion, box."""
    emotion = face.analysis.emotion
    x1, y1, x2, y2 = face.analysis.face.rounded_box()
    return FaceLine(
        face.match.name,
        emotion.label if emotion else None,
        emotion.confidence if emotion else None,
        (x1, y1, x2, y2),
    )


def group_mood(faces: list[IdentifiedFace]) -> GroupMood | None:
    """The blended emotion of a photo with several faces read (bigger faces weigh more); None for one."""
    read = [(f.analysis.emotion.scores, f.analysis.face.side**2) for f in faces if f.analysis.emotion]
    return blend_faces(read) if len(read) > 1 else None


def headline(
    faces: list[IdentifiedFace], main: IdentifiedFace, user: int, group: GroupMood | None = None
) -> str:
    """The first line of a photo reply: a greeting, the feeling or the group's mood; and, when only the
    largest faces were analysed, how many were left out."""
    emotion = main.analysis.emotion
    hello = _(texts.HELLO).format(name=main.match.name) if main.match.user_id == user else ""
    crowd = crowd_note(faces)
    if group is not None:
        together = _(texts.GROUP_HEADLINE).format(count=len(faces), group=group_text(group))
        return " ".join(filter(None, [hello, together, crowd]))
    feeling = (
        _(texts.YOU_LOOK).format(emotion=emotion_name(emotion.label), confidence=emotion.confidence)
        if emotion
        else ""
    )
    if hello:
        return " ".join(filter(None, [hello, feeling, crowd]))
    return " ".join(filter(None, [_(texts.STRANGER), feeling, crowd]))


def group_text(group: GroupMood) -> str:
    """The group's mood in the current language: ``"mostly happy: 4 of 6 faces"`` (as
    :attr:`GroupMood.text` says it in English)."""
    n, k, emotion = group.faces, group.agreeing, emotion_name(group.emotion)
    if n == 1:
        return _(texts.GROUP_ONE).format(emotion=emotion)
    if k == n:
        template = texts.GROUP_ALL
    elif 2 * k > n:
        template = texts.GROUP_MOSTLY
    else:
        template = texts.GROUP_MIXED
    return _(template).format(emotion=emotion, agreeing=k, faces=n)


def crowd_note(faces: list[IdentifiedFace]) -> str:
    """The sentence saying how many faces were left out ("I looked at the 20 largest of 625
    faces."), or "" when none were."""
    if not isinstance(faces, FaceList) or faces.left_out <= 0:
        return ""
    template = texts.CROWD_AT_LEAST if faces.more else texts.CROWD
    return _(template).format(count=len(faces), total=faces.found)
