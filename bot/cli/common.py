"""Shared pieces of the CLI: settings from flags, the application, local people and chats, and output.

Every command opens the same application as the chat platforms (:func:`core.app.context.open_app`),
as the local user and chat of the terminal chat (``moodtunes chat``), so enrolling from the CLI and
chatting in the terminal see the same faces.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.console import DEFAULT_CHAT, LOCAL
from core.app.people import Person, Place
from core.config import Settings, load_settings
from core.errors import MoodtunesError


def add_db(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``--db PATH_OR_URL`` (default: MOODTUNES_DB, else the user data directory)."""
    parser.add_argument("--db", required=required, help="SQLite file or postgresql:// URL (env MOODTUNES_DB)")


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: one JSON object per line."""
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings with CLI flags (``--db``, ``--catalog``, ``--log-level``) over the environment."""
    return load_settings(
        db=getattr(args, "db", None),
        catalog=getattr(args, "catalog", None),
        log_level=getattr(args, "log_level", None),
    )


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
