"""Bot under load: simulated Telegram users sending photos at once through the loopback fake Bot API.

The real python-telegram-bot polls the fake, the real service answers (models, SQLite, catalog).
Each round, every user sends one photo at the same moment; a reply counts as done when both of its
messages (annotated photo and songs) have reached the fake. Prints replies per second and the
p50/p95 reply time (send -> last message), and writes ``benchmarks/results/bot_load.json``.

Usage: ``.venv/bin/python benchmarks/bot_load.py [--users 20] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.telegram_bot import TelegramAdapter  # noqa: E402
from core.app.context import load_app_catalog  # noqa: E402
from core.app.service import MoodtunesService  # noqa: E402
from core.config import Settings  # noqa: E402
from core.spotify import SpotifyService  # noqa: E402
from core.storage import Store  # noqa: E402
from core.vision.analyzer import FaceAnalyzer  # noqa: E402
from core.vision.worker import InferenceWorker  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def messages(fake: FakeTelegram, chat_id: int) -> list[object]:
    """The bot's messages (not chat actions) in a chat."""
    return [c for c in fake.sent_to(chat_id) if c.method in ("sendMessage", "sendPhoto", "sendDocument")]


async def measure(users: int, rounds: int) -> dict[str, object]:
    photos = sorted(
        p for person in sorted((DATA / "faces" / "lfw10").iterdir()) for p in sorted(person.iterdir())
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeTelegram() as fake:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None,
                db=Path(tmp) / "load.sqlite3",
                catalog=DATA / "spotify" / "tracks.csv",
                telegram_token=fake.token,
                telegram_api_url=fake.base_url,
                rate_limit_photos=10_000,
            )
            store = await Store.open(settings.db)
            worker = InferenceWorker(FaceAnalyzer(settings))
            service = MoodtunesService(
                settings, store, worker, load_app_catalog(settings), SpotifyService(settings, store)
            )
            adapter = TelegramAdapter(service, settings)
            await adapter.start()
            people = [fake.add_user(f"User{i:02d}") for i in range(users)]
            latencies: list[float] = []
            wall = 0.0
            batches = worker.batches
            try:
                for round_no in range(rounds + 1):  # round 0 warms up
                    sent_before = {u.id: len(messages(fake, u.id)) for u in people}
                    start = time.perf_counter()
                    for i, user in enumerate(people):
                        fake.send_photo(user, None, photos[(round_no * users + i) % len(photos)].read_bytes())

                    async def done(user_id: int, before: int, start: float = start) -> float:
                        await fake.wait_for_messages(user_id, before + 2, timeout=300)
                        return time.perf_counter() - start

                    times = await asyncio.gather(*(done(u.id, sent_before[u.id]) for u in people))
                    if round_no:
                        latencies += times
                        wall += max(times)
                    else:
                        batches = worker.batches
            finally:
                await adapter.stop()
                await service.close()
    ordered = sorted(latencies)
    return {
        "machine": f"{platform.node()} {platform.machine()}, {torch.get_num_threads()} torch threads",
        "users": users,
        "rounds": rounds,
        "replies": len(latencies),
        "replies_per_second": round(len(latencies) / wall, 2),
        "reply_p50_s": round(statistics.median(ordered), 3),
        "reply_p95_s": round(ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)], 3),
        "inference_batches_per_round": round((worker.batches - batches) / rounds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="bot load benchmark")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bot_load.json")
    args = parser.parse_args()
    result = asyncio.run(measure(args.users, args.rounds))
    print(
        f"{result['users']} users x {result['rounds']} rounds: {result['replies_per_second']} replies/s, "
        f"reply p50 {result['reply_p50_s']} s, p95 {result['reply_p95_s']} s, "
        f"{result['inference_batches_per_round']} inference batches per round of {result['users']} photos"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
