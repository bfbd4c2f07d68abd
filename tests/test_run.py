"""``moodtunes run`` as a real process, and the Telegram webhook mode."""

from __future__ import annotations

import asyncio
import html
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.telegram_bot import TelegramAdapter, webhook_secret
from bot.telegram_webhook import WebhookServer
from core.vision.analyzer import FaceAnalyzer
from tests.conftest import ROOT, data_path
from tests.fakes.spotify import FakeSpotify
from tests.fakes.telegram import BotCall, FakeTelegram, TgUser
from tests.pg import free_port
from tests.service_fixtures import make_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT = 120.0


def sent(fake: FakeTelegram, user: TgUser) -> list[BotCall]:
    """Messages the bot sent to the user's private chat (not chat actions)."""
    return [c for c in fake.sent_to(user) if c.method in ("sendMessage", "sendPhoto")]


async def read_until(stream: asyncio.StreamReader, needle: str, seen: list[str], timeout: float) -> None:
    """Read log lines into ``seen`` until one contains ``needle``."""

    async def scan() -> None:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"process ended before {needle!r}:\n{''.join(seen)}")
            seen.append(line)
            if needle in line:
                return

    await asyncio.wait_for(scan(), timeout)


async def test_run_serves_telegram_and_spotify_then_stops_on_sigterm(
    tmp_path: Path, cache_dir: Path, fake_spotify: FakeSpotify
) -> None:
    port = free_port()
    async with FakeTelegram() as telegram:
        env = {
            **os.environ,
            **fake_spotify.env(redirect_uri=f"http://127.0.0.1:{port}/spotify/callback"),
            "MOODTUNES_DB": str(tmp_path / "run.sqlite3"),
            "MOODTUNES_CACHE_DIR": str(cache_dir),
            "MOODTUNES_CATALOG": str(data_path("spotify", "tracks.csv")),
            "MOODTUNES_TELEGRAM_TOKEN": telegram.token,
            "MOODTUNES_TELEGRAM_API_URL": telegram.base_url,
            "MOODTUNES_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stderr is not None
        log: list[str] = []
        try:
            await read_until(
                proc.stderr, "moodtunes running worker=0 parts=telegram,spotify-callback", log, WAIT
            )
            ann = telegram.add_user("Ann")
            telegram.send_text(ann, None, "/start")
            (welcome,) = await telegram.wait_for_messages(ann, 1, WAIT)
            assert "selfie" in (welcome.text or "")
            # The Spotify callback server answers a forged callback with a refusal page.
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/spotify/callback?code=x&state=forged") as response,
            ):
                assert response.status == 400 and "link" in (await response.text()).lower()
            proc.send_signal(signal.SIGTERM)
            await read_until(proc.stderr, "moodtunes stopped", log, WAIT)
            assert await asyncio.wait_for(proc.wait(), WAIT) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    text = "".join(log)
    assert "level=INFO" in text and "started name=telegram" in text and "Traceback" not in text
    assert telegram.token not in text  # the token never reaches the log


async def test_run_without_tokens_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODTUNES_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--db",
        str(tmp_path / "x.sqlite3"),
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 2 and b"MOODTUNES_TELEGRAM_TOKEN" in out


