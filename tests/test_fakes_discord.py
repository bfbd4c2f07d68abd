"""The fake Discord driven by the real discord.py: a throwaway bot, end to end on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import discord.http
import pytest
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket, KeepAliveHandler

from tests.fakes.discord import EPHEMERAL, FakeDiscord, GatewaySession
from tests.images import annotate, jpeg

pytestmark = pytest.mark.timeout(30)


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


# Sharding -------------------------------------------------------------------------------------------


class ShardedBot(discord.AutoShardedClient):
    """A discord.py ``AutoShardedClient``: messages it gets go to :attr:`inbox`; ``/shard`` says which shard
    answered."""

    def __init__(self, *, sync: bool = False, **options: Any) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.1, **options)
        self.sync = sync
        self.inbox: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.tree = app_commands.CommandTree(self)

        @self.tree.command(name="shard", description="Which shard answers")
        async def shard(interaction: discord.Interaction) -> None:
            where = interaction.guild.shard_id if interaction.guild else None
            await interaction.response.send_message(f"shard {where} of {self.shard_ids}")

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No 5-second wait between the shards' IDENTIFYs (the fake has no identify rate limit)."""

    async def setup_hook(self) -> None:
        # Given a shard_count, AutoShardedClient connects to DEFAULT_GATEWAY without asking /gateway/bot.
        _, gateway, _ = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
        if self.sync:
            await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        if message.author != self.user:
            self.inbox.put_nowait(message)


@contextlib.asynccontextmanager
async def connected(fake: FakeDiscord, *bots: discord.Client) -> AsyncIterator[None]:
    """Start ``bots`` on the fake and wait until each is ready; close them all afterwards."""
    tasks = [asyncio.create_task(bot.start(fake.token)) for bot in bots]
    try:
        for bot, task in zip(bots, tasks, strict=True):
            await first(task, bot.wait_until_ready())
        yield
    finally:
        for bot in bots:
            await bot.close()
        for task in tasks:
            await task


def by_shard(fake: FakeDiscord) -> dict[tuple[int, int] | None, GatewaySession]:
    """The open gateway sessions by their ``(shard_id, shard_count)``."""
    return {s.shard: s for s in fake.sessions if not s.closed}


def created(fake: FakeDiscord, message: dict[str, Any]) -> list[GatewaySession]:
    """The sessions that were sent the MESSAGE_CREATE of ``message``."""
    return fake.recipients("MESSAGE_CREATE", lambda d: d["id"] == message["id"])


async def test_guild_ids_take_turns_on_the_shards_or_go_where_asked() -> None:
    fake = FakeDiscord()
    guilds = [fake.guild, *(fake.add_guild(f"Guild {i}") for i in range(1, 6))]
    for count in range(1, 11):
        assert [fake.shard_of(g, count) for g in guilds] == [i % count for i in range(6)]
    pinned = fake.add_guild("Pinned", shard=7)
    assert [fake.shard_of(pinned, n) for n in (1, 2, 3, 8, 10)] == [0, 1, 1, 7, 7]
    explicit = fake.add_guild("Explicit", guild_id=(41 << 22) | 5)
    assert explicit.id == (41 << 22) | 5 and fake.shard_of(explicit, 4) == 1
    assert fake.shard_of(explicit) == 0  # the fake recommends one shard by default
    with pytest.raises(ValueError, match="exists already"):
        fake.add_guild("Again", guild_id=explicit.id)


