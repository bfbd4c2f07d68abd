"""Discord adapter: slash commands, photos in DMs and mentions, and reply buttons over the one service.

Every command of :data:`core.app.commands.COMMANDS` offered on Discord becomes a slash command with
typed options (``/tracks`` an integer field 1-50 that Discord itself validates, ``/enroll`` and
``/mood`` a photo attachment), registered by the :class:`MoodtunesCommands` cog. A photo sent in a DM,
or in a server message that mentions the bot, is handled like ``/mood``; a Spotify redirect address
pasted in a DM finishes linking. Replies are rendered by :mod:`bot.discord_render`.

Faces are matched per server (``Place("discord", "guild:<id>")``) or per DM channel (``"dm:<id>"``).
A user's name is their own Discord name, never a server nickname (it would leak into other servers).
Default intents suffice: Discord delivers the content of DMs and of messages that mention the bot.
The client is an ``AutoShardedClient`` running shards ``MOODTUNES_DISCORD_SHARD_IDS`` of
``MOODTUNES_DISCORD_SHARD_COUNT``, so several processes can split the guilds. ``moodtunes run``
starts it when ``MOODTUNES_DISCORD_TOKEN`` is set; ``MOODTUNES_DISCORD_API_URL`` points discord.py at
another Discord REST base (the loopback fake in the tests)::

    adapter = DiscordAdapter(service, settings)
    await adapter.start()   # logged in, commands synced, READY on every shard
    ...
    await adapter.stop()    # replies in flight finish, then the connection closes

Languages: an interaction carries the user's Discord ``locale`` (``es-ES``, ``es-419``, ``en-US``...), which
travels as :attr:`Person.language`; a message (a DM, a mention) carries none, so the service answers it
in the language the user's last interaction reported (or their ``/language`` choice). Command and
option descriptions are localised for every Discord locale of a shipped language by
:class:`CommandTranslator`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Literal

import aiohttp
import discord
import discord.http
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket

from bot.discord_render import ReplyButton, ReplyMenu, render
from core.app import texts
from core.app.commands import Command, OptionKind, commands_for, fill
from core.app.i18n import DEFAULT, _, negotiate
from core.app.people import Person, Place
from core.app.replies import Button, Reply
from core.app.service import MoodtunesService
from core.app.uploads import too_big
from core.config import ConfigError, Settings
from core.errors import DownloadFailed, NotAnImage
from core.vision.imaging import MAX_BYTES

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
"""How long :meth:`DiscordAdapter.start` waits for the gateway's READY."""
STOP_TIMEOUT_S = 30.0
"""How long :meth:`DiscordAdapter.stop` lets replies in flight finish."""
DOWNLOAD_TIMEOUT_S = 30.0
GUILD_READY_TIMEOUT_S = 2.0
"""discord.py's wait for more GUILD_CREATEs before READY (its default; the tests shorten it)."""
SEND_FAILED = texts.SEND_FAILED
DM_HINT = texts.DM_HINT


class _Client(discord.AutoShardedClient):
    """The discord.py client (the shards of the settings); it hands its events to the adapter."""

    def __init__(self, adapter: DiscordAdapter, settings: Settings) -> None:
        super().__init__(
            intents=discord.Intents.default(),
            guild_ready_timeout=GUILD_READY_TIMEOUT_S,
            shard_count=settings.discord_shard_count,
            shard_ids=settings.shard_ids,
        )
        self.adapter = adapter
        self.tree = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        await self.tree.set_translator(CommandTranslator())
        await self.adapter.setup()

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter.on_message(message)


class CommandTranslator(app_commands.Translator):
    """Command and option descriptions in each Discord locale of a shipped language (``es-ES`` and
    ``es-419`` get Spanish); names, choices and English locales are left as they are."""

    LOCATIONS = (
        app_commands.TranslationContextLocation.command_description,
        app_commands.TranslationContextLocation.parameter_description,
    )

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        template = string.extras.get("template")
        language = negotiate(locale.value)
        if context.location not in self.LOCATIONS or template is None or language in (None, DEFAULT):
            return None
        text = fill(template, language)
        return text[:100] if text != fill(template, DEFAULT) else None


def described(template: str) -> app_commands.locale_str:
    """A description for Discord: the English text, carrying its template for :class:`CommandTranslator`."""
    return app_commands.locale_str(fill(template, DEFAULT), template=template)


