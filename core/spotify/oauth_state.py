"""OAuth ``state``: random, bound to one user, single-use, expiring, stored only as its sha256.

The state is the only thing that ties the browser's redirect back to a chat user, so it is 256 bits
from :func:`secrets.token_urlsafe`, and the database keeps its hash: a copy of the database cannot be
used to finish somebody's link.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

STATE_TTL_S = 600.0
"""A state expires 10 minutes after the authorisation URL was made."""

STATE_BYTES = 32


def new_state() -> str:
    """A fresh random state (43 URL-safe characters)."""
    return secrets.token_urlsafe(STATE_BYTES)


def hash_state(state: str) -> str:
    """The sha256 hex digest under which a state is stored."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RedirectParams:
    """What Spotify put on the redirect: ``state``, and ``code`` or ``error`` (e.g. access_denied)."""

    state: str | None
    code: str | None
    error: str | None


def parse_redirect(url_or_query: str) -> RedirectParams:
    """Read ``state``, ``code`` and ``error`` from a pasted redirect URL (or just its query string).

    Tolerant of what people paste: surrounding spaces, angle brackets or quotes, a missing scheme.
    """
    text = url_or_query.strip().strip("<>\"'").strip()
    query = urlsplit(text).query if "?" in text else text.lstrip("?")
    form = dict(parse_qsl(query.split("#", 1)[0]))
    return RedirectParams(
        state=form.get("state") or None, code=form.get("code") or None, error=form.get("error") or None
    )
