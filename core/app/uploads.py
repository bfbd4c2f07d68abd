"""Rules for a photo a user uploads, shared by every adapter: checked from its declared size before
any download, and the one sentence that says why it was refused."""

from __future__ import annotations

from core.app import texts
from core.errors import FileTooLarge
from core.vision.imaging import MAX_BYTES

LIMIT_MB = MAX_BYTES // 2**20
"""The largest photo accepted, in MB (20, Telegram's bot download limit)."""


def too_big(size: int | None = None) -> FileTooLarge:
    """The refusal for a file over the limit (its size in the message when known, bytes)."""
    if size is None:
        return FileTooLarge(texts.TOO_BIG_UNKNOWN, limit=LIMIT_MB)
    return FileTooLarge(texts.TOO_BIG, size=size / 1e6, limit=LIMIT_MB)


def check_size(size: int | None) -> None:
    """Raise :class:`~core.errors.FileTooLarge` when a declared size (bytes) is over the limit."""
    if size is not None and size > MAX_BYTES:
        raise too_big(size)
