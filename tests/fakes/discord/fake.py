"""``FakeDiscord``: the test-facing facade over the state, the gateway, the REST API and the interactions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, overload

from aiohttp import web

from tests.fakes.discord.gateway import Gateway, GatewaySession
from tests.fakes.discord.interactions import Interactions
from tests.fakes.discord.messages import Messages
from tests.fakes.discord.records import (
    API_VERSION,
    MESSAGE_CONTENT,
    DcChannel,
    DcGuild,
    DcUser,
    DiscordCall,
    DiscordError,
    SentInteraction,
)
from tests.fakes.discord.rest import Rest
from tests.fakes.discord.state import DiscordState, shard_of
from tests.fakes.loopback import CallLog, Changes, LoopbackServer

T = TypeVar("T")


class _Part(Generic[T]):
    """An attribute of the facade that lives on one of its parts (read and written there)."""

    def __init__(self, part: str, name: str | None = None) -> None:
        self.part, self.name = part, name

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    @overload
    def __get__(self, obj: None, objtype: type) -> _Part[T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> T | _Part[T]:
        if obj is None:
            return self
        return getattr(getattr(obj, self.part), str(self.name))

    def __set__(self, obj: object, value: T) -> None:
        setattr(getattr(obj, self.part), str(self.name), value)


class FakeDiscord(LoopbackServer):
    """A loopback Discord with a driver API for tests.

    Use as ``async with FakeDiscord() as fake:``; point discord.py at :attr:`api_url` (see the package
    docstring) and start the bot with :attr:`token`. A guild :attr:`guild` with a text channel
    :attr:`channel` exists from the start. Test side: :meth:`add_user`, :meth:`add_guild`,
    :meth:`dm_channel`, then :meth:`send_message`, :meth:`slash_command`, :meth:`press_button`,
    :meth:`select_option`; the bot's REST calls land in :attr:`calls` and can be awaited with
    :meth:`wait_for`, :meth:`wait_for_messages`, :meth:`wait_for_response`, :meth:`wait_for_followups`;
    the gateway connections are :attr:`sessions`, each with its shard and the events it was sent.

    The parts behind it: :attr:`state` (what the fake knows), :attr:`gateway` and :attr:`rest`.
    """

    token = _Part[str]("state")
    privileged_intents = _Part[int]("state")
    """The privileged intents "enabled in the developer portal" (others close with 4014)."""
    interaction_deadline = _Part[float | None]("state")
    """Seconds to the initial response of an interaction (None: no deadline)."""
    heartbeat_interval_ms = _Part[int]("state")
    echo_bot_messages = _Part[bool]("state")
    """Whether the bot's own messages come back as MESSAGE_CREATE / MESSAGE_UPDATE, as on Discord."""
    shard_count = _Part[int]("state")
    """The shard count ``/gateway/bot`` recommends (``shards``); what ``AutoShardedClient`` opens."""
    port = _Part[int]("state")
    bot = _Part[DcUser]("state")
    owner = _Part[DcUser]("state")
    application_id = _Part[int]("state")
    commands = _Part[dict[int | None, list[dict[str, Any]]]]("state")
    """Registered application commands: None -> global, guild id -> that guild's."""
    users = _Part[dict[int, DcUser]]("state")
    guilds = _Part[dict[int, DcGuild]]("state")
    channels = _Part[dict[int, DcChannel]]("state")
    messages = _Part[dict[int, dict[str, Any]]]("state")
    interactions = _Part[dict[int, SentInteraction]]("state")
    sessions = _Part[list[GatewaySession]]("gateway")
    """Every gateway connection, in the order opened (closed ones stay): its ``shard``, ``events``..."""
    gateway_queries = _Part[list[dict[str, str]]]("gateway", "queries")
    """The query string of every gateway connection (``v``, ``encoding``, ``compress``)."""
    gateway_compression = _Part[list[str | None]]("gateway", "compression")
    """The transport compression each connection got (None: plain text frames)."""
    identifies = _Part[list[dict[str, Any]]]("gateway")
    """Every IDENTIFY payload's ``d`` (token masked)."""

    def __init__(
        self,
        token: str = "FAKE.discord.bot-token",
        *,
        bot_name: str = "moodtunes-test",
        privileged_intents: int = MESSAGE_CONTENT,
        interaction_deadline: float | None = 3.0,
        heartbeat_interval_ms: int = 41_250,
        echo_bot_messages: bool = True,
        shard_count: int = 1,
    ) -> None:
        """``privileged_intents``: the ones "enabled in the developer portal" (others close with 4014);
        ``interaction_deadline``: seconds to the initial response (None: no deadline); ``shard_count``:
        the shards ``/gateway/bot`` recommends."""
        self.state = DiscordState(
            token,
            bot_name=bot_name,
            privileged_intents=privileged_intents,
            interaction_deadline=interaction_deadline,
            heartbeat_interval_ms=heartbeat_interval_ms,
            echo_bot_messages=echo_bot_messages,
            shard_count=shard_count,
        )
        self._changes = Changes()
        self.gateway = Gateway(self.state, self._changes)
        self._messages = Messages(self.state, self.gateway)
        self._interactions = Interactions(self.state, self.gateway, self._messages)
        self._log = CallLog[DiscordCall](DiscordCall.summary, self._changes)
        self.rest = Rest(self.state, self.gateway, self._messages, self._log, self._interactions.routes())
        self.guild = self.add_guild("Test Guild")
        self.channel = self.guild.channels[0]

    # ------------------------------------------------------------------ lifecycle

    @property
    def calls(self) -> list[DiscordCall]:
        """Every REST request, in order."""
        return self._log.calls

    @property
    def api_url(self) -> str:
        """The REST base for ``discord.http.Route.BASE`` (``.../api/v10``)."""
        return f"{self.url}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        """What ``/gateway/bot`` answers."""
        return self.gateway.url

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn)
        app.router.add_route("*", "/api/v{version:\\d+}/{tail:.*}", self.rest.handle)
        return app

    async def _cdn(self, request: web.Request) -> web.Response:
        """The attachment CDN (a subclass may override it to make downloads fail)."""
        return await self.rest.cdn(request)

    async def _before_stop(self) -> None:
        """Close gateway connections (1001); close the bot first for a clean 1000 close."""
        await self.gateway.close_all(1001, b"fake Discord stopping")
        self._changes.notify()

    # ------------------------------------------------------------------ driver: people and places

    def add_user(
        self, username: str = "alice", *, global_name: str | None = None, join: bool = True
    ) -> DcUser:
        """A new user; ``join``: a member of every guild."""
        return self.state.add_user(username, global_name=global_name, join=join)

    def add_guild(
        self,
        name: str = "Another Guild",
        channels: Sequence[str] = ("general",),
        *,
        shard: int | None = None,
        guild_id: int | None = None,
    ) -> DcGuild:
        """A guild the bot is in, with text channels (sent in READY / GUILD_CREATE on the next IDENTIFY).

        Its id is ``guild_id``, or one that falls on shard ``shard % n`` for every shard count ``n`` from
        1 to 10; by default ``shard`` is the guild's number in creation order (:attr:`guild` is 0), so
        guilds take turns on the shards.
        """
        return self.state.add_guild(name, channels, shard=shard, guild_id=guild_id)

    async def join_guild(
        self,
        name: str = "New Guild",
        channels: Sequence[str] = ("general",),
        *,
        shard: int | None = None,
        guild_id: int | None = None,
    ) -> DcGuild:
        """The bot is added to a new guild while connected: GUILD_CREATE goes out at once (to its shard)."""
        guild = self.add_guild(name, channels, shard=shard, guild_id=guild_id)
        await self.dispatch("GUILD_CREATE", self.state.guild_payload(guild, full=True))
        return guild

    def dm_channel(self, user: DcUser) -> DcChannel:
        """The DM channel between ``user`` and the bot."""
        return self.state.dm_channel(user)

    def attachment_bytes(self, url: str) -> bytes:
        """The bytes the fake CDN serves at ``url``."""
        return self.state.attachment_bytes(url)

    def fail_next(self, kind: str, status: int, code: int, message: str) -> None:
        """Make the next REST call of ``kind`` (e.g. ``message``, ``followup``) fail with this error."""
        self._log.fail_next(kind, DiscordError(status, code, message))

    # ------------------------------------------------------------------ driver: gateway and shards

    @property
    def connected(self) -> bool:
        """Whether a bot has identified on the gateway (and is still connected)."""
        return bool(self.gateway.ready_sessions)

    async def wait_until_ready(self, timeout: float = 5.0, *, sessions: int = 1) -> None:
        """Wait until ``sessions`` gateway sessions are identified (READY and GUILD_CREATEs sent)."""
        await self._changes.until(
            lambda: True if len(self.gateway.ready_sessions) >= sessions else None,
            timeout,
            lambda: f"{len(self.gateway.ready_sessions)} of {sessions} sessions identified on the gateway",
        )

    def shard_of(self, guild: DcGuild | int, shard_count: int | None = None) -> int:
        """The shard owning ``guild`` under ``shard_count`` shards (default :attr:`shard_count`)."""
        guild_id = guild if isinstance(guild, int) else guild.id
        return shard_of(guild_id, shard_count or self.shard_count)

    def recipients(
        self, event: str, where: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[GatewaySession]:
        """The sessions that were sent ``event`` (with data ``where`` accepts), in the order opened."""
        return [s for s in self.sessions if s.got(event, where)]

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send a raw DISPATCH to the identified sessions of the shard owning its guild (DMs: shard 0) that
        the intents let see it; returns how many got it."""
        return await self.gateway.dispatch(event, data)

    # ------------------------------------------------------------------ driver: users act

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
        if mention_bot:
            content = f"{self.bot.mention} {content}".rstrip()
        return await self._messages.from_user(user, channel or self.channel, content, attachments, reply_to)

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
        return await self._interactions.slash_command(user, channel or self.channel, name, options)

    async def press_button(
        self, user: DcUser, message: DiscordCall | dict[str, Any], custom_id: str
    ) -> SentInteraction:
        """``user`` presses the button ``custom_id`` on a message (as it is now, after edits)."""
        return await self._interactions.component(user, message, custom_id, None)

    async def select_option(
        self, user: DcUser, message: DiscordCall | dict[str, Any], custom_id: str, values: list[str]
    ) -> SentInteraction:
        """``user`` picks ``values`` in the select menu ``custom_id``."""
        return await self._interactions.component(user, message, custom_id, values)

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

        return await self._log.first(
            matches, after=after, timeout=timeout, missing=f"no {kind or 'call'} matched"
        )

    async def wait_for_messages(
        self, channel: DcChannel, count: int = 1, timeout: float = 5.0
    ) -> list[DiscordCall]:
        """Wait until the bot has posted ``count`` messages in ``channel`` (sends, type-4 responses,
        follow-ups); return them all in order."""
        return await self._log.at_least(
            lambda c: (
                c.ok
                and c.channel_id == channel.id
                and (c.kind in ("message", "followup") or c.callback_type == 4)
            ),
            count,
            timeout=timeout,
            missing=f"fewer than {count} bot messages in {channel.id}",
        )

    async def wait_for_response(self, interaction: SentInteraction, timeout: float = 5.0) -> DiscordCall:
        """The bot's initial response (callback) to ``interaction``."""
        return await self.wait_for("interaction_callback", interaction=interaction, timeout=timeout)

    async def wait_for_followups(
        self, interaction: SentInteraction, count: int = 1, timeout: float = 5.0
    ) -> list[DiscordCall]:
        """The bot's first ``count`` follow-up messages to ``interaction``."""
        return await self._log.at_least(
            lambda c: c.ok and c.kind == "followup" and c.interaction is interaction,
            count,
            timeout=timeout,
            missing=f"fewer than {count} follow-ups to {interaction.id}",
        )
