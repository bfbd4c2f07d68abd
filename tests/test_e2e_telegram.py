"""End to end on Telegram: the real python-telegram-bot polling a loopback fake Bot API, the real
service (models, SQLite file, catalog) and Spotify through a loopback fake."""

from __future__ import annotations

import asyncio
import html
import io
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from PIL import Image

from core.app import texts
from core.vision.analyzer import FaceAnalyzer
from core.vision.imaging import read_image_file
from tests.conftest import data_path
from tests.fakes.spotify import FakeSpotify
from tests.fakes.telegram import ANONYMOUS_ADMIN, CHANNEL_BOT, BotCall, TgChat
from tests.telegram_harness import WAIT, Harness, running_harness

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
TRACK_LINK = re.compile(r'<a href="https://open\.spotify\.com/track/[0-9A-Za-z]{22}">')


def button(message: BotCall, label_start: str) -> str:
    """Callback data of the message's button whose label starts with ``label_start``."""
    for b in message.buttons:
        if b["text"].startswith(label_start):
            return str(b["callback_data"])
    raise AssertionError(f"no button {label_start!r} in {[b['text'] for b in message.buttons]}")


def track_count(message: BotCall) -> int:
    return len(TRACK_LINK.findall(message.text or ""))


@pytest.fixture
async def harness(
    tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path, fake_spotify: FakeSpotify
) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, pipeline, cache_dir, fake_spotify) as running:
        yield running


async def test_a_user_meets_the_bot(harness: Harness) -> None:
    fake, lfw = harness.fake, data_path("faces", "lfw10")
    blair = sorted((lfw / "Tony_Blair").iterdir())
    ann = fake.add_user("Ann")
    assert {c["command"] for c in fake.commands} >= {"start", "help", "enroll", "tracks", "forget"}

    (welcome,) = await harness.say(ann, None, "/start")
    assert "selfie" in (welcome.text or "")

    # /enroll asks for consent; "yes"; then a real selfie.
    (consent,) = await harness.say(ann, None, "/enroll")
    assert "fingerprint" in (consent.text or "") and "never the photo" in (consent.text or "")
    (ask,) = await harness.press(ann, consent, button(consent, "Yes"))
    assert "selfie" in (ask.text or "")
    (enrolled,) = await harness.photo(ann, None, blair[0], replies=1)
    assert "recognise you" in (enrolled.text or "")
    assert any(c.method == "sendChatAction" for c in fake.calls)

    # Another photo of the same person: named, an emotion, 10 tracks with links, an annotated photo.
    photo, songs = await harness.photo(ann, None, blair[1])
    assert photo.method == "sendPhoto" and photo.photo is not None and photo.photo[:2] == b"\xff\xd8"
    assert "Hi Ann!" in (photo.text or "") and re.search(r"looks \w+ \(\d+%\)", photo.text or "")
    assert track_count(songs) == 10
    assert {"Make a Spotify playlist", "Lift my mood", "More tracks"} <= {b["text"] for b in songs.buttons}

    # /tracks 15 -> 15 tracks; a bad value gets the valid range.
    (bad,) = await harness.say(ann, None, "/tracks 99")
    assert "1 to 50" in (bad.text or "")
    (ok,) = await harness.say(ann, None, "/tracks 15")
    assert "15" in (ok.text or "")
    _, songs = await harness.photo(ann, None, blair[2])
    assert track_count(songs) == 15

    # "More tracks" gives 15 others.
    (more,) = await harness.press(ann, songs, button(songs, "More"))
    first = set(TRACK_LINK.findall(songs.text or ""))
    assert track_count(more) == 15 and not first & set(TRACK_LINK.findall(more.text or ""))

    # A stranger's photo: someone I don't know.
    photo, _ = await harness.photo(ann, None, sorted((lfw / "Hugo_Chavez").iterdir())[0])
    assert "Someone I don't know yet" in (photo.text or "")

    # A text file sent as a document: a clear refusal, and the bot carries on.
    where = fake.private_chat(ann)
    before = len(harness._messages(where))
    fake.send_document(ann, None, b"just some notes\n" * 10, "notes.txt", "text/plain")
    (refusal,) = (await fake.wait_for_messages(where, before + 1, WAIT))[before:]
    assert "not a photo" in (refusal.text or "")

    # A file over 20 MB is refused from its declared size, without a download.
    before = len(harness._messages(where))
    fake.send_document(ann, None, b"\xff\xd8tiny", "huge.jpg", "image/jpeg", file_size=25_000_000)
    (too_big,) = (await fake.wait_for_messages(where, before + 1, WAIT))[before:]
    assert "20 MB" in (too_big.text or "")

    # Spotify: link by pasting the redirect address, then the playlist button.
    (link,) = await harness.say(ann, None, "/linkspotify")
    url = re.search(r"https?://\S+", html.unescape(link.text or ""))
    assert url is not None
    harness.spotify.add_user("ann-spotify", "Ann S")
    pasted = await harness.spotify.authorize(url.group(0).rstrip(".,)"), "ann-spotify")
    (question,) = await harness.say(ann, None, pasted)  # nothing is linked before Ann confirms the account
    assert "Link the Spotify account Ann S (Spotify user id ann-spotify)" in (question.text or "")
    (linked,) = await harness.press(ann, question, button(question, "Yes"))
    assert "Spotify linked as Ann S" in (linked.text or "")
    await fake.wait_for_call(  # the answered question loses its buttons
        "editMessageReplyMarkup", predicate=lambda c: c.params.get("message_id") == question.message_id
    )
    (playlist,) = await harness.press(ann, more, button(more, "Make a Spotify playlist"))
    assert "open.spotify.com/playlist/" in (playlist.text or "")
    (made,) = harness.spotify.playlists.values()
    assert len(made.items) == 15

    # /forget: confirm, then the person is no longer recognised.
    (confirm,) = await harness.say(ann, None, "/forget")
    (done,) = await harness.press(ann, confirm, button(confirm, "Yes"))
    assert "deleted" in (done.text or "").lower() and "Spotify" in (done.text or "")
    photo, _ = await harness.photo(ann, None, blair[3])
    assert "Someone I don't know yet" in (photo.text or "") and "Hi Ann" not in (photo.text or "")


