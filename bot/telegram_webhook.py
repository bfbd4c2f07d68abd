"""The Telegram webhook server of one worker: every update handled exactly once across all workers.

Several workers sit behind one reverse proxy (see README "Running at scale"); Telegram posts each
update to the public URL and the proxy hands it to any worker. Telegram redelivers an update whose
POST did not get a 2xx answer (a timeout, a 5xx, a dropped connection), and the proxy may retry it
on another worker. So each update is claimed in the store before it is handled
(:meth:`core.storage.Store.claim_update`, atomic on ``update_id``):

* ``claimed``: this worker handles it, renewing its lease while it works, marks it done, and only
  then answers 200. Answering after the work, not before, is the point: a worker killed mid-update
  never answers, so Telegram sends the update again, and once the dead worker's lease runs out
  another worker takes it over. (PTB's own webhook server answers 200 as soon as the update is
  queued in memory, which would lose it with the process.) Each message of the answer is recorded
  in the claim once Telegram accepted it (:class:`bot.telegram_bot.Delivery`), so the worker taking
  over sends only the messages the dead one had not: a user sees each message once. What remains is
  the few milliseconds between Telegram accepting a message and the store recording it: a worker
  killed exactly then repeats that one message (Telegram offers no idempotency key).
* ``done``: a redelivery of an update already answered: 200 at once, nothing sent twice.
* ``busy``: another live worker is on it: 503, and Telegram asks again later.

The server also serves ``/healthz`` and ``/metrics`` (:mod:`bot.ops`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.ops import ops_routes
from bot.telegram_bot import Delivery, TelegramAdapter, webhook_secret
from core.app import metrics
from core.config import Settings, split_host_port

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20
"""Largest update accepted, bytes (updates carry file ids, never files)."""


def worker_name() -> str:
    """This process's name in the store's claims: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class WebhookServer:
    """aiohttp server: ``POST <webhook path>`` for updates, plus the ops routes.

    Args:
        adapter: the Telegram adapter (started with ``receive="webhook"``).
        settings: webhook URL (its path is served), listen address, lease and concurrency limits.
    """

    def __init__(self, adapter: TelegramAdapter, settings: Settings) -> None:
        self.adapter = adapter
        self.store = adapter.service.store
        self.settings = settings
        self.worker = worker_name()
        self.lease_s = settings.update_lease_s
        self.max_in_flight = settings.max_updates_in_flight
        self._in_flight = 0
        self._secret = webhook_secret(settings.telegram_token.get_secret_value())
        self.host, self.port = split_host_port(settings.telegram_webhook_listen)
        path = urlsplit(settings.telegram_webhook_url).path or "/"
        app = web.Application(client_max_size=MAX_BODY)
        app.add_routes([web.post(path, self.update), *ops_routes(adapter.service)])
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=60.0)

    async def start(self) -> None:
        """Listen on the webhook address."""
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, reuse_address=True).start()
        log.info("telegram webhook listening on %s:%d worker=%s", self.host, self.port, self.worker)

    async def close(self) -> None:
        """Stop taking updates; updates being handled finish first (up to a minute)."""
        await self._runner.cleanup()

    async def update(self, request: web.Request) -> web.Response:
        """One update from Telegram (or the proxy)."""
        if request.headers.get(SECRET_HEADER) != self._secret:
            log.warning("webhook post refused: wrong secret token")
            return web.Response(status=403)
        try:
            data: Any = await request.json()
            update_id = data["update_id"]
            if not isinstance(update_id, int):
                raise TypeError("update_id is not an integer")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("webhook post refused: not an update (%s)", exc)
            return web.Response(status=400)
        if self._in_flight >= self.max_in_flight:
            metrics.UPDATES.labels("telegram", "overloaded").inc()
            return web.Response(status=503, headers={"Retry-After": "5"})
        claim = await self.store.claim_update("telegram", str(update_id), self.worker, self.lease_s)
        state = claim.state
        if state != "claimed":
            metrics.UPDATES.labels("telegram", "duplicate" if state == "done" else "busy").inc()
            log.info(
                "webhook update=%s %s", update_id, "already handled" if state == "done" else "being handled"
            )
            if state == "done":
                return web.Response(text="ok")
            return web.Response(status=503, headers={"Retry-After": str(int(self.lease_s))})
        self._in_flight += 1
        renewing = asyncio.create_task(self._renew(str(update_id)))
        delivery = Delivery(
            skip=claim.progress,
            record=lambda sent: self.store.record_progress("telegram", str(update_id), self.worker, sent),
        )
        try:
            await self.adapter.process(data, delivery)
        except Exception:
            log.exception("webhook update=%s failed; released for redelivery", update_id)
            await self.store.finish_update("telegram", str(update_id), done=False)
            return web.Response(status=500)
        finally:
            self._in_flight -= 1
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        await self.store.finish_update("telegram", str(update_id), done=True)
        metrics.UPDATES.labels("telegram", "handled").inc()
        return web.Response(text="ok")

    async def _renew(self, update_id: str) -> None:
        """Keep the claim alive while the update is being handled."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                if not await self.store.renew_update("telegram", update_id, self.worker, self.lease_s):
                    log.warning("webhook update=%s: claim lost to another worker", update_id)
                    return
            except Exception:
                log.exception("webhook update=%s: lease renewal failed", update_id)
