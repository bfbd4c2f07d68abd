"""Persistence: the SQLite store and its migrations."""

from core.storage.sqlite import Deleted, GalleryRows, Store, UserSettings

__all__ = ["Deleted", "GalleryRows", "Store", "UserSettings"]
