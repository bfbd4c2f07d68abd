"""``moodtunes run``: every platform whose token is set, in one process over one service.

Also starts the Spotify callback server when Spotify is configured. SIGINT/SIGTERM stop intake,
let replies in flight finish, then close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Protocol

from core.config import Settings, split_host_port
from core.service import MoodtunesService
from core.spotify.callback_server import CallbackServer

log = logging.getLogger(__name__)


class Adapter(Protocol):
    """What a platform adapter offers the runner."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def configure_logging(level: str) -> None:
    """Structured one-line logs: ``time level=... logger=... message``."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        force=True,
    )
    for noisy in ("httpx", "discord.gateway", "discord.client", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def adapters_for(service: MoodtunesService, settings: Settings) -> list[tuple[str, Adapter]]:
    """One adapter per platform with a token."""
    found: list[tuple[str, Adapter]] = []
    if settings.telegram_token.get_secret_value():
        from bot.telegram_bot import TelegramAdapter

        found.append(("telegram", TelegramAdapter(service, settings)))
    if settings.discord_token.get_secret_value():
        from bot.discord_bot import DiscordAdapter

        found.append(("discord", DiscordAdapter(service, settings)))
    return found


async def run(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Run until ``stop`` is set (default: SIGINT or SIGTERM); returns the exit status."""
    if not (settings.telegram_token.get_secret_value() or settings.discord_token.get_secret_value()):
        log.error("no platform token: set MOODTUNES_TELEGRAM_TOKEN and/or MOODTUNES_DISCORD_TOKEN")
        print(
            "moodtunes: no platform token set (MOODTUNES_TELEGRAM_TOKEN, MOODTUNES_DISCORD_TOKEN); "
            "try `moodtunes chat` to talk to the bot in this terminal"
        )
        return 2
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    service = await MoodtunesService.create(settings)
    running: list[tuple[str, Adapter]] = []
    callback: CallbackServer | None = None
    try:
        for name, adapter in adapters_for(service, settings):
            await adapter.start()
            running.append((name, adapter))
            log.info("platform started name=%s", name)
        if service.spotify.enabled:
            if settings.spotify_callback_listen:
                host, port = split_host_port(settings.spotify_callback_listen)
                callback = CallbackServer(service.spotify, host=host, port=port)
            else:  # a loopback http redirect URI says where to listen
                callback = CallbackServer(service.spotify)
            await callback.start()
            log.info("spotify callback server started redirect=%s", settings.spotify_redirect_uri)
        log.info("moodtunes running platforms=%s", ",".join(n for n, _ in running))
        await stop.wait()
        log.info("stopping: finishing replies in flight")
    finally:
        for name, adapter in reversed(running):
            try:
                await adapter.stop()
            except Exception:
                log.exception("platform stop failed name=%s", name)
        if callback is not None:
            await callback.close()
        await service.close()
        log.info("moodtunes stopped")
    return 0