class MoodtunesCommands(commands.Cog):
    """The slash commands, generated from the command table with typed options.

    On :meth:`cog_load` each :class:`~core.app.commands.Command` offered on Discord becomes an
    ``app_commands.Command`` whose callback signature carries the option types, so Discord shows an
    integer field with its range, or a file picker, and validates them before we see the call.
    """

    def __init__(self, adapter: DiscordAdapter) -> None:
        self.adapter = adapter
        self.tree = adapter.client.tree

    async def cog_load(self) -> None:
        for command in commands_for("discord"):
            self.tree.add_command(
                app_commands.Command(
                    name=command.name,
                    description=described(command.description),
                    callback=self._callback(command),
                )
            )

    async def cog_unload(self) -> None:
        for command in commands_for("discord"):
            self.tree.remove_command(command.name)

    def _callback(self, command: Command) -> Callable[..., Coroutine[Any, Any, None]]:
        """``async callback(interaction, **options)``, its signature carrying the option types."""
        adapter = self.adapter

        async def callback(interaction: discord.Interaction, **options: Any) -> None:
            await adapter.on_command(interaction, command, options)

        parameters = [
            inspect.Parameter(
                "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
            )
        ]
        descriptions: dict[str, app_commands.locale_str] = {}
        for option in command.options:
            annotation: Any
            if option.kind is OptionKind.PHOTO:
                annotation = discord.Attachment
            elif option.kind is OptionKind.CHOICE:
                annotation = Literal[option.choices]  # Discord shows the choices and accepts only them
            else:
                annotation = app_commands.Range[int, option.min_value, option.max_value]
            default: Any = inspect.Parameter.empty if option.required else None
            if not option.required:
                annotation = annotation | None
            parameters.append(
                inspect.Parameter(
                    option.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
                )
            )
            descriptions[option.name] = described(option.description)
        callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        callback.__discord_app_commands_param_description__ = descriptions  # type: ignore[attr-defined]
        return callback


