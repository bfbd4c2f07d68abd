"""The chat service's rules, without a platform: limits, buttons, conversations, missing parts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.commands import parse_command
from core import texts
from core.pipeline import FacePipeline
from core.replies import Action, Button
from core.service import MoodtunesService, Person, Place
from tests.conftest import data_path
from tests.fakes.spotify import FakeSpotify, link_by_paste
from tests.service_fixtures import make_service

pytestmark = pytest.mark.slow
ANN, BOB = Person("console", "ann", "Ann"), Person("console", "bob", "Bob")
HERE = Place("console", "room")


@pytest.fixture
async def service(tmp_path: Path, pipeline: FacePipeline, cache_dir: Path) -> AsyncIterator[MoodtunesService]:
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
    tmp_path: Path, pipeline: FacePipeline, cache_dir: Path, fake_spotify: FakeSpotify
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
    user = await service.store.find_user("console", "ann")
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
    await service.set_track_count(ANN, HERE, "7")
    ask = await service.forget(ANN, HERE)
    assert (
        await service.press(ANN, HERE, data_of(ask.buttons, Action.FORGET_NO))
    ).text == texts.FORGET_CANCELLED
    user = await service.store.find_user("console", "ann")
    assert user is not None and (await service.store.get_settings(user)).track_count == 7
    ask = await service.forget(ANN, HERE)
    done = await service.press(ANN, HERE, data_of(ask.buttons, Action.FORGET_YES))
    assert "deleted everything" in done.text
    assert await service.store.find_user("console", "ann") is None


async def test_track_count_and_text(service: MoodtunesService) -> None:
    assert "10 songs" in (await service.set_track_count(ANN, HERE, "")).text
    for bad in ("0", "51", "ten", "3.5"):
        assert (await service.set_track_count(ANN, HERE, bad)).error
    assert await service.handle_text(ANN, HERE, "hello there") is None
    assert parse_command("/tracks@moodbot 15", "moodbot") == ("tracks", "15")
    assert parse_command("/tracks@otherbot 15", "moodbot") is None
    assert parse_command("/nope") is None


async def test_without_a_catalog_the_reply_says_so(
    tmp_path: Path, pipeline: FacePipeline, cache_dir: Path
) -> None:
    svc = await make_service(tmp_path, pipeline, cache_dir)
    svc.catalog = None
    try:
        reply = await svc.handle_photo(ANN, HERE, photo("Tony_Blair"))
        assert texts.NO_CATALOG in reply.text and not reply.tracks and reply.photo is not None
        bad = await svc.handle_photo(ANN, HERE, b"GIF89a-not-really")
        assert bad.error and "photo" in bad.text
    finally:
        await svc.close()
