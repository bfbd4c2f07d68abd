"""Console adapter: chat with the bot in a terminal, on the embedded defaults, no platform account needed.

Type a command (``/help``, ``/tracks 15``, ``/enroll``), a path to a photo (quoted or dragged in
works too), or a button shown under the last reply: its number, its label, or the label's first word
(``yes``, ``more``). Songs are rated with ``/like N`` and ``/dislike N`` (song N of the last list)
rather than a button. Annotated photos and charts are written to a temporary folder and their path
printed. ``/quit`` or end of input (Ctrl-D) leaves.

The bot talks in the terminal's language (``LC_ALL``, ``LC_MESSAGES`` or ``LANG``, e.g. ``es_ES.UTF-8``)
when it is a shipped one, unless ``/language`` chose another.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from core.app import texts
from core.app.commands import split_command
from core.app.i18n import _
from core.app.people import Person, Place
from core.app.replies import Action, Button, Reply, is_png, render_text
from core.app.service import MoodtunesService
from core.app.uploads import check_size
from core.errors import NotFound

PROMPT = "you> "
LOCAL = "local"
"""The platform of the terminal chat and the CLI: the same users and chats for both."""
DEFAULT_CHAT = "default"
"""The chat the terminal talks in (``moodtunes enroll --chat`` defaults to it too)."""
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")
"""Where the terminal's language is read from, first set first (as POSIX orders them)."""


def terminal_language(environ: dict[str, str] | None = None) -> str | None:
    """The terminal's language code (``"es_ES.UTF-8"``), or None when unset or ``C`` / ``POSIX``."""
    env = os.environ if environ is None else environ
    for name in LOCALE_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            return None if value.split(".")[0] in ("C", "POSIX") else value
    return None


class ConsoleChat:
    """One terminal conversation with the service.

    Args:
        service: the running service.
        out: where replies are printed (default stdout).
        user: the console user's name (default: the login name).
        language: the language code the terminal reports (default: :func:`terminal_language`).
    """

    def __init__(
        self,
        service: MoodtunesService,
        out: TextIO | None = None,
        user: str | None = None,
        language: str | None = None,
    ) -> None:
        self.service = service
        self.out = out or sys.stdout
        name = user or getpass.getuser()
        self.person = Person(LOCAL, name, name, language=language or terminal_language())
        self.place = Place(LOCAL, DEFAULT_CHAT, "terminal", ephemeral=True)  # only you read this terminal
        self.buttons: tuple[Button, ...] = ()
        self.photos = Path(tempfile.mkdtemp(prefix="moodtunes-"))
        self._count = 0

    def show(self, reply: Reply) -> None:
        """Print a reply: its text, photo path and numbered buttons. Control characters (terminal escape
        codes in a user-chosen name, a Spotify display name, a track title) are printed escaped."""
        from bot.cli.common import printable  # bot.cli.common imports this module

        print("bot> " + printable(render_text(reply)).replace("\n", "\n     "), file=self.out)
        with reply.speaking():
            if reply.tracks:
                print(f"     {_(texts.RATE_HINT)}", file=self.out)
            if reply.photo is not None:
                self._count += 1
                chart = is_png(reply.photo)
                path = self.photos / f"reply-{self._count}.{'png' if chart else 'jpg'}"
                path.write_bytes(reply.photo)
                saved = texts.SAVED_CHART if chart else texts.SAVED_PHOTO
                print(f"     {_(saved).format(path=path)}", file=self.out)
        # Songs are rated by command here (/like N, /dislike N), so the rating button is left out;
        # menu options (from elsewhere) are numbered after the buttons.
        buttons = tuple(b for b in reply.buttons if b.action is not Action.RATE) + tuple(
            replace(option, label=f"{menu.symbol} {option.label}")
            for menu in reply.menus
            for option in menu.options
        )
        if buttons:  # like a chat app, the last buttons shown stay pressable after a plain reply
            self.buttons = buttons
        for i, button in enumerate(buttons, 1):
            print(f"     [{i}] {printable(button.label)}", file=self.out)
        self.out.flush()

    async def handle(self, line: str) -> Reply | None:
        """One line of input -> the reply (None for an empty line)."""
        line = line.strip()
        if not line:
            return None
        await self.service.speak_to(self.person)
        if line.isdigit() and self.buttons:
            index = int(line) - 1
            if 0 <= index < len(self.buttons):
                return await self.service.press(self.person, self.place, self.buttons[index].data)
            return Reply(_(texts.PICK_BUTTON).format(count=len(self.buttons)), error=True)
        button = self._button_named(line)
        if button is not None:
            return await self.service.press(self.person, self.place, button.data)
        if _looks_like_command(line):
            parts = split_command(line)
            name, argument = parts if parts is not None else ("", "")
            if name == "enroll" and argument:  # /enroll PATH: the photo comes with the command
                return await self.service.run_command(
                    self.person, self.place, "enroll", photo=self._reader(_unquote(argument))
                )
            return await self.service.text_command(self.person, self.place, line)
        text_reply = await self.service.handle_text(self.person, self.place, line)
        if text_reply is not None:
            return text_reply
        return await self.service.handle_photo(self.person, self.place, self._reader(_unquote(line)))

    def _button_named(self, line: str) -> Button | None:
        """The one shown button whose label, or its first word, is ``line`` (any case)."""
        wanted = line.casefold()
        found = [
            b
            for b in self.buttons
            if wanted in (b.label.casefold(), b.label.split()[0].strip(",.!?").casefold())
        ]
        return found[0] if len(found) == 1 else None

    def _reader(self, name: str) -> Callable[[], Awaitable[bytes]]:
        """``await read()`` for a photo file; raises NotFound or FileTooLarge."""

        def read() -> bytes:
            path = Path(name).expanduser()
            if not path.is_file():
                raise NotFound(texts.NO_FILE, path=path)
            check_size(path.stat().st_size)
            return path.read_bytes()

        return lambda: asyncio.to_thread(read)

    async def run(self, read_line: Callable[[], str] | None = None) -> None:
        """Read lines until ``/quit`` or end of input; ``read_line`` defaults to the terminal."""
        reader = read_line or (lambda: input(PROMPT))
        self.show(await self.service.start(self.person, self.place))
        while True:
            try:
                line = await asyncio.to_thread(reader)
            except EOFError:
                break
            if line.strip() in ("/quit", "/exit"):
                break
            reply = await self.handle(line)
            if reply is not None:
                self.show(reply)
        print(_(texts.BYE).format(path=self.photos), file=self.out)


def _looks_like_command(line: str) -> bool:
    """``/word ...`` is a command; ``/home/ann/me.jpg`` or ``/me.jpg`` (a slash or dot after it) is a path."""
    first = line.split()[0]
    return first.startswith("/") and "/" not in first[1:] and "." not in first


def _unquote(line: str) -> str:
    """A path as terminals paste it (drag and drop): without surrounding quotes or backslashed spaces."""
    if len(line) >= 2 and line[0] == line[-1] and line[0] in "'\"":
        return line[1:-1]
    return line.replace("\\ ", " ")
