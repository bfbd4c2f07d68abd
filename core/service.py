"""The one async service every chat adapter calls; it returns platform-neutral :class:`Reply` objects.

Adapters identify the sender with a :class:`Person` and the conversation with a :class:`Place`
(the chat, or the Discord server: the scope in which faces are matched), call one method per
command, photo, text or button press, and render what comes back. Nothing here blocks the event
loop: decoding and drawing run in threads, models in the :class:`~core.inference.InferenceWorker`
(which batches faces across concurrent requests), spotipy inside :mod:`core.spotify`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core import texts
from core.annotate import annotate
from core.config import Settings
from core.conversations import Conversations, Step
from core.errors import MoodtunesError
from core.imaging import decode_image
from core.inference import InferenceWorker
from core.music import MAX_TRACKS, MIN_TRACKS, Catalog, Track, load_catalog
from core.pipeline import FacePipeline
from core.ratelimit import RateLimiter
from core.recognition import IdentifiedFace, Recognizer
from core.replies import Action, Button, FaceLine, Reply
from core.spotify import SpotifyService
from core.storage import Store

log = logging.getLogger(__name__)

SHARED_CATALOG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "spotify" / "tracks.csv"
"""Catalog used when ``MOODTUNES_CATALOG`` is unset and the shared data sits beside the project."""
RESULTS_KEPT = 5000
"""Photo results remembered for their buttons (oldest forgotten first)."""


@dataclass(frozen=True)
class Person:
    """The sender: ``platform`` (telegram, discord, console) and that platform's user id."""

    platform: str
    external_id: str
    display_name: str = ""


@dataclass(frozen=True)
class Place:
    """Where the message came from: the chat (Telegram) or server/DM channel (Discord)."""

    platform: str
    external_id: str
    title: str = ""


@dataclass
class _Result:
    """What a photo reply's buttons act on."""

    user_id: int
    chat_id: int
    emotion: str
    policy: str
    count: int
    shown: list[str] = field(default_factory=list)
    tracks: tuple[Track, ...] = ()
    playlists: dict[tuple[str, ...], str] = field(default_factory=dict)
    """Playlist URL by the track ids it holds: a second press of the button gives the same one."""
    playlist_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


LinkedCallback = Callable[[Person, Place, Reply], Awaitable[None]]
"""``async notify(person, place, reply)``: tells a user in chat that the Spotify link finished."""


