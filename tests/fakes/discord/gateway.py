"""The gateway: WebSocket sessions (HELLO, heartbeat ACKs, IDENTIFY -> READY and GUILD_CREATEs, RESUME ->
INVALID_SESSION, REQUEST_GUILD_MEMBERS -> GUILD_MEMBERS_CHUNK), sharding, and dispatching events to the
sessions whose shard and intents let them see each one."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord.records import (
    API_VERSION,
    DIRECT_MESSAGES,
    GUILD_MESSAGES,
    GUILDS,
    MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
)
from tests.fakes.discord.state import DiscordState, shard_of
from tests.fakes.loopback import Changes

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE, OP_VOICE_STATE, OP_RESUME = 0, 1, 2, 3, 4, 6
OP_REQUEST_MEMBERS, OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 8, 9, 10, 11
_GUILD_EVENTS = frozenset({"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"})
"""Events whose ``id`` is the guild's (the others name it in ``guild_id``)."""


def compressor(kind: str | None) -> Callable[[bytes], bytes] | None:
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


def event_guild_id(event: str, data: dict[str, Any]) -> int | None:
    """The guild an event belongs to (None: a DM or no guild at all)."""
    raw = data.get("id") if event in _GUILD_EVENTS else data.get("guild_id")
    return int(raw) if raw is not None else None


@dataclass(frozen=True)
class GatewayEvent:
    """One DISPATCH a session was sent."""

    seq: int
    name: str
    """``READY``, ``GUILD_CREATE``, ``MESSAGE_CREATE``, ``INTERACTION_CREATE``..."""
    data: dict[str, Any]
    """The ``d`` as this session got it (after its intents' filtering)."""


class GatewaySession:
    """One gateway connection: its shard, intents, sequence numbers, compression, and what it was sent."""

    def __init__(
        self, ws: web.WebSocketResponse, compress: Callable[[bytes], bytes] | None, query: dict[str, str]
    ) -> None:
        self.ws = ws
        self.compress = compress
        self.query = query
        """The connection's query string (``v``, ``encoding``, ``compress``)."""
        self.seq = 0
        self.intents = 0
        self.identified = False
        self.closed = False
        self.session_id = secrets.token_hex(16)
        self.shard: tuple[int, int] | None = None
        """``(shard_id, shard_count)`` from IDENTIFY; None when the bot sent none (one shard)."""
        self.presence: dict[str, Any] | None = None
        self.received: list[dict[str, Any]] = []
        """Every payload the bot sent on this connection."""
        self.events: list[GatewayEvent] = []
        """Every DISPATCH sent on this connection, READY and GUILD_CREATEs included, in order."""
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "identified" if self.identified else "open"
        return f"<GatewaySession shard={self.shard} {state} events={len(self.events)}>"

    @property
    def shard_id(self) -> int:
        return self.shard[0] if self.shard else 0

    @property
    def shard_count(self) -> int:
        return self.shard[1] if self.shard else 1

    @property
    def guild_ids(self) -> list[int]:
        """The guilds this session was sent a GUILD_CREATE for, in order."""
        return [int(e.data["id"]) for e in self.events if e.name == "GUILD_CREATE"]

    def owns(self, guild_id: int | None) -> bool:
        """Whether this session's shard gets the events of ``guild_id``; DMs (None) go to shard 0."""
        if guild_id is None:
            return self.shard_id == 0
        return shard_of(guild_id, self.shard_count) == self.shard_id

    def got(self, event: str, where: Callable[[dict[str, Any]], bool] | None = None) -> bool:
        """Whether this session was sent ``event`` (with data that ``where`` accepts)."""
        return any(e.name == event and (where is None or where(e.data)) for e in self.events)

    async def send(self, op: int, data: Any, event: str | None = None) -> None:
        async with self._lock:  # compression is one stream: frames must leave in the order compressed
            payload: dict[str, Any] = {"op": op, "d": data, "s": None, "t": event}
            if op == OP_DISPATCH:
                self.seq += 1
                payload["s"] = self.seq
                self.events.append(GatewayEvent(self.seq, str(event), data))
            text = json.dumps(payload, separators=(",", ":"))
            if self.compress is not None:
                await self.ws.send_bytes(self.compress(text.encode()))
            else:
                await self.ws.send_str(text)


