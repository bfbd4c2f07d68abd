"""``moodtunes run --workers N``: N worker processes of ``moodtunes run``, restarted if they die.

Each worker is a separate process with its own models and torch threads (the machine's cores
divided among them), numbered by ``MOODTUNES_WORKER_INDEX``:

* Telegram webhook: worker ``i`` listens on the port of ``MOODTUNES_TELEGRAM_WEBHOOK_LISTEN`` plus
  ``i``; the reverse proxy in front spreads updates over them (README "Running at scale"). Only
  worker 0 registers the webhook with Telegram. Long polling cannot be shared: it needs one worker.
* Discord: shard ``s`` of ``MOODTUNES_DISCORD_SHARD_COUNT`` runs on worker ``s % N``.
* ``/healthz`` and ``/metrics``: on each worker's webhook port, or ``MOODTUNES_OPS_LISTEN``'s port
  plus ``i``.
* The Spotify callback page: worker 0.

SIGINT/SIGTERM are passed on to every worker, which finish their replies; a worker that exits
unexpectedly is started again after a short, growing delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from core.config import ConfigError, Settings, split_host_port

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 90.0
"""How long workers get to finish after SIGTERM before they are killed."""
MAX_BACKOFF_S = 30.0
STABLE_S = 60.0
"""A worker that ran this long before dying is restarted at once again (not a crash loop)."""


def worker_env(settings: Settings, index: int, workers: int, cores: int | None = None) -> dict[str, str]:
    """The environment overrides of worker ``index`` of ``workers``."""
    env = {"MOODTUNES_WORKER_INDEX": str(index)}
    if not settings.torch_threads:
        env["MOODTUNES_TORCH_THREADS"] = str(max(1, (cores or os.cpu_count() or 1) // workers))
    if settings.telegram_webhook_url:
        host, port = split_host_port(settings.telegram_webhook_listen)
        env["MOODTUNES_TELEGRAM_WEBHOOK_LISTEN"] = f"{host}:{port + index}"
    if settings.ops_listen:
        host, port = split_host_port(settings.ops_listen)
        env["MOODTUNES_OPS_LISTEN"] = f"{host}:{port + index}"
    if settings.discord_token.get_secret_value():
        shards = [s for s in settings.shard_ids if s % workers == index]
        if shards:
            env["MOODTUNES_DISCORD_SHARD_IDS"] = ",".join(map(str, shards))
        else:
            env["MOODTUNES_DISCORD_TOKEN"] = ""  # more workers than shards: this one has none
    return env


def check(settings: Settings, workers: int) -> None:
    """Refuse set-ups several workers cannot serve; ConfigError with one line."""
    if workers > 1 and settings.telegram_token.get_secret_value() and not settings.telegram_webhook_url:
        raise ConfigError(
            "several workers need the Telegram webhook (MOODTUNES_TELEGRAM_WEBHOOK_URL): long polling "
            "can only be done by one process"
        )
    if workers > 1 and settings.discord_token.get_secret_value() and settings.discord_shard_count < workers:
        log.warning(
            "discord: %d shard(s) for %d workers; workers without a shard serve Telegram only",
            settings.discord_shard_count,
            workers,
        )


async def supervise(settings: Settings, workers: int, argv: Sequence[str] = ()) -> int:
    """Run ``workers`` workers until SIGINT/SIGTERM; returns the exit status."""
    check(settings, workers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    tasks = [asyncio.create_task(_keep_running(settings, i, workers, argv, stop)) for i in range(workers)]
    await stop.wait()
    log.info("supervisor stopping %d workers", workers)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return 0 if all(r == 0 for r in results) else 1


async def _keep_running(
    settings: Settings, index: int, workers: int, argv: Sequence[str], stop: asyncio.Event
) -> int:
    """Start worker ``index``; start it again when it dies, until ``stop``; then stop it."""
    backoff = 1.0
    while True:
        env = {**os.environ, **worker_env(settings, index, workers)}
        started = asyncio.get_running_loop().time()
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", *argv, env=env)
        log.info("worker started index=%d pid=%d", index, process.pid)
        waiting = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            stopping.cancel()
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(waiting, STOP_TIMEOUT_S)
                except TimeoutError:
                    log.warning("worker index=%d did not stop in time: killed", index)
                    process.kill()
                    await waiting
            log.info("worker stopped index=%d status=%s", index, process.returncode)
            return 0 if process.returncode == 0 else 1
        stopping.cancel()
        if asyncio.get_running_loop().time() - started > STABLE_S:
            backoff = 1.0  # it had been running fine: this is not a crash loop
        log.error("worker died index=%d status=%s; restarting in %.0f s", index, process.returncode, backoff)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        if stop.is_set():
            return 1
        backoff = min(MAX_BACKOFF_S, backoff * 2)
