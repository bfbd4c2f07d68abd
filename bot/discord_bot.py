"""Discord adapter: slash commands, photos in DMs and mentions, and reply buttons over the one service.

Every entry of :data:`bot.commands.COMMANDS` becomes a slash command (``/enroll`` takes an optional
photo, ``/tracks`` its count), plus ``/mood`` with a photo attachment. A photo sent in a DM, or in a
server message that mentions the bot, is handled like ``/mood``; a Spotify redirect address pasted in
a DM finishes linking. Replies are embeds (text, faces, mood, the songs with their Spotify links) with
the annotated photo attached and buttons whose ``custom_id`` is :attr:`core.replies.Button.data`; one
:class:`ReplyButton` dynamic item serves every button, so presses keep working after a restart.

Faces are matched per server (``Place("discord", "guild:<id>")``) or per DM channel (``"dm:<id>"``).
Default intents suffice: Discord delivers the content of DMs and of messages that mention the bot.
``moodtunes run`` starts it when ``MOODTUNES_DISCORD_TOKEN`` is set; ``MOODTUNES_DISCORD_API_URL``
points discord.py at another Discord REST base (the loopback fake in the tests)::

    adapter = DiscordAdapter(service, settings)
    await adapter.start()   # logged in, commands synced, READY
    ...
    await adapter.stop()    # replies in flight finish, then the connection closes
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import discord
import discord.http
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot.commands import COMMANDS, Command, dispatch
from core.config import ConfigError, Settings
from core.imaging import MAX_BYTES
from core.music import Track
from core.replies import Action, Button, Reply
from core.service import MoodtunesService, Person, Place

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
"""How long :meth:`DiscordAdapter.start` waits for the gateway's READY."""
STOP_TIMEOUT_S = 30.0
"""How long :meth:`DiscordAdapter.stop` lets replies in flight finish."""
DOWNLOAD_TIMEOUT_S = 30.0
GUILD_READY_TIMEOUT_S = 2.0
"""discord.py's wait for more GUILD_CREATEs before READY (its default; the tests shorten it)."""

PHOTO_NAME = "moodtunes.jpg"
COLOUR = discord.Colour(0x1DB954)
ERROR_COLOUR = discord.Colour(0xE11D48)
MESSAGE_BUDGET = 5900
"""Characters for all embeds of one message (Discord allows 6000)."""
PRIVATE_COMMANDS = frozenset({"enroll", "tracks", "linkspotify", "unlinkspotify", "forget"})
"""Answered only to the sender (ephemeral) in servers: authorisation links and personal matters."""
PUBLIC_PRESSES = frozenset({Action.LIFT, Action.MATCH, Action.MORE})
"""Button answers shown to the whole channel (more songs for a public photo reply); others are private."""
BUTTON_STYLES = {
    Action.PLAYLIST: discord.ButtonStyle.success,
    Action.ENROLL_YES: discord.ButtonStyle.primary,
    Action.FORGET_YES: discord.ButtonStyle.danger,
}

MOOD_DESCRIPTION = "Read the mood of a photo and get songs to match"
SORRY = "Something went wrong on my side; please try again in a moment."
SEND_FAILED = "Discord didn't accept my reply; please try again in a moment."
RESTARTING = "I'm restarting; please try again in a minute."
NOT_A_PHOTO = "That file isn't a photo ({kind}); send a JPEG, PNG or WebP image."
TOO_BIG = "That file is {size:.1f} MB; I can take photos up to {limit} MB."
DOWNLOAD_FAILED = "I couldn't download that file from Discord; please send it again."
DM_HINT = "Send me a selfie (attach a photo), or use /help to see what I can do."
MENTION_HINT = "Mention me with a photo attached (or use /mood) and I'll pick songs for the mood."

_BUTTON_TEMPLATE = "(?P<action>" + "|".join(re.escape(a.value) for a in Action) + "):(?P<token>\\S+)"
_NO_BRACKETS = str.maketrans("[]", "()")
SlashCallback = Callable[..., Coroutine[Any, Any, None]]


# Rendering ---------------------------------------------------------------------------------------


class ReplyButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=_BUTTON_TEMPLATE):
    """A reply's button (``custom_id`` = :attr:`Button.data`); a press, even after a restart, goes to
    the adapter of the client that received it."""

    def __init__(self, button: Button) -> None:
        style = BUTTON_STYLES.get(button.action, discord.ButtonStyle.secondary)
        super().__init__(discord.ui.Button(label=button.label[:80], custom_id=button.data, style=style))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        """Rebuild the button from the pressed component."""
        label = getattr(item, "label", None) or match["action"]
        return cls(Button(label, Action(match["action"]), match["token"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Hand the press to the adapter."""
        client = interaction.client
        if isinstance(client, _Client) and self.item.custom_id:
            await client.adapter.on_press(interaction, self.item.custom_id)


@dataclass
class Rendered:
    """A reply as discord.py ``send()`` arguments."""

    embeds: list[discord.Embed]
    file: discord.File | None = None
    view: discord.ui.View | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Messageable.send`` and ``Webhook.send`` (absent parts left out)."""
        parts: dict[str, Any] = {"embeds": self.embeds}
        if self.file is not None:
            parts["file"] = self.file
        if self.view is not None:
            parts["view"] = self.view
        return parts


def render(reply: Reply) -> Rendered:
    """A :class:`Reply` as embeds (text, faces, mood, numbered songs with links), the annotated photo
    (``attachment://moodtunes.jpg``, shown in the first embed) and a view of its buttons."""
    colour = ERROR_COLOUR if reply.error else COLOUR
    text = _escape(reply.text)
    if reply.link and reply.link not in reply.text:
        text = f"{text}\n\n{reply.link}"
    main = discord.Embed(description=_clip(text, 4096), colour=colour)
    if reply.faces:
        lines = "\n".join(_escape(face.describe()) for face in reply.faces)
        main.add_field(
            name="Faces" if len(reply.faces) > 1 else "Face", value=_clip(lines, 1024), inline=False
        )
    if reply.mood:
        main.add_field(name="Mood", value=_clip(_escape(reply.mood), 1024))
    file = None
    if reply.photo is not None:
        file = discord.File(io.BytesIO(reply.photo), filename=PHOTO_NAME, description="Faces marked")
        main.set_image(url=f"attachment://{PHOTO_NAME}")
    embeds = [main, *_track_embeds(reply.tracks, reply.mood, colour, MESSAGE_BUDGET - len(main))]
    view = None
    if reply.buttons or reply.link:
        view = discord.ui.View(timeout=None)
        for button in reply.buttons:
            view.add_item(ReplyButton(button))
        if reply.link and len(reply.link) <= 512:
            view.add_item(discord.ui.Button(label="Open link", url=reply.link))
    return Rendered(embeds, file, view)


def _track_embeds(
    tracks: Sequence[Track], mood: str | None, colour: discord.Colour, budget: int
) -> list[discord.Embed]:
    """Numbered masked links, labels shortened so that all fit in ``budget`` characters."""
    if not tracks:
        return []
    title = f"{len(tracks)} songs for the mood" + (f" ({mood})" if mood else "")
    per_line = (budget - len(title)) // len(tracks)
    lines = []
    for number, track in enumerate(tracks, 1):
        room = max(12, per_line - len(track.url) - len(f"{number}. []()\n"))
        label = _escape(f"{track.name} - {', '.join(track.artists)}".translate(_NO_BRACKETS))
        if len(label) > room:  # never end on a lone backslash: it would escape the closing bracket
            label = label[: room - 1].rstrip("\\") + "…"
        lines.append(f"{number}. [{label}]({track.url})")
    chunks: list[str] = []
    for line in lines:
        if chunks and len(chunks[-1]) + 1 + len(line) <= 4096:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return [
        discord.Embed(title=title if index == 0 else None, description=chunk, colour=colour)
        for index, chunk in enumerate(chunks)
    ]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Plain text (names come from users) shown literally, not as Discord markdown."""
    return discord.utils.escape_markdown(text)


# The adapter -------------------------------------------------------------------------------------


class _Client(discord.Client):
    """The discord.py client; it hands its events to the adapter."""

    def __init__(self, adapter: DiscordAdapter) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=GUILD_READY_TIMEOUT_S)
        self.adapter = adapter
        self.tree = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        await self.adapter.setup()

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter.on_message(message)


class DiscordAdapter:
    """The Discord bot: a discord.py client whose commands, messages and buttons call the service.

    Args:
        service: the running service (shared with the other adapters).
        settings: ``discord_token`` (required) and ``discord_api_url`` (blank: the real Discord).
    """

    def __init__(self, service: MoodtunesService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.client = _Client(self)
        for command in COMMANDS:
            self.client.tree.add_command(
                app_commands.Command(
                    name=command.name, description=command.description, callback=self._slash_callback(command)
                )
            )
        self.client.tree.add_command(
            app_commands.Command(name="mood", description=MOOD_DESCRIPTION, callback=self._mood_callback())
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gateway: asyncio.Task[None] | None = None
        self._closing = False
        self._unsubscribe = service.on_spotify_linked(self.notify_linked)

    # Life cycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, sync the slash commands and connect; returns once READY.

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
            log.info("discord ready user=%s guilds=%d", user.id if user else None, len(self.client.guilds))
            return
        failure = gateway.exception() if gateway.done() and not gateway.cancelled() else None
        if isinstance(failure, discord.PrivilegedIntentsRequired | discord.LoginFailure):
            raise ConfigError(f"MOODTUNES_DISCORD_TOKEN: Discord refused the connection ({failure})")
        raise DiscordStartError(f"no READY from the Discord gateway: {failure or 'timed out'}")

    async def setup(self) -> None:
        """After login: find a non-default Discord's gateway, register the buttons, sync the commands."""
        if self.settings.discord_api_url:  # a plain Client never asks /gateway/bot itself
            _, url, _ = await self.client.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        self.client.add_dynamic_items(ReplyButton)
        synced = await self.client.tree.sync()
        log.info("discord commands synced count=%d", len(synced))

    async def stop(self) -> None:
        """Stop taking new work, let replies in flight finish (up to STOP_TIMEOUT_S), then disconnect."""
        self._closing = True
        self._unsubscribe()
        pending = {t for t in self._tasks if t is not asyncio.current_task()}
        if pending:
            log.info("discord stopping in_flight=%d", len(pending))
            _, late = await asyncio.wait(pending, timeout=STOP_TIMEOUT_S)
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

    def _slash_callback(self, command: Command) -> SlashCallback:
        """The callback of a COMMANDS entry; its parameters become the command's options."""
        if command.takes_photo:

            @app_commands.describe(photo="A selfie (optional: I'll ask for one otherwise)")
            async def with_photo(
                interaction: discord.Interaction, photo: discord.Attachment | None = None
            ) -> None:
                await self.on_command(interaction, command.name, photo=photo)

            return with_photo
        if command.argument:

            @app_commands.rename(argument=command.argument)
            @app_commands.describe(argument=command.description)
            async def with_argument(interaction: discord.Interaction, argument: str | None = None) -> None:
                await self.on_command(interaction, command.name, argument=argument or "")

            return with_argument

        async def plain(interaction: discord.Interaction) -> None:
            await self.on_command(interaction, command.name)

        return plain

    def _mood_callback(self) -> SlashCallback:
        """The callback of /mood (a required photo)."""

        @app_commands.describe(photo="A photo with one or more faces")
        async def mood(interaction: discord.Interaction, photo: discord.Attachment) -> None:
            await self.on_mood(interaction, photo)

        return mood

    async def on_command(
        self,
        interaction: discord.Interaction,
        name: str,
        *,
        argument: str = "",
        photo: discord.Attachment | None = None,
    ) -> None:
        """A command of bot.commands, run through :func:`dispatch` (private answers in servers)."""
        person, place = _who(interaction)

        async def work() -> Reply:
            image = None if photo is None else await self._download(photo)
            if isinstance(image, Reply):
                return image
            return await dispatch(self.service, person, place, name, argument, image)

        private = name in PRIVATE_COMMANDS and interaction.guild_id is not None
        await self._answer(interaction, f"/{name}", work, ephemeral=private)

    async def on_mood(self, interaction: discord.Interaction, photo: discord.Attachment) -> None:
        """/mood: faces, emotions and songs for the attached photo."""
        person, place = _who(interaction)

        async def work() -> Reply:
            image = await self._download(photo)
            if isinstance(image, Reply):
                return image
            return await self.service.handle_photo(person, place, image)

        await self._answer(interaction, "/mood", work)

    async def on_press(self, interaction: discord.Interaction, data: str) -> None:
        """A reply button: the service acts on it (and refuses other people's results)."""
        person, place = _who(interaction)
        parsed = Button.parse(data)
        on_private = interaction.message is not None and interaction.message.flags.ephemeral
        public = parsed is not None and parsed[0] in PUBLIC_PRESSES and not on_private
        private = interaction.guild_id is not None and not public
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
                    await interaction.response.send_message(RESTARTING, ephemeral=True)
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
            person = Person("discord", str(message.author.id), message.author.display_name)
            place = _place(message.guild, message.channel.id)
            started = time.perf_counter()
            if message.attachments:
                what = "photo"
                reply = await self._run(what, lambda: self._message_photo(message, person, place))
            elif in_dm:
                what = "text"
                reply = await self._run(what, lambda: self._dm_text(message, person, place))
            else:
                what, reply = "mention", Reply(MENTION_HINT)
            reference = message.to_reference(fail_if_not_exists=False)
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
            image = await self._download(attachment)
            if isinstance(image, Reply):
                return image
            return await self.service.handle_photo(person, place, image)

    async def _dm_text(self, message: discord.Message, person: Person, place: Place) -> Reply:
        """DM text: a pasted Spotify redirect address, else a hint."""
        reply = await self.service.handle_text(person, place, message.content)
        return reply if reply is not None else Reply(DM_HINT)

    async def notify_linked(self, person: Person, place: Place, reply: Reply) -> None:
        """Spotify linked through the callback page: tell the user in a DM."""
        if person.platform != "discord" or self._closing or self.client.is_closed():
            return
        with self._in_flight():
            try:
                user = await self.client.fetch_user(int(person.external_id))
            except discord.HTTPException as exc:
                log.warning("discord linked notice failed user=%s %s", person.external_id, _http_error(exc))
                return
            await self._send("spotify-linked", reply, user.send)

    # Shared steps ----------------------------------------------------------------------------------

    async def _download(self, attachment: discord.Attachment) -> bytes | Reply:
        """The attachment's bytes, or a refusal: not an image, over 20 MB, or the download failed."""
        kind = attachment.content_type or ""
        if kind and not kind.startswith("image/"):
            log.info("discord attachment refused reason=not_image type=%s bytes=%d", kind, attachment.size)
            return Reply(NOT_A_PHOTO.format(kind=kind.split(";")[0]), error=True)
        if attachment.size > MAX_BYTES:
            log.info("discord attachment refused reason=too_big bytes=%d", attachment.size)
            return Reply(TOO_BIG.format(size=attachment.size / 1e6, limit=MAX_BYTES // 2**20), error=True)
        try:
            async with asyncio.timeout(DOWNLOAD_TIMEOUT_S):
                return await attachment.read()
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("discord download failed attachment=%s error=%r", attachment.id, exc)
            return Reply(DOWNLOAD_FAILED, error=True)

    async def _run(self, what: str, work: Callable[[], Awaitable[Reply]]) -> Reply:
        """``work()``, or an apology (and the traceback in the log) if it raised."""
        try:
            return await work()
        except Exception:
            log.exception("discord handler failed what=%s", what)
            return Reply(SORRY, error=True)

    async def _send(self, what: str, reply: Reply, send: Callable[..., Awaitable[Any]], **extra: Any) -> None:
        """Send the rendered reply; if Discord refuses it, log why and try a short apology."""
        rendered = render(reply)
        try:
            await send(**rendered.kwargs(), **extra)
        except discord.HTTPException as exc:
            log.warning("discord send failed what=%s %s", what, _http_error(exc))
            try:
                await send(content=SEND_FAILED, **extra)
            except discord.HTTPException as again:
                log.warning("discord apology failed what=%s %s", what, _http_error(again))
        finally:
            if rendered.view is not None:
                rendered.view.stop()  # ReplyButton serves the presses; the view object is not needed


class DiscordStartError(RuntimeError):
    """The bot could not join Discord (no READY from the gateway); ``str(error)`` is one line."""


def _who(interaction: discord.Interaction) -> tuple[Person, Place]:
    person = Person("discord", str(interaction.user.id), interaction.user.display_name)
    return person, _place(interaction.guild, interaction.channel_id, interaction.guild_id)


def _place(guild: discord.Guild | None, channel_id: int | None, guild_id: int | None = None) -> Place:
    """The server (faces are matched per server), or the DM channel."""
    guild_id = guild.id if guild is not None else guild_id
    if guild_id is not None:
        return Place("discord", f"guild:{guild_id}", guild.name if guild is not None else "")
    return Place("discord", f"dm:{channel_id}", "direct messages")


def _http_error(exc: discord.HTTPException) -> str:
    return f"status={exc.status} code={exc.code} error={exc.text!r}"


def _log_gateway_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord gateway ended error=%r", task.exception())
