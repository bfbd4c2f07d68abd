"""End to end on 127.0.0.1: the real discord.py runs bot/discord_bot.py against the fake Discord, with the
real service (models, SQLite file, shared catalog) and the fake Spotify."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import discord
import discord.http
import pytest
from aiohttp import web
from discord.gateway import DiscordWebSocket
from PIL import Image
from pydantic import SecretStr

from bot import discord_bot, discord_render
from bot.discord_bot import DiscordAdapter
from core.app import texts
from core.app.commands import COMMANDS
from core.app.replies import FaceLine, Reply
from core.app.service import MoodtunesService
from core.config import ConfigError, Settings
from core.music import Track
from core.vision.analyzer import FaceAnalyzer
from core.vision.emotion.labels import EMOTIONS
from tests.conftest import data_path
from tests.fakes.discord import DcUser, DiscordCall, FakeDiscord, SentInteraction
from tests.fakes.spotify import FakeSpotify
from tests.images import jpeg
from tests.service_fixtures import make_service

pytestmark = pytest.mark.timeout(60)

PHOTO_TIMEOUT = 30.0
"""Seconds for a reply that analyses a photo (the machine may be busy)."""
TRACK_LINK = re.compile(r"\]\(https://open\.spotify\.com/track/(\w{22})\)")


def lfw(person: str, number: int) -> tuple[str, bytes, str]:
    """An LFW photo as a Discord attachment (filename, bytes, content type); skips without shared data."""
    path = data_path("faces", "lfw10", person, f"{person}_{number:04d}.jpg")
    return path.name, path.read_bytes(), "image/jpeg"


class FlakyCdnDiscord(FakeDiscord):
    """The fake Discord, whose CDN answers 503 for attachments named ``broken*``."""

    async def _cdn(self, request: web.Request) -> web.Response:
        if request.match_info["filename"].startswith("broken"):
            return web.Response(status=503, text="Service Unavailable")
        return await super()._cdn(request)


@dataclass
class Bot:
    """A running adapter on the fakes, with the driver helpers the scenarios use."""

    fake: FakeDiscord
    spotify: FakeSpotify
    service: MoodtunesService
    settings: Settings
    adapter: DiscordAdapter

    async def restart(self) -> None:
        """Stop the adapter and start a fresh one (a new process, the same service and database)."""
        await self.adapter.stop()
        self.adapter = DiscordAdapter(self.service, self.settings)
        await self.adapter.start()

    async def command(
        self, user: DcUser, name: str, options: dict[str, Any] | None = None, channel: Any = None
    ) -> DiscordCall:
        """``/name`` by ``user``: the bot defers ("thinking"), then the reply is its one follow-up."""
        interaction = await self.fake.slash_command(user, channel, name, options)
        return await self._answer(interaction)

    async def press(self, user: DcUser, message: DiscordCall, label: str) -> DiscordCall:
        """``user`` presses the button labelled ``label`` under ``message``; returns the follow-up."""
        interaction = await self.fake.press_button(user, message, button_id(message, label))
        return await self._answer(interaction)

    async def _answer(self, interaction: SentInteraction) -> DiscordCall:
        deferral = await self.fake.wait_for_response(interaction)
        assert deferral.callback_type == 5  # deferred with "thinking..." before any work
        [followup] = await self.fake.wait_for_followups(interaction, timeout=PHOTO_TIMEOUT)
        assert followup.message is not None and deferral.message is not None
        assert followup.message["id"] == deferral.message["id"]  # it replaced "thinking..."
        return followup


def components(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Action rows and their components, flattened."""
    return [c for row in rows for c in (row, *row.get("components", []))]


def button_id(message: DiscordCall, label: str) -> str:
    """The custom_id of the button labelled ``label``."""
    buttons = {c.get("label"): c.get("custom_id") for c in components(message.components)}
    assert label in buttons, f"no button {label!r} in {list(buttons)}"
    return str(buttons[label])


def labels(message: DiscordCall) -> list[str]:
    """Button labels, in order."""
    return [str(c["label"]) for c in components(message.components) if c.get("type") == 2]


def text(message: DiscordCall) -> str:
    """Everything the message says: content, embed titles, descriptions and fields."""
    parts = [message.content or ""]
    for embed in message.embeds:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(p for p in parts if p)


