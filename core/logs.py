"""Logging for long-running processes: one line per event, ``key=value``, secrets never written.

Two defences, because libraries log what they see:

* Loggers of libraries that print secrets or personal data at DEBUG (python-telegram-bot and httpx
  put the bot token in request URLs; aiosqlite and asyncpg print every SQL parameter, names and
  embedding bytes among them; discord.py prints gateway payloads; spotipy prints bearer tokens) stay
  at INFO or above whatever ``MOODTUNES_LOG_LEVEL`` says.
* A filter on every handler rewrites what still gets through: Telegram bot tokens, Discord tokens,
  bearer tokens, OAuth ``code=`` / ``state=`` values, access and refresh tokens in JSON, and any
  configured secret value, become ``[redacted]``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
QUIET = ("httpx", "httpcore", "telegram", "aiosqlite", "asyncpg", "discord", "spotipy", "urllib3", "hpack")
"""Libraries held at INFO or above: at DEBUG they log tokens, payloads or SQL parameters."""
NOISY = ("httpx", "discord.gateway", "discord.client", "aiohttp.access")
"""Libraries held at WARNING: their INFO lines are per-request chatter."""
REDACTED = "[redacted]"

_PATTERNS = (
    re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}"),  # Telegram bot token (also inside /bot<token>/ URLs)
    re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"),  # Discord bot token
    re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)\b((?:code|state|access_token|refresh_token|client_secret)=)[^&\s\"']+"),
    re.compile(r"(?i)(\"(?:access_token|refresh_token|code|state|client_secret|token)\"\s*:\s*\")[^\"]*"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known kind of secret, and each of ``secrets``, replaced by ``[redacted]``."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.lastindex else "") + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (arguments merged) and exception text through :func:`redact`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message, self.secrets), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


class StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record comes (as :data:`logging.lastResort`
    does), so a replaced stderr (a test's capture, a daemon's redirect) is followed, never a stale one."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr


def configure(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level`` in the one-line format, libraries kept quiet, secrets redacted.

    Calling it again (``moodtunes run`` after the CLI did) replaces its own handler and filter; a handler
    installed by someone else is kept, and its records are redacted too.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, StderrHandler):
            root.removeHandler(handler)
    ours = StderrHandler()
    ours.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(ours)
    root.setLevel(level)
    redacting = RedactingFilter(secrets)
    for handler in root.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(redacting)
    floor = max(logging.INFO, root.level)
    for name in QUIET:
        logging.getLogger(name).setLevel(floor)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def configured_secrets(settings: Any) -> list[str]:
    """The secret values of :class:`core.config.Settings` (platform tokens, the Spotify client
    secret, the token key and each key of a ``new,old`` list), for :func:`configure`."""
    values = []
    for name in ("telegram_token", "discord_token", "spotify_client_secret", "secret_key"):
        secret = getattr(settings, name, None)
        value = secret.get_secret_value() if secret is not None else ""
        values += [value, *(part.strip() for part in value.split(",") if "," in value)]
    return [v for v in values if v]