class Gateway:
    """Every gateway session, and the events sent to them."""

    def __init__(self, state: DiscordState, changes: Changes) -> None:
        self.state = state
        self.changes = changes
        self.sessions: list[GatewaySession] = []
        """Every connection, in the order opened (closed ones stay, with ``closed`` True)."""
        self.queries: list[dict[str, str]] = []
        self.compression: list[str | None] = []
        self.identifies: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.state.port}/gateway"

    @property
    def ready_sessions(self) -> list[GatewaySession]:
        """The open sessions that have identified."""
        return [s for s in self.sessions if s.identified and not s.closed]

    async def close_all(self, code: int, message: bytes) -> None:
        for session in [s for s in self.sessions if not s.closed]:
            with contextlib.suppress(Exception):
                await session.ws.close(code=code, message=message)

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send a DISPATCH to every identified session of the shard that owns the event's guild (DMs:
        shard 0) whose intents let it see the event; returns how many got it."""
        guild_id = event_guild_id(event, data)
        sent = 0
        for session in self.ready_sessions:
            payload = self._filtered(session, event, data) if session.owns(guild_id) else None
            if payload is None:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.send(OP_DISPATCH, payload, event)
                sent += 1
        return sent

    def _filtered(self, session: GatewaySession, event: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """What ``session`` gets of an event given its intents (None: nothing)."""
        if event.startswith("GUILD_") and event != "GUILD_MEMBERS_CHUNK" and not session.intents & GUILDS:
            return None
        if event.startswith("MESSAGE_"):
            in_guild = "guild_id" in data
            if not session.intents & (GUILD_MESSAGES if in_guild else DIRECT_MESSAGES):
                return None
            bot_id = str(self.state.bot.id)
            own = data.get("author", {}).get("id") == bot_id
            mentioned = any(m.get("id") == bot_id for m in data.get("mentions", []))
            if (
                in_guild
                and event != "MESSAGE_DELETE"
                and not (session.intents & MESSAGE_CONTENT or own or mentioned)
            ):
                data = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data

    # ------------------------------------------------------------------ one connection

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /gateway``: one session, from HELLO until the connection closes."""
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        query = dict(request.query)
        self.queries.append(query)
        if query.get("encoding", "json") != "json":
            await ws.close(code=4002, message=b"Error while decoding payload.")
            return ws
        compress = compressor(query.get("compress"))
        self.compression.append(query.get("compress") if compress is not None else None)
        session = GatewaySession(ws, compress, query)
        self.sessions.append(session)
        try:
            hello = {"heartbeat_interval": self.state.heartbeat_interval_ms, "_trace": ["fake"]}
            await session.send(OP_HELLO, hello)
            async for frame in ws:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    payload = json.loads(frame.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                session.received.append(payload)
                await self._on_payload(session, payload)
        finally:
            session.closed = True
            self.changes.notify()
        return ws

    async def _on_payload(self, session: GatewaySession, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == OP_HEARTBEAT:
            await session.send(OP_HEARTBEAT_ACK, None)
        elif op == OP_IDENTIFY and isinstance(data, dict):
            await self._identify(session, data)
        elif op == OP_RESUME:
            await session.send(OP_INVALID_SESSION, False)
        elif op == OP_REQUEST_MEMBERS and isinstance(data, dict):
            await self._members_chunk(session, data)
        elif op == OP_PRESENCE:
            session.presence = data
        elif op != OP_VOICE_STATE:  # voice state updates are ignored
            await session.ws.close(code=4001, message=b"Unknown opcode.")

    async def _members_chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        state = self.state
        guild = state.guilds.get(int(data.get("guild_id") or 0))
        members = [state.member(guild, state.users[i]) for i in guild.member_ids] if guild else []
        chunk = {
            "guild_id": str(data.get("guild_id")),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await session.send(OP_DISPATCH, chunk, "GUILD_MEMBERS_CHUNK")

    @staticmethod
    def _shard(data: dict[str, Any]) -> tuple[int, int] | None:
        """IDENTIFY's ``shard: [shard_id, shard_count]``; ValueError when malformed."""
        shard = data.get("shard")
        if shard is None:
            return None
        if (
            not isinstance(shard, list)
            or len(shard) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in shard)
            or not 0 <= shard[0] < shard[1]
        ):
            raise ValueError(shard)
        return shard[0], shard[1]

    async def _identify(self, session: GatewaySession, data: dict[str, Any]) -> None:
        state = self.state
        self.identifies.append({**data, "token": "***"})
        if data.get("token") != state.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        if session.identified:
            await session.ws.close(code=4005, message=b"Already authenticated.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await session.ws.close(code=4013, message=b"Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~state.privileged_intents:
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        try:
            session.shard = self._shard(data)
        except ValueError:
            await session.ws.close(code=4010, message=b"Invalid shard.")
            return
        session.intents = intents
        guilds = [g for g in state.guilds.values() if session.owns(g.id)]
        ready: dict[str, Any] = {
            "v": API_VERSION,
            "user": {**state.bot.to_dict(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "application": {"id": str(state.application_id), "flags": state.application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake"],
            "_trace": ["fake"],
        }
        if session.shard is not None:
            ready["shard"] = list(session.shard)
        await session.send(OP_DISPATCH, ready, "READY")
        if intents & GUILDS:
            for guild in guilds:
                await session.send(OP_DISPATCH, state.guild_payload(guild, full=True), "GUILD_CREATE")
        session.identified = True
        self.changes.notify()