def track_ids(message: DiscordCall) -> list[str]:
    """The Spotify track ids linked in the message, in order."""
    return TRACK_LINK.findall(text(message))


def assert_photo_reply(message: DiscordCall) -> None:
    """The annotated photo is a JPEG attachment shown in the first embed."""
    photo = message.file_bytes["moodtunes.jpg"]
    assert photo.startswith(b"\xff\xd8")
    with Image.open(io.BytesIO(photo)) as image:
        assert image.format == "JPEG"
    assert message.message is not None
    [attachment] = message.message["attachments"]
    assert message.message["embeds"][0]["image"]["url"] == attachment["url"]


def assert_clean(threads_before: set[threading.Thread]) -> None:
    """No task and no new thread (discord.py's heartbeat, the inference and SQLite threads) may outlive a
    test; threads that were told to end get two seconds to do so."""
    leftover_tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftover_tasks, leftover_tasks
    new_threads = [
        t
        for t in set(threading.enumerate()) - threads_before
        if not t.name.startswith("asyncio_")  # the event loop's default executor, closed with the loop
        and t.name != "tqdm_monitor"  # tqdm's one per process
    ]
    for thread in new_threads:
        thread.join(timeout=2)
    assert not [t for t in new_threads if t.is_alive()], new_threads


