"""Numbered SQL migrations per dialect (``core/storage/sql/<dialect>/NNNN_name.sql``), applied in order
and recorded in ``schema_migrations``.

Each file runs in one transaction together with its row in ``schema_migrations``, so two processes
starting at once apply it exactly once, and a crash leaves it applied or not at all. On SQLite,
migrations run with foreign keys off (as SQLite documents for table rebuilds, so that dropping a
rebuilt table cannot cascade) and ``PRAGMA foreign_key_check`` must pass before the commit. A database
whose schema is newer than this code knows is refused.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import MoodtunesError
from core.paths import resource

if TYPE_CHECKING:
    from core.storage.database import Database

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
SCHEMA_TABLE = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "postgresql": "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
}
MIGRATION_LOCK = "moodtunes:migrations"


class SchemaTooNew(MoodtunesError):
    """The database was migrated by a newer moodtunes; this one would misread it."""

    code = "schema_too_new"


@dataclass(frozen=True)
class Migration:
    """One SQL file: ``version`` from its number, ``name`` from the rest of the file name."""

    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        """The file split into complete SQL statements (SQLite's notion of complete)."""
        out, buf = [], ""
        for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True):
            buf += line
            if sqlite3.complete_statement(buf):
                if buf.strip():
                    out.append(buf.strip())
                buf = ""
        if buf.strip() and not all(ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()):
            raise ValueError(f"{self.path.name}: incomplete SQL statement at the end")
        return out


def migrations_dir(dialect: str) -> Path:
    """The SQL folder of a dialect (``sqlite`` or ``postgresql``), shipped inside this package."""
    return resource("core.storage", "sql", dialect)


def discover(folder: Path) -> list[Migration]:
    """All migrations in ``folder``, sorted; numbers must be unique and start at 1 without gaps."""
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migration numbers must run 1..n without gaps, got {versions}")
    return found


class Migrator:
    """Applies a dialect's pending migrations to a :class:`~core.storage.database.Database`.

    Args:
        db: the database (not inside a transaction).
        folder: the migrations (default: the dialect's shipped folder).
    """

    def __init__(self, db: Database, folder: Path | None = None) -> None:
        self.db = db
        self.migrations = discover(folder or migrations_dir(db.dialect))

    async def apply(self) -> list[int]:
        """Apply what is pending; return the versions applied now. Raises :class:`SchemaTooNew`."""
        applied: list[int] = []
        for migration in self.migrations:
            async with self.db.transaction() as tx:
                await tx.lock(MIGRATION_LOCK)
                await tx.execute(SCHEMA_TABLE[self.db.dialect])
                newest = await tx.fetchval("SELECT max(version) FROM schema_migrations")
                if newest is not None and int(newest) > len(self.migrations):
                    raise SchemaTooNew(
                        f"the database is at schema version {newest}, newer than this moodtunes knows "
                        f"({len(self.migrations)}); upgrade moodtunes or use another database"
                    )
                if await tx.fetchrow("SELECT 1 FROM schema_migrations WHERE version = ?", migration.version):
                    continue
                if self.db.dialect == "postgresql":
                    await tx.script(migration.path.read_text(encoding="utf-8"))
                else:
                    for statement in migration.statements():
                        await tx.execute(statement)
                    broken = await tx.fetch("PRAGMA foreign_key_check")
                    if broken:
                        raise RuntimeError(
                            f"migration {migration.path.name} breaks foreign keys: {broken[:3]}"
                        )
                await tx.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                    migration.version,
                    migration.name,
                )
                applied.append(migration.version)
        return applied

    async def versions(self) -> list[int]:
        """Applied migration numbers, ascending."""
        return [int(r[0]) for r in await self.db.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
