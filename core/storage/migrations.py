"""Numbered SQL migrations (``migrations/NNNN_name.sql``), applied in order and recorded.

Each file runs in one ``BEGIN IMMEDIATE`` transaction together with its row in ``schema_migrations``,
so two processes starting at once apply it exactly once, and a crash leaves it applied or not at all.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One SQL file: ``version`` from its number, ``name`` from the rest of the file name."""

    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        """The file split into complete SQL statements."""
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


def migrations_dir() -> Path:
    """``migrations/`` at the repository root, or its copy inside an installed wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "migrations", here.parents[1] / "_migrations"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("migrations folder not found")


def discover(folder: Path | None = None) -> list[Migration]:
    """All migrations in ``folder``, sorted; numbers must be unique and start at 1 without gaps."""
    found = []
    for path in sorted((folder or migrations_dir()).glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migration numbers must run 1..n without gaps, got {versions}")
    return found


async def apply_migrations(db: aiosqlite.Connection, folder: Path | None = None) -> list[int]:
    """Apply pending migrations; return the versions applied now. ``db`` must be in autocommit mode."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
    )
    applied: list[int] = []
    for migration in discover(folder):
        await db.execute("BEGIN IMMEDIATE")
        try:
            async with db.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ) as cur:
                done = await cur.fetchone() is not None
            if not done:
                for statement in migration.statements():
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                    (migration.version, migration.name),
                )
                applied.append(migration.version)
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
    return applied
