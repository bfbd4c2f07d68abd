"""The two database engines behind :class:`~core.storage.store.Store`: SQLite (embedded, one machine)
and PostgreSQL (several workers). Both take the same SQL, written with ``?`` placeholders in the
subset both dialects share (``INSERT ... ON CONFLICT``, ``RETURNING``, ``CURRENT_TIMESTAMP``).

A :class:`Database` runs statements; :meth:`Database.transaction` yields one bound to a single
transaction, in which :meth:`Database.lock` serialises work on a key across every process sharing
the database (SQLite: ``BEGIN IMMEDIATE`` already admits one writer at a time; PostgreSQL: a
transaction-scoped advisory lock).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from core.storage.migrations import Migrator

BUSY_TIMEOUT_MS = 10_000
Row = Sequence[Any]


class Database(ABC):
    """Statements on one engine. Rows are sequences indexed by column position."""

    dialect: str
    """``"sqlite"`` or ``"postgresql"``: picks the migrations folder."""

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Every row of a query."""

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """The first row of a query, or None."""
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetchrow(sql, *args)
        return row[0] if row is not None else None

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; returns the rows it changed."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run a statement once per parameter row."""

    @abstractmethod
    def transaction(self) -> Any:
        """``async with db.transaction() as tx:`` a :class:`Database` inside one transaction
        (committed on exit, rolled back on an exception)."""

    async def lock(self, key: str) -> None:
        """Inside a transaction: wait until no other transaction holds ``key``, then hold it until the end."""
        return None

    async def script(self, sql: str) -> None:
        """Several statements at once, no parameters (PostgreSQL migrations)."""
        raise NotImplementedError(f"{self.dialect} runs migrations statement by statement")

    async def close(self) -> None:
        """Release the connection(s)."""
        return None

    async def after_forget(self) -> None:
        """Make deleted rows unrecoverable from the files (SQLite: checkpoint the WAL); no-op elsewhere."""
        return None


# SQLite ------------------------------------------------------------------------------------------


class _SqliteConnection(Database):
    """Statements on an aiosqlite connection (autocommit unless inside :meth:`SqliteDatabase.transaction`)."""

    dialect = "sqlite"

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._db.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._db.execute(sql, args) as cur:
            return max(cur.rowcount, 0)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._db.executemany(sql, [tuple(r) for r in rows])

    def transaction(self) -> Any:
        raise RuntimeError("already inside a transaction")


class SqliteDatabase(_SqliteConnection):
    """One SQLite file in WAL mode with ``synchronous=FULL`` and ``secure_delete``.

    Readers never block the writer; other processes may open the same file (they wait up to
    ``busy_timeout`` for the write lock); a committed transaction survives a crash or power loss;
    deleted rows are overwritten with zeros. The file is created readable by its owner only.
    """

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        super().__init__(db)
        self.path = path
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        """Open (creating folders and the file, mode 0600), configure and migrate."""
        if str(path) != ":memory:":
            path = await asyncio.to_thread(_prepare_file, Path(path))
        db = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await _enable_wal(db)
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA secure_delete=ON")
            database = cls(db, path)
            await Migrator(database).apply()
            await db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            await db.close()
            raise
        return database

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteConnection(self._db)
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def pragma(self, statement: str) -> None:
        """Run a PRAGMA (only outside a transaction)."""
        async with self._write_lock:
            await self._db.execute(f"PRAGMA {statement}")

    async def after_forget(self) -> None:
        """Copy the WAL into the database and truncate it, so deleted rows leave no copy behind."""
        async with self._write_lock:
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def close(self) -> None:
        try:
            await self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            await self._db.close()


def _prepare_file(path: Path) -> Path:
    """Folders as needed, and the file itself created 0600 (SQLite gives its -wal and -shm files the
    database file's permissions); returns the path with ``~`` expanded. Refuses a directory."""
    path = path.expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, not a database file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    return path


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


# PostgreSQL --------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\?")


def to_postgres(sql: str) -> str:
    """``?`` placeholders -> ``$1, $2, ...`` (our SQL never has a ``?`` inside a string literal)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def _rowcount(status: str) -> int:
    """asyncpg's command tag (``"DELETE 3"``, ``"INSERT 0 1"``) -> 3, 1."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id for ``key``."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


class _PostgresConnection(Database):
    """Statements on one asyncpg connection."""

    dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._conn.fetch(to_postgres(sql), *args))

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._conn.execute(to_postgres(sql), *args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._conn.executemany(to_postgres(sql), [tuple(r) for r in rows])

    def transaction(self) -> Any:
        raise RuntimeError("already inside a transaction")

    async def lock(self, key: str) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id(key))

    async def script(self, sql: str) -> None:
        """Several statements at once, no parameters (migrations)."""
        await self._conn.execute(sql)


class PostgresDatabase(Database):
    """A pool of connections to one PostgreSQL database.

    Args:
        pool: an ``asyncpg`` pool (see :meth:`open`).
    """

    dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, pool_size: int = 10) -> PostgresDatabase:
        """Connect (up to ``pool_size`` connections) and migrate."""
        import asyncpg

        pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size, command_timeout=60)
        database = cls(pool)
        try:
            await Migrator(database).apply()
        except BaseException:
            await pool.close()
            raise
        return database

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return list(await self._pool.fetch(to_postgres(sql), *args))

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._pool.execute(to_postgres(sql), *args))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._pool.executemany(to_postgres(sql), [tuple(r) for r in rows])

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PostgresConnection]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PostgresConnection(conn)

    async def close(self) -> None:
        await self._pool.close()
