"""``moodtunes chat`` (talk to the bot in this terminal) and ``moodtunes run`` (the chat platforms)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.cli.common import settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``chat`` and ``run``."""
    p = sub.add_parser("chat", help="chat with the bot in this terminal (a photo is a file path)")
    p.add_argument("--db", type=Path, help="SQLite file (env MOODTUNES_DB)")
    p.add_argument("--catalog", type=Path, help="track catalog (env MOODTUNES_CATALOG)")
    p.add_argument("--user", help="your name in the chat (default: your login name)")
    p.set_defaults(handler=_chat)

    p = sub.add_parser("run", help="run the Telegram/Discord bots whose tokens are set, until Ctrl-C")
    p.add_argument("--db", type=Path, help="SQLite file (env MOODTUNES_DB)")
    p.add_argument("--catalog", type=Path, help="track catalog (env MOODTUNES_CATALOG)")
    p.set_defaults(handler=_run)


def _chat(args: argparse.Namespace) -> int:
    from bot.console import ConsoleChat
    from core.service import MoodtunesService

    settings = settings_from(args)

    async def main() -> None:
        service = await MoodtunesService.create(settings)
        try:
            await ConsoleChat(service, user=args.user).run()
        finally:
            await service.close()

    asyncio.run(main())
    return 0


def _run(args: argparse.Namespace) -> int:
    from bot.runner import configure_logging, run

    settings = settings_from(args)
    configure_logging(settings.log_level)
    return asyncio.run(run(settings))
