"""A fake Discord (REST API, gateway WebSocket and attachment CDN) on 127.0.0.1, for the real discord.py.

Scope: what a bot with slash commands, message handlers, buttons and file uploads uses.

* REST under ``/api/v10``: ``GET /gateway/bot``, ``/users/@me``, ``/oauth2/applications/@me``; command
  sync ``PUT /applications/{app}/commands`` and the guild variant; channel messages (create with JSON or
  multipart ``payload_json`` + ``files[n]``, get, edit, delete), typing, reactions, DM channel creation;
  ``GET`` channel / guild / member; interaction callbacks ``POST /interactions/{id}/{token}/callback``
  (types 4, 5, 6, 7, 8, 9; ``with_response`` answered as discord.py 2.5+ expects) and the interaction
  webhooks (follow-ups, ``@original`` get / edit / delete).
* Gateway at ``ws://127.0.0.1:<port>/gateway``: HELLO, heartbeat ACKs, IDENTIFY -> READY and one
  GUILD_CREATE per guild, REQUEST_GUILD_MEMBERS -> GUILD_MEMBERS_CHUNK, RESUME -> INVALID_SESSION (no
  resuming); ``zlib-stream`` transport compression (and ``zstd-stream`` where a zstd module is importable).
  Events honour the identified intents, and guild messages lose their content, embeds and attachments when
  the bot lacks MESSAGE_CONTENT and is not mentioned, as on Discord. The bot's own messages come back as
  MESSAGE_CREATE / MESSAGE_UPDATE, as on Discord.
* Discord's rules that bots trip over: the 3-second interaction deadline, one initial response per
  interaction, follow-ups before any response, the first follow-up after a "thinking" defer replacing that
  message, content / embed / component limits, empty messages, 10 MiB uploads, privileged intents.
* Not covered: rate limits (never 429 unless asked with :meth:`FakeDiscord.fail_next`), sharding beyond
  echoing ``shard``, resuming, voice, threads, permissions checks, autocomplete and modal submissions.

discord.py has no setting for its API address: set ``discord.http.Route.BASE = fake.api_url`` (a class
attribute every request and webhook route is built from). A plain ``Client`` then connects to
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` without asking ``/gateway/bot`` (only
``AutoShardedClient`` asks it), so set that to ``yarl.URL(url)`` with ``url`` from
``await client.http.get_bot_gateway()`` (in ``setup_hook``, before ``connect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import io
import json
import mimetypes
import re
import secrets
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.loopback import Changes, serve_on_loopback

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

_PERMISSIONS = str(
    sum(1 << bit for bit in (6, 10, 11, 14, 15, 16, 17, 18, 31, 35, 38))
)  # reactions, view, send, embed links, attach files, history, mention, external emoji, app commands...
_MESSAGE_KINDS = frozenset({"message", "followup", "edit_original"})
_OP_DISPATCH, _OP_HEARTBEAT, _OP_IDENTIFY, _OP_PRESENCE, _OP_RESUME = 0, 1, 2, 3, 6
_OP_REQUEST_MEMBERS, _OP_INVALID_SESSION, _OP_HELLO, _OP_HEARTBEAT_ACK = 8, 9, 10, 11


class _DiscordError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def _form_error(path: str, code: str, message: str) -> _DiscordError:
    """Discord's 50035 Invalid Form Body, with the error nested under ``path`` (dotted)."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return _DiscordError(400, 50035, "Invalid Form Body", errors)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


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
    joined_at: str = field(default_factory=_now_iso)


@dataclass
class UploadedFile:
    """One file part the bot uploaded (``files[n]``)."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


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
    ``edit_original``, ``commands``, ``get_me``, ``gateway_bot``... (see FakeDiscord._routes)."""
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
        return [c["custom_id"] for c in _walk_components(self.components) if "custom_id" in c]

    @property
    def ephemeral(self) -> bool:
        """Whether the EPHEMERAL flag was asked for."""
        return bool(int(self.data.get("flags") or 0) & EPHEMERAL)

    @property
    def file_bytes(self) -> dict[str, bytes]:
        """Uploaded files by filename."""
        return {f.filename or f.field: f.data for f in self.files}


