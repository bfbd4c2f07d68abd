"""Several workers for real: ``moodtunes run --workers 3`` on a real PostgreSQL server, behind a real
nginx, fed by the fake Telegram through its webhook (redelivering what gets no 2xx, as Telegram does),
50 users sending photos and pressing buttons, and one worker killed with SIGKILL mid-run.

The kill happens while the fake Telegram holds every Bot API request at arrival (:meth:`hold`): the
killed worker dies with updates half handled and replies in flight, and no request of it is left
half-answered on Telegram's side. (A kill in the few milliseconds between Telegram accepting a message
and the store recording it would repeat that one message; see bot/telegram_webhook.py.)
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.cluster import Cluster, running_cluster
from tests.conftest import data_path
from tests.fakes.spotify import FakeSpotify
from tests.fakes.telegram import BotCall, FakeTelegram, TgUser
from tests.pg import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
WORKERS = 3
USERS = 50
WAIT = 300.0
LEASE_S = 5.0


@pytest.fixture
async def cluster(
    tmp_path: Path, cache_dir: Path, postgres: PostgresServer, fake_spotify: FakeSpotify
) -> AsyncIterator[Cluster]:
    async with running_cluster(
        tmp_path, cache_dir, postgres.new_database(), fake_spotify, WORKERS, LEASE_S
    ) as c:
        yield c


def bot_messages(fake: FakeTelegram, user: TgUser) -> list[BotCall]:
    return [c for c in fake.sent_to(user) if c.method in ("sendMessage", "sendPhoto") and c.ok]


def button(message: BotCall, label_start: str) -> str:
    return next(str(b["callback_data"]) for b in message.buttons if b["text"].startswith(label_start))


class Users:
    """Drives one simulated user at a time, waiting for each step's replies."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.expected: Counter[int] = Counter()

    async def expect(self, user: TgUser, more: int) -> list[BotCall]:
        self.expected[user.id] += more
        calls = await self.cluster.telegram.wait_for_messages(user, self.expected[user.id], WAIT)
        return [c for c in calls if c.ok][-more:]

    async def photo(self, user: TgUser, path: Path, replies: int = 2) -> list[BotCall]:
        self.cluster.telegram.send_photo(user, None, path.read_bytes())
        return await self.expect(user, replies)

    async def say(self, user: TgUser, text: str) -> BotCall:
        self.cluster.telegram.send_text(user, None, text)
        (reply,) = await self.expect(user, 1)
        return reply

    async def press(self, user: TgUser, message: BotCall, data: str, replies: int = 1) -> list[BotCall]:
        self.cluster.telegram.press_button(user, message, data)
        return await self.expect(user, replies)


async def one_user(users: Users, index: int, user: TgUser, photos: list[Path]) -> None:
    """Every user sends a photo; some enrol, some ask for more songs, some make a playlist twice."""
    _, songs = await users.photo(user, photos[index % len(photos)])
    if index < 10:  # enrol with /enroll -> Yes -> selfie, then be recognised
        consent = await users.say(user, "/enroll")
        (ask,) = await users.press(user, consent, button(consent, "Yes"))
        assert "selfie" in (ask.text or "")
        person = photos[index % len(photos)].parent
        (enrolled,) = await users.photo(user, sorted(person.iterdir())[1], replies=1)
        assert "recognise you" in (enrolled.text or ""), enrolled.text
        named, _ = await users.photo(user, sorted(person.iterdir())[2])
        assert f"Hi {user.first_name}!" in (named.text or ""), named.text
    elif index < 20:
        (more,) = await users.press(user, songs, button(songs, "More"))
        assert "More songs" in (more.text or "")
    elif index < 25:  # link Spotify by pasting, then tap the playlist button twice at once
        link = await users.say(user, "/linkspotify")
        url = re.search(r"https?://\S+", html.unescape(link.text or ""))
        assert url is not None, link.text
        account = f"listener-{index}"
        users.cluster.spotify.add_user(account, f"Listener {index}")
        pasted = await users.cluster.spotify.authorize(url.group(0).rstrip(".,)"), account)
        question = await users.say(user, pasted)  # which account? only a Yes in the chat links it
        (linked,) = await users.press(user, question, button(question, "Yes"))
        assert "linked" in (linked.text or "").lower(), linked.text
        users.cluster.telegram.press_button(user, songs, button(songs, "Make a Spotify playlist"))
        first, second = await users.press(user, songs, button(songs, "Make a Spotify playlist"), replies=2)
        assert "open.spotify.com/playlist/" in (first.text or "") and first.text == second.text


