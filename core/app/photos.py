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
from core.app.personal import Personal
from core.app.replies import Action, Button, FaceLine, Reply
from core.errors import MoodtunesError
from core.music import Catalog, Track
from core.music.group import GroupMood, blend_faces
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
            return Reply(f"{heading}\n\n{texts.NO_CATALOG}", faces=lines, photo=photo, emotion=emotion)
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
        for _ in range(UPDATE_RETRIES):
            result = await self.store.get_result(token, self._clock())
            if result is None:
                return Reply(texts.EXPIRED, error=True)
            if result.user_id != user:
                return Reply(texts.NOT_YOURS, error=True)
            if action is Action.PLAYLIST:
                return await self._playlist(result)
            heading = "More songs for the same mood:"
            if action in (Action.LIFT, Action.MATCH):
                result.policy = action.value
                result.shown = []
                heading = "Lifting the mood:" if action is Action.LIFT else "Matching the mood:"
            hooks = hooks or await self._hooks(user)
            tracks = self._next_tracks(result, personal=hooks)
            if await self.store.update_result(result):
                return self._tracks_reply(result, tracks, heading)
        log.warning("button press lost %d races token=%s", UPDATE_RETRIES, token)
        return Reply(texts.SORRY, error=True)

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
        mood = self.catalog.explain(result.emotion, result.policy)
        other = (
            Button("Match my mood", Action.MATCH, result.token)
            if result.policy == "lift"
            else Button("Lift my mood", Action.LIFT, result.token)
        )
        buttons = [other, Button("More tracks", Action.MORE, result.token)]
        if tracks:
            buttons.append(rate_button(result, tracks))
        if self.spotify.enabled:
            buttons.insert(0, Button("Make a Spotify playlist", Action.PLAYLIST, result.token))
        text = heading if tracks else f"{heading}\n\nI've run out of new songs for this mood."
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
            return Reply(self.spotify.disabled_reason or "Spotify is not configured.", error=True)
        if not await self.spotify.is_linked(result.user_id):
            return Reply("Link your Spotify account first with /linkspotify, then press the button again.")
        ids = result.tracks
        if not ids:
            return Reply("This list has no songs left to make a playlist of; send another photo.", error=True)
        deadline = self._clock() + PLAYLIST_WAIT_S
        while True:
            claim = await self.store.claim_playlist(result.token, ids, self._clock())
            if claim.url is not None:
                return _playlist_ready(len(ids), claim.url)
            if claim.mine:
                break
            if self._clock() > deadline:
                return Reply("Your playlist is still being made; press the button again in a moment.")
            await asyncio.sleep(0.25)  # a double tap (maybe on another worker) is making this very list
        url: str | None = None
        try:
            url = await self.spotify.create_playlist(result.user_id, ids, result.emotion)
        except MoodtunesError as exc:
            return Reply(str(exc), error=True)
        finally:
            await self.store.finish_playlist(result.token, ids, url)
        return _playlist_ready(len(ids), url)


def _playlist_ready(count: int, url: str) -> Reply:
    return Reply(f"Your playlist of {count} songs is ready: {url}", link=url)


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
    hello = f"Hi {main.match.name}!" if main.match.user_id == user else ""
    crowd = crowd_note(faces)
    if group is not None:
        return " ".join(
            filter(
                None, [hello, f"I see {len(faces)} faces, {group.text}; the songs follow the group.", crowd]
            )
        )
    feeling = f"You look {emotion.label} ({emotion.confidence:.0%})." if emotion else ""
    if hello:
        return " ".join(filter(None, [hello, feeling, crowd]))
    return " ".join(filter(None, ["I don't know you yet (send /enroll so I can).", feeling, crowd]))


def crowd_note(faces: list[IdentifiedFace]) -> str:
    """The sentence saying how many faces were left out ("I looked at the 20 largest of 625
    faces."), or "" when none were."""
    if not isinstance(faces, FaceList) or faces.left_out <= 0:
        return ""
    total = f"at least {faces.found}" if faces.more else str(faces.found)
    return f"I looked at the {len(faces)} largest of {total} faces."
