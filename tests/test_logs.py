"""Secrets never reach the log, even at DEBUG.

The flows run end to end at ``MOODTUNES_LOG_LEVEL=DEBUG`` with logging configured exactly as
``moodtunes run`` configures it (:func:`bot.runner.configure_logging`, i.e. :func:`core.logs.configure`):
the real python-telegram-bot polling the fake Telegram and behind the webhook server, the real
discord.py on the fake Discord, real spotipy on the fake Spotify (a link by pasted address, one through
the callback page, a token refresh). Everything the root handler wrote is then searched for the bot
tokens, the webhook secret, the Spotify client secret, the token key, and every OAuth state, code,
access token and refresh token handed out. The CLI (``moodtunes --log-level DEBUG spotify link``) is
checked the same way.
"""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import discord
import discord.http
import pytest
from discord.gateway import DiscordWebSocket

from bot import discord_bot
from bot.cli import main
from bot.discord_bot import DiscordAdapter
from bot.runner import configure_logging
from bot.telegram_bot import TelegramAdapter, webhook_secret
from bot.telegram_webhook import SECRET_HEADER, WebhookServer
from core.app.replies import Action
from core.app.service import MoodtunesService
from core.logs import NOISY, QUIET, RedactingFilter
from core.spotify import SpotifyService
from core.spotify.callback_server import CallbackServer
from core.storage import open_store
from core.vision.analyzer import LazyAnalyzer
from core.vision.worker import InferenceWorker
from tests.fakes.discord import FakeDiscord
from tests.fakes.spotify import FakeSpotify, fast_policy
from tests.fakes.telegram import BotCall, FakeTelegram
from tests.pg import free_port

pytestmark = pytest.mark.timeout(180)
TELEGRAM_TOKEN = "7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
DISCORD_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GaBcDe.x0HnJ2kVb7sPq9uZ3mW1cR4tY6eA8dF5gH7jK9l"
TRACKS = ["4uLU6hMCjMI75M1A2tKUQC", "0nbXyq5TXYPCO7pr3N8S4I"]
WAIT = 30.0


