"""Shared by the fake servers: serving on a free 127.0.0.1 port, reading request bodies (JSON, forms,
multipart uploads), answering JSON, recording the bot's calls (with failures to inject), and waiting for
state changes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from aiohttp import web

T = TypeVar("T")
C = TypeVar("C")

SUMMARY_CALLS = 12
"""How many of the latest calls a timeout message lists."""


class Changes:
    """Wakes the coroutines that wait for the fake's state to change (an update, a bot call, shutdown)."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Return on the next :meth:`notify` or after ``timeout`` seconds, whichever comes first."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await waiter
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def until(self, check: Callable[[], T | None], timeout: float, describe: Callable[[], str]) -> T:
        """Wait until ``check()`` returns something other than None; TimeoutError (with ``describe()``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = check()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(describe())
            await self.wait(remaining)


async def serve_on_loopback(app: web.Application) -> tuple[web.AppRunner, int]:
    """Start ``app`` on 127.0.0.1 on a free port; returns the runner (``cleanup()`` stops it) and the port."""
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
    )
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    await web.SockSite(runner, sock).start()
    return runner, port


class LoopbackServer:
    """The life cycle of a fake: ``async with Fake() as fake:`` serves :meth:`_app` on 127.0.0.1."""

    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> web.Application:
        """The routes to serve."""
        raise NotImplementedError

    async def _before_stop(self) -> None:
        """End what waits on the server (long polls, WebSockets) before it closes."""

    async def start(self) -> Self:
        """Listen on 127.0.0.1 on a free port."""
        self._runner, self.port = await serve_on_loopback(self._app())
        return self

    async def stop(self) -> None:
        """Close the server (stop the bot first for a clean shutdown)."""
        await self._before_stop()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


@dataclass
class UploadedFile:
    """One multipart file part the bot uploaded."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RequestBody:
    """A request's body, read once."""

    json: Any = None
    """A JSON body (``application/json``), decoded."""
    form: dict[str, str] = field(default_factory=dict)
    """Form fields, URL-encoded or multipart; the file parts are in :attr:`files`."""
    files: list[UploadedFile] = field(default_factory=list)
    text: str | None = None
    """Any other body, as text (None when empty)."""


async def read_body(request: web.Request) -> RequestBody:
    """The body of ``request``: JSON, a form with its uploads (kept byte for byte), or text."""
    if not request.can_read_body:
        return RequestBody()
    if request.content_type == "application/json":
        return RequestBody(json=await request.json())
    if request.content_type.startswith("multipart/") or request.content_type == (
        "application/x-www-form-urlencoded"
    ):
        body = RequestBody()
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                body.files.append(UploadedFile(key, value.filename, value.content_type, value.file.read()))
            else:
                body.form[key] = str(value)
        return body
    return RequestBody(text=(await request.read()).decode(errors="replace") or None)


def json_response(body: Any, status: int = 200) -> web.Response:
    """``body`` as JSON, with the Content-Type exactly ``application/json`` (discord.py parses JSON only
    then, not with a charset; the other clients do not mind)."""
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of an image Pillow can open; None for other bytes."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


class CallLog(Generic[C]):
    """The bot's calls to a fake, in the order received: recorded, waited for, and failed on demand."""

    def __init__(self, describe: Callable[[C], str], changes: Changes | None = None) -> None:
        """``describe``: one call as a timeout message lists it; ``changes``: notified on every call."""
        self.calls: list[C] = []
        self.changes = changes or Changes()
        self._describe = describe
        self._failures: dict[str, list[Exception]] = {}

    @contextlib.contextmanager
    def recording(self, call: C) -> Iterator[C]:
        """Record ``call`` (its index: ``len(calls)`` before) while the ``with`` block answers it; the
        waiters wake once it is answered."""
        self.calls.append(call)
        try:
            yield call
        finally:
            self.changes.notify()

    def fail_next(self, key: str, error: Exception) -> None:
        """The next call of ``key`` raises ``error`` (queued: one error per call)."""
        self._failures.setdefault(key, []).append(error)

    def injected_failure(self, key: str) -> Exception | None:
        """The error :meth:`fail_next` queued for this call of ``key``, taken off the queue."""
        failures = self._failures.get(key)
        return failures.pop(0) if failures else None

    async def first(self, match: Callable[[C], bool], *, after: int = 0, timeout: float, missing: str) -> C:
        """The first call (index >= ``after``) that ``match``es; TimeoutError with ``missing``."""
        return await self.changes.until(
            lambda: next((c for c in self.calls[after:] if match(c)), None),
            timeout,
            lambda: f"{missing}; {self.summary()}",
        )

    async def at_least(
        self, match: Callable[[C], bool], count: int, *, timeout: float, missing: str
    ) -> list[C]:
        """Every call that ``match``es, once there are ``count``; TimeoutError with ``missing``."""

        def check() -> list[C] | None:
            found = [c for c in self.calls if match(c)]
            return found if len(found) >= count else None

        return await self.changes.until(check, timeout, lambda: f"{missing}; {self.summary()}")

    def summary(self) -> str:
        """The latest calls, for a timeout message."""
        shown = [self._describe(c) for c in self.calls[-SUMMARY_CALLS:]]
        return f"bot calls so far ({len(self.calls)}): {'; '.join(shown) or 'none'}"
