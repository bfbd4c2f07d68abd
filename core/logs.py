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
from collections.abc import Iterable

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
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


def configure(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level`` in the one-line format, libraries kept quiet, secrets redacted."""
    logging.basicConfig(level=level, format=FORMAT, force=True)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.addFilter(RedactingFilter(secrets))
    floor = max(logging.INFO, root.level)
    for name in QUIET:
        logging.getLogger(name).setLevel(floor)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