@pytest.fixture
def point_discord_py(monkeypatch: pytest.MonkeyPatch) -> None:
    """Restore discord.py's process-wide addresses afterwards; READY without the 2 s guild wait."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    monkeypatch.setattr(discord_bot, "GUILD_READY_TIMEOUT_S", 0.1)


@pytest.fixture
async def bot(
    point_discord_py: None,
    fake_spotify: FakeSpotify,
    pipeline: FaceAnalyzer,
    cache_dir: Path,
    tmp_path: Path,
) -> AsyncIterator[Bot]:
    """The adapter, started on the fake Discord with the real service; afterwards nothing is left over."""
    threads_before = set(threading.enumerate())
    service = await make_service(tmp_path, pipeline, cache_dir, fake_spotify, rate_limit_photos=100)
    try:
        async with FlakyCdnDiscord() as fake:
            settings = service.settings.model_copy(
                update={"discord_token": SecretStr(fake.token), "discord_api_url": fake.api_url}
            )
            running = Bot(fake, fake_spotify, service, settings, DiscordAdapter(service, settings))
            await running.adapter.start()
            try:
                yield running
            finally:
                await running.adapter.stop()
    finally:
        await service.close()
    assert_clean(threads_before)


# Scenarios -----------------------------------------------------------------------------------------


async def test_start_syncs_every_command_and_answers_start(bot: Bot) -> None:
    fake = bot.fake
    synced = {c["name"]: c for c in fake.commands[None]}
    assert set(synced) == {c.name for c in COMMANDS if c.offered_on("discord")}
    options = {
        name: [(o["name"], o["type"], o.get("required", False)) for o in c.get("options", [])]
        for name, c in synced.items()
    }
    assert options["mood"] == [("photo", 11, True)]
    assert options["enroll"] == [("photo", 11, False)]
    assert options["tracks"] == [("count", 4, False)]  # an integer field Discord validates
    (count,) = synced["tracks"]["options"]
    assert (count["min_value"], count["max_value"]) == (1, 50)
    assert fake.identifies[0]["intents"] == discord.Intents.default().value  # no privileged intent

    alice = fake.add_user("alice")
    reply = await bot.command(alice, "start")
    assert reply.embeds[0]["description"] == texts.WELCOME
    assert not reply.ephemeral and not reply.files


async def test_enrol_recognise_track_count_stranger_bad_file_and_forget(bot: Bot) -> None:
    fake = bot.fake
    alice = fake.add_user("alice")

    # /enroll with the selfie attached asks consent first, privately; "Yes" enrols that photo.
    consent = await bot.command(alice, "enroll", {"photo": lfw("Tony_Blair", 1)})
    assert consent.ephemeral and consent.embeds[0]["description"] == texts.CONSENT
    assert labels(consent) == ["Yes, enrol me", "No"]
    enrolled = await bot.press(alice, consent, "Yes, enrol me")
    assert "I'll recognise you in this chat (1 sample(s)" in text(enrolled)

    # Another photo of the same person: named, an emotion, 10 songs with links, the annotated photo.
    mood = await bot.command(alice, "mood", {"photo": lfw("Tony_Blair", 2)})
    said = text(mood)
    found = re.search(r"Hi Alice! You look (\w+) \(\d+%\)", said)
    assert found is not None and found.group(1) in EMOTIONS, said
    assert f"Face: Alice looks {found.group(1)}" in said
    assert "Mood: " in said
    assert len(track_ids(mood)) == 10
    assert mood.embeds[1]["title"].startswith("10 songs for the mood")
    assert_photo_reply(mood)
    assert labels(mood) == ["Make a Spotify playlist", "Lift my mood", "More tracks", "Rate these songs"]
    assert not mood.ephemeral

    # /tracks 15; the next photo (a stranger's) gets 15 songs and is not recognised.
    tracks = await bot.command(alice, "tracks", {"count": 15})
    assert tracks.embeds[0]["description"] == "Done: I'll send 15 songs per photo."
    stranger = await bot.command(alice, "mood", {"photo": lfw("George_W_Bush", 1)})
    assert "I don't know you yet" in text(stranger)
    assert "Face: Someone I don't know yet looks" in text(stranger)
    assert len(track_ids(stranger)) == 15
    assert_photo_reply(stranger)

    # A text file as the attachment: refused before any download.
    refused = await bot.command(alice, "mood", {"photo": ("notes.txt", b"just some words", "text/plain")})
    assert "isn't a photo (text/plain)" in text(refused)
    assert refused.embeds[0]["color"] == discord_render.ERROR_COLOUR.value and not refused.files

    # /forget + confirm: the same person is a stranger afterwards.
    confirm = await bot.command(alice, "forget")
    assert confirm.embeds[0]["description"] == texts.FORGET_CONFIRM
    forgot = await bot.press(alice, confirm, "Yes, delete everything")
    assert "I deleted everything about you: 1 face sample(s)" in text(forgot)
    after = await bot.command(alice, "mood", {"photo": lfw("Tony_Blair", 3)})
    assert "I don't know you yet" in text(after) and "Alice" not in text(after)


async def test_playlist_button_after_linking_spotify_and_buttons_survive_a_restart(bot: Bot) -> None:
    fake, spotify = bot.fake, bot.spotify
    alice, bob = fake.add_user("alice"), fake.add_user("bob")
    mood = await bot.command(alice, "mood", {"photo": lfw("Colin_Powell", 1)})
    shown = track_ids(mood)
    assert len(shown) == 10

    early = await bot.press(alice, mood, "Make a Spotify playlist")
    assert "Link your Spotify account first with /linkspotify" in text(early)

    # /linkspotify answers privately with the authorisation link; the redirect address is pasted in a DM.
    link = await bot.command(alice, "linkspotify")
    assert link.ephemeral
    [auth_url] = [c["url"] for c in components(link.components) if c.get("style") == 5]
    assert auth_url.startswith(f"{spotify.accounts_url}/authorize?") and auth_url in text(link)
    location = await spotify.authorize(auth_url, user="alice")
    dm = fake.dm_channel(alice)
    await fake.send_message(alice, dm, location)
    [question] = await fake.wait_for_messages(dm, 1)
    assert "Link the Spotify account Alice A. (Spotify user id alice)" in text(question)
    assert labels(question) == [texts.SPOTIFY_CONFIRM_YES, texts.SPOTIFY_CONFIRM_NO]
    linked = await bot.press(alice, question, texts.SPOTIFY_CONFIRM_YES)
    assert "Spotify linked as Alice A." in text(linked)

    playlist = await bot.press(alice, mood, "Make a Spotify playlist")
    assert "Your playlist of 10 songs is ready: https://open.spotify.com/playlist/" in text(playlist)
    assert playlist.ephemeral
    [made] = spotify.playlists.values()
    assert made.owner == "alice" and made.items == [f"spotify:track:{i}" for i in shown]

    # Someone else's press is refused; the owner's presses still work after a restart.
    refused = await bot.press(bob, mood, "More tracks")
    assert texts.NOT_YOURS in text(refused)
    await bot.restart()
    more = await bot.press(alice, mood, "More tracks")
    assert "More songs for the same mood" in text(more)
    assert len(track_ids(more)) == 10 and not set(track_ids(more)) & set(shown)


async def test_spotify_authorised_on_the_callback_page_is_asked_in_a_dm(bot: Bot) -> None:
    fake = bot.fake
    alice = fake.add_user("alice")
    link = await bot.command(alice, "linkspotify")
    [auth_url] = [c["url"] for c in components(link.components) if c.get("style") == 5]
    location = await bot.spotify.authorize(auth_url, user="alice")

    pending = await bot.service.spotify.handle_callback(dict(parse_qsl(urlsplit(location).query)))
    [question] = await fake.wait_for_messages(fake.dm_channel(alice), 1)
    assert "Link the Spotify account Alice A." in text(question)
    assert not await bot.service.spotify.is_linked(pending.user_id)
    declined = await bot.press(alice, question, texts.SPOTIFY_CONFIRM_NO)
    assert texts.SPOTIFY_DECLINED in text(declined)
    assert not await bot.service.spotify.is_linked(pending.user_id)
    assert await bot.service.store.spotify_count_pending() == 0


async def test_photos_in_a_mention_and_in_a_dm_and_stop_lets_the_reply_finish(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.discord_bot")
    fake = bot.fake
    alice = fake.add_user("alice")

    await fake.send_message(alice, None, "chatter the bot never sees")
    await fake.send_message(alice, None, "what do you hear?", mention_bot=True)
    sent = await fake.send_message(
        alice, None, "and now?", attachments=[lfw("Hugo_Chavez", 1)], mention_bot=True
    )
    await fake.wait_for("typing", channel=fake.channel)
    hint, reply = await fake.wait_for_messages(fake.channel, 2, timeout=PHOTO_TIMEOUT)
    assert text(hint) == texts.MENTION_HINT
    assert "I don't know you yet" in text(reply) and len(track_ids(reply)) == 10
    assert_photo_reply(reply)
    assert str(reply.payload["message_reference"]["message_id"]) == sent["id"]

    dm = fake.dm_channel(alice)
    await fake.send_message(alice, dm, "hello?")
    [dm_hint] = await fake.wait_for_messages(dm, 1)
    assert text(dm_hint) == discord_bot.DM_HINT

    # A DM photo; stop() while it is being analysed: the reply still goes out before the bot disconnects.
    await fake.send_message(alice, dm, attachments=[lfw("Hugo_Chavez", 2)])
    await fake.wait_for("typing", channel=dm)
    await bot.adapter.stop()
    assert "discord stopping in_flight=1" in caplog.text
    dm_replies = [c for c in fake.calls if c.ok and c.kind == "message" and c.channel_id == dm.id]
    assert len(dm_replies) == 2 and len(track_ids(dm_replies[1])) == 10
    assert_photo_reply(dm_replies[1])


async def test_bad_input_and_discord_errors_get_friendly_replies_and_log_lines(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.discord_bot")
    fake = bot.fake
    alice = fake.add_user("alice")

    huge = await bot.command(
        alice, "mood", {"photo": ("huge.jpg", b"\xff\xd8" + bytes(21 * 2**20), "image/jpeg")}
    )
    assert "I can take photos up to 20 MB" in text(huge)
    broken = await bot.command(alice, "mood", {"photo": ("broken.jpg", jpeg(320, 240), "image/jpeg")})
    assert text(broken) == texts.DOWNLOAD_FAILED
    fake_jpeg = await bot.command(
        alice, "mood", {"photo": ("fake.jpg", b"not a picture at all", "image/jpeg")}
    )
    assert fake_jpeg.embeds[0]["color"] == discord_render.ERROR_COLOUR.value
    faceless = await bot.command(alice, "mood", {"photo": ("wall.jpg", jpeg(320, 240), "image/jpeg")})
    assert text(faceless) == texts.NO_FACE

    # Discord refuses the reply (429 without a retry, as when a Cloudflare ban hits): an apology instead.
    fake.fail_next("followup", 429, 0, "You are being rate limited.")
    interaction = await fake.slash_command(alice, None, "help")
    failed = await fake.wait_for("followup", ok=False)  # refused before the fake knew the interaction
    assert failed.status == 429
    [apology] = await fake.wait_for_followups(interaction)
    assert apology.content == discord_bot.SEND_FAILED

    logged = caplog.text
    assert f"reason=too_big bytes={2 + 21 * 2**20}" in logged
    assert "discord download failed" in logged
    assert "discord send failed what=/help status=429" in logged


async def test_a_bad_token_is_a_clear_config_error(
    point_discord_py: None, fake_spotify: FakeSpotify, pipeline: FaceAnalyzer, cache_dir: Path, tmp_path: Path
) -> None:
    threads_before = set(threading.enumerate())
    service = await make_service(tmp_path, pipeline, cache_dir, fake_spotify)
    try:
        async with FakeDiscord() as fake:
            settings = service.settings.model_copy(
                update={"discord_token": SecretStr("not-the-token"), "discord_api_url": fake.api_url}
            )
            with pytest.raises(ConfigError, match="MOODTUNES_DISCORD_TOKEN"):
                await DiscordAdapter(service, settings).start()
            assert not fake.identifies
    finally:
        await service.close()
    assert_clean(threads_before)


def test_render_fits_fifty_long_named_tracks_in_one_message() -> None:
    star = "*" * 150  # every character needs a markdown escape
    tracks = tuple(
        Track(f"{i:022d}", f"{star} [{i}]", ("A_" * 40, "B"), 50, None, None, 0.5, 0.5, 0.5)
        for i in range(50)
    )
    face = FaceLine("**Ann**", "happy", 0.87, (0, 0, 10, 10))
    rendered = discord_render.render(
        Reply("Hi **Ann**!", faces=(face,), tracks=tracks, mood="calm", photo=b"x")
    )
    embeds = rendered.embeds
    assert sum(len(e) for e in embeds) <= 6000 and len(embeds) <= 10
    assert all(len(e.description or "") <= 4096 for e in embeds)
    songs = "\n".join(e.description or "" for e in embeds[1:])
    assert re.findall(r"\]\(https://open\.spotify\.com/track/(\d{22})\)", songs) == [t.id for t in tracks]
    assert "\\]" not in songs  # no label ends by escaping its closing bracket
    assert embeds[0].description == "Hi \\*\\*Ann\\*\\*!"  # user-chosen names are shown literally
    assert rendered.file is not None and rendered.view is None


async def test_two_processes_split_the_guilds_by_shard(
    point_discord_py: None, fake_spotify: FakeSpotify, pipeline: FaceAnalyzer, cache_dir: Path, tmp_path: Path
) -> None:
    """Two adapters (as two workers, each with its own service on the shared database) run shard 0 and
    shard 1 of 2: each gets only its shard's guilds and events, and both answer commands there."""
    services = [
        await make_service(tmp_path, pipeline, cache_dir, fake_spotify, rate_limit_photos=100)
        for _ in range(2)
    ]
    adapters: list[DiscordAdapter] = []
    try:
        async with FakeDiscord(shard_count=2) as fake:
            second = fake.add_guild("Second guild", shard=1)
            assert (fake.shard_of(fake.guild), fake.shard_of(second)) == (0, 1)
            for shard, service in enumerate(services):
                settings = service.settings.model_copy(
                    update={
                        "discord_token": SecretStr(fake.token),
                        "discord_api_url": fake.api_url,
                        "discord_shard_count": 2,
                        "discord_shard_ids": str(shard),
                    }
                )
                adapters.append(DiscordAdapter(service, settings))
                await adapters[-1].start()
            await fake.wait_until_ready(sessions=2)
            assert sorted(s.shard for s in fake.sessions if s.identified) == [(0, 2), (1, 2)]
            assert [{g.id for g in a.client.guilds} for a in adapters] == [{fake.guild.id}, {second.id}]
            alice = fake.add_user("alice")
            for guild, owner in ((fake.guild, 0), (second, 1)):
                interaction = await fake.slash_command(
                    alice, guild.channels[0], "mood", {"photo": lfw("Tony_Blair", 1)}
                )
                [followup] = await fake.wait_for_followups(interaction, timeout=PHOTO_TIMEOUT)
                assert len(track_ids(followup)) == 10
                got = fake.recipients("INTERACTION_CREATE", lambda d, i=interaction.id: int(d["id"]) == i)
                assert [s.shard for s in got] == [(owner, 2)]
    finally:
        for adapter in adapters:
            await adapter.stop()
        for service in services:
            await service.close()


