"""The ``moodtunes`` command line: one sub-command per module in this package.

Each module exposes ``register(subparsers)``, which adds its sub-commands with
``set_defaults(handler=...)``; a handler takes the parsed arguments and returns the exit status.
Logging is configured like ``moodtunes run`` (:mod:`core.logs`: secrets redacted), at WARNING unless
``--log-level`` or ``MOODTUNES_LOG_LEVEL`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from core.config import ConfigError, load_settings
from core.errors import MoodtunesError
from core.logs import LEVELS, configure, configured_secrets

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The full parser, every sub-command registered."""
    from bot import deploy
    from bot.cli import chat, emotion, faces, maintenance, music, spotify

    parser = argparse.ArgumentParser(
        prog="moodtunes",
        description="Selfie in, music out: faces, who they are, how they feel, and songs to match.",
    )
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (env MOODTUNES_LOG_LEVEL)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (maintenance, faces, emotion, music, spotify, chat, deploy):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``moodtunes`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (args.log_level or os.environ.get("MOODTUNES_LOG_LEVEL") or "WARNING").strip().upper()
    if level not in LEVELS:
        parser.error(f"--log-level must be one of {', '.join(LEVELS)}, not {level!r}")
    configure_logging(level)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"moodtunes: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MoodtunesError as exc:  # e.g. a database from a newer moodtunes
        print(f"moodtunes: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("moodtunes: interrupted", file=sys.stderr)
        return 130


def configure_logging(level: str) -> None:
    """Log as ``moodtunes run`` does: one line per event to stderr, libraries that print secrets at
    DEBUG held quiet, and every configured secret (and known kind of secret) redacted."""
    try:
        secrets = configured_secrets(load_settings())
    except ConfigError:
        secrets = []  # the command will report the bad setting; known kinds are redacted anyway
    configure(level, secrets)


if __name__ == "__main__":
    sys.exit(main())
