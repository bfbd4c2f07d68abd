"""The store on both backends (a real SQLite file and a real PostgreSQL server): migrations, settings,
embeddings, deletion, the state that workers share, atomic claims; SQLite's processes and crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from core.storage import (
    JournalEntry,
    JournalState,
    PlaylistClaim,
    ResultRow,
    TasteRow,
    UpdateClaim,
    open_store,
)
from core.storage.migrations import SchemaTooNew, discover, migrations_dir
from tests.conftest import ROOT


async def test_migrations_are_applied_once_and_recorded(db_url: str) -> None:
    store = await open_store(db_url)
    versions = await store.schema_versions()
    await store.close()
    assert versions == [m.version for m in discover(migrations_dir(store.dialect))]
    store = await open_store(db_url)  # reopening applies nothing again
    assert await store.schema_versions() == versions
    tables = {
        "users", "chats", "user_settings", "face_embeddings", "schema_migrations", "spotify_tokens",
        "reply_results", "result_playlists", "conversations", "rate_events", "processed_updates",
        "journal_settings", "journal_entries", "track_feedback", "spotify_taste",
    }  # fmt: skip
    if store.dialect == "sqlite":
        rows = await store.db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert (await store.db.fetchval("PRAGMA journal_mode")) == "wal"
    else:
        rows = await store.db.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert tables <= {r[0] for r in rows}
    await store.close()


def test_both_dialects_have_the_same_migrations() -> None:
    sqlite, postgres = discover(migrations_dir("sqlite")), discover(migrations_dir("postgresql"))
    assert [(m.version, m.name) for m in sqlite] == [(m.version, m.name) for m in postgres]


def test_migration_numbers_must_not_have_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x);")
    (tmp_path / "0003_c.sql").write_text("CREATE TABLE c (x);")
    with pytest.raises(ValueError, match="without gaps"):
        discover(tmp_path)


async def test_a_database_from_a_newer_moodtunes_is_refused(db_url: str) -> None:
    store = await open_store(db_url)
    await store.db.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')")
    await store.close()
    with pytest.raises(SchemaTooNew, match="schema version 99"):
        await open_store(db_url)


async def test_settings_default_and_bounds(db_url: str) -> None:
    store = await open_store(db_url)
    user = await store.ensure_user("telegram", "42", "Ann")
    assert (await store.get_settings(user)).track_count == 10
    await store.set_track_count(user, 15)
    await store.set_mood_policy(user, "lift")
    settings = await store.get_settings(user)
    assert (settings.track_count, settings.mood_policy) == (15, "lift")
    with pytest.raises((sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)):
        await store.set_track_count(user, 51)
    assert (await store.get_settings(user)).track_count == 15  # the failed write changed nothing
    await store.close()


async def test_embeddings_round_trip_scoped_and_capped(db_url: str) -> None:
    store = await open_store(db_url)
    ann = await store.ensure_user("telegram", "1", "Ann")
    bob = await store.ensure_user("telegram", "2", "Bob")
    chat_a = await store.ensure_chat("telegram", "100")
    chat_b = await store.ensure_chat("telegram", "200")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, 512)).astype(np.float32)
    generation = await store.gallery_generation(chat_a)
    assert await store.add_embeddings(ann, chat_a, "model-x", vectors) == 3
    assert await store.gallery_generation(chat_a) == generation + 1  # caches elsewhere see the change
    await store.add_embeddings(bob, chat_b, "model-x", vectors[:1])
    await store.add_embeddings(bob, chat_a, "model-y", vectors[:1])
    rows = await store.gallery(chat_a, "model-x")
    assert rows.user_ids.tolist() == [ann] * 3 and rows.names == {ann: "Ann"}
    assert rows.generation == await store.gallery_generation(chat_a)
    np.testing.assert_array_equal(rows.vectors, vectors)  # float32 stored bit-exact
    assert (await store.gallery(chat_b, "model-x")).user_ids.tolist() == [bob]
    # Only the newest samples are kept.
    for _ in range(5):
        count = await store.add_embeddings(ann, chat_a, "model-x", vectors, keep=7)
    assert count == 7
    await store.close()


async def test_delete_user_removes_everything(db_url: str) -> None:
    store = await open_store(db_url)
    ann = await store.ensure_user("discord", "7", "Ann")
    chat = await store.ensure_chat("discord", "guild-1")
    own = await store.ensure_chat("discord", "dm:7", owner_user_id=ann)
    await store.add_embeddings(ann, chat, "m", np.ones((2, 4), np.float32))
    await store.set_track_count(ann, 20)
    await store.add_result(ResultRow("tok", ann, chat, "happy", "match", 10, ["a"], ["a"]), 60)
    await store.set_conversation(ann, chat, "enroll-consent", time.time() + 60, "m", np.ones(4))
    assert await store.rate_check(ann, "photo", 5, 60) == 0
    generation = await store.gallery_generation(chat)
    deleted = await store.delete_user(ann)
    assert (deleted.users, deleted.embeddings) == (1, 2)
    assert await store.find_user("discord", "7") is None
    assert await store.count_embeddings(ann) == 0
    assert len((await store.gallery(chat, "m")).user_ids) == 0
    assert await store.gallery_generation(chat) > generation
    assert await store.find_chat("discord", "dm:7") is None and own  # their private chat went with them
    assert await store.find_chat("discord", "guild-1") == chat  # the shared one stays
    for table in ("user_settings", "reply_results", "conversations", "rate_events"):
        assert await store.db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    # The next new user never gets the deleted user's id.
    assert await store.ensure_user("discord", "8", "Bob") > ann
    await store.close()


async def test_state_rows_are_shared_and_expire(db_url: str) -> None:
    store = await open_store(db_url)
    ann = await store.ensure_user("telegram", "1", "Ann")
    chat = await store.ensure_chat("telegram", "1", owner_user_id=ann)
    now = 1_000_000.0
    # Results: optimistic versions, so two presses never lose an update.
    await store.add_result(ResultRow("t1", ann, chat, "sad", "match", 10, ["a", "b"], ["b"]), 100, now)
    first, second = await store.get_result("t1", now), await store.get_result("t1", now)
    assert first is not None and second is not None and first.shown == ["a", "b"]
    first.shown.append("c")
    assert await store.update_result(first) and not await store.update_result(second)
    assert (await store.get_result("t1", now)).shown == ["a", "b", "c"]  # type: ignore[union-attr]
    assert await store.get_result("t1", now + 101) is None
    # One playlist per list: the first claim makes it, the second waits for its address.
    assert (await store.claim_playlist("t1", ["a"], now)).mine
    assert await store.claim_playlist("t1", ["a"], now) == PlaylistClaim(mine=False)
    await store.finish_playlist("t1", ["a"], "https://open.spotify.com/playlist/x")
    assert (await store.claim_playlist("t1", ["a"], now)).url == "https://open.spotify.com/playlist/x"
    assert (await store.claim_playlist("t1", ["b"], now)).mine
    assert (await store.claim_playlist("t1", ["b"], now + 500)).mine  # an abandoned claim is retaken
    # Update claims: once handled, a redelivery is a duplicate; a dead worker's claim is retaken.
    assert await store.claim_update("telegram", "5", "w1", 30, now) == UpdateClaim("claimed", 0)
    assert await store.claim_update("telegram", "5", "w2", 30, now + 1) == UpdateClaim("busy")
    assert await store.renew_update("telegram", "5", "w1", 30, now + 20)
    assert await store.record_progress("telegram", "5", "w1", 1)  # one message of the answer was sent
    assert (await store.claim_update("telegram", "5", "w2", 30, now + 40)).state == "busy"  # renewed
    assert await store.claim_update("telegram", "5", "w2", 30, now + 60) == UpdateClaim("claimed", 1)
    assert not await store.renew_update("telegram", "5", "w1", 30, now + 61)  # w1 lost it
    assert not await store.record_progress("telegram", "5", "w1", 2)
    await store.finish_update("telegram", "5", done=True, now=now + 62)
    assert (await store.claim_update("telegram", "5", "w3", 30, now + 63)).state == "done"
    # Rate windows.
    assert [await store.rate_check(ann, "photo", 2, 60, now + t) for t in (0, 1)] == [0, 0]
    assert await store.rate_check(ann, "photo", 2, 60, now + 2) == pytest.approx(58)
    assert await store.rate_check(ann, "photo", 2, 60, now + 61) == 0
    # Conversations expire.
    await store.set_conversation(ann, chat, "forget-confirm", now + 10)
    assert (await store.get_conversation(ann, chat, now)).step == "forget-confirm"  # type: ignore[union-attr]
    assert await store.get_conversation(ann, chat, now + 11) is None
    swept = await store.sweep(now + 10**6, rate_window_s=60)
    assert swept["reply_results"] == 1 and swept["conversations"] == 1 and swept["processed_updates"] == 1
    await store.close()


async def test_claims_are_atomic_across_connections(db_url: str) -> None:
    """Ten stores (as ten workers) race for one update and one playlist: exactly one wins each."""
    stores = [await open_store(db_url) for _ in range(10)]
    try:
        user = await stores[0].ensure_user("telegram", "1")
        chat = await stores[0].ensure_chat("telegram", "1")
        await stores[0].add_result(ResultRow("t", user, chat, "happy", "match", 10), 100)
        claims = await asyncio.gather(
            *(s.claim_update("telegram", "9", f"w{i}", 30) for i, s in enumerate(stores))
        )
        assert sorted(c.state for c in claims) == ["busy"] * 9 + ["claimed"]
        playlists = await asyncio.gather(*(s.claim_playlist("t", ["x"]) for s in stores))
        assert sum(p.mine for p in playlists) == 1
        waits = await asyncio.gather(*(s.rate_check(user, "photo", 3, 60) for s in stores))
        assert sum(w == 0 for w in waits) == 3
    finally:
        for store in stores:
            await store.close()


async def test_sqlite_file_is_private_and_forgotten_bytes_are_gone(tmp_path: Path) -> None:
    path = tmp_path / "private.sqlite3"
    store = await open_store(path)
    ann = await store.ensure_user("telegram", "987654321", "Zelda Quartermaine")
    chat = await store.ensure_chat("telegram", "-100")
    vector = np.random.default_rng(1).standard_normal((1, 512)).astype(np.float32)
    await store.add_embeddings(ann, chat, "m", vector)
    await store.delete_user(ann)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    blobs = b"".join(p.read_bytes() for p in tmp_path.glob("private.sqlite3*"))
    for secret in (b"Zelda Quartermaine", b"987654321", vector.tobytes()[:64]):
        assert secret not in blobs
    await store.close()


async def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        await open_store(tmp_path)


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import numpy as np
    from core.storage import open_store

    async def main(path, tag, n):
        store = await open_store(path)
        chat = await store.ensure_chat("cli", "shared")
        for i in range(n):
            user = await store.ensure_user("cli", f"{tag}-{i}", f"{tag} {i}")
            await store.add_embeddings(user, chat, "m", np.full((1, 8), i, np.float32))
            await store.set_track_count(user, 1 + i % 50)
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


def test_two_processes_writing_at_once_do_not_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db), tag, "150"], cwd=ROOT)
        for tag in ("left", "right")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("SELECT count(*) FROM users").fetchone()[0] == 300
        assert raw.execute("SELECT count(*) FROM face_embeddings").fetchone()[0] == 300
        assert raw.execute("SELECT count(*) FROM user_settings").fetchone()[0] == 300


CRASHER = textwrap.dedent(
    """
    import asyncio, sys, time
    import numpy as np
    from core.storage import open_store

    async def main(path):
        store = await open_store(path)
        chat = await store.ensure_chat("cli", "c")
        for i in range(50):
            user = await store.ensure_user("cli", f"u{i}")
            await store.add_embeddings(user, chat, "m", np.ones((1, 8), np.float32))
        async with store.db.transaction() as db:
            for i in range(50, 100):
                await db.execute("INSERT INTO users (platform, external_id) VALUES ('cli', ?)", f"u{i}")
            print("mid-transaction", flush=True)
            time.sleep(60)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_crash_mid_write_loses_nothing_committed(tmp_path: Path) -> None:
    db = tmp_path / "crash.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASHER, str(db)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=120)
    assert line.strip() == "mid-transaction"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    store = await open_store(db)  # recovers from the hot WAL
    chat = await store.find_chat("cli", "c")
    assert chat is not None
    assert len((await store.gallery(chat, "m")).user_ids) == 50
    assert await store.find_user("cli", "u49") is not None
    assert await store.find_user("cli", "u50") is None  # the uncommitted transaction is gone
    await store.close()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_personal_tables_round_trip_and_go_with_the_user(db_url: str) -> None:
    """Journal (switch, question, entries), song feedback and the Spotify taste cache: on both engines,
    owned by the user (ON DELETE CASCADE), the journal swept after 31 days."""
    store = await open_store(db_url)
    ann = await store.ensure_user("telegram", "1", "Ann")
    bob = await store.ensure_user("telegram", "2", "Bob")
    now = 1_000_000.0
    # The journal records only once its owner answered Yes to their own, unexpired question.
    assert await store.journal_state(ann) == JournalState(False)
    assert not await store.journal_add(ann, JournalEntry(now, "happy"))
    await store.journal_ask(ann, "tok", now + 60, now)
    assert await store.journal_state(ann) == JournalState(False, "tok", now + 60)
    assert not await store.journal_answer(bob, "tok", True, now)  # not Bob's question
    assert not await store.journal_answer(ann, "tok", True, now + 61)  # expired
    assert await store.journal_answer(ann, "tok", True, now + 1)
    assert not await store.journal_answer(ann, "tok", True, now + 2)  # answered once
    assert (await store.journal_state(ann)).enabled
    entry = JournalEntry(now, "sad", "sad", "lift", 10, 0.25, 0.5)
    assert await store.journal_add(ann, entry)
    assert await store.journal_add(ann, JournalEntry(now + 5, "happy"))
    assert await store.journal_entries(ann, now) == [entry, JournalEntry(now + 5, "happy")]
    assert await store.journal_entries(ann, now + 1) == [JournalEntry(now + 5, "happy")]
    swept = await store.sweep(now + 31 * 86_400 + 1)
    assert swept["journal_entries"] == 1
    assert await store.journal_disable(ann, now) == 1 and not (await store.journal_state(ann)).enabled
    assert not await store.journal_add(ann, entry)
    await store.journal_ask(ann, "again", now + 60, now)
    assert await store.journal_answer(ann, "again", True, now)
    assert await store.journal_add(ann, entry)
    # Feedback: the latest verdict per track wins; liked artists newest first, each once.
    await store.feedback_set(ann, "t1", "nope", ["A"], now)
    await store.feedback_set(ann, "t2", "like", ["B", "C"], now + 1)
    await store.feedback_set(ann, "t3", "like", ["C", "D"], now + 2)
    await store.feedback_set(bob, "t1", "like", ["A"], now)
    assert await store.feedback_tracks(ann, "nope") == {"t1"}
    assert await store.feedback_liked_artists(ann) == ["C", "D", "B"]
    await store.feedback_set(ann, "t1", "like", ["A"], now + 3)  # an undo
    assert await store.feedback_tracks(ann, "nope") == set()
    with pytest.raises(Exception):  # noqa: B017  (sqlite3.IntegrityError or asyncpg's CheckViolationError)
        await store.feedback_set(ann, "t9", "meh", [], now)
    # Taste: one claim a day across workers, saved only while linked, gone with the link.
    assert await store.taste_get(ann) is None
    assert await store.taste_claim(ann, now, 86_400) and not await store.taste_claim(ann, now + 10, 86_400)
    await store.taste_save(ann, ["Koffee"], ["id1"], now)
    assert (await store.taste_get(ann)) == TasteRow((), (), now, False)  # not linked: nothing saved
    await store.db.execute(
        "INSERT INTO spotify_tokens (user_id, token, account) VALUES (?, ?, ?)", ann, b"x", b"y"
    )
    await store.taste_save(ann, ["Koffee", "Drake"], ["id1"], now + 20)
    assert await store.taste_get(ann) == TasteRow(("Koffee", "Drake"), ("id1",), now + 20, True)
    assert await store.taste_claim(ann, now + 20 + 86_400, 86_400)
    assert (await store.taste_get(ann)).artists == ("Koffee", "Drake")  # type: ignore[union-attr]  # kept
    assert await store.spotify_delete_link(ann) and await store.taste_get(ann) is None
    await store.taste_claim(ann, now, 86_400)
    # /forget: everything of Ann's goes, Bob's stays.
    deleted = await store.delete_user(ann)
    assert (deleted.journal_entries, deleted.ratings) == (1, 3)
    for table in ("journal_settings", "journal_entries", "spotify_taste"):
        assert await store.db.fetchval(f"SELECT count(*) FROM {table} WHERE user_id = ?", ann) == 0, table
    assert await store.db.fetchval("SELECT count(*) FROM track_feedback") == 1  # Bob's
    await store.close()
