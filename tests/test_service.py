"""The chat service's rules, without a platform: limits, buttons, conversations, missing parts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.app import texts
from core.app.commands import split_command
from core.app.people import Person, Place
from core.app.replies import Action, Button
from core.app.requests import set_request
from core.app.service import MoodtunesService
from core.vision.analyzer import FaceAnalyzer
from tests.conftest import data_path
from tests.fakes.spotify import FakeSpotify, link_by_paste
from tests.service_fixtures import make_service

pytestmark = pytest.mark.slow
ANN, BOB = Person("local", "ann", "Ann"), Person("local", "bob", "Bob")
HERE = Place("local", "room")


@pytest.fixture
async def service(tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path) -> AsyncIterator[MoodtunesService]:
    svc = await make_service(tmp_path, pipeline, cache_dir, rate_limit_photos=3, rate_limit_window_s=3600)
    yield svc
    await svc.close()


def photo(person: str, index: int = 0) -> bytes:
    return sorted(data_path("faces", "lfw10", person).iterdir())[index].read_bytes()


def data_of(reply_buttons: tuple[Button, ...], action: Action) -> str:
    return next(b.data for b in reply_buttons if b.action is action)


async def test_photo_rate_limit_is_per_user(service: MoodtunesService) -> None:
    for _ in range(3):
        assert not (await service.handle_photo(ANN, HERE, photo("Tony_Blair"))).error
    limited = await service.handle_photo(ANN, HERE, photo("Tony_Blair"))
    assert limited.error and "faster than I can listen" in limited.text
    assert not (await service.handle_photo(BOB, HERE, photo("Tony_Blair"))).error


async def test_result_buttons_belong_to_the_sender_and_switch_policy(service: MoodtunesService) -> None:
    reply = await service.handle_photo(ANN, HERE, photo("Colin_Powell"))
    assert len(reply.tracks) == 10 and reply.photo is not None
    other = await service.press(BOB, HERE, data_of(reply.buttons, Action.MORE))
    assert other.error and other.text == texts.NOT_YOURS
    lifted = await service.press(ANN, HERE, data_of(reply.buttons, Action.LIFT))
    assert lifted.tracks and {b.action for b in lifted.buttons} >= {Action.MATCH, Action.MORE}
    expired = await service.press(ANN, HERE, "more:no-such-token")
    assert expired.error and expired.text == texts.EXPIRED
    assert (await service.press(ANN, HERE, "garbage")).error
    playlist = await service.press(ANN, HERE, "playlist:" + data_of(reply.buttons, Action.MORE).split(":")[1])
    assert playlist.error  # Spotify is not configured in this service


async def test_playlist_button_pressed_twice_makes_one_playlist(
    tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path, fake_spotify: FakeSpotify
) -> None:
    svc = await make_service(tmp_path, pipeline, cache_dir, spotify=fake_spotify)
    try:
        reply = await svc.handle_photo(ANN, HERE, photo("Colin_Powell"))
        user = await svc.store.ensure_user(ANN.platform, ANN.external_id)
        await link_by_paste(svc.spotify, fake_spotify, user, "alice")
        button = data_of(reply.buttons, Action.PLAYLIST)
        first, second = await asyncio.gather(svc.press(ANN, HERE, button), svc.press(ANN, HERE, button))
        assert first.link and first.link == second.link and not first.error
        assert len(fake_spotify.playlists) == 1
        more = await svc.press(ANN, HERE, data_of(reply.buttons, Action.MORE))  # new songs, new list
        third = await svc.press(ANN, HERE, data_of(more.buttons, Action.PLAYLIST))
        assert third.link and third.link != first.link and len(fake_spotify.playlists) == 2
        [newest] = [p for p in fake_spotify.playlists.values() if third.link.endswith(p.id)]
        assert newest.items == [f"spotify:track:{t.id}" for t in more.tracks]
    finally:
        await svc.close()


async def test_declined_consent_stores_nothing(service: MoodtunesService) -> None:
    consent = await service.enroll(ANN, HERE, photo("Tony_Blair"))
    no = await service.press(ANN, HERE, data_of(consent.buttons, Action.ENROLL_NO))
    assert no.text == texts.ENROLL_CANCELLED
    user = await service.store.find_user("local", "ann")
    assert user is not None and await service.store.count_embeddings(user) == 0
    late = await service.press(ANN, HERE, data_of(consent.buttons, Action.ENROLL_YES))
    assert late.error and "expired" in late.text


async def test_enrolment_waits_for_a_usable_selfie(service: MoodtunesService) -> None:
    consent = await service.enroll(ANN, HERE)
    assert (
        await service.press(ANN, HERE, data_of(consent.buttons, Action.ENROLL_YES))
    ).text == texts.SEND_SELFIE
    refused = await service.handle_photo(ANN, HERE, data_path("photos", "multiface.jpg").read_bytes())
    assert refused.error and "faces of similar size" in refused.text
    done = await service.handle_photo(ANN, HERE, photo("Tony_Blair"))
    assert "recognise you" in done.text
    named = await service.handle_photo(ANN, HERE, photo("Tony_Blair", 1))
    assert named.text.startswith("Hi Ann!")


async def test_forget_needs_confirmation(service: MoodtunesService) -> None:
    await service.set_track_count(ANN, HERE, 7)
    ask = await service.forget(ANN, HERE)
    assert (
        await service.press(ANN, HERE, data_of(ask.buttons, Action.FORGET_NO))
    ).text == texts.FORGET_CANCELLED
    user = await service.store.find_user("local", "ann")
    assert user is not None and (await service.store.get_settings(user)).track_count == 7
    ask = await service.forget(ANN, HERE)
    done = await service.press(ANN, HERE, data_of(ask.buttons, Action.FORGET_YES))
    assert "deleted everything" in done.text
    assert await service.store.find_user("local", "ann") is None


async def test_track_count_and_text(service: MoodtunesService) -> None:
    now = await service.text_command(ANN, HERE, "/tracks")
    assert now is not None and "10 songs" in now.text
    for bad in ("0", "51", "ten", "3.5", "1 2"):
        reply = await service.text_command(ANN, HERE, f"/tracks {bad}")
        assert reply is not None and reply.error, bad
    done = await service.text_command(ANN, HERE, "/tracks@moodbot 15", bot_username="moodbot")
    assert done is not None and "15" in done.text
    assert await service.text_command(ANN, HERE, "/tracks@otherbot 15", bot_username="moodbot") is None
    unknown = await service.text_command(ANN, HERE, "/nope")
    assert unknown is not None and unknown.error and "/nope" in unknown.text
    assert await service.handle_text(ANN, HERE, "hello there") is None
    assert split_command("/tracks@moodbot 15", "moodbot") == ("tracks", "15")


async def test_without_a_catalog_the_reply_says_so(
    tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path
) -> None:
    svc = await make_service(tmp_path, pipeline, cache_dir, catalog=None, data_dir=tmp_path / "no-data")
    try:
        reply = await svc.handle_photo(ANN, HERE, photo("Tony_Blair"))
        assert texts.NO_CATALOG in reply.text and not reply.tracks and reply.photo is not None
        bad = await svc.handle_photo(ANN, HERE, b"GIF89a-not-really")
        assert bad.error and "photo" in bad.text
    finally:
        await svc.close()


async def test_buttons_and_conversations_survive_a_restart(
    tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path
) -> None:
    """Everything a later press needs is in the store: a new service on the same database (a restart,
    or another worker) answers the old reply's buttons and finishes an /enroll begun before."""
    first = await make_service(tmp_path, pipeline, cache_dir)
    reply = await first.handle_photo(ANN, HERE, photo("Colin_Powell"))
    consent = await first.enroll(BOB, HERE)
    await first.close()
    second = await make_service(tmp_path, pipeline, cache_dir)
    try:
        more = await second.press(ANN, HERE, data_of(reply.buttons, Action.MORE))
        assert len(more.tracks) == 10 and not {t.id for t in more.tracks} & {t.id for t in reply.tracks}
        lifted = await second.press(ANN, HERE, data_of(reply.buttons, Action.LIFT))
        assert lifted.tracks and not lifted.error
        again = await second.press(ANN, HERE, data_of(reply.buttons, Action.MORE))
        assert not {t.id for t in again.tracks} & {t.id for t in lifted.tracks}  # the chain continues
        ask = await second.press(BOB, HERE, data_of(consent.buttons, Action.ENROLL_YES))
        assert ask.text == texts.SEND_SELFIE
        done = await second.handle_photo(BOB, HERE, photo("Tony_Blair"))
        assert "recognise you" in done.text
    finally:
        await second.close()


