"""A running set of workers for end-to-end tests and benchmarks: ``moodtunes run --workers N`` on a
database, behind a real nginx, fed by the fake Telegram's webhook (which redelivers what gets no 2xx)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.conftest import ROOT, data_path
from tests.fakes.spotify import FakeSpotify
from tests.fakes.telegram import FakeTelegram
from tests.nginx import Nginx, start_or_skip


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count >= 65535:
            continue
        try:
            sockets = []
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range")


@dataclass
class Cluster:
    telegram: FakeTelegram
    spotify: FakeSpotify
    nginx: Nginx
    db: str
    supervisor: asyncio.subprocess.Process
    base_port: int
    log: list[str] = field(default_factory=list)

    def worker_rss_mb(self) -> dict[int, float]:
        """Resident memory of each running worker, MB (from /proc)."""
        rss = {}
        for index, pid in self.worker_pids().items():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
                rss[index] = kb / 1024
        return rss

    def worker_pids(self) -> dict[int, int]:
        """The latest pid of each worker index, from the supervisor's log."""
        pids: dict[int, int] = {}
        for line in self.log:
            found = re.search(r"worker started index=(\d+) pid=(\d+)", line)
            if found:
                pids[int(found.group(1))] = int(found.group(2))
        return pids or {0: self.supervisor.pid}  # one worker runs in the started process itself


async def _pump(stream: asyncio.StreamReader, log: list[str]) -> None:
    while line := await stream.readline():
        log.append(line.decode(errors="replace"))


async def _healthy(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


@contextlib.asynccontextmanager
async def running_cluster(
    tmp_path: Path,
    cache_dir: Path,
    db: str,
    fake_spotify: FakeSpotify,
    workers: int,
    lease_s: float = 5.0,
    wait: float = 300.0,
) -> AsyncIterator[Cluster]:
    """``moodtunes run --workers N`` on ``db`` behind nginx, fed by a fake Telegram's webhook; yields once
    every worker answers /healthz; stops the workers with SIGTERM on exit."""
    base = free_ports(workers + 2)
    nginx_port, callback_port = base + workers, base + workers + 1
    async with FakeTelegram() as telegram:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MOODTUNES_")},
            **fake_spotify.env(redirect_uri=f"http://127.0.0.1:{callback_port}/spotify/callback"),
            "MOODTUNES_DB": db,
            "MOODTUNES_CACHE_DIR": str(cache_dir),
            "MOODTUNES_CATALOG": str(data_path("spotify", "tracks.csv")),
            "MOODTUNES_TELEGRAM_TOKEN": telegram.token,
            "MOODTUNES_TELEGRAM_API_URL": telegram.base_url,
            "MOODTUNES_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{nginx_port}/telegram/hook",
            "MOODTUNES_TELEGRAM_WEBHOOK_LISTEN": f"127.0.0.1:{base}",
            "MOODTUNES_UPDATE_LEASE_S": str(lease_s),
            "MOODTUNES_RATE_LIMIT_PHOTOS": "1000",
            "MOODTUNES_DB_POOL_SIZE": "5",
            "MOODTUNES_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
        }
        nginx = start_or_skip(workers, base, nginx_port, callback_port)
        supervisor = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--workers", str(workers),
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert supervisor.stderr is not None
        result = Cluster(telegram, fake_spotify, nginx, db, supervisor, base)
        pump = asyncio.create_task(_pump(supervisor.stderr, result.log))
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                deadline = asyncio.get_running_loop().time() + wait
                while True:
                    ports = [base + i for i in range(workers)]
                    checks = [await _healthy(session, f"http://127.0.0.1:{p}/healthz") for p in ports]
                    if all(checks) and telegram.webhook is not None:
                        break
                    if supervisor.returncode is not None or asyncio.get_running_loop().time() > deadline:
                        raise AssertionError("workers did not start:\n" + "".join(result.log[-40:]))
                    await asyncio.sleep(0.5)
                assert await _healthy(session, f"http://127.0.0.1:{nginx_port}/healthz")
            yield result
        finally:
            if supervisor.returncode is None:
                supervisor.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(supervisor.wait(), 120)
                except TimeoutError:
                    supervisor.kill()
                    await supervisor.wait()
            await pump
            nginx.stop()