async def test_enroll_with_a_photo_attached_to_the_command(harness: Harness) -> None:
    fake, lfw = harness.fake, data_path("faces", "lfw10")
    bob = fake.add_user("Bob")
    where = fake.private_chat(bob)
    fake.send_photo(bob, None, sorted((lfw / "Colin_Powell").iterdir())[0].read_bytes(), caption="/enroll")
    (consent,) = await fake.wait_for_messages(where, 1, WAIT)
    assert "agree" in (consent.text or "")
    (enrolled,) = await harness.press(bob, consent, button(consent, "Yes"))
    assert "recognise you" in (enrolled.text or "")
    photo, _ = await harness.photo(bob, None, sorted((lfw / "Colin_Powell").iterdir())[1])
    assert "Hi Bob!" in (photo.text or "")


async def test_twenty_users_at_once_each_get_their_own_answer(harness: Harness) -> None:
    """20 users, each enrolled in their own chat as a different person, send photos at the same time."""
    fake, lfw = harness.fake, data_path("faces", "lfw10")
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    service = harness.service
    users = []
    for i in range(20):
        photos = sorted(people[i % len(people)].iterdir())
        user = fake.add_user(f"User{i:02d}")
        user_id = await service.store.ensure_user("telegram", str(user.id), user.first_name)
        chat_id = await service.store.ensure_chat("telegram", str(user.id))
        await service.recognizer.enroll(user_id, chat_id, read_image_file(photos[0]))
        users.append((user, photos[1 + i // len(people)]))
    batches_before = harness.service.worker.batches
    for user, path in users:  # all queued before the bot can answer any
        fake.send_photo(user, None, path.read_bytes())
    replies = await asyncio.gather(*(fake.wait_for_messages(u, 2, WAIT) for u, _ in users))
    for (user, _), (photo, songs) in zip(users, replies, strict=True):
        assert photo.chat_id == user.id and songs.chat_id == user.id
        assert f"Hi {user.first_name}!" in (photo.text or ""), photo.text
        others = {f"User{j:02d}" for j in range(20)} - {user.first_name}
        assert not any(name in (photo.text or "") for name in others)
        assert track_count(songs) == 10
    assert len(fake.sent) >= 40
    assert harness.service.worker.batches - batches_before < 20  # faces were batched across users


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # RetryAfter.retry_after type
async def test_telegram_trouble_gets_a_clear_answer_and_nothing_is_lost(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.telegram_bot")
    fake, lfw = harness.fake, data_path("faces", "lfw10")
    selfie = sorted((lfw / "Colin_Powell").iterdir())[0]
    cleo = fake.add_user("Cleo")
    where = fake.private_chat(cleo)

    # A flood limit on the reply: the bot waits it out and the reply still arrives.
    fake.fail_next("sendMessage", "Too Many Requests: retry after 1", retry_after=1)
    (welcome,) = await harness.say(cleo, None, "/start")
    assert "selfie" in (welcome.text or "")
    sends = [c for c in fake.calls if c.method == "sendMessage" and c.chat_id == cleo.id]
    assert [c.ok for c in sends] == [False, True] and "retry after" in (sends[0].error or "")
    assert "telegram flood limit" in caplog.text

    # Telegram refuses the download: the limit, or a plain "send it again"; the next photo works.
    fake.fail_next("getFile", "Bad Request: file is too big")
    (too_big,) = await harness.photo(cleo, None, selfie, replies=1)
    assert "too big" in (too_big.text or "") and "20 MB" in (too_big.text or "")
    fake.fail_next("getFile", "Bad Request: wrong file_id or the file is temporarily unavailable")
    (again,) = await harness.photo(cleo, None, selfie, replies=1)
    assert "send it again" in (again.text or "")
    photo, songs = await harness.photo(cleo, None, selfie)
    assert photo.method == "sendPhoto" and track_count(songs) == 10

    # A command the bot does not have.
    (unknown,) = await harness.say(cleo, None, "/dance")
    assert "I don't know /dance" in (unknown.text or "")

    # A user who blocked the bot: the failed send is logged, and others are still served.
    dan = fake.add_user("Dan")
    await harness.say(dan, None, "/start")
    fake.block_bot(dan)
    fake.send_text(dan, None, "/help")
    (help_,) = await harness.say(cleo, None, "/help")
    assert "/forget" in (help_.text or "")
    deadline = asyncio.get_running_loop().time() + WAIT  # updates are handled concurrently
    while "telegram forbidden" not in caplog.text and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert "telegram forbidden" in caplog.text
    assert len([c for c in fake.sent_to(where) if c.method == "sendMessage"]) >= 5


async def test_spotify_authorised_on_the_callback_page_is_confirmed_privately(harness: Harness) -> None:
    """/linkspotify in a group: the link, and later the question naming the account, come privately;
    the account is linked only when the user presses Yes there."""
    fake, spotify = harness.fake, harness.spotify
    eve = fake.add_user("Eve")
    await harness.say(eve, None, "/start")  # Eve has a private chat with the bot
    group = fake.add_group("Friends")
    before = len(harness._messages(eve))
    (said,) = await harness.say(eve, group, "/linkspotify")
    assert "private message" in (said.text or "") and "authorize" not in (said.text or "")
    (link,) = (await fake.wait_for_messages(eve, before + 1, WAIT))[before:]
    url = re.search(r"https?://\S+", html.unescape(link.text or ""))
    assert url is not None
    location = await spotify.authorize(url.group(0).rstrip(".,)"), "bob")
    pending = await harness.service.spotify.handle_callback(dict(parse_qsl(urlsplit(location).query)))
    (question,) = (await fake.wait_for_messages(eve, before + 2, WAIT))[before + 1 :]
    assert "Bob B." in (question.text or "") and len(question.buttons) == 2
    user = pending.user_id
    assert not await harness.service.spotify.is_linked(user)
    (linked,) = await harness.press(eve, question, button(question, "Yes"))
    assert "Spotify linked as Bob B." in (linked.text or "")
    assert await harness.service.spotify.is_linked(user)


async def test_anonymous_admins_and_channel_posts_are_scoped_to_their_chat(harness: Harness) -> None:
    """A message sent as a chat (an anonymous group admin, a post as a channel) is not one person: it is
    a sender of its own in each chat, which may not enrol a face or link Spotify."""
    fake, store = harness.fake, harness.service.store
    one, two = fake.add_group("One"), fake.add_group("Two")
    channel = TgChat(-1001234567890, "channel", "Daily Mood")

    async def post(chat: TgChat, sender: TgChat, text: str) -> str:
        before = len(harness._messages(chat))
        user = ANONYMOUS_ADMIN if sender is chat else CHANNEL_BOT
        fake.send_text(user, chat, text, sender_chat=sender)
        (reply,) = (await fake.wait_for_messages(chat, before + 1, WAIT))[before:]
        return reply.text or ""

    for chat, sender in ((one, one), (one, channel), (two, channel)):
        assert texts.NOT_FOR_ANONYMOUS.format(what="learn your face") == await post(chat, sender, "/enroll")
        assert texts.NOT_FOR_ANONYMOUS.format(what="link Spotify") == await post(chat, sender, "/linkspotify")
    # The channel's setting in group One is not its setting in group Two: two senders, not one.
    assert "7 songs" in await post(one, channel, "/tracks 7")
    assert "I send 10 songs" in await post(two, channel, "/tracks")
    for chat, sender in ((one, one), (one, channel), (two, channel)):
        assert await store.find_user("telegram", f"chat:{chat.id}:{sender.id}") is not None
    for never in (str(channel.id), str(ANONYMOUS_ADMIN.id), str(CHANNEL_BOT.id)):
        assert await store.find_user("telegram", never) is None
    assert not [c for c in fake.sent if c.chat_id in (ANONYMOUS_ADMIN.id, CHANNEL_BOT.id)]


async def test_mood_journal_history_chart_and_not_this_one(harness: Harness) -> None:
    """/journal on (consent by button), three photos, /history answers with a PNG chart; "Rate these
    songs" opens a keyboard of 👎 / 👍 per song, and a 👎 is kept for good."""
    fake, lfw = harness.fake, data_path("faces", "lfw10")
    zoe = fake.add_user("Zoe")
    (off,) = await harness.say(zoe, None, "/history")
    assert "journal is off" in (off.text or "")
    (question,) = await harness.say(zoe, None, "/journal on")
    assert "never the photo" in (question.text or "") and len(question.buttons) == 2
    (on,) = await harness.press(zoe, question, button(question, "Yes"))
    assert "journal is on" in (on.text or "")
    await fake.wait_for_call(
        "editMessageReplyMarkup", predicate=lambda c: c.params.get("message_id") == question.message_id
    )
    for person in ("Tony_Blair", "Hugo_Chavez", "Colin_Powell"):
        _, songs = await harness.photo(zoe, None, sorted((lfw / person).iterdir())[0])

    (chart,) = await harness.say(zoe, None, "/history")
    assert chart.method == "sendPhoto" and chart.photo is not None
    assert chart.photo.startswith(b"\x89PNG\r\n\x1a\n") and 10_000 < len(chart.photo) < 400_000
    with Image.open(io.BytesIO(chart.photo)) as image:
        assert image.format == "PNG" and image.size == (900, 560)
    assert (chart.text or "").startswith("Mostly ") and "3 photo(s)" in (chart.text or "")
    # Asked for in a group, the chart goes to Zoe's private chat, never to the group.
    group = fake.add_group("Friends")
    before = len(harness._messages(zoe))
    (said,) = await harness.say(zoe, group, "/history")
    assert "private message" in (said.text or "")
    (private,) = (await fake.wait_for_messages(zoe, before + 1, WAIT))[before:]
    assert private.method == "sendPhoto" and (private.photo or b"").startswith(b"\x89PNG")
    assert not [c for c in fake.sent_to(group) if c.method == "sendPhoto"]

    (rate,) = await harness.press(zoe, songs, button(songs, "Rate these songs"))
    assert len(rate.buttons) == 20 and all(len(d.encode()) <= 64 for d in rate.callback_data)
    assert rate.buttons[0]["text"].startswith("👎 1. ") and rate.buttons[1]["text"].startswith("👍 1. ")
    nope = str(rate.buttons[0]["callback_data"])
    (done,) = await harness.press(zoe, rate, nope)
    assert "won't send you" in (done.text or "")
    gone = nope.rsplit(".", 1)[1]
    assert gone in (songs.text or "")
    user = await harness.service.store.find_user("telegram", str(zoe.id))
    assert user is not None and await harness.service.store.feedback_tracks(user, "nope") == {gone}
    _, again = await harness.photo(zoe, None, sorted((lfw / "Colin_Powell").iterdir())[0])
    assert track_count(again) == 10 and gone not in (again.text or "")


def test_a_long_caption_is_cut_as_text_never_inside_an_escape() -> None:
    """Telegram counts a caption's shown text (limit 1024), not its markup: cutting the escaped HTML
    could split ``&amp;`` and make Telegram refuse the photo."""
    from bot.telegram_bot import CAPTION_LIMIT, caption

    shown = "Tom & Jerry " * 200
    cut = caption(shown)
    assert html.unescape(cut).endswith("…") and len(html.unescape(cut)) == CAPTION_LIMIT
    assert cut.count("&amp;") == html.unescape(cut).count("&")  # every escape whole
    assert caption("a < b") == "a &lt; b"
