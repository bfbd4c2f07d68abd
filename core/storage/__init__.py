"""Persistence: one :class:`Store` of SQL over SQLite or PostgreSQL, and their migrations."""

from core.storage.store import (
    Conversation,
    Deleted,
    GalleryRows,
    JournalEntry,
    JournalState,
    PlaylistClaim,
    ResultRow,
    Store,
    TasteRow,
    UpdateClaim,
    UserLanguage,
    UserSettings,
    open_store,
)

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