class DiscordAdapter:
    """The Discord bot: a discord.py client whose commands, messages and buttons call the service.

    Args:
        service: the running service (shared with the other adapters).
        settings: ``discord_token`` (required), ``discord_api_url`` (blank: the real Discord), shards.
    """

    def __init__(self, service: MoodtunesService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.client = _Client(self, settings)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gateway: asyncio.Task[None] | None = None
        self._closing = False
        self._unsubscribe = service.on_spotify_linked(self.notify)

    # Life cycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, sync the slash commands and connect every shard; returns once READY.

        Raises :class:`ConfigError` for a missing or refused token, :class:`DiscordStartError` when the
        gateway cannot be joined.
        """
        token = self.settings.discord_token.get_secret_value().strip()
        if not token:
            raise ConfigError("MOODTUNES_DISCORD_TOKEN is not set")
        if self.settings.discord_api_url:
            discord.http.Route.BASE = self.settings.discord_api_url.rstrip("/")
        try:
            await self.client.login(token)
        except discord.LoginFailure:
            await self.client.close()
            raise ConfigError("MOODTUNES_DISCORD_TOKEN: Discord refused the bot token") from None
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            await self.client.close()
            raise DiscordStartError(f"could not log in to Discord: {exc}") from exc
        self._gateway = gateway = asyncio.create_task(self.client.connect(), name="discord-gateway")
        gateway.add_done_callback(_log_gateway_end)
        ready = asyncio.create_task(self.client.wait_until_ready(), name="discord-ready")
        try:
            await asyncio.wait({gateway, ready}, timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not ready.done():
                ready.cancel()
                await self._disconnect()
        if ready.done() and not ready.cancelled():
            user = self.client.user
            log.info(
                "discord ready user=%s shards=%s/%d guilds=%d",
                user.id if user else None,
                ",".join(map(str, self.settings.shard_ids)),
                self.settings.discord_shard_count,
                len(self.client.guilds),
            )
            return
        failure = gateway.exception() if gateway.done() and not gateway.cancelled() else None
        if isinstance(failure, discord.PrivilegedIntentsRequired | discord.LoginFailure):
            raise ConfigError(f"MOODTUNES_DISCORD_TOKEN: Discord refused the connection ({failure})")
        raise DiscordStartError(f"no READY from the Discord gateway: {failure or 'timed out'}")

    async def setup(self) -> None:
        """After login: find a non-default Discord's gateway, register buttons and commands, sync them."""
        if self.settings.discord_api_url:  # discord.py asks /gateway/bot, but connects to the default host
            _shards, url, _limits = await self.client.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        self.client.add_dynamic_items(ReplyButton, ReplyMenu)
        cog = MoodtunesCommands(self)
        await cog.cog_load()
        synced = await self.client.tree.sync()
        log.info("discord commands synced count=%d", len(synced))

    async def stop(self) -> None:
        """Stop taking new work, let replies in flight finish (up to STOP_TIMEOUT_S), then disconnect."""
        self._closing = True
        self._unsubscribe()
        pending = {t for t in self._tasks if t is not asyncio.current_task()}
        if pending:
            log.info("discord stopping in_flight=%d", len(pending))
            _done, late = await asyncio.wait(pending, timeout=STOP_TIMEOUT_S)
            for task in late:
                task.cancel()
            if late:
                log.warning("discord stop cancelled_replies=%d", len(late))
                await asyncio.wait(late, timeout=1.0)
        await self._disconnect()
        log.info("discord stopped")

    async def _disconnect(self) -> None:
        await self.client.close()
        if self._gateway is not None:
            await asyncio.wait({self._gateway}, timeout=10.0)  # connect() returns once closed
            self._gateway = None

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        """Track the running handler so :meth:`stop` can let it finish."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._tasks.discard(task)

    # Slash commands and buttons ----------------------------------------------------------------

    async def on_command(
        self, interaction: discord.Interaction, command: Command, options: dict[str, Any]
    ) -> None:
        """A slash command, run by the service (private ones answered ephemerally in servers)."""
        private = command.private and interaction.guild_id is not None
        person, place = _who(interaction, private)
        await self._speak_to(person)
        photos = [name for name, value in options.items() if isinstance(value, discord.Attachment)]
        photo = self._downloader(options[photos[0]]) if photos else None
        args = {k: v for k, v in options.items() if k not in photos and v is not None}

        async def work() -> Reply:
            return await self.service.run_command(person, place, command.name, args, photo)

        await self._answer(interaction, f"/{command.name}", work, ephemeral=private)

    async def on_press(self, interaction: discord.Interaction, data: str) -> None:
        """A reply button: the service acts on it (and refuses other people's results)."""
        parsed = Button.parse(data)
        on_private = interaction.message is not None and interaction.message.flags.ephemeral
        public = parsed is not None and parsed[0].public and not on_private
        private = interaction.guild_id is not None and not public
        person, place = _who(interaction, private)
        await self._speak_to(person)
        await self._answer(
            interaction,
            f"button:{data.partition(':')[0]}",
            lambda: self.service.press(person, place, data),
            ephemeral=private,
        )

    async def _answer(
        self,
        interaction: discord.Interaction,
        what: str,
        work: Callable[[], Awaitable[Reply]],
        *,
        ephemeral: bool = False,
    ) -> None:
        """Defer ("thinking..."), run ``work`` and send its reply as the follow-up."""
        with self._in_flight():
            if self._closing:
                with contextlib.suppress(discord.HTTPException):
                    await interaction.response.send_message(_(texts.RESTARTING), ephemeral=True)
                return
            try:
                await interaction.response.defer(thinking=True, ephemeral=ephemeral)
            except discord.HTTPException as exc:
                log.warning(
                    "discord defer failed what=%s user=%s %s", what, interaction.user.id, _http_error(exc)
                )
                return
            started = time.perf_counter()
            reply = await self._run(what, work)
            await self._send(what, reply, interaction.followup.send, ephemeral=ephemeral)
            if reply.direct is not None:
                await self._send(what, reply.direct, interaction.followup.send, ephemeral=True)
            log.info(
                "discord answered what=%s user=%s guild=%s error=%s ms=%.0f",
                what,
                interaction.user.id,
                interaction.guild_id,
                reply.error,
                1000 * (time.perf_counter() - started),
            )

    # Messages --------------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """Photos in DMs or in messages that mention the bot; a pasted Spotify address in a DM."""
        me = self.client.user
        in_dm = message.guild is None
        if message.author.bot or me is None or self._closing or not (in_dm or me in message.mentions):
            return
        with self._in_flight():
            person = Person("discord", str(message.author.id), _own_name(message.author))
            place = _place(message.guild, message.channel.id)
            await self._speak_to(person)
            started = time.perf_counter()
            if message.attachments:
                what = "photo"
                reply = await self._run(what, lambda: self._message_photo(message, person, place))
            elif in_dm:
                what = "text"
                reply = await self._run(what, lambda: self._dm_text(message, person, place))
            else:
                what, reply = "mention", Reply(_(texts.MENTION_HINT))
            reference = message.to_reference(fail_if_not_exists=False)
            if reply.direct is not None:
                await self._dm(person, reply.direct)
            await self._send(what, reply, message.channel.send, reference=reference)
            log.info(
                "discord answered what=%s user=%s guild=%s error=%s ms=%.0f",
                what,
                message.author.id,
                message.guild.id if message.guild else None,
                reply.error,
                1000 * (time.perf_counter() - started),
            )

    async def _message_photo(self, message: discord.Message, person: Person, place: Place) -> Reply:
        """The message's photo (the first image attachment), analysed while "typing..." shows."""
        images = [a for a in message.attachments if (a.content_type or "image/").startswith("image/")]
        attachment = (images or message.attachments)[0]
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(message.channel.typing())
            except discord.HTTPException as exc:
                log.info("discord typing failed channel=%s %s", message.channel.id, _http_error(exc))
            return await self.service.handle_photo(person, place, self._downloader(attachment))

    async def _dm_text(self, message: discord.Message, person: Person, place: Place) -> Reply:
        """DM text: a pasted Spotify redirect address, else a hint."""
        reply = await self.service.handle_text(person, place, message.content)
        return reply if reply is not None else Reply(_(texts.DM_HINT))

    async def notify(self, person: Person, reply: Reply) -> None:
        """Tell a Discord user privately (a DM), e.g. that Spotify linking finished."""
        if person.platform != "discord" or self._closing or self.client.is_closed():
            return
        with self._in_flight():
            await self._dm(person, reply)

    async def _dm(self, person: Person, reply: Reply) -> None:
        try:
            user = await self.client.fetch_user(int(person.external_id))
        except (discord.HTTPException, ValueError) as exc:
            log.warning("discord direct message failed user=%s %r", person.external_id, exc)
            return
        await self._send("direct", reply, user.send)

    # Shared steps ----------------------------------------------------------------------------------

    def _downloader(self, attachment: discord.Attachment) -> Callable[[], Awaitable[bytes]]:
        """``await download()`` for an attachment; raises NotAnImage, FileTooLarge or DownloadFailed."""

        async def download() -> bytes:
            kind = attachment.content_type or ""
            if kind and not kind.startswith("image/"):
                log.info(
                    "discord attachment refused reason=not_image type=%s bytes=%d", kind, attachment.size
                )
                raise NotAnImage(texts.NOT_A_PHOTO, kind=kind.split(";")[0])
            if attachment.size > MAX_BYTES:  # checked here too, to log it
                log.info("discord attachment refused reason=too_big bytes=%d", attachment.size)
                raise too_big(attachment.size)
            try:
                async with asyncio.timeout(DOWNLOAD_TIMEOUT_S):
                    return await attachment.read()
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("discord download failed attachment=%s error=%r", attachment.id, exc)
                raise DownloadFailed() from None

        return download

    async def _run(self, what: str, work: Callable[[], Awaitable[Reply]]) -> Reply:
        """``work()``, or an apology (and the traceback in the log) if it raised."""
        try:
            return await work()
        except Exception:
            log.exception("discord handler failed what=%s", what)
            return Reply(_(texts.SORRY), error=True)

    async def _send(self, what: str, reply: Reply, send: Callable[..., Awaitable[Any]], **extra: Any) -> None:
        """Send the rendered reply; if Discord refuses it, log why and try a short apology."""
        rendered = render(reply)
        try:
            await send(**rendered.kwargs(), **extra)
        except discord.HTTPException as exc:
            log.warning("discord send failed what=%s %s", what, _http_error(exc))
            try:
                with reply.speaking():
                    apology = _(texts.SEND_FAILED)
                await send(content=apology, **extra)
            except discord.HTTPException as again:
                log.warning("discord apology failed what=%s %s", what, _http_error(again))
        finally:
            if rendered.view is not None:
                rendered.view.stop()  # ReplyButton serves the presses; the view object is not needed

    async def _speak_to(self, person: Person) -> None:
        """Decide the language of what this handler says (the service decides it again for its replies)."""
        try:
            await self.service.speak_to(person)
        except Exception:
            log.warning("discord language not decided user=%s", person.external_id, exc_info=True)


class DiscordStartError(RuntimeError):
    """The bot could not join Discord (no READY from the gateway); ``str(error)`` is one line."""


def _own_name(user: discord.User | discord.Member) -> str:
    """The user's own name (global display name, else username), never a server nickname."""
    return user.global_name or user.name


def _who(interaction: discord.Interaction, ephemeral: bool = False) -> tuple[Person, Place]:
    """The sender, and the place (``ephemeral`` when the answer is shown to the sender alone)."""
    locale = getattr(interaction.locale, "value", None) or None
    person = Person("discord", str(interaction.user.id), _own_name(interaction.user), language=locale)
    return person, _place(interaction.guild, interaction.channel_id, interaction.guild_id, ephemeral)


def _place(
    guild: discord.Guild | None, channel_id: int | None, guild_id: int | None = None, ephemeral: bool = False
) -> Place:
    """The server (faces are matched per server), or the DM channel (private: the user's own)."""
    guild_id = guild.id if guild is not None else guild_id
    if guild_id is not None:
        return Place(
            "discord", f"guild:{guild_id}", guild.name if guild is not None else "", ephemeral=ephemeral
        )
    return Place("discord", f"dm:{channel_id}", "direct messages", private=True)


def _http_error(exc: discord.HTTPException) -> str:
    return f"status={exc.status} code={exc.code} error={exc.text!r}"


def _log_gateway_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord gateway ended error=%r", task.exception())
