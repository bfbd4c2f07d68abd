"""The ``moodtunes`` command line: one sub-command per module in this package.

Each module exposes ``register(subparsers)``, which adds its sub-commands with
``set_defaults(handler=...)``; a handler takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from core.config import ConfigError
from core.errors import MoodtunesError

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
    level = (args.log_level or "").upper() or None
    logging.basicConfig(
        level=level or "WARNING",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
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


if __name__ == "__main__":
    sys.exit(main())
