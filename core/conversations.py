"""The two small conversations: ``/enroll`` (consent, then a selfie) and ``/forget`` (confirm).

States are named constants; ``enroll.mmd`` and ``forget.mmd`` beside this file draw the state
machines. State lives in memory, per (user, chat), and expires after ``TTL_S`` seconds: a photo held
while waiting for consent is never written anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

TTL_S = 600.0
"""A conversation left alone this many seconds is forgotten."""


class Step(StrEnum):
    """Where a user is in a conversation."""

    ENROLL_CONSENT = "enroll-consent"
    """/enroll was sent; waiting for "Yes, enrol me" or "No" (a photo given with /enroll waits here)."""
    ENROLL_SELFIE = "enroll-selfie"
    """Consent given; the next photo from this user in this chat is enrolled."""
    FORGET_CONFIRM = "forget-confirm"
    """/forget was sent; waiting for "Yes, delete" or "No"."""


@dataclass
class Pending:
    """One open conversation; ``photo`` is the image bytes attached to /enroll, if any."""

    step: Step
    started: float
    photo: bytes | None = None


class Conversations:
    """Open conversations keyed by (user id, chat id)."""

    def __init__(self, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._open: dict[tuple[int, int], Pending] = {}

    def start(self, user: int, chat: int, step: Step, photo: bytes | None = None) -> None:
        """Open (or restart) a conversation at ``step``."""
        self._open[(user, chat)] = Pending(step, self._clock(), photo)

    def get(self, user: int, chat: int) -> Pending | None:
        """The open conversation, or None (expired ones are dropped)."""
        pending = self._open.get((user, chat))
        if pending is not None and self._clock() - pending.started > self.ttl_s:
            del self._open[(user, chat)]
            return None
        return pending

    def end(self, user: int, chat: int | None = None) -> Pending | None:
        """Close the conversation (in one chat, or every chat of the user); returns the one closed."""
        if chat is not None:
            return self._open.pop((user, chat), None)
        closed = None
        for key in [k for k in self._open if k[0] == user]:
            closed = self._open.pop(key)
        return closed
