"""The fake Discord driven by the real discord.py: a throwaway bot, end to end on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any

import discord
import discord.http
import pytest
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket, KeepAliveHandler
from PIL import Image, ImageDraw

from tests.fakes.discord import EPHEMERAL, FakeDiscord

pytestmark = pytest.mark.timeout(30)


def jpeg(width: int = 640, height: int = 480) -> bytes:
    """A small real JPEG."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), "tan").save(out, "JPEG")
    return out.getvalue()


def annotate(data: bytes) -> bytes:
    """What a photo bot does: draw a box on the photo and send it back as PNG."""
    with Image.open(io.BytesIO(data)) as image:
        canvas = image.convert("RGB")
    ImageDraw.Draw(canvas).rectangle((10, 10, 100, 100), outline="red", width=3)
    out = io.BytesIO()
    canvas.save(out, "PNG")
    return out.getvalue()


@dataclass
class Seen:
    """What the throwaway bot received and produced, for the test to compare with the fake's record."""

    downloads: list[bytes] = field(default_factory=list)
    uploads: list[bytes] = field(default_factory=list)
    contents: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)


class AgainView(discord.ui.View):
    """One button under the mood reply."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Again", custom_id="again", style=discord.ButtonStyle.primary)
    async def again(self, interaction: discord.Interaction, button: discord.ui.Button[AgainView]) -> None:
        await interaction.response.send_message("Send another selfie.", ephemeral=True)

    @discord.ui.button(label="Done", custom_id="done", style=discord.ButtonStyle.secondary)
    async def done(self, interaction: discord.Interaction, button: discord.ui.Button[AgainView]) -> None:
        await interaction.response.defer()  # type 6: acknowledge, edit later
        await interaction.edit_original_response(content="Enjoy the music.", view=None)


class ThrowawayBot(discord.Client):
    """A tiny discord.py bot: /mood with an attachment, replies to mentions with a photo, a button."""

    def __init__(self, seen: Seen, intents: discord.Intents | None = None) -> None:
        # guild_ready_timeout: on_ready waits this long after the last GUILD_CREATE (2 s by default)
        super().__init__(intents=intents or discord.Intents.default(), guild_ready_timeout=0.1)
        self.seen = seen
        self.tree = app_commands.CommandTree(self)

        @self.tree.command(name="mood", description="Read the mood of a selfie")
        @app_commands.describe(photo="A selfie", note="Anything to add")
        async def mood(
            interaction: discord.Interaction, photo: discord.Attachment, note: str | None = None
        ) -> None:
            await interaction.response.defer(thinking=True)
            data = await photo.read()
            seen.downloads.append(data)
            annotated = annotate(data)
            seen.uploads.append(annotated)
            embed = discord.Embed(title="Mood", description=f"1 face: happy ({note or 'no note'})")
            embed.set_image(url="attachment://annotated.png")
            file = discord.File(io.BytesIO(annotated), filename="annotated.png")
            await interaction.followup.send(embed=embed, file=file, view=AgainView())
            seen.answered.set()  # discord.py binds the view to the message only once send() has returned

        @self.tree.error
        async def on_app_command_error(
            interaction: discord.Interaction, error: app_commands.AppCommandError
        ) -> None:
            seen.errors.append(error)
            seen.failed.set()

    async def setup_hook(self) -> None:
        # A plain Client connects to DiscordWebSocket.DEFAULT_GATEWAY; ask the REST base for the address.
        _, gateway, _ = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
        await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        if message.author == self.user:
            return
        self.seen.contents.append(message.content)
        if self.user in message.mentions and message.attachments:
            data = await message.attachments[0].read()
            self.seen.downloads.append(data)
            annotated = annotate(data)
            self.seen.uploads.append(annotated)
            file = discord.File(io.BytesIO(annotated), filename="annotated.png")
            await message.reply(f"{message.attachments[0].filename}: 1 face, happy", file=file)


async def first(task: asyncio.Task[Any], waiting: Awaitable[Any], timeout: float = 5.0) -> None:
    """Wait for ``waiting`` unless the bot's task ends first (then re-raise its error)."""
    other = asyncio.ensure_future(waiting)
    done, _ = await asyncio.wait({task, other}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        other.cancel()
        task.result()
        raise AssertionError("the bot stopped")
    if other not in done:
        other.cancel()
        raise TimeoutError("the bot did not get ready")


@dataclass
class Running:
    fake: FakeDiscord
    bot: ThrowawayBot
    seen: Seen


@pytest.fixture
def point_discord_py(monkeypatch: pytest.MonkeyPatch) -> None:
    """Restore discord.py's process-wide addresses after the test."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)


def assert_clean(threads_before: set[threading.Thread]) -> None:
    """No task and no new thread (discord.py's heartbeat thread included) may outlive a test."""
    for thread in threading.enumerate():
        if isinstance(thread, KeepAliveHandler):
            thread.join(timeout=2)
    leftover_tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftover_tasks, leftover_tasks
    new_threads = [
        t for t in set(threading.enumerate()) - threads_before if not t.name.startswith("asyncio_")
    ]
    assert not new_threads, new_threads


@pytest.fixture
async def running(point_discord_py: None) -> AsyncIterator[Running]:
    """The fake and a connected bot; afterwards, no task, thread or server may be left over."""
    threads_before = set(threading.enumerate())
    seen = Seen()
    async with FakeDiscord() as fake:
        discord.http.Route.BASE = fake.api_url
        bot = ThrowawayBot(seen)
        task = asyncio.create_task(bot.start(fake.token))
        try:
            await first(task, bot.wait_until_ready())
            yield Running(fake, bot, seen)
        finally:
            await bot.close()
            await task
    assert_clean(threads_before)


async def test_bot_logs_in_syncs_commands_and_gets_ready(running: Running) -> None:
    fake, bot = running.fake, running.bot
    assert [c.kind for c in fake.calls[:4]] == ["get_me", "app_info", "gateway_bot", "commands"]
    [query] = fake.gateway_queries
    assert query["v"] == "10" and query["encoding"] == "json"
    # zlib-stream, or zstd-stream when discord.py finds zstandard (or Python 3.14's compression.zstd)
    assert fake.gateway_compression == [query["compress"]] and query["compress"] in (
        "zlib-stream",
        "zstd-stream",
    )
    assert fake.identifies[0]["intents"] == discord.Intents.default().value
    [mood] = fake.commands[None]
    assert mood["name"] == "mood"
    assert [(o["name"], o["type"], o.get("required", False)) for o in mood["options"]] == [
        ("photo", 11, True),
        ("note", 3, False),
    ]
    assert bot.user is not None and bot.user.id == fake.bot.id
    guild = bot.get_guild(fake.guild.id)
    assert guild is not None and [c.name for c in guild.text_channels] == ["general"]


async def test_slash_command_with_attachment_is_deferred_then_followed_up(running: Running) -> None:
    fake, seen = running.fake, running.seen
    alice = fake.add_user("alice")
    selfie = jpeg()

    interaction = await fake.slash_command(
        alice, None, "mood", {"photo": ("selfie.jpg", selfie, "image/jpeg")}
    )
    deferral = await fake.wait_for_response(interaction)
    assert deferral.callback_type == 5 and deferral.message is not None
    [followup] = await fake.wait_for_followups(interaction)

    assert seen.downloads == [selfie]  # the attachment option, read from the fake CDN
    assert followup.file_bytes == {"annotated.png": seen.uploads[0]}  # the multipart upload, byte for byte
    [embed] = followup.embeds
    assert embed["title"] == "Mood" and embed["description"] == "1 face: happy (no note)"
    assert followup.custom_ids == ["again", "done"]
    assert followup.message is not None
    assert followup.message["id"] == deferral.message["id"]  # the first follow-up replaces "thinking..."
    [attachment] = followup.message["attachments"]
    assert followup.message["embeds"][0]["image"]["url"] == attachment["url"]
    assert fake.attachment_bytes(attachment["url"]) == seen.uploads[0]

    await asyncio.wait_for(seen.answered.wait(), 5)
    press = await fake.press_button(alice, followup, "again")
    answer = await fake.wait_for_response(press)
    assert answer.callback_type == 4 and answer.content == "Send another selfie." and answer.ephemeral
    assert answer.message is not None and answer.message["flags"] & EPHEMERAL

    press = await fake.press_button(alice, followup, "done")
    assert (await fake.wait_for_response(press)).callback_type == 6
    edit = await fake.wait_for("edit_original", interaction=press)
    assert edit.message is not None and edit.message["id"] == followup.message["id"]
    assert edit.message["content"] == "Enjoy the music." and edit.message["components"] == []
    with pytest.raises(ValueError, match="no component"):
        await fake.press_button(alice, followup, "again")  # the buttons are gone now
    assert not seen.errors


async def test_mention_with_attachment_gets_a_reply_and_plain_chatter_has_no_content(
    running: Running,
) -> None:
    fake, seen = running.fake, running.seen
    alice = fake.add_user("alice")
    selfie = jpeg(320, 240)

    await fake.send_message(alice, None, "hello everyone")
    sent = await fake.send_message(
        alice, None, "what do you see?", attachments=[("me.jpg", selfie, "image/jpeg")], mention_bot=True
    )
    [reply] = await fake.wait_for_messages(fake.channel, 1)

    # Without the MESSAGE_CONTENT intent, Discord blanks messages that do not mention the bot.
    assert seen.contents == ["", f"<@{fake.bot.id}> what do you see?"]
    assert seen.downloads == [selfie]
    assert reply.content == "me.jpg: 1 face, happy"
    assert str(reply.payload["message_reference"]["message_id"]) == sent["id"]
    assert reply.file_bytes == {"annotated.png": seen.uploads[0]}
    assert reply.message is not None and reply.message["referenced_message"]["id"] == sent["id"]


async def test_direct_messages_both_ways(running: Running) -> None:
    fake, bot, seen = running.fake, running.bot, running.seen
    alice = fake.add_user("alice")
    dm = fake.dm_channel(alice)

    await fake.send_message(alice, dm, "hi there")  # DMs keep their content without MESSAGE_CONTENT
    interaction = await fake.slash_command(alice, dm, "mood", {"photo": ("a.jpg", jpeg(), "image/jpeg")})
    [followup] = await fake.wait_for_followups(interaction)
    assert seen.contents == ["hi there"]
    assert interaction.payload["user"]["id"] == str(alice.id) and "member" not in interaction.payload
    assert followup.channel_id == dm.id and followup.embeds[0]["title"] == "Mood"

    user = await bot.fetch_user(alice.id)
    await user.send("Your playlist is ready.")
    [_, sent] = await fake.wait_for_messages(dm, 2)
    assert sent.kind == "message" and sent.content == "Your playlist is ready."

    guild = await fake.join_guild("Second Guild")
    await fake.send_message(
        alice, guild.channels[0], "a photo", attachments=[("b.jpg", jpeg(), "image/jpeg")], mention_bot=True
    )
    [reply] = await fake.wait_for_messages(guild.channels[0], 1)
    assert bot.get_guild(guild.id) is not None and reply.content == "b.jpg: 1 face, happy"


async def test_a_late_response_is_refused_like_discord(running: Running) -> None:
    fake, seen = running.fake, running.seen
    fake.interaction_deadline = 0.0  # every response is "later than 3 s"
    photo = ("a.jpg", jpeg(), "image/jpeg")
    interaction = await fake.slash_command(fake.add_user("bob"), None, "mood", {"photo": photo})
    refused = await fake.wait_for("interaction_callback", interaction=interaction, ok=False)
    assert (refused.status, refused.error) == (404, {"message": "Unknown interaction", "code": 10062})
    await asyncio.wait_for(seen.failed.wait(), 5)
    assert isinstance(seen.errors[0].__cause__, discord.NotFound)


async def test_bad_token_and_missing_privileged_intent_fail_like_discord(point_discord_py: None) -> None:
    threads_before = set(threading.enumerate())
    async with FakeDiscord(privileged_intents=0) as fake:
        discord.http.Route.BASE = fake.api_url
        bot = ThrowawayBot(Seen())
        with pytest.raises(discord.LoginFailure):
            await bot.start("not-the-token")
        await bot.close()

        intents = discord.Intents.default()
        intents.message_content = True
        bot = ThrowawayBot(Seen(), intents)
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await bot.start(fake.token)
        await bot.close()
    assert_clean(threads_before)
