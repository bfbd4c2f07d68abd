"""Key rotation: with MOODTUNES_SECRET_KEY=new,old every stored Spotify token and account (linked and
waiting for confirmation) is re-encrypted under the new key, so the old key can be dropped."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.cli import main
from core.spotify import Rotation, SpotifyService
from core.spotify.token_cache import TokenCipher
from core.storage import Store, open_store
from tests.fakes.spotify import FakeSpotify, fast_policy, link_by_paste

OLD, NEW, OTHER = (Fernet.generate_key().decode() for _ in range(3))
TRACKS = ["4uLU6hMCjMI75M1A2tKUQC", "0nbXyq5TXYPCO7pr3N8S4I"]


def spotify(fake: FakeSpotify, db: str, store: Store, key: str) -> SpotifyService:
    settings = fake.settings(db, secret_key=key)  # type: ignore[arg-type]
    return SpotifyService(settings, store, policy=fast_policy())


async def _blobs(store: Store) -> list[bytes]:
    return [
        blob for _, _, token, account in await store.spotify_encrypted_rows() for blob in (token, account)
    ]


async def test_rotate_then_drop_the_old_key(fake_spotify: FakeSpotify, db_url: str) -> None:
    store = await open_store(db_url)
    try:
        before = spotify(fake_spotify, db_url, store, OLD)
        ann = await store.ensure_user("telegram", "1", "Ann")
        ben = await store.ensure_user("telegram", "2", "Ben")
        await link_by_paste(before, fake_spotify, ann, "alice")
        url = await before.start_link(ben)
        pending = await before.finish_link(ben, await fake_spotify.authorize(url, user="bob"))
        assert await spotify(fake_spotify, db_url, store, NEW).linked_name(ann) is None  # NEW alone can't

        result = await spotify(fake_spotify, db_url, store, f"{NEW},{OLD}").rotate_key()
        assert result == Rotation(reencrypted=2, unreadable=0)
        new_only = TokenCipher(NEW)
        for blob in await _blobs(store):
            new_only.decrypt(blob)  # every ciphertext is under NEW now

        after = spotify(fake_spotify, db_url, store, NEW)  # the old key is gone
        assert await after.linked_name(ann) == "Alice A."
        fake_spotify.expire_access_tokens()  # the stored refresh token is read and used too
        assert (await after.create_playlist(ann, TRACKS, "happy")).startswith("https://open.spotify.com/")
        assert await after.confirm_link(ben, pending.confirm) == "Bob B."  # the pending one survived
    finally:
        await store.close()


async def test_rows_no_key_reads_are_counted_and_left(fake_spotify: FakeSpotify, tmp_path: Path) -> None:
    db = str(tmp_path / "db.sqlite3")
    store = await open_store(db)
    try:
        ann = await store.ensure_user("telegram", "1")
        await link_by_paste(spotify(fake_spotify, db, store, OTHER), fake_spotify, ann)
        ben = await store.ensure_user("telegram", "2")
        await link_by_paste(spotify(fake_spotify, db, store, OLD), fake_spotify, ben, "bob")
        lost = await store.spotify_token(ann)
        assert await spotify(fake_spotify, db, store, f"{NEW},{OLD}").rotate_key() == Rotation(1, 1)
        assert await store.spotify_token(ann) == lost  # untouched: its user must link again
        assert await spotify(fake_spotify, db, store, NEW).linked_name(ben) == "Bob B."
    finally:
        await store.close()


def test_rotate_key_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "cli.sqlite3"
    token = {"access_token": "a", "refresh_token": "r"}

    async def seed() -> None:
        store = await open_store(db)
        user = await store.ensure_user("local", "ann")
        await store.db.execute(
            "INSERT INTO spotify_tokens (user_id, token, account) VALUES (?, ?, ?)",
            user,
            TokenCipher(OLD).encrypt(token),
            TokenCipher(OLD).encrypt({"id": "alice", "display_name": "Alice A."}),
        )
        await store.close()

    asyncio.run(seed())
    monkeypatch.chdir(tmp_path)  # no .env file from a checkout
    monkeypatch.setenv("MOODTUNES_SECRET_KEY", f"{NEW},{OLD}")
    assert main(["rotate-key", "--db", str(db)]) == 0
    assert "Re-encrypted 1 stored Spotify token(s)" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        stored, account = conn.execute("SELECT token, account FROM spotify_tokens").fetchone()
    assert TokenCipher(NEW).decrypt(stored) == token  # readable with the new key alone
    assert TokenCipher(NEW).decrypt(account)["display_name"] == "Alice A."

    monkeypatch.setenv("MOODTUNES_SECRET_KEY", "not a key")
    assert main(["rotate-key", "--db", str(db)]) == 1
    assert "MOODTUNES_SECRET_KEY" in capsys.readouterr().err
