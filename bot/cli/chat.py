"""``moodtunes chat`` (talk to the bot in this terminal) and ``moodtunes run`` (the chat platforms)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.cli.common import add_db, settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``chat`` and ``run``."""
    p = sub.add_parser("chat", help="chat with the bot in this terminal (a photo is a file path)")
    add_db(p)
    p.add_argument("--catalog", type=Path, help="track catalog (env MOODTUNES_CATALOG)")
    p.add_argument("--user", help="your name in the chat (default: your login name)")
    p.set_defaults(handler=_chat)

    p = sub.add_parser("run", help="run the Telegram/Discord bots whose tokens are set, until Ctrl-C")
    add_db(p)
    p.add_argument("--catalog", type=Path, help="track catalog (env MOODTUNES_CATALOG)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (several need PostgreSQL and the Telegram webhook; see README)",
    )
    p.set_defaults(handler=_run)


def _chat(args: argparse.Namespace) -> int:
    from bot.console import ConsoleChat
    from core.app.context import open_app

    settings = settings_from(args)

    async def main() -> None:
        async with open_app(settings, sweep=True) as app:
            await ConsoleChat(app.service, user=args.user).run()

    asyncio.run(main())
    return 0


def _run(args: argparse.Namespace) -> int:
    from bot.runner import configure_logging, run

    settings = settings_from(args)
    configure_logging(settings)
    if args.workers < 1:
        print("moodtunes: --workers must be at least 1")
        return 2
    if args.workers == 1:
        return asyncio.run(run(settings))
    from bot.supervisor import supervise

    forwarded = [
        flag
        for name in ("db", "catalog")
        if getattr(args, name)
        for flag in (f"--{name}", str(getattr(args, name)))
    ]
    return asyncio.run(supervise(settings, args.workers, forwarded))
