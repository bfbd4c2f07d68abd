"""Replies per second with one process on SQLite and with 1, 2 and 3 workers on PostgreSQL, in one run.

Each configuration is ``moodtunes run --workers N`` (real processes, each with its own models and
``cores // N`` torch threads) behind a real nginx, fed by the fake Telegram's webhook, as in
``tests/test_scale.py``; SQLite runs the same single worker on a file. Each round, every simulated
user sends one photo at the same moment; a reply counts when both of its messages (annotated photo
and songs) have reached the fake. Reports replies/s, p50/p95 reply time (send -> last message) and
the RSS of each worker, and writes ``benchmarks/results/scale.json``.

Needs PostgreSQL and nginx (Debian packages), like the tests. Usage:
``.venv/bin/python benchmarks/scale.py [--users 20] [--rounds 3] [--workers 1,2,3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from core.config import load_settings  # noqa: E402
from tests.cluster import Cluster, running_cluster  # noqa: E402
from tests.fakes.spotify import FakeSpotify  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.pg import PostgresServer, find_bindir  # noqa: E402


def messages(fake: FakeTelegram, chat_id: int) -> int:
    """The bot's messages (not chat actions) in a chat."""
    return len([c for c in fake.sent_to(chat_id) if c.method in ("sendMessage", "sendPhoto")])


async def load(cluster: Cluster, photos: list[Path], users: int, rounds: int) -> dict[str, Any]:
    """Rounds of photos from every user at once (round 0 warms up); latencies of rounds 1.."""
    fake = cluster.telegram
    people = [fake.add_user(f"User{i:02d}") for i in range(users)]
    latencies: list[float] = []
    wall = 0.0
    for round_no in range(rounds + 1):
        before = {u.id: messages(fake, u.id) for u in people}
        start = time.perf_counter()
        for i, user in enumerate(people):
            fake.send_photo(user, None, photos[(round_no * users + i) % len(photos)].read_bytes())

        async def done(user_id: int, sent: int, start: float = start) -> float:
            await fake.wait_for_messages(user_id, sent + 2, timeout=600)
            return time.perf_counter() - start

        times = await asyncio.gather(*(done(u.id, before[u.id]) for u in people))
        if round_no:
            latencies += times
            wall += max(times)
    ordered = sorted(latencies)
    return {
        "replies": len(ordered),
        "replies_per_second": round(len(ordered) / wall, 2),
        "reply_p50_s": round(statistics.median(ordered), 3),
        "reply_p95_s": round(ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)], 3),
        "worker_rss_mb": {str(k): round(v) for k, v in sorted(cluster.worker_rss_mb().items())},
    }


async def measure(users: int, rounds: int, worker_counts: list[int]) -> dict[str, Any]:
    data = load_settings().data_dir or ROOT.parent / "shared" / "data"
    lfw = data / "faces" / "lfw10"
    photos = sorted(p for person in sorted(lfw.iterdir()) for p in sorted(person.iterdir()))
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    server = PostgresServer(bindir).start()
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(os.environ.get("MOODTUNES_CACHE_DIR", Path.home() / ".cache" / "moodtunes"))
            configs = [("sqlite, 1 process", str(Path(tmp) / "bench.sqlite3"), 1)]
            configs += [(f"postgresql, {n} worker(s)", server.new_database(), n) for n in worker_counts]
            for name, db, workers in configs:
                async with (
                    FakeSpotify() as spotify,
                    running_cluster(Path(tmp), cache, db, spotify, workers) as c,
                ):
                    results[name] = {"workers": workers, **await load(c, photos, users, rounds)}
                    figures = results[name]
                print(
                    f"{name}: {figures['replies_per_second']} replies/s, p50 {figures['reply_p50_s']} s, "
                    f"p95 {figures['reply_p95_s']} s, RSS per worker {figures['worker_rss_mb']} MB",
                    flush=True,
                )
    finally:
        server.stop()
    return {
        "machine": describe(f"{os.cpu_count()} cores"),
        "users": users,
        "rounds": rounds,
        "results": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="replies per second: SQLite and 1-3 workers on PostgreSQL")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2,3", help="worker counts to measure on PostgreSQL")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    result = asyncio.run(measure(args.users, args.rounds, counts))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
