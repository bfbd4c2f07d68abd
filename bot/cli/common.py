"""Shared pieces of the CLI: settings from flags, the application, local people and chats, and output.

Every command opens the same application as the chat platforms (:func:`core.app.context.open_app`),
as the local user and chat of the terminal chat (``moodtunes chat``), so enrolling from the CLI and
chatting in the terminal see the same faces.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.console import DEFAULT_CHAT, LOCAL
from core.app.people import Person, Place
from core.config import ConfigError, Settings, load_settings
from core.errors import MoodtunesError

if TYPE_CHECKING:
    from core.app.context import App

SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""


def add_db(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``--db PATH_OR_URL`` (default: MOODTUNES_DB, else the user data directory); the command's
    settings then check that a SQLite path can be a database (see :func:`check_db`)."""
    parser.add_argument("--db", required=required, help="SQLite file or postgresql:// URL (env MOODTUNES_DB)")
    parser.set_defaults(opens_db=True)


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: one JSON object per line."""
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings with CLI flags (``--db``, ``--catalog``, ``--log-level``) over the environment.

    For commands that open the database (:func:`add_db`), ConfigError when it cannot be one."""
    settings = load_settings(
        db=getattr(args, "db", None),
        catalog=getattr(args, "catalog", None),
        log_level=getattr(args, "log_level", None),
    )
    if getattr(args, "opens_db", False):
        check_db(settings)
    return settings


def check_db(settings: Settings) -> None:
    """Raise :class:`ConfigError` (one line, printed by the entry point) when the SQLite database the
    settings name cannot be one: a directory, a file that is not SQLite, a path under a file, or a file
    that cannot be read. A missing file is fine (it is created); PostgreSQL URLs are not checked here."""
    if settings.db_is_postgres:
        return
    path = settings.db_path
    if path.is_dir():
        raise ConfigError(f"the database {path} is a directory, not a SQLite file (--db or MOODTUNES_DB)")
    if path.exists():
        try:
            with path.open("rb") as file:
                head = file.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise ConfigError(f"cannot read the database {path}: {exc.strerror or exc}") from None
        if head and head != SQLITE_HEADER:
            raise ConfigError(f"{path} is not a SQLite database (--db or MOODTUNES_DB)")
        return
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"cannot create the database {path}: {parent} is not a directory")
            return


@contextlib.asynccontextmanager
async def open_cli_app(settings: Settings, **options: Any) -> AsyncIterator[App]:
    """:func:`core.app.context.open_app` for a CLI command: a database SQLite refuses to open (damaged,
    locked, read-only) is one line (ConfigError), not a traceback."""
    from core.app.context import open_app

    async with contextlib.AsyncExitStack() as stack:
        try:
            app = await stack.enter_async_context(open_app(settings, **options))
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot use the database {settings.db}: {exc}") from None
        yield app


def local_person(name: str) -> Person:
    """A user of the terminal and the CLI, by name."""
    return Person(LOCAL, name, name)


def local_place(chat: str | None = None) -> Place:
    """A local chat (the terminal's by default); answers go to the operator alone."""
    name = chat or DEFAULT_CHAT
    return Place(LOCAL, name, name, ephemeral=True)


def error_record(file: str, exc: BaseException) -> dict[str, Any]:
    """The JSON line for a file that failed: the error's code, or ``internal`` for the unexpected."""
    if isinstance(exc, MoodtunesError):
        code, message = exc.code, str(exc)
    elif isinstance(exc, FileNotFoundError):
        code, message = "file_not_found", str(exc)
    else:
        code, message = "internal", f"unexpected error: {exc.__class__.__name__}"
    return {"file": file, "error": message, "code": code}


def emit(record: dict[str, Any], as_json: bool, text: str) -> None:
    """Print the record as one JSON line, or ``text`` for people; errors go to stderr in text mode."""
    if as_json:
        print(json.dumps(record, ensure_ascii=False), flush=True)
    elif "error" in record:
        print(
            f"{printable(str(record['file']))}: {printable(str(record['error']))}",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(printable(text), flush=True)


def printable(text: str) -> str:
    """``text`` with control characters (terminal escape codes in user-supplied names) made visible."""
    return "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)


def fail(message: str) -> int:
    """Print ``moodtunes: message`` to stderr; returns exit status 1."""
    print(f"moodtunes: {printable(message)}", file=sys.stderr, flush=True)
    return 1


def check_file(path: Path) -> Path:
    """``path`` if it is a file; FileNotFoundError otherwise."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path