async def test_any_command_ends_the_selfie_step(service: MoodtunesService) -> None:
    consent = await service.enroll(ANN, HERE)
    await service.press(ANN, HERE, data_of(consent.buttons, Action.ENROLL_YES))
    await service.text_command(ANN, HERE, "/help")
    reply = await service.handle_photo(ANN, HERE, photo("Tony_Blair"))
    assert reply.tracks and "recognise you" not in reply.text  # an ordinary photo reply, no enrolment
    user = await service.store.find_user("local", "ann")
    assert user is not None and await service.store.count_embeddings(user) == 0


async def test_a_photo_sent_with_enroll_waits_only_as_its_embedding_and_counts(
    service: MoodtunesService,
) -> None:
    consent = await service.enroll(ANN, HERE, photo("Tony_Blair"))
    user = await service.store.find_user("local", "ann")
    assert user is not None
    chat = await service.store.find_chat("local", "room")
    assert chat is not None
    waiting = await service.store.get_conversation(user, chat)
    assert waiting is not None and waiting.embedding is not None and waiting.embedding.shape == (512,)
    done = await service.press(ANN, HERE, data_of(consent.buttons, Action.ENROLL_YES))
    assert "recognise you" in done.text and done.closes_question
    finished = await service.store.get_conversation(user, chat)
    assert finished is not None and finished.step == "enrolled" and finished.embedding is None
    # The photo given with /enroll was counted: the limit is 3 a window.
    for _ in range(2):
        await service.enroll(ANN, HERE, photo("Tony_Blair", 1))
    limited = await service.enroll(ANN, HERE, photo("Tony_Blair", 2))
    assert limited.error and "faster than I can listen" in limited.text
    refused = await service.handle_photo(ANN, HERE, photo("Tony_Blair", 3))
    assert refused.error and "faster than I can listen" in refused.text


