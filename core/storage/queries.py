"""The base of the store's query groups (one module each, combined in :class:`Store`)."""

from __future__ import annotations

from core.storage.database import Database


class Queries:
    """What every group of queries shares: the database, and the default of a never-set setting."""

    db: Database
    default_track_count: int