async def test_telegram_webhook_mode(tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path) -> None:
    """The webhook refuses forged posts, handles an update once however often it is delivered,
    answers 200 only after the reply is sent, and serves /healthz and /metrics."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    async with FakeTelegram() as fake:
        service = await make_service(
            tmp_path,
            pipeline,
            cache_dir,
            telegram_token=fake.token,
            telegram_api_url=fake.base_url,
            telegram_webhook_url=url,
            telegram_webhook_listen=f"127.0.0.1:{port}",
        )
        adapter = TelegramAdapter(service, service.settings, "webhook")
        server = WebhookServer(adapter, service.settings)
        await adapter.start()
        await server.start()
        try:
            assert fake.webhook_url == url  # registered with Telegram
            ann = fake.add_user("Ann")
            message = fake.send_text(ann, None, "/start")  # Telegram posts it to the webhook
            (welcome,) = await fake.wait_for_messages(ann, 1, WAIT)
            assert fake.webhook is not None
            deadline = asyncio.get_running_loop().time() + WAIT
            while not fake.webhook.delivered and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            (update_id,) = fake.webhook.delivered  # a 200 came only once the reply was sent
            headers = {"X-Telegram-Bot-Api-Secret-Token": webhook_secret(fake.token)}
            update = {"update_id": update_id, "message": message}
            async with aiohttp.ClientSession() as session:
                async with session.post(url, json={**update, "update_id": 1}) as response:
                    assert response.status == 403  # no secret token: refused
                async with session.post(url, data=b"{not json", headers=headers) as response:
                    assert response.status == 400
                for _ in range(3):  # Telegram redelivers (e.g. our 200 was lost): nothing is sent again
                    async with session.post(url, json=update, headers=headers) as response:
                        assert response.status == 200
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200 and (await response.text()).strip() == "ok"
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    metrics = await response.text()
                assert 'moodtunes_updates_total{outcome="duplicate",platform="telegram"}' in metrics
                assert "moodtunes_photo_reply_seconds_bucket" in metrics
            (welcome,) = sent(fake, ann)
            assert "selfie" in (welcome.text or "")
        finally:
            await server.close()
            await adapter.stop()
            await service.close()


class Chat:
    """One Telegram user talking to a running ``moodtunes run`` through the fake."""

    def __init__(self, telegram: FakeTelegram, user: TgUser) -> None:
        self.telegram, self.user = telegram, user

    async def say(self, text: str, replies: int = 1) -> list[BotCall]:
        before = len(sent(self.telegram, self.user))
        self.telegram.send_text(self.user, None, text)
        return await self._wait(before, replies)

    async def photo(self, path: Path, replies: int = 2) -> list[BotCall]:
        before = len(sent(self.telegram, self.user))
        self.telegram.send_photo(self.user, None, path.read_bytes())
        return await self._wait(before, replies)

    async def press(self, message: BotCall, label: str, replies: int = 1) -> list[BotCall]:
        before = len(sent(self.telegram, self.user))
        data = next(str(b["callback_data"]) for b in message.buttons if b["text"].startswith(label))
        self.telegram.press_button(self.user, message, data)
        return await self._wait(before, replies)

    async def _wait(self, before: int, replies: int) -> list[BotCall]:
        await self.telegram.wait_for_messages(self.user, before + replies, WAIT)
        return sent(self.telegram, self.user)[before : before + replies]


async def test_old_buttons_and_a_begun_enrolment_work_after_a_restart(
    tmp_path: Path, cache_dir: Path, fake_spotify: FakeSpotify
) -> None:
    """A photo reply, then ``moodtunes run`` stopped and started again: "More tracks", "Lift my mood" and
    "Make a Spotify playlist" pressed on the old reply all work, and an /enroll begun before the
    restart finishes after it."""
    port = free_port()
    lfw = data_path("faces", "lfw10")
    async with FakeTelegram() as telegram:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MOODTUNES_")},
            **fake_spotify.env(redirect_uri=f"http://127.0.0.1:{port}/spotify/callback"),
            "MOODTUNES_DB": str(tmp_path / "run.sqlite3"),
            "MOODTUNES_CACHE_DIR": str(cache_dir),
            "MOODTUNES_CATALOG": str(data_path("spotify", "tracks.csv")),
            "MOODTUNES_TELEGRAM_TOKEN": telegram.token,
            "MOODTUNES_TELEGRAM_API_URL": telegram.base_url,
            "PYTHONPATH": str(ROOT),
        }

        async def started() -> asyncio.subprocess.Process:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert proc.stderr is not None
            await read_until(proc.stderr, "moodtunes running", [], WAIT)
            return proc

        async def stopped(proc: asyncio.subprocess.Process) -> None:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), WAIT) == 0

        ann = Chat(telegram, telegram.add_user("Ann"))
        bob = Chat(telegram, telegram.add_user("Bob"))
        first = await started()
        try:
            (link,) = await ann.say("/linkspotify")
            url = next(u for u in html.unescape(link.text or "").split() if u.startswith("http"))
            fake_spotify.add_user("ann-spotify", "Ann S")
            (question,) = await ann.say(await fake_spotify.authorize(url.rstrip(".,)"), "ann-spotify"))
            (linked,) = await ann.press(question, "Yes")
            assert "linked" in (linked.text or "").lower()
            _, songs = await ann.photo(sorted((lfw / "Colin_Powell").iterdir())[0])
            (consent,) = await bob.say("/enroll")
            (ask,) = await bob.press(consent, "Yes")
            assert "selfie" in (ask.text or "")
        finally:
            await stopped(first)
        second = await started()
        try:
            (more,) = await ann.press(songs, "More tracks")
            assert "More songs" in (more.text or "") and "open.spotify.com/track/" in (more.text or "")
            (lifted,) = await ann.press(songs, "Lift my mood")
            assert "open.spotify.com/track/" in (lifted.text or "")
            (playlist,) = await ann.press(songs, "Make a Spotify playlist")
            assert "open.spotify.com/playlist/" in (playlist.text or "")
            assert len(fake_spotify.playlists) == 1
            (enrolled,) = await bob.photo(sorted((lfw / "Tony_Blair").iterdir())[0], replies=1)
            assert "recognise you" in (enrolled.text or "")
        finally:
            await stopped(second)
