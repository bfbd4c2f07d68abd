"""The store: every SQL statement of the application, over SQLite or PostgreSQL.

The queries are grouped by what they are about, one module each (``people``, ``faces``, ``state``,
``spotify_rows``, ``personal``), returning the small rows of ``rows``; :class:`Store` combines them.

Open it with :func:`open_store` (the engine follows ``MOODTUNES_DB``: a file path is SQLite, a
``postgresql://`` URL is PostgreSQL). The SQL is written once, in the subset both engines share; the
schema of each engine lives in ``core/storage/sql/<dialect>/``. Everything a later message or button
press needs (reply results, conversations, rate windows, handled updates, Spotify link state) lives
here with an expiry, so any worker can answer and a restart loses nothing; :meth:`Store.sweep`
deletes what has expired.
"""

from __future__ import annotations

import time
from pathlib import Path

from core.storage.database import Database, PostgresDatabase, SqliteDatabase
from core.storage.faces import FaceQueries
from core.storage.people import PeopleQueries
from core.storage.personal import PersonalQueries
from core.storage.rows import JOURNAL_KEEP_S
from core.storage.spotify_rows import SpotifyQueries
from core.storage.state import StateQueries


async def open_store(db: str | Path, pool_size: int = 10) -> Store:
    """The store for ``MOODTUNES_DB``: a SQLite file path, or a ``postgresql://`` URL."""
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        return Store(await PostgresDatabase.open(text, pool_size), text)
    return Store(await SqliteDatabase.open(Path(text)), text)


class Store(PeopleQueries, FaceQueries, StateQueries, SpotifyQueries, PersonalQueries):
    """The application's queries over one :class:`~core.storage.database.Database`, grouped by what
    they are about (one module each: people, faces, state, spotify_rows, personal)."""

    def __init__(self, db: Database, url: str = "") -> None:
        self.db = db
        self.url = url
        """What the store was opened with (a SQLite path or a PostgreSQL URL)."""
        self.default_track_count = 10

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.db.dialect

    @property
    def path(self) -> Path | None:
        """The SQLite file, None on PostgreSQL."""
        return self.db.path if isinstance(self.db, SqliteDatabase) else None

    async def close(self) -> None:
        """Close the connection(s)."""
        await self.db.close()

    async def schema_versions(self) -> list[int]:
        """Applied migration numbers, ascending."""
        return [int(r[0]) for r in await self.db.fetch("SELECT version FROM schema_migrations ORDER BY 1")]

    # Expiry -----------------------------------------------------------------------------------------

    async def sweep(
        self,
        now: float | None = None,
        rate_window_s: float = 3600.0,
        keep_updates_s: float = 86_400.0,
        journal_keep_s: float = JOURNAL_KEEP_S,
    ) -> dict[str, int]:
        """Delete every expired row; returns how many per table.

        Rate events older than the longest window ``rate_window_s`` are no longer counted; handled
        update ids are kept ``keep_updates_s`` (Telegram stops redelivering after 24 hours); mood journal
        entries ``journal_keep_s``.
        """
        now = time.time() if now is None else now
        swept = {
            "reply_results": await self.db.execute("DELETE FROM reply_results WHERE expires_at <= ?", now),
            "conversations": await self.db.execute("DELETE FROM conversations WHERE expires_at <= ?", now),
            "spotify_oauth_states": await self.db.execute(
                "DELETE FROM spotify_oauth_states WHERE expires_at <= ?", now
            ),
            "spotify_pending_links": await self.db.execute(
                "DELETE FROM spotify_pending_links WHERE expires_at <= ?", now
            ),
            "rate_events": await self.db.execute(
                "DELETE FROM rate_events WHERE at <= ?", now - rate_window_s
            ),
            "processed_updates": await self.db.execute(
                "DELETE FROM processed_updates WHERE updated_at <= ?", now - keep_updates_s
            ),
            "journal_entries": await self.db.execute(
                "DELETE FROM journal_entries WHERE at <= ?", now - journal_keep_s
            ),
        }
        return swept
