"""The commands every platform offers, and one dispatcher from a command name to the service.

Telegram registers :data:`COMMANDS` with ``setMyCommands``, Discord as slash commands, the console
lists them in ``/help``; all three call :func:`dispatch`, so a command behaves the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.replies import Reply
from core.service import MoodtunesService, Person, Place


@dataclass(frozen=True)
class Command:
    """A chat command: its name (no slash) and a one-line description (<= 100 characters)."""

    name: str
    description: str
    takes_photo: bool = False
    argument: str | None = None
    """Name of the command's text argument, if it has one."""


COMMANDS: tuple[Command, ...] = (
    Command("start", "What this bot does"),
    Command("help", "Commands, and what I store about you"),
    Command("enroll", "Let me recognise your face in this chat (asks consent)", takes_photo=True),
    Command("tracks", "How many songs I send per photo (1-50)", argument="count"),
    Command("linkspotify", "Link your Spotify account for playlists"),
    Command("unlinkspotify", "Remove your Spotify link"),
    Command("forget", "Delete everything I keep about you"),
)
BY_NAME = {c.name: c for c in COMMANDS}


def parse_command(text: str, bot_username: str = "") -> tuple[str, str] | None:
    """``"/tracks@moodbot 15"`` -> ``("tracks", "15")``; None if the text is not one of our commands.

    A command addressed to another bot (``/start@otherbot``) is not ours either.
    """
    text = text.strip()
    if not text.startswith("/"):
        return None
    head, _, argument = text[1:].partition(" ")
    name, _, target = head.partition("@")
    if target and bot_username and target.lower() != bot_username.lower():
        return None
    name = name.lower()
    return (name, argument.strip()) if name in BY_NAME else None


async def dispatch(
    service: MoodtunesService,
    person: Person,
    place: Place,
    name: str,
    argument: str = "",
    photo: bytes | None = None,
) -> Reply:
    """Run one command. Unknown names get a pointer to /help."""
    if name == "start":
        return await service.start(person, place)
    if name == "help":
        return await service.help(person, place)
    if name == "enroll":
        return await service.enroll(person, place, photo)
    if name == "tracks":
        return await service.set_track_count(person, place, argument)
    if name == "linkspotify":
        return await service.link_spotify(person, place)
    if name == "unlinkspotify":
        return await service.unlink_spotify(person, place)
    if name == "forget":
        return await service.forget(person, place)
    return Reply(f"I don't know /{name}. Send /help to see what I can do.", error=True)
