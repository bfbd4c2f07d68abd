"""SQLite store on a real file: migrations, settings, embeddings, deletion, concurrency, crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from core.storage import Store
from core.storage.migrations import discover
from tests.conftest import ROOT


async def test_migrations_are_applied_once_and_recorded(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite3"
    store = await Store.open(db)
    versions = await store.schema_versions()
    await store.close()
    assert versions == [m.version for m in discover()]
    store = await Store.open(db)  # reopening applies nothing again
    assert await store.schema_versions() == versions
    await store.close()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "chats", "user_settings", "face_embeddings", "schema_migrations"} <= names


def test_migration_numbers_must_not_have_gaps(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("CREATE TABLE a (x);")
    (tmp_path / "0003_c.sql").write_text("CREATE TABLE c (x);")
    with pytest.raises(ValueError, match="without gaps"):
        discover(tmp_path)


async def test_settings_default_and_bounds(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.sqlite3")
    user = await store.ensure_user("telegram", "42", "Ann")
    assert (await store.get_settings(user)).track_count == 10
    await store.set_track_count(user, 15)
    await store.set_mood_policy(user, "lift")
    settings = await store.get_settings(user)
    assert (settings.track_count, settings.mood_policy) == (15, "lift")
    with pytest.raises(sqlite3.IntegrityError):
        await store.set_track_count(user, 51)
    assert (await store.get_settings(user)).track_count == 15  # the failed write changed nothing
    await store.close()


async def test_embeddings_round_trip_scoped_and_capped(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "e.sqlite3")
    ann = await store.ensure_user("telegram", "1", "Ann")
    bob = await store.ensure_user("telegram", "2", "Bob")
    chat_a = await store.ensure_chat("telegram", "100")
    chat_b = await store.ensure_chat("telegram", "200")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((3, 512)).astype(np.float32)
    assert await store.add_embeddings(ann, chat_a, "model-x", vectors) == 3
    await store.add_embeddings(bob, chat_b, "model-x", vectors[:1])
    await store.add_embeddings(bob, chat_a, "model-y", vectors[:1])
    rows = await store.gallery(chat_a, "model-x")
    assert rows.user_ids.tolist() == [ann] * 3 and rows.names == {ann: "Ann"}
    np.testing.assert_array_equal(rows.vectors, vectors)  # float32 stored bit-exact
    assert (await store.gallery(chat_b, "model-x")).user_ids.tolist() == [bob]
    # Only the newest samples are kept.
    for _ in range(5):
        count = await store.add_embeddings(ann, chat_a, "model-x", vectors, keep=7)
    assert count == 7
    await store.close()


async def test_delete_user_removes_everything(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "d.sqlite3")
    ann = await store.ensure_user("discord", "7", "Ann")
    chat = await store.ensure_chat("discord", "guild-1")
    await store.add_embeddings(ann, chat, "m", np.ones((2, 4), np.float32))
    await store.set_track_count(ann, 20)
    deleted = await store.delete_user(ann)
    assert (deleted.users, deleted.embeddings) == (1, 2)
    assert await store.find_user("discord", "7") is None
    assert await store.count_embeddings(ann) == 0
    assert len((await store.gallery(chat, "m")).user_ids) == 0
    await store.close()
    with sqlite3.connect(tmp_path / "d.sqlite3") as raw:
        assert raw.execute("SELECT count(*) FROM user_settings").fetchone()[0] == 0


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import numpy as np
    from core.storage import Store

    async def main(path, tag, n):
        store = await Store.open(path)
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
    from core.storage import Store

    async def main(path):
        store = await Store.open(path)
        chat = await store.ensure_chat("cli", "c")
        for i in range(50):
            user = await store.ensure_user("cli", f"u{i}")
            await store.add_embeddings(user, chat, "m", np.ones((1, 8), np.float32))
        async with store.transaction() as db:
            for i in range(50, 100):
                await db.execute("INSERT INTO users (platform, external_id) VALUES ('cli', ?)", (f"u{i}",))
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
    store = await Store.open(db)  # recovers from the hot WAL
    chat = await store.find_chat("cli", "c")
    assert chat is not None
    assert len((await store.gallery(chat, "m")).user_ids) == 50
    assert await store.find_user("cli", "u49") is not None
    assert await store.find_user("cli", "u50") is None  # the uncommitted transaction is gone
    await store.close()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
