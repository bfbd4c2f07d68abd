"""The SQLite store (aiosqlite): every SQL statement of the application lives in this module.

WAL journal with ``synchronous=FULL``: readers never block the writer, other processes may open the
same file (they wait up to ``busy_timeout`` for the write lock), and a committed transaction survives
a crash or power loss. Multi-statement writes run in ``BEGIN IMMEDIATE`` transactions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import numpy as np

from core.storage.migrations import apply_migrations

BUSY_TIMEOUT_MS = 10_000
MAX_SAMPLES_PER_SCOPE = 20
"""Face samples kept per user and chat; enrolling more replaces the oldest."""


@dataclass(frozen=True)
class UserSettings:
    """Per-user preferences: tracks per reply (1..50) and the mood policy (``match`` or ``lift``)."""

    track_count: int
    mood_policy: str


@dataclass(frozen=True)
class GalleryRows:
    """Enrolled samples of one chat for one model: ``vectors`` (N, dim) float32, ``user_ids`` (N,)."""

    user_ids: np.ndarray
    vectors: np.ndarray
    names: dict[int, str]


@dataclass(frozen=True)
class Deleted:
    """What :meth:`Store.delete_user` removed, for the confirmation message."""

    users: int
    embeddings: int
    spotify_tokens: int = 0


async def _enable_wal(db: aiosqlite.Connection) -> None:
    """Switch to WAL. SQLite answers "locked" at once (no busy handler) while another process creates
    the same file, so retry for up to the busy timeout."""
    deadline = asyncio.get_running_loop().time() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.02)


def _prepare_path(path: Path | str) -> Path:
    path = Path(path).expanduser()
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


class Store:
    """One connection to the database; create with :meth:`open`, finish with :meth:`close`."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._write_lock = asyncio.Lock()
        self.default_track_count = 10

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (creating folders and file as needed), configure, and migrate the database."""
        path = _prepare_path(path)
        db = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await _enable_wal(db)
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA foreign_keys=ON")
            await apply_migrations(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, path)

    async def close(self) -> None:
        """Checkpoint the WAL and close the connection."""
        try:
            await self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            await self._db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error); one writer at a time."""
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        async with self._db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def schema_versions(self) -> list[int]:
        """Applied migration numbers, ascending."""
        return [r[0] for r in await self._all("SELECT version FROM schema_migrations ORDER BY 1")]

    # Users and chats -------------------------------------------------------------------------

    async def ensure_user(self, platform: str, external_id: str, display_name: str = "") -> int:
        """Id of the user, created if new; a non-empty ``display_name`` is updated."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO users (platform, external_id, display_name) VALUES (?, ?, ?) "
                "ON CONFLICT (platform, external_id) DO UPDATE SET display_name = "
                "CASE WHEN excluded.display_name != '' THEN excluded.display_name ELSE display_name END",
                (platform, str(external_id), display_name),
            )
            async with db.execute(
                "SELECT id FROM users WHERE platform = ? AND external_id = ?", (platform, str(external_id))
            ) as cur:
                row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def find_user(self, platform: str, external_id: str) -> int | None:
        """Id of the user, or None if unknown."""
        row = await self._one(
            "SELECT id FROM users WHERE platform = ? AND external_id = ?", (platform, str(external_id))
        )
        return int(row[0]) if row else None

    async def user_name(self, user_id: int) -> str | None:
        """Display name (or external id when blank) of a user, None if no such user."""
        row = await self._one(
            "SELECT CASE WHEN display_name != '' THEN display_name ELSE external_id END "
            "FROM users WHERE id = ?",
            (user_id,),
        )
        return str(row[0]) if row else None

    async def ensure_chat(self, platform: str, external_id: str, title: str = "") -> int:
        """Id of the chat (the face-matching scope), created if new."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO chats (platform, external_id, title) VALUES (?, ?, ?) "
                "ON CONFLICT (platform, external_id) DO NOTHING",
                (platform, str(external_id), title),
            )
            async with db.execute(
                "SELECT id FROM chats WHERE platform = ? AND external_id = ?", (platform, str(external_id))
            ) as cur:
                row = await cur.fetchone()
        assert row is not None
        return int(row[0])

    async def find_chat(self, platform: str, external_id: str) -> int | None:
        """Id of the chat, or None if unknown."""
        row = await self._one(
            "SELECT id FROM chats WHERE platform = ? AND external_id = ?", (platform, str(external_id))
        )
        return int(row[0]) if row else None

    async def delete_user(self, user_id: int) -> Deleted:
        """Delete the user and, by cascade, their embeddings, settings and any Spotify data."""
        async with self.transaction() as db:
            async with db.execute(
                "SELECT count(*) FROM face_embeddings WHERE user_id = ?", (user_id,)
            ) as cur:
                row = await cur.fetchone()
            embeddings = int(row[0]) if row else 0
            tokens = 0
            if await self._table_exists("spotify_tokens"):
                async with db.execute(
                    "SELECT count(*) FROM spotify_tokens WHERE user_id = ?", (user_id,)
                ) as cur:
                    row = await cur.fetchone()
                tokens = int(row[0]) if row else 0
            cur2 = await db.execute("DELETE FROM users WHERE id = ?", (user_id,))
            users = cur2.rowcount
        return Deleted(users=users, embeddings=embeddings, spotify_tokens=tokens)

    async def _table_exists(self, name: str) -> bool:
        row = await self._one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return row is not None

    # Settings -----------------------------------------------------------------------------------

    async def get_settings(self, user_id: int) -> UserSettings:
        """The user's settings, defaults when never set."""
        row = await self._one(
            "SELECT track_count, mood_policy FROM user_settings WHERE user_id = ?", (user_id,)
        )
        if row is None:
            return UserSettings(self.default_track_count, "match")
        return UserSettings(int(row[0]), str(row[1]))

    async def set_track_count(self, user_id: int, count: int) -> None:
        """Tracks per reply, 1..50 (the database refuses anything else)."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO user_settings (user_id, track_count) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET track_count = excluded.track_count, "
                "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                (user_id, count),
            )

    async def set_mood_policy(self, user_id: int, policy: str) -> None:
        """``match`` or ``lift``."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO user_settings (user_id, track_count, mood_policy) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET mood_policy = excluded.mood_policy, "
                "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                (user_id, self.default_track_count, policy),
            )

    # Face embeddings -----------------------------------------------------------------------------

    async def add_embeddings(
        self,
        user_id: int,
        chat_id: int,
        model: str,
        vectors: np.ndarray,
        keep: int = MAX_SAMPLES_PER_SCOPE,
    ) -> int:
        """Store (N, dim) float32 vectors for the user in the chat; keep the newest ``keep``.

        Returns the number of samples the user now has in this chat for this model.
        """
        vectors = np.asarray(vectors, dtype="<f4")
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be (N, dim), got {vectors.shape}")
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO face_embeddings (user_id, chat_id, model, dim, vector) VALUES (?, ?, ?, ?, ?)",
                [(user_id, chat_id, model, vectors.shape[1], v.tobytes()) for v in vectors],
            )
            await db.execute(
                "DELETE FROM face_embeddings WHERE user_id = ? AND chat_id = ? AND model = ? AND id NOT IN ("
                " SELECT id FROM face_embeddings WHERE user_id = ? AND chat_id = ? AND model = ?"
                " ORDER BY id DESC LIMIT ?)",
                (user_id, chat_id, model, user_id, chat_id, model, keep),
            )
            async with db.execute(
                "SELECT count(*) FROM face_embeddings WHERE user_id = ? AND chat_id = ? AND model = ?",
                (user_id, chat_id, model),
            ) as cur:
                row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def gallery(self, chat_id: int, model: str) -> GalleryRows:
        """Every enrolled sample in a chat for one model, ordered by user then age."""
        rows = await self._all(
            "SELECT e.user_id, e.dim, e.vector, "
            " CASE WHEN u.display_name != '' THEN u.display_name ELSE u.external_id END "
            "FROM face_embeddings e JOIN users u ON u.id = e.user_id "
            "WHERE e.chat_id = ? AND e.model = ? ORDER BY e.user_id, e.id",
            (chat_id, model),
        )
        if not rows:
            return GalleryRows(np.zeros(0, np.int64), np.zeros((0, 0), np.float32), {})
        dim = int(rows[0][1])
        vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), dim)
        return GalleryRows(
            np.array([r[0] for r in rows], dtype=np.int64),
            vectors.astype(np.float32),
            {int(r[0]): str(r[3]) for r in rows},
        )

    async def count_embeddings(self, user_id: int) -> int:
        """All face samples of the user, every chat and model."""
        row = await self._one("SELECT count(*) FROM face_embeddings WHERE user_id = ?", (user_id,))
        return int(row[0]) if row else 0

    async def delete_embeddings(self, user_id: int, chat_id: int | None = None) -> int:
        """Delete the user's face samples (in one chat, or everywhere); returns how many."""
        async with self.transaction() as db:
            if chat_id is None:
                cur = await db.execute("DELETE FROM face_embeddings WHERE user_id = ?", (user_id,))
            else:
                cur = await db.execute(
                    "DELETE FROM face_embeddings WHERE user_id = ? AND chat_id = ?", (user_id, chat_id)
                )
            return cur.rowcount

    # Spotify ---------------------------------------------------------------------------------------
    # Tokens and account details arrive here already encrypted (core.spotify.token_cache); OAuth states
    # arrive hashed. Nothing in this section ever sees a secret in the clear.

    async def spotify_save_link(self, user_id: int, token: bytes, account: bytes) -> None:
        """Store (or replace) the user's encrypted token and encrypted account details."""
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO spotify_tokens (user_id, token, account) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET token = excluded.token, account = excluded.account, "
                "linked_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), "
                "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                (user_id, token, account),
            )

    async def spotify_update_token(self, user_id: int, token: bytes) -> bool:
        """Replace the encrypted token of a linked user; False (nothing written) if not linked."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE spotify_tokens SET token = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                "WHERE user_id = ?",
                (token, user_id),
            )
            return cur.rowcount > 0

    async def spotify_token(self, user_id: int) -> bytes | None:
        """The user's encrypted token, None if not linked."""
        row = await self._one("SELECT token FROM spotify_tokens WHERE user_id = ?", (user_id,))
        return bytes(row[0]) if row else None

    async def spotify_account(self, user_id: int) -> bytes | None:
        """The user's encrypted account details, None if not linked."""
        row = await self._one("SELECT account FROM spotify_tokens WHERE user_id = ?", (user_id,))
        return bytes(row[0]) if row else None

    async def spotify_delete_link(self, user_id: int) -> bool:
        """Delete the user's token; True if there was one."""
        async with self.transaction() as db:
            cur = await db.execute("DELETE FROM spotify_tokens WHERE user_id = ?", (user_id,))
            return cur.rowcount > 0

    async def spotify_add_state(
        self, state_hash: str, user_id: int, expires_at: float, now: float, keep: int = 5
    ) -> None:
        """Record a pending OAuth state (hashed) for the user.

        States expired at ``now`` are purged, and the user keeps only their ``keep`` newest pending states.
        """
        async with self.transaction() as db:
            await db.execute("DELETE FROM spotify_oauth_states WHERE expires_at <= ?", (now,))
            await db.execute(
                "INSERT INTO spotify_oauth_states (state_hash, user_id, expires_at) VALUES (?, ?, ?)",
                (state_hash, user_id, expires_at),
            )
            await db.execute(
                "DELETE FROM spotify_oauth_states WHERE user_id = ? AND rowid NOT IN ("
                " SELECT rowid FROM spotify_oauth_states WHERE user_id = ? ORDER BY rowid DESC LIMIT ?)",
                (user_id, user_id, keep),
            )

    async def spotify_take_state(self, state_hash: str) -> tuple[int, float] | None:
        """Delete a pending state and return ``(user_id, expires_at)``; None if unknown or already used."""
        async with (
            self.transaction() as db,
            db.execute(
                "DELETE FROM spotify_oauth_states WHERE state_hash = ? RETURNING user_id, expires_at",
                (state_hash,),
            ) as cur,
        ):
            row = await cur.fetchone()
        return (int(row[0]), float(row[1])) if row else None

    async def spotify_count_states(self, user_id: int | None = None) -> int:
        """Pending OAuth states (of one user, or all)."""
        if user_id is None:
            row = await self._one("SELECT count(*) FROM spotify_oauth_states")
        else:
            row = await self._one("SELECT count(*) FROM spotify_oauth_states WHERE user_id = ?", (user_id,))
        return int(row[0]) if row else 0
