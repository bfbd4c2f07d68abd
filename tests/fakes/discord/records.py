"""Discord's constants and errors, and the value types the fake hands to tests: users, channels, guilds,
interactions and the bot's REST calls."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.loopback import UploadedFile

API_VERSION = 10
DISCORD_EPOCH_MS = 1_420_070_400_000
UPLOAD_LIMIT = 10 * 1024 * 1024
"""A bot's upload limit in a server without boosts: 10 MiB per message."""

GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
DIRECT_MESSAGES = 1 << 12
MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT

EPHEMERAL = 1 << 6
LOADING = 1 << 7

PERMISSIONS = str(
    sum(1 << bit for bit in (6, 10, 11, 14, 15, 16, 17, 18, 31, 35, 38))
)  # reactions, view, send, embed links, attach files, history, mention, external emoji, app commands...


class DiscordError(Exception):
    """An error answer: HTTP status, Discord's JSON error code and message, and form errors."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def form_error(path: str, code: str, message: str) -> DiscordError:
    """Discord's 50035 Invalid Form Body, with the error nested under ``path`` (dotted)."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def walk_components(components: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Every component, depth first (action rows, their children, section accessories)."""
    for component in components:
        yield component
        yield from walk_components(component.get("components") or [])
        if isinstance(component.get("accessory"), dict):
            yield component["accessory"]


@dataclass(frozen=True)
class DcUser:
    """A Discord user (or the bot)."""

    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The API ``User`` object."""
        return {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.global_name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
        }

    @property
    def mention(self) -> str:
        """``<@id>``."""
        return f"<@{self.id}>"


@dataclass(frozen=True)
class DcChannel:
    """A guild text channel (type 0) or the DM channel with one user (type 1)."""

    id: int
    type: int
    name: str | None = None
    guild_id: int | None = None
    recipient: DcUser | None = None
    position: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The API ``Channel`` object."""
        if self.type == 1:
            recipients = [self.recipient.to_dict()] if self.recipient else []
            return {
                "id": str(self.id),
                "type": 1,
                "recipients": recipients,
                "last_message_id": None,
                "flags": 0,
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }


@dataclass
class DcGuild:
    """A guild (server) the bot is in."""

    id: int
    name: str
    owner_id: int
    channels: list[DcChannel] = field(default_factory=list)
    member_ids: list[int] = field(default_factory=list)
    joined_at: str = field(default_factory=now_iso)


@dataclass
class SentInteraction:
    """An interaction the test started; the fake updates its response state as the bot answers."""

    id: int
    token: str
    type: int
    """2: application command, 3: message component."""
    payload: dict[str, Any]
    """The INTERACTION_CREATE ``d`` sent to the bot."""
    channel_id: int
    user: DcUser
    created: float
    message_id: int | None = None
    """Components: the message the component is on."""
    response_type: int | None = None
    """The bot's callback type: 4 message, 5 deferred message, 6 deferred update, 7 update, 9 modal."""
    original_message_id: int | None = None
    thinking: bool = False
    """A type-5 "thinking" message waits for its first follow-up or ``@original`` edit."""


@dataclass
class DiscordCall:
    """One REST request the bot made, in the order received."""

    index: int
    kind: str
    """``message``, ``edit``, ``delete``, ``typing``, ``reaction``, ``interaction_callback``, ``followup``,
    ``edit_original``, ``commands``, ``get_me``, ``gateway_bot``... (see the route tables in ``rest.py``
    and ``interactions.py``)."""
    method: str
    path: str
    payload: Any = None
    """The JSON body, or a multipart request's ``payload_json``."""
    files: list[UploadedFile] = field(default_factory=list)
    query: dict[str, str] = field(default_factory=dict)
    channel_id: int | None = None
    interaction: SentInteraction | None = None
    message: dict[str, Any] | None = None
    """The message the call created or changed, as the fake stored it."""
    status: int = 200
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True for 2xx answers."""
        return 200 <= self.status < 300

    @property
    def callback_type(self) -> int | None:
        """Interaction callbacks: the response type (4, 5, 6, 7, 8, 9)."""
        if self.kind == "interaction_callback" and isinstance(self.payload, dict):
            return int(self.payload.get("type", 0))
        return None

    @property
    def data(self) -> dict[str, Any]:
        """The message fields sent: the payload, or its ``data`` for interaction callbacks."""
        if not isinstance(self.payload, dict):
            return {}
        if self.kind == "interaction_callback":
            return self.payload.get("data") or {}
        return self.payload

    @property
    def content(self) -> str | None:
        """``content`` as sent."""
        return self.data.get("content")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """``embeds`` as sent."""
        return list(self.data.get("embeds") or [])

    @property
    def components(self) -> list[dict[str, Any]]:
        """``components`` as sent."""
        return list(self.data.get("components") or [])

    @property
    def custom_ids(self) -> list[str]:
        """Every ``custom_id`` in the components, depth first."""
        return [c["custom_id"] for c in walk_components(self.components) if "custom_id" in c]

    @property
    def ephemeral(self) -> bool:
        """Whether the EPHEMERAL flag was asked for."""
        return bool(int(self.data.get("flags") or 0) & EPHEMERAL)

    @property
    def file_bytes(self) -> dict[str, bytes]:
        """Uploaded files by filename."""
        return {f.filename or f.field: f.data for f in self.files}

    def summary(self) -> str:
        """``METHOD /path -> status``, for timeout messages."""
        return f"{self.method} {self.path} -> {self.status}"
