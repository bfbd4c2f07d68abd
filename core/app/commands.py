"""The chat commands, defined once as data: name, description, typed options, who sees the answer,
and the handler. Telegram registers them with ``setMyCommands``, Discord as slash commands with typed
options, the console and ``/help`` list them; a text command is parsed here the same way for
Telegram and the console. To add a command, add one :class:`Command` to :data:`COMMANDS`.

Descriptions are English templates marked with ``N_`` (they may use ``{low}`` and ``{high}``, the
range of songs per photo); :meth:`Command.describe` and :meth:`Option.describe` give them in the
current language, and the adapters register one translation per shipped language.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from core.app import texts
from core.app.i18n import LANGUAGES, N_, _, translation
from core.app.people import Person, Place
from core.app.replies import Reply
from core.music import MAX_TRACKS, MIN_TRACKS

if TYPE_CHECKING:
    from core.app.service import MoodtunesService, Photo


class OptionKind(StrEnum):
    """What an option holds."""

    INTEGER = "integer"
    PHOTO = "photo"
    CHOICE = "choice"
    """One of :attr:`Option.choices` (Discord shows a pick list; text commands take the word)."""


@dataclass(frozen=True)
class Option:
    """A command option: Discord shows it as a typed field; text commands take it after the name."""

    name: str
    description: str
    kind: OptionKind
    required: bool = False
    min_value: int | None = None
    max_value: int | None = None
    example: str = ""
    choices: tuple[str, ...] = ()
    hint: str = ""
    """How usage lines show the value (``"NUMBER"``, marked with ``N_``); default the name in capitals."""

    def describe(self) -> str:
        """The description in the current language."""
        return fill(self.description)

    def placeholder(self) -> str:
        """``NUMBER`` (in the current language), or ``on|off`` for choices."""
        if self.kind is OptionKind.CHOICE:
            return "|".join(self.choices)
        return _(self.hint) if self.hint else self.name.upper()


@dataclass(frozen=True)
class Call:
    """One use of a command: who, where, the parsed options, and a photo if one came with it."""

    person: Person
    place: Place
    args: Mapping[str, Any] = field(default_factory=dict)
    photo: Photo | None = None


Handler = Callable[["MoodtunesService", Call], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    """A chat command.

    Attributes:
        name: without the slash, lower case.
        description: one line, at most 100 characters (Discord's limit).
        run: ``await run(service, call)``.
        options: typed options, in order.
        private: in groups and servers the answer is for the sender's eyes only (where the platform
            allows it: Discord answers ephemerally; Telegram cannot, so private matters such as links go
            through :attr:`Reply.direct`).
        platforms: where it is offered; None for every platform.
    """

    name: str
    description: str
    run: Handler
    options: tuple[Option, ...] = ()
    private: bool = False
    platforms: frozenset[str] | None = None

    def offered_on(self, platform: str) -> bool:
        """Whether the command exists on ``platform``."""
        return self.platforms is None or platform in self.platforms

    def describe(self) -> str:
        """The description in the current language."""
        return fill(self.description)

    def usage(self) -> str:
        """``/tracks [COUNT]`` style usage (``/journal [on|off]`` for choices), in the current language."""
        hints = [o.placeholder() if o.required else f"[{o.placeholder()}]" for o in self.options]
        return " ".join([f"/{self.name}", *hints])


DESCRIPTION_VALUES = {"low": MIN_TRACKS, "high": MAX_TRACKS}
"""The values a command or option description may use."""


def fill(description: str, language: str | None = None) -> str:
    """A command's or option's description, translated (into ``language``, default the current one)
    and filled with :data:`DESCRIPTION_VALUES`."""
    template = translation(description, language) if language else _(description)
    return (template or description).format(**DESCRIPTION_VALUES)


class ArgumentError(ValueError):
    """A text command's options could not be parsed; ``str(error)`` says how to write them."""


async def _start(s: MoodtunesService, c: Call) -> Reply:
    return await s.start(c.person, c.place)


async def _help(s: MoodtunesService, c: Call) -> Reply:
    return await s.help(c.person, c.place)


async def _enroll(s: MoodtunesService, c: Call) -> Reply:
    return await s.enroll(c.person, c.place, c.photo)


async def _tracks(s: MoodtunesService, c: Call) -> Reply:
    return await s.set_track_count(c.person, c.place, c.args.get("count"))


async def _link(s: MoodtunesService, c: Call) -> Reply:
    return await s.link_spotify(c.person, c.place)


async def _unlink(s: MoodtunesService, c: Call) -> Reply:
    return await s.unlink_spotify(c.person, c.place)


async def _forget(s: MoodtunesService, c: Call) -> Reply:
    return await s.forget(c.person, c.place)


async def _journal(s: MoodtunesService, c: Call) -> Reply:
    return await s.journal_command(c.person, c.place, c.args.get("state"))


async def _history(s: MoodtunesService, c: Call) -> Reply:
    return await s.history(c.person, c.place)


async def _like(s: MoodtunesService, c: Call) -> Reply:
    return await s.rate_by_number(c.person, c.place, "like", int(c.args["number"]))


async def _dislike(s: MoodtunesService, c: Call) -> Reply:
    return await s.rate_by_number(c.person, c.place, "nope", int(c.args["number"]))


async def _language(s: MoodtunesService, c: Call) -> Reply:
    return await s.set_language(c.person, c.place, c.args.get("language"))


def _song_number(description: str) -> Option:
    return Option(
        "number",
        description,
        OptionKind.INTEGER,
        required=True,
        min_value=1,
        max_value=MAX_TRACKS,
        example="3",
        hint=N_("NUMBER"),
    )


