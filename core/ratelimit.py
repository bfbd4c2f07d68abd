"""Per-key sliding-window rate limit (e.g. 10 photos a minute per user)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable


class RateLimiter:
    """Allow at most ``limit`` events per ``window_s`` seconds for each key.

    Args:
        limit: events allowed in any window.
        window_s: window length, seconds.
        clock: monotonic time source in seconds (tests pass a fake).
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: dict[Hashable, deque[float]] = {}

    def check(self, key: Hashable) -> float:
        """Record an event and return 0, or return the seconds to wait (the event is not recorded)."""
        now = self._clock()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if len(events) >= self.limit:
            return events[0] + self.window_s - now
        events.append(now)
        if len(self._events) > 10_000:  # drop idle keys now and then
            for stale in [k for k, q in self._events.items() if not q or q[-1] <= now - self.window_s]:
                del self._events[stale]
        return 0.0