def _walk_components(components: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for component in components:
        yield component
        yield from _walk_components(component.get("components") or [])
        if isinstance(component.get("accessory"), dict):
            yield component["accessory"]


def _image_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


def _compressor(kind: str | None) -> Callable[[bytes], bytes] | None:
    """The per-connection transport compressor for ``compress=`` (one stream, flushed per message)."""
    if kind == "zlib-stream":
        zobj = zlib.compressobj()
        return lambda data: zobj.compress(data) + zobj.flush(zlib.Z_SYNC_FLUSH)
    if kind == "zstd-stream":
        try:
            zstandard = importlib.import_module("zstandard")
        except ImportError:
            try:
                zstd = importlib.import_module("compression.zstd")  # Python 3.14+
            except ImportError:
                return None
            compressor = zstd.ZstdCompressor()
            return lambda data: compressor.compress(data, mode=zstd.ZstdCompressor.FLUSH_BLOCK)
        cobj = zstandard.ZstdCompressor().compressobj()
        return lambda data: cobj.compress(data) + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    return None


class _GatewaySession:
    """One gateway connection: sequence numbers, compression, intents."""

    def __init__(self, ws: web.WebSocketResponse, compress: Callable[[bytes], bytes] | None) -> None:
        self.ws = ws
        self.compress = compress
        self.seq = 0
        self.intents = 0
        self.identified = False
        self.session_id = secrets.token_hex(16)
        self.shard: list[int] | None = None
        self.presence: dict[str, Any] | None = None
        self.received: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()

    async def send(self, op: int, data: Any, event: str | None = None) -> None:
        async with self._lock:  # compression is one stream: frames must leave in the order compressed
            payload: dict[str, Any] = {"op": op, "d": data, "s": None, "t": event}
            if op == _OP_DISPATCH:
                self.seq += 1
                payload["s"] = self.seq
            text = json.dumps(payload, separators=(",", ":"))
            if self.compress is not None:
                await self.ws.send_bytes(self.compress(text.encode()))
            else:
                await self.ws.send_str(text)


Handler = Callable[["_Request"], Awaitable[Any]]


@dataclass
class _Request:
    call: DiscordCall
    params: dict[str, str]
    query: dict[str, str]


class FakeDiscord:
    """A loopback Discord with a driver API for tests.

    Use as ``async with FakeDiscord() as fake:``; point discord.py at :attr:`api_url` (see the module
    docstring) and start the bot with :attr:`token`. A guild :attr:`guild` with a text channel
    :attr:`channel` exists from the start. Test side: :meth:`add_user`, :meth:`add_guild`,
    :meth:`dm_channel`, then :meth:`send_message`, :meth:`slash_command`, :meth:`press_button`,
    :meth:`select_option`; the bot's REST calls land in :attr:`calls` and can be awaited with
    :meth:`wait_for`, :meth:`wait_for_messages`, :meth:`wait_for_response`, :meth:`wait_for_followups`.
    """

    def __init__(
        self,
        token: str = "FAKE.discord.bot-token",
        *,
        bot_name: str = "moodtunes-test",
        privileged_intents: int = MESSAGE_CONTENT,
        interaction_deadline: float | None = 3.0,
        heartbeat_interval_ms: int = 41_250,
        echo_bot_messages: bool = True,
    ) -> None:
        """``privileged_intents``: the ones "enabled in the developer portal" (others close with 4014);
        ``interaction_deadline``: seconds to the initial response (None: no deadline)."""
        self.token = token
        self.privileged_intents = privileged_intents
        self.interaction_deadline = interaction_deadline
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.echo_bot_messages = echo_bot_messages
        self._last_snowflake = 0
        self.bot = DcUser(self._snowflake(), bot_name, None, bot=True)
        self.application_id = self.bot.id
        self.owner = DcUser(self._snowflake(), "app-owner", "App Owner")
        self.calls: list[DiscordCall] = []
        """Every REST request, in order."""
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        """Registered application commands: None -> global, guild id -> that guild's."""
        self.users: dict[int, DcUser] = {self.bot.id: self.bot, self.owner.id: self.owner}
        self.guilds: dict[int, DcGuild] = {}
        self.channels: dict[int, DcChannel] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.interactions: dict[int, SentInteraction] = {}
        self.gateway_queries: list[dict[str, str]] = []
        """The query string of every gateway connection (``v``, ``encoding``, ``compress``)."""
        self.gateway_compression: list[str | None] = []
        """The transport compression each connection got (None: plain text frames)."""
        self.identifies: list[dict[str, Any]] = []
        """Every IDENTIFY payload's ``d`` (token masked)."""
        self.port = 0
        self._sessions: list[_GatewaySession] = []
        self._attachments: dict[int, tuple[bytes, str]] = {}
        self._dm_channels: dict[int, DcChannel] = {}
        self._failures: dict[str, list[_DiscordError]] = {}
        self._changes = Changes()
        self._runner: web.AppRunner | None = None
        self.guild = self.add_guild("Test Guild")
        self.channel = self.guild.channels[0]

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The REST base for ``discord.http.Route.BASE`` (``.../api/v10``)."""
        return f"{self.url}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        """What ``/gateway/bot`` answers."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> FakeDiscord:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn)
        app.router.add_route("*", "/api/v{version:\\d+}/{tail:.*}", self._rest)
        self._runner, self.port = await serve_on_loopback(app)
        return self

    async def stop(self) -> None:
        """Close gateway connections (1001) and the server; close the bot first for a clean 1000 close."""
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                await session.ws.close(code=1001, message=b"fake Discord stopping")
        self._changes.notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ driver: people and places

    def _snowflake(self) -> int:
        value = max((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22, self._last_snowflake + 1)
        self._last_snowflake = value
        return value

    def add_user(
        self, username: str = "alice", *, global_name: str | None = None, join: bool = True
    ) -> DcUser:
        """A new user; ``join``: a member of every guild."""
        user = DcUser(self._snowflake(), username, global_name or username.title())
        self.users[user.id] = user
        if join:
            for guild in self.guilds.values():
                guild.member_ids.append(user.id)
        return user

    def add_guild(self, name: str = "Another Guild", channels: Sequence[str] = ("general",)) -> DcGuild:
        """A guild the bot is in, with text channels (sent in READY / GUILD_CREATE on the next IDENTIFY)."""
        guild = DcGuild(self._snowflake(), name, self.owner.id, member_ids=[self.bot.id, self.owner.id])
        for position, channel_name in enumerate(channels):
            channel = DcChannel(self._snowflake(), 0, channel_name, guild.id, position=position)
            guild.channels.append(channel)
            self.channels[channel.id] = channel
        self.guilds[guild.id] = guild
        return guild

    async def join_guild(self, name: str = "New Guild", channels: Sequence[str] = ("general",)) -> DcGuild:
        """The bot is added to a new guild while connected: GUILD_CREATE goes out at once."""
        guild = self.add_guild(name, channels)
        await self.dispatch("GUILD_CREATE", self._guild_payload(guild, full=True))
        return guild

    def dm_channel(self, user: DcUser) -> DcChannel:
        """The DM channel between ``user`` and the bot."""
        if user.id not in self._dm_channels:
            channel = DcChannel(self._snowflake(), 1, recipient=user)
            self._dm_channels[user.id] = channel
            self.channels[channel.id] = channel
        return self._dm_channels[user.id]

    def attachment_bytes(self, url: str) -> bytes:
        """The bytes the fake CDN serves at ``url``."""
        return self._attachments[int(url.rstrip("/").split("/")[-2])][0]

    def fail_next(self, kind: str, status: int, code: int, message: str) -> None:
        """Make the next REST call of ``kind`` (e.g. ``message``, ``followup``) fail with this error."""
        self._failures.setdefault(kind, []).append(_DiscordError(status, code, message))

    # ------------------------------------------------------------------ driver: gateway events

    @property
    def connected(self) -> bool:
        """Whether a bot has identified on the gateway."""
        return any(s.identified for s in self._sessions)

    async def wait_until_ready(self, timeout: float = 5.0) -> None:
        """Wait until a bot has identified (READY and the GUILD_CREATEs are sent)."""
        await self._changes.until(
            lambda: True if self.connected else None, timeout, lambda: "no bot identified on the gateway"
        )

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send a raw DISPATCH to every identified session that the intents let see it; returns how many."""
        sent = 0
        for session in [s for s in self._sessions if s.identified]:
            payload = self._filtered(session, event, data)
            if payload is None:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.send(_OP_DISPATCH, payload, event)
                sent += 1
        return sent

    async def send_message(
        self,
        user: DcUser,
        channel: DcChannel | None = None,
        content: str = "",
        *,
        attachments: Sequence[tuple[str, bytes, str]] = (),
        mention_bot: bool = False,
        reply_to: DiscordCall | dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``user`` posts in ``channel`` (default :attr:`channel`); attachments are (filename, bytes, type).

        ``mention_bot`` prefixes ``<@bot>``. Waits for the bot to be connected; returns the message.
        """
        await self.wait_until_ready()
        channel = channel or self.channel
        if mention_bot:
            content = f"{self.bot.mention} {content}".rstrip()
        message = self._new_message(channel, user, content, type_=0)
        message["attachments"] = [self._store_attachment(channel.id, *spec) for spec in attachments]
        if reply_to is not None:
            referenced = self._message_of(reply_to)
            message["type"] = 19
            message["message_reference"] = {
                "type": 0,
                "message_id": referenced["id"],
                "channel_id": referenced["channel_id"],
                **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
            }
            message["referenced_message"] = referenced
        self.messages[int(message["id"])] = message
        await self.dispatch("MESSAGE_CREATE", self._event_message(message))
        return message

    async def slash_command(
        self,
        user: DcUser,
        channel: DcChannel | None,
        name: str,
        options: dict[str, Any] | None = None,
    ) -> SentInteraction:
        """``user`` runs ``/name`` (``"group sub"`` for subcommands) in ``channel`` (default :attr:`channel`).

        The command must have been synced; option values are typed by its schema: an attachment option takes
        ``(filename, bytes, content_type)``, a user option a :class:`DcUser`, a channel option a
        :class:`DcChannel`.
        """
        await self.wait_until_ready()
        channel = channel or self.channel
        words = name.split()
        command, guild_scoped = self._find_command(words[0], channel)
        schema: list[dict[str, Any]] = command.get("options") or []
        data: dict[str, Any] = {"id": command["id"], "name": words[0], "type": 1}
        if guild_scoped:
            data["guild_id"] = str(channel.guild_id)
        resolved: dict[str, dict[str, Any]] = {}
        nested = data
        for word in words[1:]:
            sub = next((o for o in schema if o["name"] == word and o.get("type") in (1, 2)), None)
            if sub is None:
                raise LookupError(f"/{name}: no subcommand {word!r}")
            child: dict[str, Any] = {"name": word, "type": sub["type"], "options": []}
            nested.setdefault("options", []).append(child)
            nested, schema = child, sub.get("options") or []
        built = [self._option(o, (options or {}), channel, resolved) for o in schema]
        unknown = set(options or {}) - {o["name"] for o in schema}
        if unknown:
            raise ValueError(
                f"/{name} has no options {sorted(unknown)}; it has {[o['name'] for o in schema]}"
            )
        nested["options"] = [o for o in built if o is not None]
        if resolved:
            data["resolved"] = resolved
        return await self._interact(2, user, channel, data)

    async def press_button(
        self, user: DcUser, message: DiscordCall | dict[str, Any], custom_id: str
    ) -> SentInteraction:
        """``user`` presses the button ``custom_id`` on a message (as it is now, after edits)."""
        stored = self._message_of(message)
        component = self._component(stored, custom_id)
        if component.get("type") != 2:
            raise ValueError(f"{custom_id!r} is not a button (type {component.get('type')})")
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(3, user, self.channels[int(stored["channel_id"])], data, stored)

    async def select_option(
        self, user: DcUser, message: DiscordCall | dict[str, Any], custom_id: str, values: list[str]
    ) -> SentInteraction:
        """``user`` picks ``values`` in the select menu ``custom_id``."""
        stored = self._message_of(message)
        component = self._component(stored, custom_id)
        if component.get("type") not in (3, 5, 6, 7, 8):
            raise ValueError(f"{custom_id!r} is not a select menu")
        data = {"custom_id": custom_id, "component_type": component["type"], "values": values}
        return await self._interact(3, user, self.channels[int(stored["channel_id"])], data, stored)

    # ------------------------------------------------------------------ driver: what the bot did

    async def wait_for(
        self,
        kind: str | None = None,
        *,
        channel: DcChannel | None = None,
        interaction: SentInteraction | None = None,
        predicate: Callable[[DiscordCall], bool] | None = None,
        ok: bool | None = True,
        after: int = 0,
        timeout: float = 5.0,
    ) -> DiscordCall:
        """The first call (index >= ``after``) of ``kind`` matching the filters; ``ok``: True only successful
        calls, False only failed ones, None either."""

        def matches(call: DiscordCall) -> bool:
            return (
                (ok is None or call.ok == ok)
                and (kind is None or call.kind == kind)
                and (channel is None or call.channel_id == channel.id)
                and (interaction is None or call.interaction is interaction)
                and (predicate is None or predicate(call))
            )

        return await self._changes.until(
            lambda: next((c for c in self.calls[after:] if matches(c)), None),
            timeout,
            lambda: f"no {kind or 'call'} matched; {self._summary()}",
        )

    async def wait_for_messages(
        self, channel: DcChannel, count: int = 1, timeout: float = 5.0
    ) -> list[DiscordCall]:
        """Wait until the bot has posted ``count`` messages in ``channel`` (sends, type-4 responses,
        follow-ups); return them all in order."""

        def check() -> list[DiscordCall] | None:
            found = [
                c
                for c in self.calls
                if c.ok
                and c.channel_id == channel.id
                and (c.kind in ("message", "followup") or c.callback_type == 4)
            ]
            return found if len(found) >= count else None

        return await self._changes.until(
            check, timeout, lambda: f"fewer than {count} bot messages in {channel.id}; {self._summary()}"
        )

    async def wait_for_response(self, interaction: SentInteraction, timeout: float = 5.0) -> DiscordCall:
        """The bot's initial response (callback) to ``interaction``."""
        return await self.wait_for("interaction_callback", interaction=interaction, timeout=timeout)

    async def wait_for_followups(
        self, interaction: SentInteraction, count: int = 1, timeout: float = 5.0
    ) -> list[DiscordCall]:
        """The bot's first ``count`` follow-up messages to ``interaction``."""

        def check() -> list[DiscordCall] | None:
            found = [c for c in self.calls if c.ok and c.kind == "followup" and c.interaction is interaction]
            return found if len(found) >= count else None

        return await self._changes.until(
            check, timeout, lambda: f"fewer than {count} follow-ups to {interaction.id}; {self._summary()}"
        )

    def _summary(self) -> str:
        shown = [f"{c.method} {c.path} -> {c.status}" for c in self.calls[-12:]]
        return f"bot calls so far ({len(self.calls)}): {'; '.join(shown) or 'none'}"

    # ------------------------------------------------------------------ internals: payloads

    def _member(self, guild: DcGuild, user: DcUser, *, with_user: bool = True) -> dict[str, Any]:
        member: dict[str, Any] = {
            "roles": [],
            "joined_at": guild.joined_at,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = user.to_dict()
        return member

    def _guild_payload(self, guild: DcGuild, *, full: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "features": [],
            "emojis": [],
            "stickers": [],
            "system_channel_id": str(guild.channels[0].id) if guild.channels else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500_000,
            "premium_progress_bar_enabled": False,
            "application_id": None,
            "roles": [
                {
                    "id": str(guild.id),
                    "name": "@everyone",
                    "permissions": _PERMISSIONS,
                    "position": 0,
                    "color": 0,
                    "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                    "icon": None,
                    "unicode_emoji": None,
                }
            ],
        }
        if full:
            payload.update(
                {
                    "joined_at": guild.joined_at,
                    "large": False,
                    "unavailable": False,
                    "member_count": len(guild.member_ids),
                    "members": [self._member(guild, self.bot)],
                    "channels": [
                        {k: v for k, v in c.to_dict().items() if k != "guild_id"} for c in guild.channels
                    ],
                    "threads": [],
                    "presences": [],
                    "voice_states": [],
                    "stage_instances": [],
                    "guild_scheduled_events": [],
                    "soundboard_sounds": [],
                }
            )
        return payload

    def _new_message(self, channel: DcChannel, author: DcUser, content: str, *, type_: int) -> dict[str, Any]:
        return {
            "id": str(self._snowflake()),
            "channel_id": str(channel.id),
            "type": type_,
            "author": author.to_dict(),
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": self._mentions(content),
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "flags": 0,
        }

    def _mentions(self, content: str) -> list[dict[str, Any]]:
        ids = dict.fromkeys(int(m) for m in re.findall(r"<@!?(\d+)>", content or ""))
        return [self.users[i].to_dict() for i in ids if i in self.users]

    def _event_message(self, message: dict[str, Any]) -> dict[str, Any]:
        """A stored message as MESSAGE_CREATE / MESSAGE_UPDATE carries it in a guild (guild_id, member)."""
        channel = self.channels.get(int(message["channel_id"]))
        event = dict(message)
        if channel is not None and channel.guild_id is not None:
            guild = self.guilds[channel.guild_id]
            event["guild_id"] = str(guild.id)
            author = self.users.get(int(message["author"]["id"]))
            if author is not None and "webhook_id" not in message:
                event["member"] = self._member(guild, author, with_user=False)
            event["mentions"] = [
                {**m, "member": self._member(guild, self.users[int(m["id"])], with_user=False)}
                for m in message.get("mentions", [])
            ]
        return event

    def _filtered(self, session: _GatewaySession, event: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """What ``session`` gets of an event given its intents (None: nothing)."""
        if event.startswith("GUILD_") and event != "GUILD_MEMBERS_CHUNK" and not session.intents & GUILDS:
            return None
        if event.startswith("MESSAGE_"):
            in_guild = "guild_id" in data
            if not session.intents & (GUILD_MESSAGES if in_guild else DIRECT_MESSAGES):
                return None
            own = data.get("author", {}).get("id") == str(self.bot.id)
            mentioned = any(m.get("id") == str(self.bot.id) for m in data.get("mentions", []))
            if (
                in_guild
                and event != "MESSAGE_DELETE"
                and not (session.intents & MESSAGE_CONTENT or own or mentioned)
            ):
                data = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data

    def _store_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None,
        *,
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        attachment_id = self._snowflake()
        if not content_type or content_type == "application/octet-stream":  # Discord sniffs the type
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self._attachments[attachment_id] = (data, content_type)
        url = f"{self.url}/attachments/{channel_id}/{attachment_id}/{filename}"
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        size = _image_size(data) if content_type.startswith("image/") else None
        if size is not None:
            attachment["width"], attachment["height"] = size
        if ephemeral:
            attachment["ephemeral"] = True
        return attachment

    def _message_of(self, message: DiscordCall | dict[str, Any]) -> dict[str, Any]:
        raw = message.message if isinstance(message, DiscordCall) else message
        if not isinstance(raw, dict) or "id" not in raw:
            raise ValueError(f"not a message: {message!r}")
        stored = self.messages.get(int(raw["id"]))
        if stored is None:
            raise ValueError(f"message {raw['id']} is not (or no longer) in the fake")
        return stored

    @staticmethod
    def _component(message: dict[str, Any], custom_id: str) -> dict[str, Any]:
        found = [
            c for c in _walk_components(message.get("components") or []) if c.get("custom_id") == custom_id
        ]
        if not found:
            available = [
                c["custom_id"] for c in _walk_components(message.get("components") or []) if "custom_id" in c
            ]
            raise ValueError(f"message {message['id']} has no component {custom_id!r}; it has {available}")
        if found[0].get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        return found[0]

    def _find_command(self, name: str, channel: DcChannel) -> tuple[dict[str, Any], bool]:
        if channel.guild_id is not None:
            for command in self.commands.get(channel.guild_id, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command, True
        for command in self.commands.get(None, []):
            if command["name"] == name and command.get("type", 1) == 1:
                return command, False
        synced = {str(k): [c["name"] for c in v] for k, v in self.commands.items()}
        raise LookupError(f"/{name} is not a synced command (synced: {synced})")

    def _option(
        self,
        schema: dict[str, Any],
        given: dict[str, Any],
        channel: DcChannel,
        resolved: dict[str, dict[str, Any]],
    ) -> dict[str, Any] | None:
        name, type_ = schema["name"], int(schema.get("type", 3))
        if name not in given:
            if schema.get("required"):
                raise ValueError(f"option {name!r} is required")
            return None
        value = given[name]
        if type_ == 11:
            filename, data, content_type = value
            attachment = self._store_attachment(channel.id, filename, data, content_type, ephemeral=True)
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            value = attachment["id"]
        elif type_ == 6:
            user = value if isinstance(value, DcUser) else self.users[int(value)]
            resolved.setdefault("users", {})[str(user.id)] = user.to_dict()
            if channel.guild_id is not None:
                member = self._member(self.guilds[channel.guild_id], user, with_user=False)
                resolved.setdefault("members", {})[str(user.id)] = {**member, "permissions": _PERMISSIONS}
            value = str(user.id)
        elif type_ == 7:
            target = value if isinstance(value, DcChannel) else self.channels[int(value)]
            resolved.setdefault("channels", {})[str(target.id)] = {
                **target.to_dict(),
                "permissions": _PERMISSIONS,
            }
            value = str(target.id)
        elif type_ == 4:
            value = int(value)
        elif type_ == 10:
            value = float(value)
        elif type_ == 5:
            value = bool(value)
        else:
            value = str(value)
        choices = schema.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise ValueError(f"{value!r} is not a choice of {name!r}")
        return {"name": name, "type": type_, "value": value}

    async def _interact(
        self,
        type_: int,
        user: DcUser,
        channel: DcChannel,
        data: dict[str, Any],
        message: dict[str, Any] | None = None,
    ) -> SentInteraction:
        interaction_id = self._snowflake()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": type_,
            "data": data,
            "token": token,
            "version": 1,
            "channel_id": str(channel.id),
            "channel": {**channel.to_dict(), "permissions": _PERMISSIONS},
            "app_permissions": _PERMISSIONS,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": UPLOAD_LIMIT,
        }
        if channel.guild_id is not None:
            guild = self.guilds[channel.guild_id]
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member={**self._member(guild, user), "permissions": _PERMISSIONS},
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
        else:
            payload.update(user=user.to_dict(), authorizing_integration_owners={"0": "0"}, context=1)
        if message is not None:
            payload["message"] = self._event_message(message)
        interaction = SentInteraction(
            interaction_id,
            token,
            type_,
            payload,
            channel.id,
            user,
            time.monotonic(),
            message_id=int(message["id"]) if message else None,
        )
        self.interactions[interaction_id] = interaction
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # ------------------------------------------------------------------ internals: gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        query = dict(request.query)
        self.gateway_queries.append(query)
        if query.get("encoding", "json") != "json":
            await ws.close(code=4002, message=b"Error while decoding payload.")
            return ws
        compress = _compressor(query.get("compress"))
        self.gateway_compression.append(query.get("compress") if compress is not None else None)
        session = _GatewaySession(ws, compress)
        self._sessions.append(session)
        try:
            await session.send(
                _OP_HELLO, {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["fake"]}
            )
            async for frame in ws:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    payload = json.loads(frame.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                session.received.append(payload)
                await self._on_gateway_payload(session, payload)
        finally:
            self._sessions.remove(session)
            self._changes.notify()
        return ws

    async def _on_gateway_payload(self, session: _GatewaySession, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == _OP_HEARTBEAT:
            await session.send(_OP_HEARTBEAT_ACK, None)
        elif op == _OP_IDENTIFY and isinstance(data, dict):
            await self._identify(session, data)
        elif op == _OP_RESUME:
            await session.send(_OP_INVALID_SESSION, False)
        elif op == _OP_REQUEST_MEMBERS and isinstance(data, dict):
            guild = self.guilds.get(int(data.get("guild_id") or 0))
            members = [self._member(guild, self.users[i]) for i in guild.member_ids] if guild else []
            chunk = {
                "guild_id": str(data.get("guild_id")),
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            await session.send(_OP_DISPATCH, chunk, "GUILD_MEMBERS_CHUNK")
        elif op == _OP_PRESENCE:
            session.presence = data
        elif op not in (4,):  # 4: voice state update, ignored
            await session.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, session: _GatewaySession, data: dict[str, Any]) -> None:
        self.identifies.append({**data, "token": "***"})
        if data.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        if session.identified:
            await session.ws.close(code=4005, message=b"Already authenticated.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await session.ws.close(code=4013, message=b"Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~self.privileged_intents:
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session.intents = intents
        session.shard = data.get("shard")
        ready: dict[str, Any] = {
            "v": API_VERSION,
            "user": {**self.bot.to_dict(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in self.guilds.values()],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"],
            "_trace": ["fake"],
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        await session.send(_OP_DISPATCH, ready, "READY")
        if intents & GUILDS:
            for guild in self.guilds.values():
                await session.send(_OP_DISPATCH, self._guild_payload(guild, full=True), "GUILD_CREATE")
        session.identified = True
        self._changes.notify()

    def _application_flags(self) -> int:
        flags = 0
        for intent, flag in ((GUILD_PRESENCES, 13), (GUILD_MEMBERS, 15), (MESSAGE_CONTENT, 19)):
            if self.privileged_intents & intent:
                flags |= 1 << flag
        return flags

    # ------------------------------------------------------------------ internals: CDN and REST

    async def _cdn(self, request: web.Request) -> web.Response:
        stored = self._attachments.get(int(request.match_info["attachment_id"]))
        if stored is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored[0], content_type=stored[1])

    def _routes(self) -> list[tuple[str, str, str, bool, Handler]]:
        """(kind, method, path regex, needs the bot token, handler)."""
        app, channel, message = r"(?P<app_id>\d+)", r"/channels/(?P<channel_id>\d+)", r"(?P<message_id>\d+)"
        hook = r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)"
        commands = rf"/applications/{app}(?:/guilds/(?P<guild_id>\d+))?/commands"
        return [
            ("gateway_bot", "GET", r"/gateway/bot", True, self._gateway_bot),
            ("gateway", "GET", r"/gateway", False, self._gateway_bot),
            ("get_me", "GET", r"/users/@me", True, self._get_me),
            ("get_user", "GET", r"/users/(?P<user_id>\d+)", True, self._get_user),
            ("create_dm", "POST", r"/users/@me/channels", True, self._create_dm),
            ("app_info", "GET", r"/(?:oauth2/)?applications/@me", True, self._app_info),
            ("commands", "PUT", commands, True, self._sync),
            ("get_commands", "GET", commands, True, self._get_commands),
            ("upsert_command", "POST", commands, True, self._upsert),
            ("get_channel", "GET", channel, True, self._get_channel),
            ("message", "POST", rf"{channel}/messages", True, self._post_message),
            ("get_message", "GET", rf"{channel}/messages/{message}", True, self._get_message),
            ("edit", "PATCH", rf"{channel}/messages/{message}", True, self._edit_message),
            ("delete", "DELETE", rf"{channel}/messages/{message}", True, self._delete_message),
            ("typing", "POST", rf"{channel}/typing", True, self._typing),
            ("reaction", "PUT", rf"{channel}/messages/{message}/reactions/[^/]+/@me", True, self._reaction),
            (
                "unreaction",
                "DELETE",
                rf"{channel}/messages/{message}/reactions/[^/]+/@me",
                True,
                self._reaction,
            ),
            ("get_guild", "GET", r"/guilds/(?P<guild_id>\d+)", True, self._get_guild),
            (
                "get_guild_channels",
                "GET",
                r"/guilds/(?P<guild_id>\d+)/channels",
                True,
                self._get_guild_channels,
            ),
            (
                "get_member",
                "GET",
                r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)",
                True,
                self._get_member,
            ),
            (
                "interaction_callback",
                "POST",
                r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback",
                False,
                self._callback,
            ),
            ("followup", "POST", hook, False, self._followup),
            ("get_original", "GET", rf"{hook}/messages/@original", False, self._get_hook_message),
            ("edit_original", "PATCH", rf"{hook}/messages/@original", False, self._edit_hook_message),
            ("delete_original", "DELETE", rf"{hook}/messages/@original", False, self._delete_hook_message),
            ("get_followup", "GET", rf"{hook}/messages/{message}", False, self._get_hook_message),
            ("edit_followup", "PATCH", rf"{hook}/messages/{message}", False, self._edit_hook_message),
            ("delete_followup", "DELETE", rf"{hook}/messages/{message}", False, self._delete_hook_message),
        ]

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        payload, files = await self._read_body(request)
        call = DiscordCall(
            len(self.calls), "unknown", request.method, path, payload, files, dict(request.query)
        )
        self.calls.append(call)
        try:
            for kind, method, pattern, needs_token, handler in self._routes():
                match = re.fullmatch(pattern, path)
                if match is None or method != request.method:
                    continue
                call.kind = kind
                if needs_token and request.headers.get("Authorization") != f"Bot {self.token}":
                    raise _DiscordError(401, 0, "401: Unauthorized")
                failures = self._failures.get(kind)
                if failures:
                    raise failures.pop(0)
                params = {k: v for k, v in match.groupdict().items() if v is not None}
                result = await handler(_Request(call, params, dict(request.query)))
                if result is None:
                    call.status = 204
                    return web.Response(status=204)
                return self._json(result)
            raise _DiscordError(404, 0, "404: Not Found")
        except _DiscordError as exc:
            call.status, call.error = exc.status, exc.body()
            return self._json(exc.body(), exc.status)
        finally:
            self._changes.notify()

    @staticmethod
    def _json(body: Any, status: int = 200) -> web.Response:
        # discord.py parses JSON only when Content-Type is exactly "application/json" (no charset)
        return web.Response(
            body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"}
        )

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
        if not request.can_read_body:
            return None, []
        if request.content_type == "application/json":
            return await request.json(), []
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            files: list[UploadedFile] = []
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files.append(UploadedFile(key, value.filename, value.content_type, value.file.read()))
                elif key == "payload_json":
                    payload = json.loads(str(value))
            return payload, files
        return (await request.read()).decode(errors="replace") or None, []

    # ------------------------------------------------------------------ REST handlers

    async def _gateway_bot(self, req: _Request) -> dict[str, Any]:
        return {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    async def _get_me(self, req: _Request) -> dict[str, Any]:
        return {
            **self.bot.to_dict(),
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "email": None,
        }

    async def _get_user(self, req: _Request) -> dict[str, Any]:
        user = self.users.get(int(req.params["user_id"]))
        if user is None:
            raise _DiscordError(404, 10013, "Unknown User")
        return user.to_dict()

    async def _create_dm(self, req: _Request) -> dict[str, Any]:
        body = req.call.payload if isinstance(req.call.payload, dict) else {}
        user = self.users.get(int(body.get("recipient_id") or 0))
        if user is None:
            raise _form_error("recipient_id", "USER_NOT_FOUND", "Unknown User")
        return self.dm_channel(user).to_dict()

    async def _app_info(self, req: _Request) -> dict[str, Any]:
        return {
            "id": str(self.application_id),
            "name": self.bot.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.owner.to_dict(),
            "team": None,
            "flags": self._application_flags(),
            "bot": self.bot.to_dict(),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": len(self.guilds),
            "integration_types_config": {"0": {}},
        }

    def _check_app(self, req: _Request) -> int | None:
        if int(req.params["app_id"]) != self.application_id:
            raise _DiscordError(403, 50001, "Missing Access")
        guild_id = req.params.get("guild_id")
        if guild_id is not None and int(guild_id) not in self.guilds:
            raise _DiscordError(403, 50001, "Missing Access")
        return int(guild_id) if guild_id is not None else None

    def _command(
        self, body: dict[str, Any], guild_id: int | None, index: int, existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        name, type_ = str(body.get("name", "")), int(body.get("type", 1))
        where = f"{index}.name" if index >= 0 else "name"
        if type_ == 1 and (not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower()):
            raise _form_error(where, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if type_ == 1 and not 1 <= len(str(body.get("description", ""))) <= 100:
            raise _form_error(
                where.replace("name", "description"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        options = body.get("options") or []
        if len(options) > 25:
            raise _form_error(
                where.replace("name", "options"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        required = [bool(o.get("required")) for o in options if o.get("type") not in (1, 2)]
        if required != sorted(required, reverse=True):
            raise _form_error(
                where.replace("name", "options"),
                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                "Required options must be placed before non-required options",
            )
        command = {
            "id": existing["id"] if existing else str(self._snowflake()),
            "application_id": str(self.application_id),
            "version": str(self._snowflake()),
            "default_member_permissions": None,
            "type": type_,
            "nsfw": False,
            "description": "",
            "dm_permission": True,
            "contexts": None,
            "integration_types": [0],
            **body,
        }
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        return command

    async def _sync(self, req: _Request) -> list[dict[str, Any]]:
        guild_id = self._check_app(req)
        body = req.call.payload
        if not isinstance(body, list):
            raise _form_error("_", "BASE_TYPE_ARRAY", "Must be an array.")
        previous = {c["name"]: c for c in self.commands.get(guild_id, [])}
        names = [c.get("name") for c in body]
        if len(names) != len(set(names)):
            raise _form_error(
                "_", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique"
            )
        self.commands[guild_id] = [
            self._command(c, guild_id, i, previous.get(c.get("name"))) for i, c in enumerate(body)
        ]
        return self.commands[guild_id]

    async def _get_commands(self, req: _Request) -> list[dict[str, Any]]:
        return self.commands.get(self._check_app(req), [])

    async def _upsert(self, req: _Request) -> dict[str, Any]:
        guild_id = self._check_app(req)
        body = req.call.payload if isinstance(req.call.payload, dict) else {}
        current = self.commands.setdefault(guild_id, [])
        existing = next((c for c in current if c["name"] == body.get("name")), None)
        command = self._command(body, guild_id, -1, existing)
        if existing is not None:
            current[current.index(existing)] = command
        else:
            current.append(command)
        return command

    def _channel(self, req: _Request) -> DcChannel:
        channel = self.channels.get(int(req.params["channel_id"]))
        if channel is None:
            raise _DiscordError(404, 10003, "Unknown Channel")
        req.call.channel_id = channel.id
        return channel

    def _stored(self, channel: DcChannel, message_id: int) -> dict[str, Any]:
        message = self.messages.get(message_id)
        if message is None or int(message["channel_id"]) != channel.id:
            raise _DiscordError(404, 10008, "Unknown Message")
        return message

    async def _get_channel(self, req: _Request) -> dict[str, Any]:
        return self._channel(req).to_dict()

    async def _get_guild(self, req: _Request) -> dict[str, Any]:
        guild = self.guilds.get(int(req.params["guild_id"]))
        if guild is None:
            raise _DiscordError(404, 10004, "Unknown Guild")
        return {**self._guild_payload(guild, full=False), "approximate_member_count": len(guild.member_ids)}

    async def _get_guild_channels(self, req: _Request) -> list[dict[str, Any]]:
        guild = self.guilds.get(int(req.params["guild_id"]))
        if guild is None:
            raise _DiscordError(404, 10004, "Unknown Guild")
        return [c.to_dict() for c in guild.channels]

    async def _get_member(self, req: _Request) -> dict[str, Any]:
        guild = self.guilds.get(int(req.params["guild_id"]))
        user_id = int(req.params["user_id"])
        if guild is None or user_id not in guild.member_ids:
            raise _DiscordError(404, 10007, "Unknown Member")
        return self._member(guild, self.users[user_id])

    async def _typing(self, req: _Request) -> None:
        self._channel(req)

    async def _reaction(self, req: _Request) -> None:
        self._stored(self._channel(req), int(req.params["message_id"]))

    async def _get_message(self, req: _Request) -> dict[str, Any]:
        return self._stored(self._channel(req), int(req.params["message_id"]))

    async def _post_message(self, req: _Request) -> dict[str, Any]:
        channel = self._channel(req)
        body = req.call.payload if isinstance(req.call.payload, dict) else {}
        message = self._compose(channel, body, req.call.files, type_=0)
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id"):
            referenced = self.messages.get(int(reference["message_id"]))
            if referenced is None and reference.get("fail_if_not_exists", True):
                raise _form_error("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
            if referenced is not None:
                message["type"] = 19
                message["message_reference"] = {
                    "type": 0,
                    "message_id": referenced["id"],
                    "channel_id": referenced["channel_id"],
                    **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
                }
                message["referenced_message"] = referenced
        return await self._publish(req.call, message)

    async def _edit_message(self, req: _Request) -> dict[str, Any]:
        channel = self._channel(req)
        message = self._stored(channel, int(req.params["message_id"]))
        if message["author"]["id"] != str(self.bot.id):
            raise _DiscordError(403, 50005, "Cannot edit a message authored by another user")
        return await self._apply_edit(req.call, message, req.call.payload or {}, req.call.files)

    async def _delete_message(self, req: _Request) -> None:
        channel = self._channel(req)
        await self._remove(self._stored(channel, int(req.params["message_id"])))

    # ---- interactions

    def _interaction_by_token(self, req: _Request) -> SentInteraction:
        interaction = next((i for i in self.interactions.values() if i.token == req.params["token"]), None)
        if interaction is None or int(req.params["app_id"]) != self.application_id:
            raise _DiscordError(404, 10015, "Unknown Webhook")
        req.call.interaction, req.call.channel_id = interaction, interaction.channel_id
        return interaction

    async def _callback(self, req: _Request) -> dict[str, Any] | None:
        interaction = self.interactions.get(int(req.params["interaction_id"]))
        if interaction is None or interaction.token != req.params["token"]:
            raise _DiscordError(404, 10062, "Unknown interaction")
        req.call.interaction, req.call.channel_id = interaction, interaction.channel_id
        if interaction.response_type is not None:
            raise _DiscordError(400, 40060, "Interaction has already been acknowledged.")
        late = time.monotonic() - interaction.created
        if self.interaction_deadline is not None and late > self.interaction_deadline:
            raise _DiscordError(404, 10062, "Unknown interaction")
        body = req.call.payload if isinstance(req.call.payload, dict) else {}
        type_ = int(body.get("type", 0))
        allowed = {2: (4, 5, 9), 3: (4, 5, 6, 7, 9)}.get(interaction.type, ())
        if type_ not in allowed:
            raise _form_error("type", "INTERACTION_RESPONSE_TYPE_INVALID", f"Value {type_} is not valid here")
        data = body.get("data") or {}
        channel = self.channels[interaction.channel_id]
        message: dict[str, Any] | None = None
        if type_ == 4:
            message = self._compose(
                channel,
                data,
                req.call.files,
                type_=20 if interaction.type == 2 else 0,
                interaction=interaction,
            )
            message = await self._publish(req.call, message)
        elif type_ == 5:
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            message = self._new_message(channel, self.bot, "", type_=20 if interaction.type == 2 else 0)
            message.update(
                flags=flags, webhook_id=str(self.application_id), application_id=str(self.application_id)
            )
            message["interaction_metadata"] = self._interaction_metadata(interaction)
            message = await self._publish(req.call, message)
            interaction.thinking = True
        elif type_ == 7:
            assert interaction.message_id is not None
            message = await self._apply_edit(
                req.call, self.messages[interaction.message_id], data, req.call.files
            )
        interaction.response_type = type_
        if message is not None:
            interaction.original_message_id = int(message["id"])
        elif interaction.message_id is not None and type_ == 6:
            interaction.original_message_id = interaction.message_id
        if req.query.get("with_response") not in ("1", "true", "True"):
            return None
        info: dict[str, Any] = {"id": str(interaction.id), "type": interaction.type}
        resource: dict[str, Any] = {"type": type_}
        if message is not None:
            info.update(
                response_message_id=message["id"],
                response_message_loading=type_ == 5,
                response_message_ephemeral=bool(message["flags"] & EPHEMERAL),
            )
            resource["message"] = message
        return {"interaction": info, "resource": resource}

    def _interaction_metadata(self, interaction: SentInteraction) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "id": str(interaction.id),
            "type": interaction.type,
            "user": interaction.user.to_dict(),
            "authorizing_integration_owners": interaction.payload.get("authorizing_integration_owners", {}),
        }
        if interaction.type == 2:
            metadata["name"] = interaction.payload["data"]["name"]
        if interaction.message_id is not None:
            metadata["interacted_message_id"] = str(interaction.message_id)
        return metadata

    async def _followup(self, req: _Request) -> dict[str, Any] | None:
        interaction = self._interaction_by_token(req)
        if interaction.response_type is None:
            raise _DiscordError(404, 10015, "Unknown Webhook")
        body = req.call.payload if isinstance(req.call.payload, dict) else {}
        channel = self.channels[interaction.channel_id]
        if interaction.thinking and interaction.original_message_id is not None:
            # The first follow-up after a "thinking" defer replaces the loading message, ephemeral or not.
            original = self.messages[interaction.original_message_id]
            flags = original["flags"] & EPHEMERAL
            fresh = self._compose(
                channel,
                {**body, "flags": flags},
                req.call.files,
                type_=original["type"],
                interaction=interaction,
            )
            fresh["id"] = original["id"]
            interaction.thinking = False
            message = await self._publish(req.call, fresh, update=True)
        else:
            message = self._compose(channel, body, req.call.files, type_=0, interaction=interaction)
            message = await self._publish(req.call, message)
        wait = req.query.get("wait", "false").lower() in ("1", "true")
        return message if wait else None

    def _hook_message(self, req: _Request, interaction: SentInteraction) -> dict[str, Any]:
        message_id = req.params.get("message_id")
        target = interaction.original_message_id if message_id is None else int(message_id)
        message = self.messages.get(target) if target is not None else None
        if message is None:
            raise _DiscordError(404, 10008, "Unknown Message")
        return message

    async def _get_hook_message(self, req: _Request) -> dict[str, Any]:
        return self._hook_message(req, self._interaction_by_token(req))

    async def _edit_hook_message(self, req: _Request) -> dict[str, Any]:
        interaction = self._interaction_by_token(req)
        message = self._hook_message(req, interaction)
        if int(message["id"]) == interaction.original_message_id:
            interaction.thinking = False
        return await self._apply_edit(req.call, message, req.call.payload or {}, req.call.files)

    async def _delete_hook_message(self, req: _Request) -> None:
        interaction = self._interaction_by_token(req)
        await self._remove(self._hook_message(req, interaction))

    # ---- message building

    def _validate(self, body: dict[str, Any], files: list[UploadedFile], *, creating: bool) -> None:
        content = body.get("content")
        if content is not None and len(str(content)) > 2000:
            raise _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        for index, embed in enumerate(embeds):
            for key, limit in (("title", 256), ("description", 4096)):
                text = str(embed.get(key) or "")
                total += len(text)
                if len(text) > limit:
                    raise _form_error(
                        f"embeds.{index}.{key}",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
            fields = embed.get("fields") or []
            if len(fields) > 25:
                raise _form_error(
                    f"embeds.{index}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            for number, item in enumerate(fields):
                if not item.get("name") or not item.get("value"):
                    raise _form_error(
                        f"embeds.{index}.fields.{number}", "BASE_TYPE_REQUIRED", "This field is required"
                    )
                total += len(str(item["name"])) + len(str(item["value"]))
        if total > 6000:
            raise _form_error("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
        components = body.get("components") or []
        custom_ids: list[str] = []
        for row_index, row in enumerate(components):
            if row.get("type") == 1 and len(row.get("components") or []) > 5:
                raise _form_error(
                    f"components.{row_index}.components",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 5 or fewer in length.",
                )
        if not int(body.get("flags") or 0) & (1 << 15) and len(components) > 5:
            raise _form_error("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        for component in _walk_components(components):
            if component.get("type") == 2:
                link = component.get("style") == 5
                if link != bool(component.get("url")) or link == ("custom_id" in component):
                    raise _form_error(
                        "components", "COMPONENT_INVALID", "Buttons need a custom_id, or a url with style 5"
                    )
                if len(str(component.get("label") or "")) > 80:
                    raise _form_error("components", "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length.")
            if "custom_id" in component:
                if not 1 <= len(str(component["custom_id"])) <= 100:
                    raise _form_error(
                        "components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                    )
                custom_ids.append(str(component["custom_id"]))
        if len(custom_ids) != len(set(custom_ids)):
            raise _form_error(
                "components", "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated"
            )
        if len(files) > 10:
            raise _form_error("files", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        if sum(len(f.data) for f in files) > UPLOAD_LIMIT:
            raise _DiscordError(413, 40005, "Request entity too large")
        empty = not (content or embeds or files or components or body.get("sticker_ids") or body.get("poll"))
        if creating and empty:
            raise _DiscordError(400, 50006, "Cannot send an empty message")

    def _attachments_for(
        self,
        channel: DcChannel,
        body: dict[str, Any],
        files: list[UploadedFile],
        previous: list[dict[str, Any]],
        *,
        ephemeral: bool,
    ) -> list[dict[str, Any]]:
        """New attachments from ``files[n]`` parts plus kept ones listed in ``body["attachments"]``."""
        by_field = {f.field: f for f in files}
        listed = body.get("attachments")
        if listed is None:
            new = [
                self._store_attachment(
                    channel.id, f.filename or f.field, f.data, f.content_type, ephemeral=ephemeral
                )
                for f in files
            ]
            return previous + new if previous else new
        result: list[dict[str, Any]] = []
        old = {a["id"]: a for a in previous}
        for entry in listed:
            upload = by_field.get(f"files[{entry.get('id')}]")
            if upload is not None:
                name = entry.get("filename") or upload.filename or upload.field
                attachment = self._store_attachment(
                    channel.id, name, upload.data, upload.content_type, ephemeral=ephemeral
                )
                if entry.get("description"):
                    attachment["description"] = entry["description"]
                result.append(attachment)
            elif str(entry.get("id")) in old:
                result.append(old[str(entry.get("id"))])
            else:
                raise _form_error(
                    "attachments", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {entry.get('id')}"
                )
        return result

    @staticmethod
    def _resolve_embeds(
        embeds: list[dict[str, Any]], attachments: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """``attachment://name`` image URLs become the attachment's CDN URL, as Discord renders them."""
        urls = {a["filename"]: a["url"] for a in attachments}
        resolved = []
        for embed in embeds:
            embed = {"type": "rich", **embed}
            for key in ("image", "thumbnail", "author", "footer"):
                part = embed.get(key)
                url_key = "url" if key in ("image", "thumbnail") else "icon_url"
                if isinstance(part, dict) and str(part.get(url_key, "")).startswith("attachment://"):
                    name = part[url_key][len("attachment://") :]
                    if name in urls:
                        embed[key] = {**part, url_key: urls[name], "proxy_" + url_key: urls[name]}
            resolved.append(embed)
        return resolved

    def _compose(
        self,
        channel: DcChannel,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        type_: int,
        interaction: SentInteraction | None = None,
    ) -> dict[str, Any]:
        self._validate(body, files, creating=True)
        message = self._new_message(channel, self.bot, str(body.get("content") or ""), type_=type_)
        flags = int(body.get("flags") or 0) & (EPHEMERAL | (1 << 2) | (1 << 12) | (1 << 15))
        message["flags"] = flags
        message["tts"] = bool(body.get("tts"))
        message["attachments"] = self._attachments_for(
            channel, body, files, [], ephemeral=bool(flags & EPHEMERAL)
        )
        message["embeds"] = self._resolve_embeds(list(body.get("embeds") or []), message["attachments"])
        message["components"] = list(body.get("components") or [])
        if interaction is not None:
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
            message["interaction_metadata"] = self._interaction_metadata(interaction)
        return message

    async def _apply_edit(
        self, call: DiscordCall, message: dict[str, Any], body: dict[str, Any], files: list[UploadedFile]
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            body = {}
        self._validate(body, files, creating=False)
        channel = self.channels[int(message["channel_id"])]
        edited = dict(message)
        for key in ("content", "components"):
            if key in body:
                edited[key] = body[key] if body[key] is not None else ("" if key == "content" else [])
        if "attachments" in body or files:
            edited["attachments"] = self._attachments_for(
                channel,
                body,
                files,
                list(message["attachments"]),
                ephemeral=bool(message["flags"] & EPHEMERAL),
            )
        if "embeds" in body:
            edited["embeds"] = self._resolve_embeds(list(body["embeds"] or []), edited["attachments"])
        if "flags" in body and body["flags"] is not None:
            edited["flags"] = (message["flags"] & EPHEMERAL) | (int(body["flags"]) & ~EPHEMERAL & ~LOADING)
        else:
            edited["flags"] = message["flags"] & ~LOADING
        edited["mentions"] = self._mentions(edited["content"])
        edited["edited_timestamp"] = _now_iso()
        if not (edited["content"] or edited["embeds"] or edited["attachments"] or edited["components"]):
            raise _DiscordError(400, 50006, "Cannot send an empty message")
        return await self._publish(call, edited, update=True)

    async def _publish(
        self, call: DiscordCall, message: dict[str, Any], *, update: bool = False
    ) -> dict[str, Any]:
        """Store ``message``, record it on ``call``, and echo it on the gateway (not ephemeral ones)."""
        self.messages[int(message["id"])] = message
        call.message = message
        call.channel_id = int(message["channel_id"])
        if self.echo_bot_messages and not message["flags"] & EPHEMERAL:
            await self.dispatch(
                "MESSAGE_UPDATE" if update else "MESSAGE_CREATE", self._event_message(message)
            )
        return message

    async def _remove(self, message: dict[str, Any]) -> None:
        del self.messages[int(message["id"])]
        event: dict[str, Any] = {"id": message["id"], "channel_id": message["channel_id"]}
        channel = self.channels.get(int(message["channel_id"]))
        if channel is not None and channel.guild_id is not None:
            event["guild_id"] = str(channel.guild_id)
        if not message["flags"] & EPHEMERAL:
            await self.dispatch("MESSAGE_DELETE", event)