async def _mood(s: MoodtunesService, c: Call) -> Reply:
    if c.photo is None:
        return Reply(_(texts.MOOD_ATTACH), error=True)
    return await s.handle_photo(c.person, c.place, c.photo)


AUTO = "auto"
"""``/language auto``: follow the platform's language again."""


COMMANDS: tuple[Command, ...] = (
    Command("start", N_("What this bot does"), _start),
    Command("help", N_("Commands, and what I store about you"), _help),
    Command(
        "enroll",
        N_("Let me recognise your face in this chat (asks consent)"),
        _enroll,
        (
            Option(
                "photo",
                N_("A selfie (optional: I'll ask for one otherwise)"),
                OptionKind.PHOTO,
                hint=N_("PHOTO"),
            ),
        ),
        private=True,
    ),
    Command(
        "tracks",
        N_("How many songs I send per photo ({low}-{high})"),
        _tracks,
        (
            Option(
                "count",
                N_("Songs per photo"),
                OptionKind.INTEGER,
                min_value=MIN_TRACKS,
                max_value=MAX_TRACKS,
                example="15",
                hint=N_("COUNT"),
            ),
        ),
        private=True,
    ),
    Command(
        "language",
        N_("The language I talk to you in (without a choice: which one, and the choices)"),
        _language,
        (
            Option(
                "language",
                N_("A language, or auto to follow your app's language"),
                OptionKind.CHOICE,
                choices=(*LANGUAGES, AUTO),
            ),
        ),
        private=True,
    ),
    Command("linkspotify", N_("Link your Spotify account for playlists"), _link, private=True),
    Command("unlinkspotify", N_("Remove your Spotify link"), _unlink, private=True),
    Command(
        "journal",
        N_("Keep a private mood journal of your photos (asks consent; off by default)"),
        _journal,
        (
            Option(
                "state",
                N_("on or off (without it: whether it is on)"),
                OptionKind.CHOICE,
                choices=("on", "off"),
            ),
        ),
        private=True,
    ),
    Command("history", N_("Your mood journal of the last 30 days, as a chart"), _history, private=True),
    Command(
        "like",
        N_("More songs like song N of your last list"),
        _like,
        (_song_number(N_("The song's number in your last list (more like it)")),),
        private=True,
    ),
    Command(
        "dislike",
        N_("Never send song N of your last list again"),
        _dislike,
        (_song_number(N_("The song's number in your last list (never again)")),),
        private=True,
    ),
    Command("forget", N_("Delete everything I keep about you"), _forget, private=True),
    Command(
        "mood",
        N_("Read the mood of a photo and get songs to match"),
        _mood,
        (
            Option(
                "photo",
                N_("A photo with one or more faces"),
                OptionKind.PHOTO,
                required=True,
                hint=N_("PHOTO"),
            ),
        ),
        platforms=frozenset({"discord"}),
    ),
)
"""Every command, in the order menus and /help show them."""
BY_NAME = {c.name: c for c in COMMANDS}


def commands_for(platform: str) -> tuple[Command, ...]:
    """The commands offered on ``platform``."""
    return tuple(c for c in COMMANDS if c.offered_on(platform))


def help_text(platform: str, tracks: int) -> str:
    """``/help``: what the bot does, one line per command, and what is stored (in the current language)."""
    lines = []
    for command in commands_for(platform):
        description = command.describe()
        if command.name == "tracks":
            description = _(texts.HELP_NOW).format(description=description, count=tracks)
        lines.append(f"{command.usage()} - {description}")
    return f"{_(texts.HELP_INTRO)}\n\n" + "\n".join(lines) + f"\n\n{_(texts.PRIVACY)}"


def split_command(text: str, bot_username: str = "") -> tuple[str, str] | None:
    """``"/tracks@moodbot 15"`` -> ``("tracks", "15")``; None if the text is not a command for us.

    A command addressed to another bot (``/start@otherbot``) is not ours. The name is returned even if
    unknown, so the caller can say so.
    """
    text = text.strip()
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _space, argument = text[1:].partition(" ")
    name, _at, target = head.partition("@")
    if target and bot_username and target.lower() != bot_username.lower():
        return None
    return name.lower(), argument.strip()


def parse_options(command: Command, argument: str) -> dict[str, Any]:
    """A text command's argument -> option values (photos are never typed). Raises ArgumentError."""
    values: dict[str, Any] = {}
    words = argument.split()
    typed = [o for o in command.options if o.kind is not OptionKind.PHOTO]
    for option, word in zip(typed, words, strict=False):
        values[option.name] = _parse_value(command, option, word)
    missing = [o for o in typed[len(words) :] if o.required]
    if missing or len(words) > len(typed):
        raise ArgumentError(_(texts.USAGE).format(usage=command.usage()))
    return values


def _parse_value(command: Command, option: Option, word: str) -> Any:
    if option.kind is OptionKind.CHOICE:
        if word.lower() not in option.choices:
            raise ArgumentError(_(texts.USAGE).format(usage=command.usage()))
        return word.lower()
    if option.kind is OptionKind.INTEGER:
        try:
            value = int(word)
        except ValueError:
            value = None
        low, high = option.min_value, option.max_value
        if value is None or (low is not None and value < low) or (high is not None and value > high):
            raise ArgumentError(
                _(texts.INTEGER_RANGE).format(
                    command=command.name, low=low, high=high, example=option.example or low
                )
            )
        return value
    return word