class MoodtunesService:
    """Commands, photos and buttons for every platform; build with :meth:`create`, end with :meth:`close`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        worker: InferenceWorker,
        catalog: Catalog | None,
        spotify: SpotifyService,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.worker = worker
        self.recognizer = Recognizer(store, worker)
        self.catalog = catalog
        self.spotify = spotify
        self.conversations = Conversations(clock=clock)
        self.limiter = RateLimiter(settings.rate_limit_photos, settings.rate_limit_window_s, clock)
        self._results: OrderedDict[str, _Result] = OrderedDict()
        self._where: dict[int, tuple[Person, Place]] = {}
        self._linked_callbacks: list[LinkedCallback] = []
        self.store.default_track_count = settings.tracks_default
        spotify.on_linked(self._spotify_linked)

    @classmethod
    async def create(cls, settings: Settings, pipeline: FacePipeline | None = None) -> MoodtunesService:
        """Open the store, load the models and the catalog (in threads), set up Spotify."""
        store = await Store.open(settings.db)
        try:
            if pipeline is None:
                pipeline = await asyncio.to_thread(FacePipeline, settings)
            catalog = await asyncio.to_thread(load_service_catalog, settings)
        except BaseException:
            await store.close()
            raise
        return cls(settings, store, InferenceWorker(pipeline), catalog, SpotifyService(settings, store))

    async def close(self) -> None:
        """Finish inference in flight, then close the database."""
        await self.worker.close()
        await self.store.close()

    # Identity -----------------------------------------------------------------------------------

    async def _ids(self, person: Person, place: Place) -> tuple[int, int]:
        user = await self.store.ensure_user(person.platform, person.external_id, person.display_name)
        chat = await self.store.ensure_chat(place.platform, place.external_id, place.title)
        return user, chat

    def on_spotify_linked(self, callback: LinkedCallback) -> Callable[[], None]:
        """Register an adapter's notifier for links finished through the callback web page.

        Returns the function that unregisters it (adapters call it when they stop).
        """
        self._linked_callbacks.append(callback)
        return lambda: self._linked_callbacks.remove(callback) if callback in self._linked_callbacks else None

    async def _spotify_linked(self, user_id: int, display_name: str) -> None:
        where = self._where.get(user_id)
        if where is None:
            return
        reply = Reply(f"Spotify linked as {display_name}. Playlists are on: press 'Make a Spotify playlist'.")
        for callback in self._linked_callbacks:
            try:
                await callback(where[0], where[1], reply)
            except Exception:
                log.exception("spotify linked notification failed user=%s", user_id)

    # Commands -------------------------------------------------------------------------------------

    async def start(self, person: Person, place: Place) -> Reply:
        """/start: what the bot does."""
        return Reply(texts.WELCOME)

    async def help(self, person: Person, place: Place) -> Reply:
        """/help: every command, what is stored, how to delete it."""
        user, _ = await self._ids(person, place)
        settings = await self.store.get_settings(user)
        return Reply(texts.HELP.format(tracks=settings.track_count))

    async def set_track_count(self, person: Person, place: Place, argument: str) -> Reply:
        """/tracks N: songs per reply, 1..50; anything else gets the valid range."""
        user, _ = await self._ids(person, place)
        argument = argument.strip()
        if not argument:
            current = (await self.store.get_settings(user)).track_count
            return Reply(f"I send {current} songs per photo. Change it with /tracks N (N from 1 to 50).")
        try:
            count = int(argument)
        except ValueError:
            count = 0
        if not MIN_TRACKS <= count <= MAX_TRACKS:
            return Reply(
                f"/tracks takes a whole number from {MIN_TRACKS} to {MAX_TRACKS}, e.g. /tracks 15.",
                error=True,
            )
        await self.store.set_track_count(user, count)
        return Reply(f"Done: I'll send {count} songs per photo.")

    async def enroll(self, person: Person, place: Place, image: bytes | None = None) -> Reply:
        """/enroll (optionally with a photo): ask for consent first; the photo waits in memory."""
        user, chat = await self._ids(person, place)
        self.conversations.start(user, chat, Step.ENROLL_CONSENT, image)
        return Reply(
            texts.CONSENT,
            buttons=(Button("Yes, enrol me", Action.ENROLL_YES), Button("No", Action.ENROLL_NO)),
        )

    async def forget(self, person: Person, place: Place) -> Reply:
        """/forget: ask to confirm."""
        user, chat = await self._ids(person, place)
        self.conversations.start(user, chat, Step.FORGET_CONFIRM)
        return Reply(
            texts.FORGET_CONFIRM,
            buttons=(Button("Yes, delete everything", Action.FORGET_YES), Button("No", Action.FORGET_NO)),
        )

    async def link_spotify(self, person: Person, place: Place) -> Reply:
        """/linkspotify: the authorisation link, and how to finish if the redirect page fails."""
        user, _ = await self._ids(person, place)
        if not self.spotify.enabled:
            return Reply(self.spotify.disabled_reason or "Spotify is not configured.", error=True)
        try:
            url = await self.spotify.start_link(user)
        except MoodtunesError as exc:
            return Reply(str(exc), error=True)
        self._where[user] = (person, place)
        return Reply(
            "Open this link to connect your Spotify account (it works once, for 10 minutes). If the page "
            "you land on doesn't load, copy its address and paste it here.",
            link=url,
        )

    async def unlink_spotify(self, person: Person, place: Place) -> Reply:
        """/unlinkspotify: delete the stored tokens."""
        user, _ = await self._ids(person, place)
        removed = await self.spotify.unlink(user)
        if not removed:
            return Reply("Your Spotify account wasn't linked.")
        return Reply(
            "Unlinked: I deleted your Spotify tokens. To revoke moodtunes' access on Spotify's side too, "
            "visit https://www.spotify.com/account/apps/."
        )

    async def handle_text(self, person: Person, place: Place, text: str) -> Reply | None:
        """Plain text: a pasted Spotify redirect address finishes linking; other text gets None."""
        if "code=" not in text and "error=" not in text:
            return None
        if "state=" not in text:
            return None
        user, _ = await self._ids(person, place)
        try:
            name = await self.spotify.finish_link(user, text)
        except MoodtunesError as exc:
            return Reply(str(exc), error=True)
        return Reply(f"Spotify linked as {name}. Press 'Make a Spotify playlist' under a photo reply.")

    # Photos -----------------------------------------------------------------------------------------

    async def handle_photo(self, person: Person, place: Place, image: bytes) -> Reply:
        """A photo: enrolment if /enroll is waiting for one, else faces, emotions and songs."""
        started = time.perf_counter()
        user, chat = await self._ids(person, place)
        wait = self.limiter.check((person.platform, person.external_id))
        if wait > 0:
            log.info("rate limited platform=%s user=%s wait_s=%.0f", person.platform, user, wait)
            return Reply(
                f"You're sending photos faster than I can listen: try again in {max(1, round(wait))} s.",
                error=True,
            )
        pending = self.conversations.get(user, chat)
        if pending is not None and pending.step is Step.ENROLL_SELFIE:
            return await self._enroll_photo(user, chat, image)
        try:
            rgb = await asyncio.to_thread(decode_image, image)
            faces = await self.recognizer.identify(chat, rgb)
        except MoodtunesError as exc:
            log.info("photo refused platform=%s user=%s reason=%s", person.platform, user, exc.code)
            return Reply(str(exc), error=True)
        except Exception:
            log.exception("photo failed platform=%s user=%s", person.platform, user)
            return Reply(texts.OOPS, error=True)
        if not faces:
            log.info("photo no_face platform=%s user=%s", person.platform, user)
            return Reply(texts.NO_FACE, error=True)
        reply = await self._photo_reply(user, chat, rgb, faces)
        log.info(
            "photo platform=%s user=%s chat=%s faces=%d emotion=%s tracks=%d ms=%.0f",
            person.platform,
            user,
            chat,
            len(faces),
            reply.emotion,
            len(reply.tracks),
            1000 * (time.perf_counter() - started),
        )
        return reply

    async def _photo_reply(self, user: int, chat: int, rgb: np.ndarray, faces: list[IdentifiedFace]) -> Reply:
        lines = tuple(_face_line(f) for f in faces)
        main = next((f for f in faces if f.match.user_id == user), faces[0])
        emotion = main.analysis.emotion.label if main.analysis.emotion else "neutral"
        settings = await self.store.get_settings(user)
        photo = await asyncio.to_thread(annotate, rgb, lines)
        headline = _headline(faces, main, user)
        if self.catalog is None:
            return Reply(f"{headline}\n\n{texts.NO_CATALOG}", faces=lines, photo=photo, emotion=emotion)
        result = _Result(user, chat, emotion, settings.mood_policy, settings.track_count)
        token = self._remember(result)
        reply = self._tracks_reply(result, token, headline)
        return replace(reply, faces=lines, photo=photo)

    def _tracks_reply(self, result: _Result, token: str, headline: str) -> Reply:
        assert self.catalog is not None
        tracks = self.catalog.recommend(
            emotion=result.emotion, n=result.count, policy=result.policy, exclude=set(result.shown)
        )
        result.shown.extend(t.id for t in tracks)
        result.tracks = tuple(tracks)
        mood = self.catalog.mood_of(result.emotion, result.policy)
        other = (
            Button("Match my mood", Action.MATCH, token)
            if result.policy == "lift"
            else Button("Lift my mood", Action.LIFT, token)
        )
        buttons = [other, Button("More tracks", Action.MORE, token)]
        if self.spotify.enabled:
            buttons.insert(0, Button("Make a Spotify playlist", Action.PLAYLIST, token))
        text = headline if tracks else f"{headline}\n\nI've run out of new songs for this mood."
        return Reply(text, tracks=tuple(tracks), mood=mood, buttons=tuple(buttons), emotion=result.emotion)

    def _remember(self, result: _Result) -> str:
        token = secrets.token_urlsafe(6)
        self._results[token] = result
        while len(self._results) > RESULTS_KEPT:
            self._results.popitem(last=False)
        return token

    async def _enroll_photo(self, user: int, chat: int, image: bytes) -> Reply:
        try:
            rgb = await asyncio.to_thread(decode_image, image)
            enrolled = await self.recognizer.enroll(user, chat, rgb)
        except MoodtunesError as exc:
            log.info("enrol refused user=%s reason=%s", user, exc.code)
            return Reply(f"{exc} Send another selfie, or any command to stop.", error=True)
        except Exception:
            log.exception("enrol failed user=%s", user)
            return Reply(texts.OOPS, error=True)
        self.conversations.end(user, chat)
        log.info("enrolled user=%s chat=%s samples=%d", user, chat, enrolled.samples)
        more = "" if enrolled.samples >= 3 else " A couple more selfies (/enroll again) make me surer."
        return Reply(
            f"Got it: I'll recognise you in this chat ({enrolled.samples} sample(s) of your face).{more}"
        )

    # Buttons ----------------------------------------------------------------------------------------

    async def press(self, person: Person, place: Place, data: str) -> Reply:
        """A button press: ``data`` is the button's :attr:`Button.data`."""
        parsed = Button.parse(data)
        if parsed is None:
            return Reply("I don't know that button any more.", error=True)
        action, token = parsed
        user, chat = await self._ids(person, place)
        if action in (Action.ENROLL_YES, Action.ENROLL_NO, Action.FORGET_YES, Action.FORGET_NO):
            return await self._answer(user, chat, action)
        result = self._results.get(token)
        if result is None:
            return Reply(texts.EXPIRED, error=True)
        if result.user_id != user:
            return Reply(texts.NOT_YOURS, error=True)
        if action is Action.PLAYLIST:
            return await self._playlist(result)
        if action in (Action.LIFT, Action.MATCH):
            result.policy = action.value
            result.shown.clear()
            heading = "Lifting the mood:" if action is Action.LIFT else "Matching the mood:"
            return self._tracks_reply(result, token, heading)
        return self._tracks_reply(result, token, "More songs for the same mood:")

    async def _answer(self, user: int, chat: int, action: Action) -> Reply:
        pending = self.conversations.get(user, chat)
        if action in (Action.ENROLL_YES, Action.ENROLL_NO):
            if pending is None or pending.step is not Step.ENROLL_CONSENT:
                return Reply("That question has expired; send /enroll again.", error=True)
            if action is Action.ENROLL_NO:
                self.conversations.end(user, chat)
                return Reply(texts.ENROLL_CANCELLED)
            if pending.photo is not None:
                self.conversations.start(user, chat, Step.ENROLL_SELFIE)
                return await self._enroll_photo(user, chat, pending.photo)
            self.conversations.start(user, chat, Step.ENROLL_SELFIE)
            return Reply(texts.SEND_SELFIE)
        if pending is None or pending.step is not Step.FORGET_CONFIRM:
            return Reply("That question has expired; send /forget again.", error=True)
        self.conversations.end(user, chat)
        if action is Action.FORGET_NO:
            return Reply(texts.FORGET_CANCELLED)
        deleted = await self.store.delete_user(user)
        await self.recognizer.forget(user)
        self.conversations.end(user)
        self._where.pop(user, None)
        for token in [t for t, r in self._results.items() if r.user_id == user]:
            del self._results[token]
        log.info("forgot user=%s embeddings=%d spotify=%d", user, deleted.embeddings, deleted.spotify_tokens)
        return Reply(
            f"Done. I deleted everything about you: {deleted.embeddings} face sample(s), your settings"
            f"{' and your Spotify link' if deleted.spotify_tokens else ''}. I won't recognise you any more."
        )

    async def _playlist(self, result: _Result) -> Reply:
        if not self.spotify.enabled:
            return Reply(self.spotify.disabled_reason or "Spotify is not configured.", error=True)
        if not await self.spotify.is_linked(result.user_id):
            return Reply("Link your Spotify account first with /linkspotify, then press the button again.")
        ids = tuple(t.id for t in result.tracks)
        if not ids:
            return Reply("This list has no songs left to make a playlist of; send another photo.", error=True)
        async with result.playlist_lock:  # a double tap waits for the first press, then reuses it
            url = result.playlists.get(ids)
            if url is None:
                try:
                    url = await self.spotify.create_playlist(result.user_id, ids, result.emotion)
                except MoodtunesError as exc:
                    return Reply(str(exc), error=True)
                result.playlists[ids] = url
        return Reply(f"Your playlist of {len(ids)} songs is ready: {url}", link=url)


def load_service_catalog(settings: Settings) -> Catalog | None:
    """The configured catalog, else the shared one beside the project, else None (no songs)."""
    path = settings.catalog or (SHARED_CATALOG if SHARED_CATALOG.is_file() else None)
    if path is None:
        log.warning("no music catalog: set MOODTUNES_CATALOG")
        return None
    return load_catalog(path, settings.cache_dir)


def _face_line(face: IdentifiedFace) -> FaceLine:
    emotion = face.analysis.emotion
    x1, y1, x2, y2 = face.analysis.face.rounded_box()
    return FaceLine(
        face.match.name,
        emotion.label if emotion else None,
        emotion.confidence if emotion else None,
        (x1, y1, x2, y2),
    )


def _headline(faces: list[IdentifiedFace], main: IdentifiedFace, user: int) -> str:
    emotion = main.analysis.emotion
    feeling = f"You look {emotion.label} ({emotion.confidence:.0%})." if emotion else ""
    if main.match.user_id == user:
        return f"Hi {main.match.name}! {feeling}".strip()
    if len(faces) == 1:
        return f"I don't know you yet (send /enroll so I can). {feeling}".strip()
    return f"I see {len(faces)} faces; the songs follow the biggest one."
