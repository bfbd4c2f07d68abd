"""Webhook delivery for :class:`tests.fakes.telegram.FakeTelegram`, with Telegram's redelivery rule.

Once the bot calls ``setWebhook``, every queued update is POSTed to the webhook URL as JSON with the
``X-Telegram-Bot-Api-Secret-Token`` header, up to ``max_connections`` at once. An update counts as
delivered only on a 2xx answer; a refused connection, a dropped one, a timeout or any other status
makes Telegram try again later (here: after 0.5 s, doubling up to 4 s), until it is delivered.
Every attempt is recorded in :attr:`WebhookDelivery.attempts`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 4.0
TIMEOUT_S = 120.0
"""How long one POST may take (the bot answers after handling the update)."""


@dataclass(frozen=True)
class Attempt:
    """One POST of an update: its id, the HTTP status (0 when the connection failed)."""

    update_id: int
    status: int


class WebhookDelivery:
    """Posts updates taken from ``take()`` to ``url`` until each gets a 2xx answer.

    Args:
        url: the webhook URL the bot registered.
        secret: the secret token it registered ('' for none).
        max_connections: updates in flight at once.
        take: returns the updates waiting (and removes them from the fake's queue).
    """

    def __init__(
        self, url: str, secret: str, max_connections: int, take: Callable[[], list[dict[str, Any]]]
    ) -> None:
        self.url = url
        self.secret = secret
        self._take = take
        self._slots = asyncio.Semaphore(max(1, max_connections))
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.attempts: list[Attempt] = []
        self.delivered: list[int] = []
        """Update ids answered with 2xx, in order (an update appears once)."""

    def start(self) -> None:
        """Begin delivering."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        self._loop = asyncio.create_task(self._run(), name="fake-telegram-webhook")

    def notify(self) -> None:
        """New updates are waiting."""
        self._wake.set()

    @property
    def pending(self) -> int:
        """Updates taken but not yet delivered."""
        return len(self._tasks)

    async def stop(self) -> None:
        """Stop delivering (updates not yet delivered are dropped)."""
        for task in [self._loop, *self._tasks]:
            if task is not None:
                task.cancel()
        for task in [self._loop, *self._tasks]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            for update in self._take():
                task = asyncio.create_task(self._deliver(update))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, update: dict[str, Any]) -> None:
        delay = FIRST_RETRY_S
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.secret} if self.secret else {}
        while True:
            async with self._slots:
                status = await self._post(update, headers)
            self.attempts.append(Attempt(int(update["update_id"]), status))
            if 200 <= status < 300:
                self.delivered.append(int(update["update_id"]))
                return
            await asyncio.sleep(delay)
            delay = min(MAX_RETRY_S, delay * 2)

    async def _post(self, update: dict[str, Any], headers: dict[str, str]) -> int:
        assert self._session is not None
        try:
            async with self._session.post(self.url, json=update, headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            return 0
