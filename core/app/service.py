"""The one async service every adapter calls; it returns platform-neutral :class:`Reply` objects.

Adapters identify the sender with a :class:`Person` and the conversation with a :class:`Place`, then
call one method per command, photo, text or button press, and render what comes back. The service
is thin: it resolves people and places to ids, decides the language of the answer, applies the
per-user rate limit, and hands the work to
:class:`~core.app.photos.PhotoReplies`, :class:`~core.app.conversations.Conversations`,
:class:`~core.app.linking.SpotifyLinking`, and for personal music :class:`~core.app.journal.MoodJournal`,
:class:`~core.app.feedback.SongFeedback` and :class:`~core.app.personal.PersonalMusic`. It keeps no
state of its own between calls: all of it is in the store, so several workers can serve one bot.
Nothing here blocks the event loop.

The language: every entry point decides it first (:meth:`MoodtunesService.ids`, or
:meth:`MoodtunesService.speak_to` where no ids are needed) and sets it for the rest of the task
(:func:`core.app.i18n.use_language`): the user's ``/language`` choice, else the language their platform
reports with this message (:attr:`Person.language`), else the one it reported last, else English.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from core.app import metrics, texts
from core.app.commands import AUTO, BY_NAME, ArgumentError, Call, help_text, parse_options, split_command
from core.app.conversations import Conversations, Step
from core.app.feedback import SongFeedback
from core.app.i18n import DEFAULT, LANGUAGES, _, current_language, negotiate, use_language
from core.app.journal import MoodJournal
from core.app.linking import LinkedCallback, SpotifyLinking
from core.app.people import Person, Place
from core.app.personal import PersonalMusic
from core.app.photos import PhotoReplies
from core.app.replies import Action, Button, Reply
from core.app.taste import SpotifyTaste
from core.config import Settings
from core.errors import MoodtunesError
from core.music import MAX_TRACKS, MIN_TRACKS, Catalog
from core.spotify import SpotifyService
from core.storage import Deleted, Store
from core.vision.imaging import decode_image
from core.vision.recognizer import Recognizer
from core.vision.worker import InferenceWorker

log = logging.getLogger(__name__)

Photo = bytes | Callable[[], Awaitable[bytes]]
"""A photo's bytes, or ``await download()`` for them: the service calls it only after the sender
passed the rate limit, so a refused photo is never downloaded. ``download`` raises a
:class:`~core.errors.MoodtunesError` (too big, download failed) to refuse."""
SWEEP_INTERVAL_S = 60.0


class MoodtunesService:
    """Commands, photos and buttons for every platform.

    Args:
        settings: limits and defaults (rate limit, songs per reply, expiries).
        store: the open store.
        worker: the inference worker (models).
        catalog: the track catalog, or None.
        spotify: the Spotify service.
        clock: Unix time (tests pass a fake).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        worker: InferenceWorker,
        catalog: Catalog | None,
        spotify: SpotifyService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.worker = worker
        self.catalog = catalog
        self.spotify = spotify
        self.recognizer = Recognizer(store, worker)
        self.personal = PersonalMusic(store, SpotifyTaste(store, spotify, clock))
        self.photos = PhotoReplies(
            store, catalog, spotify, settings.result_ttl_s, clock, personal=self.personal.for_user
        )
        self.journal = MoodJournal(store, settings.conversation_ttl_s, clock)
        self.feedback = SongFeedback(store, catalog, clock)
        self.conversations = Conversations(store, self.recognizer, settings.conversation_ttl_s, clock)
        self.linking = SpotifyLinking(spotify, self.language_of)
        self._clock = clock
        self.store.default_track_count = settings.tracks_default

    async def close(self) -> None:
        """Finish inference in flight, then close the database."""
        await self.worker.close()
        await self.store.close()

    def on_spotify_linked(self, callback: LinkedCallback) -> Callable[[], None]:
        """Register an adapter's notifier: it delivers, privately, the question that confirms a Spotify
        account authorised on the callback page; returns the function that unregisters it (adapters
        call it when they stop)."""
        return self.linking.on_linked(callback)

    async def ids(self, person: Person, place: Place) -> tuple[int, int]:
        """The store's ids of the sender and the chat (created on first sight), and the sender's
        language for the rest of the task (see the module docstring). A private chat belongs to its
        user and is deleted with them."""
        user = await self.store.ensure_user(
            person.platform, person.external_id, person.display_name, person.language
        )
        owner = user if place.private and not person.anonymous else None
        chat = await self.store.ensure_chat(
            place.platform, place.external_id, "" if owner else place.title, owner
        )
        stored = await self.store.user_language(user)
        use_language(choose_language(stored.choice, person.language, stored.locale))
        return user, chat

    async def speak_to(self, person: Person) -> str:
        """Answer ``person`` in their language for the rest of this task (without creating them); returns
        it. Adapters call it before saying anything of their own."""
        stored = await self.store.find_user_language(person.platform, person.external_id)
        language = choose_language(stored.choice, person.language, stored.locale)
        use_language(language)
        return language

    async def language_of(self, user: int) -> str:
        """A user's language outside a request (a notification): their choice, else what their platform
        reported last, else English."""
        stored = await self.store.user_language(user)
        return choose_language(stored.choice, None, stored.locale)

    # Commands -------------------------------------------------------------------------------------

    async def text_command(
        self, person: Person, place: Place, text: str, photo: Photo | None = None, bot_username: str = ""
    ) -> Reply | None:
        """A ``/command args`` line (Telegram, console); None if it is addressed to another bot."""
        parts = split_command(text, bot_username)
        if parts is None:
            return None
        name, argument = parts
        await self.speak_to(person)  # the usage line of a badly written command is in their language
        command = BY_NAME.get(name)
        if command is None or not command.offered_on(person.platform):
            return Reply(_(texts.UNKNOWN_COMMAND).format(command=f"/{name}"), error=True)
        try:
            args = parse_options(command, argument)
        except ArgumentError as exc:
            return Reply(str(exc), error=True)
        return await self.run_command(person, place, name, args, photo)
        return await self.run_command(person, place, name, args, photo)

    async def run_command(
        self,
        person: Person,
        place: Place,
        name: str,
        args: Mapping[str, Any] | None = None,
        photo: Photo | None = None,
    ) -> Reply:
        """Run a command with parsed options. Any command ends a waiting "send me a selfie" step."""
        command = BY_NAME.get(name)
        if command is None or not command.offered_on(person.platform):
            await self.speak_to(person)
            return Reply(_(texts.UNKNOWN_COMMAND).format(command=f"/{name}"), error=True)
        user, chat = await self.ids(person, place)
        await self.conversations.end_selfie_step(user, chat)
        metrics.COMMANDS.labels(name).inc()
        return await command.run(self, Call(person, place, args or {}, photo))

    async def start(self, person: Person, place: Place) -> Reply:
        """/start: what the bot does."""
        await self.speak_to(person)
        return Reply(_(texts.WELCOME))

    async def help(self, person: Person, place: Place) -> Reply:
        """/help: every command, what is stored, how to delete it."""
        user, _chat = await self.ids(person, place)
        settings = await self.store.get_settings(user)
        return Reply(help_text(person.platform, settings.track_count))

    async def set_language(self, person: Person, place: Place, choice: str | None) -> Reply:
        """/language [code|auto]: the language the bot talks to the sender in; a code chooses it,
        ``auto`` follows the platform's again; without one, which it is and the choices."""
        user, _chat = await self.ids(person, place)
        if choice is None:
            stored = await self.store.user_language(user)
            if negotiate(stored.choice):
                status = texts.LANGUAGE_CHOSEN
            elif negotiate(person.language) or negotiate(stored.locale):
                status = texts.LANGUAGE_PLATFORM
            else:
                status = texts.LANGUAGE_DEFAULT
            choices = ", ".join(f"/language {code} ({name})" for code, name in LANGUAGES.items())
            return Reply(
                _(status).format(language=_language_name())
                + "\n"
                + _(texts.LANGUAGE_CHOICES).format(choices=choices)
            )
        if choice == AUTO:
            await self.store.set_language(user, None)
            stored = await self.store.user_language(user)
            use_language(choose_language(None, person.language, stored.locale))
            log.info("language auto platform=%s user=%s now=%s", person.platform, user, current_language())
            return Reply(_(texts.LANGUAGE_AUTO).format(language=_language_name()))
        language = negotiate(choice)
        if language is None:
            return Reply(_(texts.USAGE).format(usage=BY_NAME["language"].usage()), error=True)
        await self.store.set_language(user, language)
        use_language(language)
        log.info("language set platform=%s user=%s language=%s", person.platform, user, language)
        return Reply(_(texts.LANGUAGE_SET).format(language=_language_name()))

    async def set_track_count(self, person: Person, place: Place, count: int | None) -> Reply:
        """/tracks N: songs per reply, 1..50; without N, the current value."""
        user, _chat = await self.ids(person, place)
        if count is None:
            current = (await self.store.get_settings(user)).track_count
            return Reply(_(texts.TRACKS_NOW).format(count=current, low=MIN_TRACKS, high=MAX_TRACKS))
        if not MIN_TRACKS <= count <= MAX_TRACKS:
            return Reply(
                _(texts.INTEGER_RANGE).format(command="tracks", low=MIN_TRACKS, high=MAX_TRACKS, example=15),
                error=True,
            )
        await self.store.set_track_count(user, count)
        return Reply(_(texts.TRACKS_SET).format(count=count))

    async def enroll(self, person: Person, place: Place, photo: Photo | None = None) -> Reply:
        """/enroll (optionally with a photo): ask for consent first. A photo given with the command
        counts against the rate limit and waits for the answer only as its face embedding."""
        if person.anonymous:
            return await self._anonymous(person, texts.WHAT_ENROLL)
        user, chat = await self.ids(person, place)
        if photo is None:
            return await self.conversations.ask_enroll(user, chat)
        refused = await self._rate_limited(person, user)
        if refused is not None:
            return refused
        try:
            rgb = await asyncio.to_thread(decode_image, await _bytes(photo))
            analysis = await self.recognizer.enrollment(rgb)
        except MoodtunesError as exc:
            log.info("enrol photo refused platform=%s user=%s reason=%s", person.platform, user, exc.code)
            metrics.ERRORS.labels(exc.code).inc()
            return Reply(exc.localized(), error=True)
        return await self.conversations.ask_enroll(user, chat, analysis.embedding)

    async def forget(self, person: Person, place: Place) -> Reply:
        """/forget: ask to confirm."""
        user, chat = await self.ids(person, place)
        return await self.conversations.ask_forget(user, chat)

    async def forget_user(self, user: int) -> Deleted:
        """Delete everything about a user now (the confirmed /forget, and ``moodtunes forget``)."""
        deleted = await self.store.delete_user(user)
        log.info(
            "forgot user=%s embeddings=%d spotify=%d journal=%d ratings=%d",
            user,
            deleted.embeddings,
            deleted.spotify_tokens,
            deleted.journal_entries,
            deleted.ratings,
        )
        return deleted

    async def link_spotify(self, person: Person, place: Place) -> Reply:
        """/linkspotify: the authorisation link, for the sender's eyes only."""
        if person.anonymous:
            return await self._anonymous(person, texts.WHAT_LINK)
        user, _chat = await self.ids(person, place)
        return await self.linking.link(user, person, place)

    async def unlink_spotify(self, person: Person, place: Place) -> Reply:
        """/unlinkspotify: delete the stored tokens."""
        user, _chat = await self.ids(person, place)
        return await self.linking.unlink(user)

    async def journal_command(self, person: Person, place: Place, state: str | None) -> Reply:
        """/journal [on|off]: whether the mood journal is on; ``on`` asks consent first; ``off`` stops it
        and deletes its entries."""
        if person.anonymous:
            return await self._anonymous(person, texts.WHAT_JOURNAL)
        user, _chat = await self.ids(person, place)
        return await self.journal.command(user, state)

    async def history(self, person: Person, place: Place) -> Reply:
        """/history: the mood journal's chart of the last 30 days (sent privately from a shared chat)."""
        user, _chat = await self.ids(person, place)
        reply = await self.journal.history(user)
        if reply.photo is None or place.seen_by_sender_only:
            return reply
        return Reply(_(texts.HISTORY_SENT_PRIVATELY), direct=reply)

    async def rate_by_number(self, person: Person, place: Place, verdict: str, number: int) -> Reply:
        """/like N, /dislike N: rate song N of the sender's latest list in this chat (``like``/``nope``)."""
        user, chat = await self.ids(person, place)
        command = "like" if verdict == "like" else "dislike"
        return await self.feedback.rate_number(user, chat, verdict, number, command)

    async def handle_text(self, person: Person, place: Place, text: str) -> Reply | None:
        """Plain text: a pasted Spotify redirect address gets the question that confirms the account;
        other text gets None."""
        if "state=" not in text:
            return None
        user, _chat = await self.ids(person, place)
        return await self.linking.paste(user, text)

    # Photos -----------------------------------------------------------------------------------------

    async def handle_photo(self, person: Person, place: Place, photo: Photo) -> Reply:
        """A photo: enrolment if /enroll is waiting for a selfie, else faces, emotions and songs."""
        started = time.perf_counter()
        user, chat = await self.ids(person, place)
        refused = await self._rate_limited(person, user)
        if refused is not None:
            return refused
        outcome = "error"
        try:
            replayed = await self.conversations.replay(user, chat)
            if replayed is not None:  # this very photo enrolled the user before a worker died
                outcome = "enrolment"
                return replayed
            image = await _bytes(photo)
            rgb = await asyncio.to_thread(decode_image, image)
            if await self.conversations.step(user, chat) is Step.ENROLL_SELFIE:
                reply = await self.conversations.enroll_selfie(user, chat, rgb)
                outcome = "enrolment"
                return reply
            faces = await self.recognizer.identify(chat, rgb)
            if not faces:
                log.info("photo no_face platform=%s user=%s", person.platform, user)
                outcome = "no_face"
                return Reply(_(texts.NO_FACE), error=True)
            reply = await self.photos.reply(user, chat, rgb, faces)
            await self._journal(user, reply)
            outcome = "ok"
        except MoodtunesError as exc:
            log.info("photo refused platform=%s user=%s reason=%s", person.platform, user, exc.code)
            outcome = exc.code
            metrics.ERRORS.labels(exc.code).inc()
            return Reply(exc.localized(), error=True)
        except Exception:
            log.exception("photo failed platform=%s user=%s", person.platform, user)
            metrics.ERRORS.labels("internal").inc()
            return Reply(_(texts.OOPS), error=True)
        finally:
            elapsed = time.perf_counter() - started
            metrics.PHOTOS.labels(outcome).inc()
            metrics.REPLY_SECONDS.observe(elapsed)
        log.info(
            "photo platform=%s user=%s chat=%s faces=%d found=%d emotion=%s tracks=%d ms=%.0f",
            person.platform,
            user,
            chat,
            len(faces),
            faces.found,
            reply.emotion,
            len(reply.tracks),
            1000 * elapsed,
        )
        return reply

    async def _journal(self, user: int, reply: Reply) -> None:
        """Record a photo reply in the user's mood journal, if they turned it on."""
        if reply.emotion is None:
            return
        policy = (await self.store.get_settings(user)).mood_policy
        await self.journal.record(user, reply.emotion, reply.tracks, policy)

    async def _rate_limited(self, person: Person, user: int) -> Reply | None:
        """Count a photo for the user; the refusal if they are over the limit."""
        wait = await self.store.rate_check(
            user, "photo", self.settings.rate_limit_photos, self.settings.rate_limit_window_s, self._clock()
        )
        if wait <= 0:
            return None
        log.info("rate limited platform=%s user=%s wait_s=%.0f", person.platform, user, wait)
        metrics.ERRORS.labels("rate_limited").inc()
        return Reply(_(texts.RATE_LIMITED).format(seconds=max(1, round(wait))), error=True)

    async def _anonymous(self, person: Person, what: str) -> Reply:
        """The refusal of something only a person can do, to a sender who is a group or a channel."""
        await self.speak_to(person)
        return Reply(_(texts.NOT_FOR_ANONYMOUS).format(what=_(what)), error=True)

    # Buttons ----------------------------------------------------------------------------------------

    async def press(self, person: Person, place: Place, data: str) -> Reply:
        """A button press: ``data`` is the button's :attr:`Button.data`."""
        parsed = Button.parse(data)
        if parsed is None:
            await self.speak_to(person)
            return Reply(_(texts.UNKNOWN_BUTTON), error=True)
        action, token = parsed
        user, chat = await self.ids(person, place)
        metrics.PRESSES.labels(action.value).inc()
        if action in (Action.ENROLL_YES, Action.ENROLL_NO, Action.FORGET_YES, Action.FORGET_NO):
            return await self.conversations.answer(user, chat, action, self._forgotten)
        if action in (Action.SPOTIFY_YES, Action.SPOTIFY_NO):
            return await self.linking.answer(user, action, token)
        if action in (Action.JOURNAL_YES, Action.JOURNAL_NO):
            return await self.journal.answer(user, action, token)
        if action in (Action.RATE, Action.NOPE, Action.LIKE):
            return await self.feedback.press(user, action, token)
        return await self.photos.press(user, action, token)

    async def _forgotten(self, user: int) -> Reply:
        deleted = await self.forget_user(user)
        return Reply(
            _(texts.FORGOTTEN).format(
                embeddings=deleted.embeddings,
                journal=_(texts.FORGOTTEN_JOURNAL).format(count=deleted.journal_entries)
                if deleted.journal_entries
                else "",
                ratings=_(texts.FORGOTTEN_RATINGS).format(count=deleted.ratings) if deleted.ratings else "",
                spotify=_(texts.FORGOTTEN_SPOTIFY) if deleted.spotify_tokens else "",
            ),
            closes_question=True,
        )

    # Housekeeping -----------------------------------------------------------------------------------

    async def sweep(self) -> dict[str, int]:
        """Delete expired state (results, conversations, rate windows, handled updates, link states)."""
        swept = await self.store.sweep(self._clock(), rate_window_s=self.settings.rate_limit_window_s)
        if any(swept.values()):
            log.info("swept %s", " ".join(f"{k}={v}" for k, v in swept.items() if v))
        return swept

    async def sweep_forever(self, interval_s: float = SWEEP_INTERVAL_S) -> None:
        """:meth:`sweep` every ``interval_s`` seconds until cancelled (failures are logged)."""
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep failed")
            await asyncio.sleep(interval_s)


async def _bytes(photo: Photo) -> bytes:
    return photo if isinstance(photo, bytes) else await photo()


def choose_language(choice: str | None, reported: str | None, stored: str | None) -> str:
    """The language to answer in: the ``/language`` ``choice``, else the language the platform
    ``reported`` with this message, else the one it reported last (``stored``), else English (the
    first of them that is a shipped language)."""
    return negotiate(choice) or negotiate(reported) or negotiate(stored) or DEFAULT


def _language_name() -> str:
    """The current language, named in itself as a sentence says it (``"español"``)."""
    return _(texts.LANGUAGE_NAMES[current_language()])