async def test_two_clients_each_get_only_their_shards_guilds_and_events(point_discord_py: None) -> None:
    threads_before = set(threading.enumerate())
    async with FakeDiscord() as fake:
        discord.http.Route.BASE = fake.api_url
        second, third = fake.add_guild("Second Guild"), fake.add_guild("Third Guild")
        assert [fake.shard_of(g, 2) for g in (fake.guild, second, third)] == [0, 1, 0]
        zero = ShardedBot(shard_ids=[0], shard_count=2, sync=True)
        one = ShardedBot(shard_ids=[1], shard_count=2)
        async with connected(fake, zero, one):
            sessions = by_shard(fake)
            assert set(sessions) == {(0, 2), (1, 2)}
            assert [i["shard"] for i in fake.identifies] in ([[0, 2], [1, 2]], [[1, 2], [0, 2]])
            ready = sessions[(1, 2)].events[0]
            assert ready.name == "READY" and ready.data["shard"] == [1, 2]
            assert ready.data["guilds"] == [{"id": str(second.id), "unavailable": True}]
            assert sessions[(0, 2)].guild_ids == [fake.guild.id, third.id]
            assert sessions[(1, 2)].guild_ids == [second.id]
            assert {g.id for g in zero.guilds} == {fake.guild.id, third.id}
            assert [g.id for g in one.guilds] == [second.id]

            # A message in a guild of shard 1 reaches the shard-1 client only.
            alice = fake.add_user("alice")
            sent = await fake.send_message(alice, second.channels[0], "hello one", mention_bot=True)
            got = await asyncio.wait_for(one.inbox.get(), 5)
            assert got.id == int(sent["id"]) and got.guild is not None and got.guild.shard_id == 1
            assert created(fake, sent) == [sessions[(1, 2)]]

            # One in a guild of shard 0, and a DM (shard 0, as on Discord), reach the shard-0 client only.
            in_third = await fake.send_message(alice, third.channels[0], "hello zero", mention_bot=True)
            in_dm = await fake.send_message(alice, fake.dm_channel(alice), "hello DM")
            got_third = await asyncio.wait_for(zero.inbox.get(), 5)
            got_dm = await asyncio.wait_for(zero.inbox.get(), 5)
            assert [got_third.id, got_dm.id] == [int(in_third["id"]), int(in_dm["id"])]
            assert created(fake, in_third) == created(fake, in_dm) == [sessions[(0, 2)]]
            assert zero.inbox.empty() and one.inbox.empty()

            # A slash command in a guild of shard 1 is answered by the shard-1 client.
            interaction = await fake.slash_command(alice, second.channels[0], "shard")
            response = await fake.wait_for_response(interaction)
            assert response.content == "shard 1 of [1]"
            assert fake.recipients("INTERACTION_CREATE") == [sessions[(1, 2)]]
    assert_clean(threads_before)


async def test_an_auto_sharded_client_opens_the_recommended_shards(point_discord_py: None) -> None:
    threads_before = set(threading.enumerate())
    async with FakeDiscord(shard_count=2) as fake:
        discord.http.Route.BASE = fake.api_url
        second = fake.add_guild("Second Guild")
        bot = ShardedBot()  # no shard_count: it asks /gateway/bot, which recommends 2
        async with connected(fake, bot):
            assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
            sessions = by_shard(fake)
            assert {shard: s.guild_ids for shard, s in sessions.items()} == {
                (0, 2): [fake.guild.id],
                (1, 2): [second.id],
            }
            assert {g.id: g.shard_id for g in bot.guilds} == {fake.guild.id: 0, second.id: 1}

            alice = fake.add_user("alice")
            sent = await fake.send_message(alice, second.channels[0], "hi", mention_bot=True)
            got = await asyncio.wait_for(bot.inbox.get(), 5)
            assert got.id == int(sent["id"])
            assert created(fake, sent) == [sessions[(1, 2)]]

            joined = await fake.join_guild("Joined Later", shard=0)
            guild_create = fake.recipients("GUILD_CREATE", lambda d: d["id"] == str(joined.id))
            assert guild_create == [sessions[(0, 2)]]
    assert_clean(threads_before)


async def test_a_malformed_shard_is_refused_with_4010() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        for shard in ([2, 2], [0], "0,1"):
            async with http.ws_connect(f"{fake.gateway_url}?v=10&encoding=json") as ws:
                assert (await ws.receive_json())["op"] == 10  # HELLO
                identify = {"token": fake.token, "intents": 513, "properties": {}, "shard": shard}
                await ws.send_json({"op": 2, "d": identify})
                closed = await ws.receive()
                assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 4010)
        assert not fake.connected and [s.shard for s in fake.sessions] == [None, None, None]
