"""The platform request being handled (a Telegram update id), for answers that must not change when
the same request is delivered again.

A worker can die after acting on an update but before its answer reached the user; the platform
then delivers the update again, to another worker. Conversation steps record the request that made
them (:mod:`core.app.conversations`), so the redelivered request gets the same answer instead of
being taken for the user's next message. Adapters set the request with :func:`request_scope`.
"""

from __future__ import annotations

from contextvars import ContextVar

_CURRENT: ContextVar[str | None] = ContextVar("moodtunes_request", default=None)


def current_request() -> str | None:
    """The request being handled in this task, e.g. ``"telegram:10000042"`` (None outside one)."""
    return _CURRENT.get()


def set_request(key: str | None) -> None:
    """Mark the rest of this task as handling request ``key``."""
    _CURRENT.set(key)