async def hold_while_handling(cluster: Cluster, pid: int, tries: int = 100) -> None:
    """Hold the fake Telegram's Bot API once the worker ``pid`` has an update claimed and unanswered
    (its claims are ``host:pid``; held, it can neither answer nor finish). Between tries the API is
    released for a moment, so the run goes on and the worker takes new updates."""
    conn = await asyncpg.connect(cluster.db)
    try:
        for _ in range(tries):
            cluster.telegram.hold()
            await asyncio.sleep(0.5)  # updates already claimed block at their next Bot API call
            working = await conn.fetchval(
                "SELECT count(*) FROM processed_updates WHERE state = 'working' AND worker LIKE $1",
                f"%:{pid}",
            )
            if working:
                return
            cluster.telegram.release()
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise AssertionError(f"worker pid {pid} never held an update in {tries} tries")


async def test_three_workers_fifty_users_one_killed(cluster: Cluster) -> None:
    telegram = cluster.telegram
    lfw = data_path("faces", "lfw10")
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    photos = [sorted(p.iterdir())[0] for p in people]
    users = Users(cluster)
    people_here = [telegram.add_user(f"User{i:02d}") for i in range(USERS)]
    run = asyncio.gather(*(one_user(users, i, u, photos) for i, u in enumerate(people_here)))

    # Kill worker 1 once a third of the first replies are in, with its Bot API calls held and at
    # least one update of its own half handled (claimed, not answered), so it dies mid-update.
    while sum(len(bot_messages(telegram, u)) for u in people_here) < USERS * 2 // 3:
        await asyncio.sleep(0.2)
    victim = cluster.worker_pids()[1]
    await hold_while_handling(cluster, victim)
    os.kill(victim, signal.SIGKILL)
    await asyncio.sleep(0.5)
    telegram.release()
    await asyncio.wait_for(run, WAIT * 2)

    # Nothing more arrives later: every update was answered exactly once.
    await asyncio.sleep(2 * LEASE_S)
    for user in people_here:
        assert len(bot_messages(telegram, user)) == users.expected[user.id], user.first_name
    assert telegram.webhook is not None and telegram.webhook.pending == 0
    delivered = Counter(telegram.webhook.delivered)
    assert delivered and max(delivered.values()) == 1
    # The killed worker's updates were redelivered and taken over; it was started again.
    assert any(a.status != 200 for a in telegram.webhook.attempts)
    assert any(f"worker died index=1 status=-{signal.SIGKILL}" in line for line in cluster.log)
    assert cluster.worker_pids()[1] != victim
    # No duplicate enrolments or playlists.
    conn = await asyncpg.connect(cluster.db)
    try:
        samples = await conn.fetch(
            "SELECT u.external_id, count(*) FROM face_embeddings e "
            "JOIN users u ON u.id = e.user_id GROUP BY 1"
        )
        handled = await conn.fetchval("SELECT count(*) FROM processed_updates WHERE state = 'done'")
    finally:
        await conn.close()
    assert sorted(int(r[1]) for r in samples) == [1] * 10
    assert len(cluster.spotify.playlists) == 5
    assert handled == len(delivered)
    workers_used = {
        line.split("worker=")[1].split()[0] for line in cluster.log if "telegram webhook listening" in line
    }
    assert len(workers_used) >= WORKERS
    assert "Traceback" not in "".join(cluster.log), "".join(cluster.log)[-3000:]
