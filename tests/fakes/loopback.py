"""Shared by the fake servers: serving on a free 127.0.0.1 port, and waiting for state changes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")


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