async def test_a_server_nickname_never_names_the_user_elsewhere(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice is "Boss Lady" in the first server only; she enrolled in another. What the others there see,
    and what is stored, is her own Discord name, whatever she did in the first server."""
    fake = bot.fake
    other = await fake.join_guild("Other Guild")
    alice, bob = fake.add_user("alice"), fake.add_user("bob")  # members of both servers
    member = fake.state.member

    def nicknamed(guild: Any, user: Any, *, with_user: bool = True) -> dict[str, Any]:
        data = member(guild, user, with_user=with_user)
        if guild.id == fake.guild.id and user.id == alice.id:
            data["nick"] = "Boss Lady"
        return data

    monkeypatch.setattr(fake.state, "member", nicknamed)
    elsewhere = other.channels[0]
    consent = await bot.command(alice, "enroll", {"photo": lfw("Tony_Blair", 1)}, channel=elsewhere)
    await bot.press(alice, consent, "Yes, enrol me")

    # In the nickname's server: a slash command, a button and a mention all carry her nickname.
    mood = await bot.command(alice, "mood", {"photo": lfw("Colin_Powell", 1)})
    await bot.press(alice, mood, "More tracks")
    await fake.send_message(alice, None, "hello", mention_bot=True)
    await fake.wait_for_messages(fake.channel, 1)

    seen = await bot.command(bob, "mood", {"photo": lfw("Tony_Blair", 2)}, channel=elsewhere)
    assert "Face: Alice looks" in text(seen) and "Boss Lady" not in text(seen)
    user = await bot.service.store.find_user("discord", str(alice.id))
    assert user is not None and await bot.service.store.user_name(user) == "Alice"


async def test_mood_journal_history_chart_and_rating_with_select_menus(bot: Bot) -> None:
    """/journal state:on (consent by button), three photos, /history answers privately with the chart as
    moodtunes.png; "Rate these songs" opens select menus, and "not this one" is kept for good."""
    fake = bot.fake
    alice = fake.add_user("alice")
    consent = await bot.command(alice, "journal", {"state": "on"})
    assert consent.ephemeral and consent.embeds[0]["description"] == texts.JOURNAL_CONSENT
    assert labels(consent) == [texts.JOURNAL_CONSENT_YES, texts.JOURNAL_CONSENT_NO]
    on = await bot.press(alice, consent, texts.JOURNAL_CONSENT_YES)
    assert text(on) == texts.JOURNAL_ON
    for person in ("Tony_Blair", "Hugo_Chavez", "Colin_Powell"):
        mood = await bot.command(alice, "mood", {"photo": lfw(person, 1)})
    shown = track_ids(mood)

    history = await bot.command(alice, "history")
    assert history.ephemeral and "3 photo(s)" in text(history)
    chart = history.file_bytes["moodtunes.png"]
    assert chart.startswith(b"\x89PNG\r\n\x1a\n") and 10_000 < len(chart) < 400_000
    with Image.open(io.BytesIO(chart)) as image:
        assert image.format == "PNG" and image.size == (900, 560)
    assert history.message is not None
    [attachment] = history.message["attachments"]
    assert history.message["embeds"][0]["image"]["url"] == attachment["url"]

    rate = await bot.press(alice, mood, "Rate these songs")
    assert rate.ephemeral
    selects = [c for c in components(rate.components) if c.get("type") == 3]
    assert [s["custom_id"] for s in selects] == ["pick:0", "pick:1"]
    assert [len(s["options"]) for s in selects] == [10, 10]
    value = selects[0]["options"][0]["value"]
    assert value.startswith("nope:") and value.endswith(shown[0])
    done = await bot._answer(await fake.select_option(alice, rate, "pick:0", [value]))
    assert "won't send you" in text(done)
    user = await bot.service.store.find_user("discord", str(alice.id))
    assert user is not None and await bot.service.store.feedback_tracks(user, "nope") == {shown[0]}
    after = await bot.command(alice, "mood", {"photo": lfw("Colin_Powell", 1)})
    assert len(track_ids(after)) == 10 and shown[0] not in track_ids(after)
