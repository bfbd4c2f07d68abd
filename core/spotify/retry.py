"""The retry policy for Spotify calls: explicit, small, and testable.

spotipy's own retries (urllib3 ``Retry`` on 429/5xx) are switched off, because they hide the status
(spotipy reports an exhausted retry as a 429 whatever the cause) and cannot be shortened for tests.
Instead every call goes through :func:`classify` and :meth:`RetryPolicy.delay`:

* 429: wait ``Retry-After`` seconds (or the backoff if absent) and try again; a wait longer than
  ``max_retry_after_s`` gives up at once with a message saying how long Spotify asked for.
* 5xx, timeouts, connection errors: wait ``backoff_s * 2**(attempt - 1)`` (capped) and try again.
* after ``max_attempts`` attempts: give up.
Everything else is not retried.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import requests
from spotipy.exceptions import SpotifyException, SpotifyOauthError


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Defaults suit a chat bot; tests pass tiny delays.

    Attributes:
        max_attempts: attempts per API call, the first included (default 4).
        backoff_s: first wait after a 5xx or timeout, doubled each time (default 0.5 s).
        backoff_max_s: ceiling of that wait (default 8 s).
        max_retry_after_s: longest ``Retry-After`` honoured; longer ones give up (default 60 s).
        timeout_s: HTTP timeout of each request (connect and read, default 10 s).
    """

    max_attempts: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 60.0
    timeout_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Wait after failed attempt number ``attempt`` (1-based) of a transient error."""
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** max(0, attempt - 1)))


class Failure(Enum):
    """What kind of failure an exception from spotipy or requests is."""

    RATE_LIMITED = "rate_limited"  # 429
    TRANSIENT = "transient"  # 5xx, timeout, connection error, token endpoint hiccup
    UNAUTHORIZED = "unauthorized"  # 401 from the Web API: access token no longer valid
    FORBIDDEN = "forbidden"  # 403 of any other kind
    NOT_ALLOWED = "not_allowed"  # 403: user not added to a development-mode app
    REVOKED = "revoked"  # token endpoint: invalid_grant (refresh token revoked or expired)
    BAD_CLIENT = "bad_client"  # token endpoint: invalid_client (operator's credentials)
    OTHER = "other"  # anything else: not retried


_NOT_ALLOWED_HINTS = ("not registered", "not approved", "developer dashboard")


def classify(exc: BaseException) -> Failure:
    """Sort an exception raised by a spotipy call into a :class:`Failure`."""
    if isinstance(exc, SpotifyOauthError):
        # ``error`` is the OAuth error code, but a proxy or an outage page can put a JSON object or
        # an HTML body there: only a string is a code.
        error = exc.error.strip() if isinstance(exc.error, str) else ""
        if error == "invalid_grant":
            return Failure.REVOKED
        if error in ("invalid_client", "unauthorized_client"):
            return Failure.BAD_CLIENT
        return Failure.TRANSIENT
    if isinstance(exc, SpotifyException):
        status = exc.http_status
        if status == 429:
            return Failure.RATE_LIMITED
        if status is not None and status >= 500:
            return Failure.TRANSIENT
        if status == 401:
            return Failure.UNAUTHORIZED
        if status == 403:
            text = f"{exc.msg} {exc.reason or ''}".lower()
            if any(hint in text for hint in _NOT_ALLOWED_HINTS):
                return Failure.NOT_ALLOWED
            return Failure.FORBIDDEN
        return Failure.OTHER
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError):
        return Failure.TRANSIENT
    return Failure.OTHER


def retry_after_s(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent or unreadable."""
    if not headers:
        return None
    value = None
    for key, item in headers.items():
        if key.lower() == "retry-after":
            value = str(item).strip()
            break
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