@pytest.fixture
def log_state() -> Iterator[None]:
    """Leave logging as it was: configure() changes the root logger and the libraries' loggers."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    filters = {h: list(h.filters) for h in handlers}
    names = (*QUIET, *NOISY, "spotipy")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for handler, kept in filters.items():
        handler.filters[:] = kept
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def urls(text: str) -> list[str]:
    return re.findall(r"https?://\S+", text.replace("&amp;", "&"))


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


def button_data(message: BotCall, action: Action) -> str:
    [data] = [
        b["callback_data"] for b in message.buttons if b["callback_data"].startswith(action.value + ":")
    ]
    return str(data)


async def test_debug_logs_of_every_flow_hold_no_secret(
    log_state: None,
    capsys: pytest.CaptureFixture[str],
    fake_spotify: FakeSpotify,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    monkeypatch.setattr(discord_bot, "GUILD_READY_TIMEOUT_S", 0.1)
    callback_port, webhook_port = free_port(), free_port()
    hook = f"http://127.0.0.1:{webhook_port}/telegram/hook"
    states: list[str] = []
    async with FakeTelegram(TELEGRAM_TOKEN) as telegram, FakeDiscord(DISCORD_TOKEN) as discord_fake:
        settings = fake_spotify.settings(
            tmp_path / "db.sqlite3",
            redirect_uri=f"http://127.0.0.1:{callback_port}/spotify/callback",
            telegram_token=TELEGRAM_TOKEN,
            telegram_api_url=telegram.base_url,
            discord_token=DISCORD_TOKEN,
            discord_api_url=discord_fake.api_url,
            log_level="DEBUG",
        )
        configure_logging(settings)  # as `moodtunes run` does
        assert logging.getLogger().level == logging.DEBUG
        logging.getLogger("core.probe").debug("debug lines get through")
        store = await open_store(settings.db)
        spotify = SpotifyService(settings, store, policy=fast_policy())
        service = MoodtunesService(settings, store, InferenceWorker(LazyAnalyzer(settings)), None, spotify)
        callback = CallbackServer(spotify)
        await callback.start()
        try:
            # Telegram, long polling: link by pasting the address, then through the callback page.
            adapter = TelegramAdapter(service, settings)
            await adapter.start()
            try:
                ann = telegram.add_user("Ann")
                telegram.send_text(ann, None, "/linkspotify")
                (link,) = await telegram.wait_for_messages(ann, 1, WAIT)
                [url] = urls(link.text or "")
                states.append(state_of(url))
                telegram.send_text(ann, None, await fake_spotify.authorize(url, user="alice"))
                (_, question) = await telegram.wait_for_messages(ann, 2, WAIT)
                telegram.press_button(ann, question, button_data(question, Action.SPOTIFY_YES))
                (*_, linked) = await telegram.wait_for_messages(ann, 3, WAIT)
                assert "Spotify linked as Alice A." in (linked.text or "")

                telegram.send_text(ann, None, "/linkspotify")
                (*_, link) = await telegram.wait_for_messages(ann, 4, WAIT)
                [url] = urls(link.text or "")
                states.append(state_of(url))
                location = await fake_spotify.authorize(url, user="bob")
                async with aiohttp.ClientSession() as browser, browser.get(location) as page:
                    assert page.status == 200
                (*_, question) = await telegram.wait_for_messages(ann, 5, WAIT)
                telegram.press_button(ann, question, button_data(question, Action.SPOTIFY_YES))
                (*_, linked) = await telegram.wait_for_messages(ann, 6, WAIT)
                assert "Spotify linked as Bob B." in (linked.text or "")
                user = await store.find_user("telegram", str(ann.id))
                assert user is not None
                fake_spotify.expire_access_tokens()  # the stored refresh token is used too
                await spotify.create_playlist(user, TRACKS, "happy")
            finally:
                await adapter.stop()

            # Telegram, webhook: a forged post, a broken one, and a real update.
            hooked = TelegramAdapter(
                service,
                settings.model_copy(
                    update={
                        "telegram_webhook_url": hook,
                        "telegram_webhook_listen": f"127.0.0.1:{webhook_port}",
                    }
                ),
                "webhook",
            )
            server = WebhookServer(hooked, hooked.settings)
            await hooked.start()
            await server.start()
            try:
                ben = telegram.add_user("Ben")
                message = telegram.send_text(ben, None, "/linkspotify")
                headers = {SECRET_HEADER: webhook_secret(TELEGRAM_TOKEN)}
                async with aiohttp.ClientSession() as session:
                    async with session.post(hook, json={"update_id": 1, "message": message}) as response:
                        assert response.status == 403
                    async with session.post(hook, data=b"{nope", headers=headers) as response:
                        assert response.status == 400
                # The fake delivers the real update to the webhook itself, with the secret.
                await telegram.wait_for_messages(ben, 1, 60)
                (link,) = [c for c in telegram.sent_to(ben) if c.method == "sendMessage"]
                states += [state_of(u) for u in urls(link.text or "")]
            finally:
                await server.close()
                await hooked.stop()

            # Discord: /linkspotify, the address pasted in a DM, Yes.
            bot = DiscordAdapter(service, settings)
            await bot.start()
            try:
                dee = discord_fake.add_user("dee")
                interaction = await discord_fake.slash_command(dee, None, "linkspotify")
                [followup] = await discord_fake.wait_for_followups(interaction, timeout=WAIT)
                url = next(u for c in followup.components for u in _urls_of(c))
                states.append(state_of(url))
                dm = discord_fake.dm_channel(dee)
                await discord_fake.send_message(dee, dm, await fake_spotify.authorize(url, user="alice"))
                [question] = await discord_fake.wait_for_messages(dm, 1, timeout=WAIT)
                yes = next(
                    c["custom_id"]
                    for c in _flat(question.components)
                    if "spotify-yes" in str(c.get("custom_id"))
                )
                pressed = await discord_fake.press_button(dee, question, yes)
                await discord_fake.wait_for_followups(pressed, timeout=WAIT)
            finally:
                await bot.stop()
        finally:
            await callback.close()
            await service.close()

    logged = capsys.readouterr().err  # what the root handler wrote (it follows sys.stderr)
    assert "level=DEBUG logger=core.probe debug lines get through" in logged  # DEBUG was really on
    assert "Spotify linked for user" in logged and "telegram started" in logged and "discord ready" in logged
    secrets = {
        "telegram token": TELEGRAM_TOKEN,
        "telegram token secret part": TELEGRAM_TOKEN.split(":")[1],
        "discord token": DISCORD_TOKEN,
        "webhook secret": webhook_secret(TELEGRAM_TOKEN),
        "spotify client secret": fake_spotify.client_secret,
        "token key": settings.secret_key.get_secret_value(),
    }
    assert len(states) == 4 and len(fake_spotify.issued) >= 8
    secrets.update({f"state {i}": s for i, s in enumerate(states)})
    secrets.update({f"code or token {i}": s for i, s in enumerate(fake_spotify.issued)})
    leaked = [name for name, value in secrets.items() if value in logged]
    assert leaked == [], leaked


def _flat(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for row in rows for c in (row, *row.get("components", []))]


def _urls_of(component: dict[str, Any]) -> list[str]:
    return [str(c["url"]) for c in _flat([component]) if c.get("url")]


def test_the_cli_logs_through_the_same_redaction(
    log_state: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_proxy_env: None
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file from a checkout
    fake = FakeSpotify()
    screen = _Screen()
    err = io.StringIO()
    with fake.in_thread():
        for key, value in fake.env(f"http://127.0.0.1:{free_port()}/spotify/callback").items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("MOODTUNES_DB", str(tmp_path / "cli.sqlite3"))
        monkeypatch.setenv("MOODTUNES_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setattr(sys, "stdout", screen)
        monkeypatch.setattr(sys, "stdin", _Paste(fake, screen))
        monkeypatch.setattr(sys, "stderr", err)
        code = main(["--log-level", "DEBUG", "spotify", "link", "--user", "ann", "--no-server"])
    assert code == 0, screen.getvalue() + err.getvalue()
    assert logging.getLogger().level == logging.DEBUG
    filters = [f for h in logging.getLogger().handlers for f in h.filters if isinstance(f, RedactingFilter)]
    assert filters and fake.client_secret in filters[0].secrets
    logged = err.getvalue()
    assert "Spotify linked for user" in logged and "level=INFO" in logged
    [url] = re.findall(r"http://127\.0\.0\.1:\d+/authorize\?\S+", screen.getvalue())
    for secret in (fake.client_secret, state_of(url), *fake.issued):
        assert secret not in logged


class _Screen(io.StringIO):
    """stdout that lets the paste thread wait for the authorisation URL."""

    def __init__(self) -> None:
        super().__init__()
        self.printed = threading.Event()

    def write(self, text: str) -> int:
        n = super().write(text)
        if "/authorize?" in self.getvalue():
            self.printed.set()
        return n


class _Paste(io.StringIO):
    """stdin: the browser's redirect address once the URL is printed, then "yes"."""

    def __init__(self, fake: FakeSpotify, screen: _Screen) -> None:
        super().__init__()
        self.fake, self.screen, self.lines = fake, screen, 0

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        self.lines += 1
        if self.lines == 1:
            assert self.screen.printed.wait(10)
            [url] = re.findall(r"http://127\.0\.0\.1:\d+/authorize\?\S+", self.screen.getvalue())
            return self.fake.consent_location(url) + "\n"
        return "yes\n" if self.lines == 2 else ""
