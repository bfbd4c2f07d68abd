"""``moodtunes run``: every platform whose token is set, in one worker process over one application.

A worker serves Telegram (long polling, or the webhook server when ``MOODTUNES_TELEGRAM_WEBHOOK_URL``
is set), Discord (the shards given by the settings), ``/healthz`` and ``/metrics``, and, on worker 0,
the Spotify callback page. Several workers are started by :mod:`bot.supervisor`
(``moodtunes run --workers N``). SIGINT/SIGTERM stop intake, let replies in flight finish, then close
the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Protocol

from bot.ops import OpsServer
from core.app.context import open_app
from core.app.service import MoodtunesService
from core.config import Settings, split_host_port
from core.spotify.callback_server import CallbackServer

log = logging.getLogger(__name__)


class Service(Protocol):
    """Anything the runner starts and stops: platform adapters and servers."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class _Adapter(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class _Started:
    """An adapter seen as a :class:`Service` (its stop is called close)."""

    def __init__(self, adapter: _Adapter) -> None:
        self.adapter = adapter

    async def start(self) -> None:
        await self.adapter.start()

    async def close(self) -> None:
        await self.adapter.stop()


def configure_logging(settings: Settings) -> None:
    """Structured one-line logs: ``time level=... logger=... message``, every configured secret redacted."""
    from core.logs import configure

    secrets = (
        settings.telegram_token,
        settings.discord_token,
        settings.spotify_client_secret,
        settings.secret_key,
    )
    configure(settings.log_level, [s.get_secret_value() for s in secrets])


def parts_for(service: MoodtunesService, settings: Settings) -> list[tuple[str, Service]]:
    """What this worker runs, in start order."""
    parts: list[tuple[str, Service]] = []
    webhook = None
    if settings.telegram_token.get_secret_value():
        from bot.telegram_bot import TelegramAdapter

        if settings.telegram_webhook_url:
            from bot.telegram_webhook import WebhookServer

            adapter = TelegramAdapter(
                service, settings, "webhook", register_webhook=settings.worker_index == 0
            )
            webhook = WebhookServer(adapter, settings)
            parts += [("telegram", _Started(adapter)), ("telegram-webhook", webhook)]
        else:
            parts.append(("telegram", _Started(TelegramAdapter(service, settings))))
    if settings.discord_token.get_secret_value():
        from bot.discord_bot import DiscordAdapter

        parts.append(("discord", _Started(DiscordAdapter(service, settings))))
    if settings.ops_listen and webhook is None:
        host, port = split_host_port(settings.ops_listen)
        parts.append(("ops", OpsServer(service, host, port)))
    if service.spotify.enabled and settings.worker_index == 0:
        if settings.spotify_callback_listen:
            host, port = split_host_port(settings.spotify_callback_listen)
            parts.append(("spotify-callback", CallbackServer(service.spotify, host=host, port=port)))
        else:  # a loopback http redirect URI says where to listen
            parts.append(("spotify-callback", CallbackServer(service.spotify)))
    return parts


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
    async with open_app(settings, sweep=True) as app:
        started: list[tuple[str, Service]] = []
        try:
            for name, part in parts_for(app.service, settings):
                await part.start()
                started.append((name, part))
                log.info("started name=%s worker=%d", name, settings.worker_index)
            log.info(
                "moodtunes running worker=%d parts=%s", settings.worker_index, ",".join(n for n, _ in started)
            )
            await stop.wait()
            log.info("stopping: finishing replies in flight")
        finally:
            for name, part in reversed(started):
                try:
                    await part.close()
                except Exception:
                    log.exception("stop failed name=%s", name)
    log.info("moodtunes stopped")
    return 0