async def test_a_refused_photo_is_never_downloaded(service: MoodtunesService) -> None:
    downloads = 0

    async def download() -> bytes:
        nonlocal downloads
        downloads += 1
        return photo("Tony_Blair")

    for _ in range(4):
        await service.handle_photo(ANN, HERE, download)
    assert downloads == 3


async def test_anonymous_senders_cannot_enrol_or_link(service: MoodtunesService) -> None:
    group_admin = Person("telegram", "chat:-100:-100", "Group", anonymous=True)
    for reply in (await service.enroll(group_admin, HERE), await service.link_spotify(group_admin, HERE)):
        assert reply.error and "anonymously" in reply.text


async def test_a_full_queue_answers_busy_at_once(service: MoodtunesService) -> None:
    service.worker.max_queued = 0
    reply = await service.handle_photo(ANN, HERE, photo("Tony_Blair"))
    assert reply.error and reply.text == texts.BUSY


async def test_a_redelivered_request_gets_the_same_answer(service: MoodtunesService) -> None:
    """A worker that enrolled a selfie died before answering; the platform delivers the same update
    again: it is answered as the enrolment it was, the face is not stored twice, and the user's next
    photo is an ordinary one."""
    consent = await service.enroll(ANN, HERE)
    set_request("telegram:1")
    assert (
        await service.press(ANN, HERE, data_of(consent.buttons, Action.ENROLL_YES))
    ).text == texts.SEND_SELFIE
    assert (
        await service.press(ANN, HERE, data_of(consent.buttons, Action.ENROLL_YES))
    ).text == texts.SEND_SELFIE
    set_request("telegram:2")
    first = await service.handle_photo(ANN, HERE, photo("Tony_Blair"))
    again = await service.handle_photo(ANN, HERE, photo("Tony_Blair"))  # the same update, redelivered
    assert "recognise you" in first.text and again.text == first.text
    user = await service.store.find_user("local", "ann")
    assert user is not None and await service.store.count_embeddings(user) == 1
    set_request("telegram:3")
    named = await service.handle_photo(ANN, HERE, photo("Tony_Blair", 1))
    assert named.text.startswith("Hi Ann!") and named.tracks
    set_request(None)


async def test_group_photos_follow_the_group_and_replies_vary(service: MoodtunesService) -> None:
    group = await service.handle_photo(ANN, HERE, data_path("photos", "multiface.jpg").read_bytes())
    assert "I see 6 faces" in group.text and "the songs follow the group" in group.text
    assert re.search(r"(all|mostly|mixed, leaning) \w+: \d of 6 faces", group.text), group.text
    assert group.mood and ":" in group.mood  # why these songs, e.g. "calm: instrumental, quiet, acoustic"
    # The same emotion again: the user's recent songs are not sent again while others fit.
    first = await service.handle_photo(BOB, HERE, photo("Colin_Powell"))
    second = await service.handle_photo(BOB, HERE, photo("Colin_Powell"))
    assert first.emotion == second.emotion
    assert not {t.id for t in first.tracks} & {t.id for t in second.tracks}
