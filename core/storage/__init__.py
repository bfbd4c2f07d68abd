"""Persistence: one :class:`Store` of SQL over SQLite or PostgreSQL, and their migrations."""

from core.storage.rows import (
    Conversation,
    Deleted,
    GalleryRows,
    JournalEntry,
    JournalState,
    PlaylistClaim,
    ResultRow,
    TasteRow,
    UpdateClaim,
    UserLanguage,
    UserSettings,
)
from core.storage.store import Store, open_store

__all__ = [
    "Conversation",
    "Deleted",
    "GalleryRows",
    "JournalEntry",
    "JournalState",
    "PlaylistClaim",
    "ResultRow",
    "Store",
    "TasteRow",
    "UpdateClaim",
    "UserLanguage",
    "UserSettings",
    "open_store",
]
