"""The Spotify callback server holds no connection longer than a request needs.

Before: 200 connections trickling header bytes all stayed open past 100 s (aiohttp keeps an idle or
unfinished connection for an hour by default). These tests open real sockets on 127.0.0.1 that trickle
bytes, with short limits, and check that every one is closed within its limit while a real browser
callback is still answered meanwhile.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from core.spotify import SpotifyService
from core.spotify.callback_server import CallbackServer, Limits
from core.storage import Store, open_store
from tests.fakes.spotify import FakeSpotify, fast_policy

pytestmark = pytest.mark.timeout(120)
SLACK_S = 2.0
"""Extra time allowed for a close on a busy two-core machine."""
SLOW_HEAD = b"GET /spotify/callback?code=c&state=s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@dataclass
class Running:
    server: CallbackServer
    service: SpotifyService
    store: Store
    port: int

    async def real_callback(self, fake: FakeSpotify, external_id: str) -> int:
        """A user's real round trip: link, consent at the fake Spotify, the browser opens the callback."""
        user = await self.store.ensure_user("telegram", external_id)
        location = await fake.authorize(await self.service.start_link(user), user="alice")
        async with aiohttp.ClientSession() as browser, browser.get(location) as page:
            assert "go back to the chat" in await page.text()
            return page.status


@asynccontextmanager
async def serving(fake: FakeSpotify, tmp_path: Path, limits: Limits) -> AsyncIterator[Running]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = fake.settings(
        tmp_path / "db.sqlite3", redirect_uri=f"http://127.0.0.1:{port}/spotify/callback"
    )
    store = await open_store(settings.db)
    service = SpotifyService(settings, store, policy=fast_policy())
    server = CallbackServer(service, limits=limits)
    await server.start(sock=sock)
    try:
        yield Running(server, service, store, port)
    finally:
        await server.close()
        await store.close()


async def client(port: int, head: bytes, trickle: bytes, every_s: float = 0.2) -> tuple[float, bytes]:
    """Connect, send ``head`` at once, then ``trickle`` one byte every ``every_s``; returns how long
    until the server closed the connection, and what it answered."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = loop.time()

    async def send() -> None:
        try:
            writer.write(head)
            for byte in trickle:
                await writer.drain()
                await asyncio.sleep(every_s)
                writer.write(bytes([byte]))
        except (ConnectionError, OSError):
            pass

    sender = asyncio.create_task(send())
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=60)  # until the server closes
    except (ConnectionError, OSError):
        answer = b""
    finally:
        sender.cancel()
        writer.close()
    return loop.time() - opened, answer


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_slow_headers_are_closed_and_a_real_callback_still_works(
    fake_spotify: FakeSpotify, tmp_path: Path
) -> None:
    limits = Limits(header_timeout_s=1.5, request_timeout_s=10.0, max_connections=1000)
    async with serving(fake_spotify, tmp_path, limits) as running:
        guards = running.server.guards
        assert guards is not None
        slow = [asyncio.create_task(client(running.port, SLOW_HEAD, b"a" * 10_000)) for _ in range(200)]
        await until(lambda: len(guards.open) == 200)
        # A user finishing a link meanwhile is served at once.
        assert await running.real_callback(fake_spotify, "1") == 200
        assert await running.store.spotify_count_pending() == 1
        closed_after = [elapsed for elapsed, _ in await asyncio.gather(*slow)]
        assert all(
            limits.header_timeout_s - 0.2 <= t <= limits.header_timeout_s + SLACK_S for t in closed_after
        )
        assert guards.expired["header"] == 200 and not guards.open


async def test_a_crowd_of_slow_clients_cannot_lock_out_a_browser(
    fake_spotify: FakeSpotify, tmp_path: Path
) -> None:
    limits = Limits(header_timeout_s=30.0, request_timeout_s=10.0, max_connections=20)
    async with serving(fake_spotify, tmp_path, limits) as running:
        guards = running.server.guards
        assert guards is not None
        slow = [asyncio.create_task(client(running.port, SLOW_HEAD, b"a" * 10_000)) for _ in range(200)]
        await until(lambda: guards.expired["evicted"] >= 180)
        assert len(guards.open) <= limits.max_connections
        assert await running.real_callback(fake_spotify, "1") == 200  # pushes out the oldest slow one
        done, _ = await asyncio.wait(slow, timeout=5)
        assert len(done) >= 181  # those pushed out were closed long before their header timeout
        assert all(elapsed < 5 for elapsed, _ in (t.result() for t in done))
        for task in slow:
            task.cancel()
        await asyncio.gather(*slow, return_exceptions=True)


async def test_one_request_per_connection_and_no_waiting_for_a_body(
    fake_spotify: FakeSpotify, tmp_path: Path
) -> None:
    limits = Limits(header_timeout_s=1.0, request_timeout_s=10.0)
    async with serving(fake_spotify, tmp_path, limits) as running:
        # Keep-alive asked for: answered, then closed (no idle connection to trickle the next request on).
        head = b"GET /spotify/callback?state=unknown HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
        elapsed, answer = await client(running.port, head, b"")
        assert answer.startswith(b"HTTP/1.1 400") and b"Connection: close" in answer
        assert elapsed < SLACK_S
        # A complete head announcing a body that trickles in: answered and closed without reading it.
        for method in (b"GET", b"POST"):
            head = (
                method + b" /spotify/callback?state=u HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
            )
            elapsed, answer = await client(running.port, head, b"b" * 1000)
            assert answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 405")), answer[:40]
            assert elapsed < limits.header_timeout_s  # neither header nor body limit needed
        # The refused requests spent nothing: a real callback works.
        assert await running.real_callback(fake_spotify, "2") == 200


async def test_a_request_that_takes_too_long_is_cut(fake_spotify: FakeSpotify, tmp_path: Path) -> None:
    limits = Limits(header_timeout_s=1.0, request_timeout_s=0.5)
    async with serving(fake_spotify, tmp_path, limits) as running:
        fake_spotify.delay("POST", "/api/token", 1.5)  # Spotify is slow to exchange the code
        user = await running.store.ensure_user("telegram", "1")
        location = await fake_spotify.authorize(await running.service.start_link(user))
        path = location.split(f":{running.port}", 1)[1].encode()
        elapsed, answer = await client(running.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"")
        assert (
            answer == b"" and limits.request_timeout_s - 0.1 <= elapsed < limits.request_timeout_s + SLACK_S
        )
        assert running.server.guards is not None and running.server.guards.expired["request"] == 1
        await asyncio.sleep(1.5)  # the exchange still finishes: the user is asked in the chat
