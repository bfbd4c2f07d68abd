"""Operations endpoints of a worker: ``GET /healthz`` and ``GET /metrics`` (Prometheus text format).

They are served on the Telegram webhook server when there is one, and on
``MOODTUNES_OPS_LISTEN`` (``host:port``) otherwise. ``/healthz`` answers 200 with ``ok`` when the
database answers and the inference worker is not overloaded, else 503 with the reason.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.app.service import MoodtunesService

log = logging.getLogger(__name__)
HEALTH_TIMEOUT_S = 5.0


def ops_routes(service: MoodtunesService) -> list[web.RouteDef]:
    """The ``/healthz`` and ``/metrics`` routes for one service."""

    async def healthz(request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                await service.store.db.fetchval("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
            log.warning("health check failed: database %r", exc)
            return web.Response(status=503, text="database unavailable\n")
        if service.worker.queued >= service.worker.max_queued:
            return web.Response(status=503, text="inference queue full\n")
        return web.Response(text="ok\n")

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [web.get("/healthz", healthz), web.get("/metrics", metrics)]


class OpsServer:
    """A small aiohttp server with only the ops routes (for workers without a webhook server)."""

    def __init__(self, service: MoodtunesService, host: str, port: int) -> None:
        self.host, self.port = host, port
        app = web.Application()
        app.add_routes(ops_routes(service))
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        """Listen."""
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("ops server listening on %s:%d", self.host, self.port)

    async def close(self) -> None:
        """Stop listening."""
        await self._runner.cleanup()
