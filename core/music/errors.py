"""Errors of the music package; ``str(error)`` is one line the user can act on."""

from __future__ import annotations

from core.errors import MoodtunesError


class CatalogError(MoodtunesError):
    """A file cannot be used as a track catalog (not CSV, missing columns, no valid rows, bad format)."""

    code = "bad_catalog"


class FetchError(MoodtunesError):
    """A catalog could not be downloaded (offline, HTTP error, too large)."""

    code = "fetch_failed"


class ChecksumMismatch(FetchError):
    """The downloaded bytes do not have the pinned sha256; nothing was saved."""

    code = "checksum_mismatch"
