"""Personal music on the real service (models, SQLite file, shared catalog, fake Spotify): the mood
journal with its consent and chart, "not this one" for good, "more like this", Spotify top artists
first within the mood (read at most once a day, failures silent), and /forget."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from bot.console import ConsoleChat
from core.app import texts
from core.app.people import Person, Place
from core.app.replies import Action, Button, Reply
from core.app.service import MoodtunesService
from core.music.moods import EMOTION_MOODS
from core.vision.analyzer import FaceAnalyzer
from tests.conftest import data_path
from tests.fakes.spotify import FakeSpotify, link_by_paste
from tests.service_fixtures import make_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
ANN, BOB = Person("local", "ann", "Ann"), Person("local", "bob", "Bob")
HERE = Place("local", "default", "terminal", ephemeral=True)  # as the console
GROUP = Place("telegram", "-100", "Friends")


def photo(person: str, index: int = 0) -> bytes:
    return sorted(data_path("faces", "lfw10", person).iterdir())[index].read_bytes()


def data_of(buttons: tuple[Button, ...], action: Action) -> str:
    return next(b.data for b in buttons if b.action is action)


@pytest.fixture
async def service(
    tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path, fake_spotify: FakeSpotify
) -> AsyncIterator[MoodtunesService]:
    svc = await make_service(tmp_path, pipeline, cache_dir, fake_spotify, rate_limit_photos=200)
    yield svc
    await svc.close()


async def test_journal_asks_first_records_photos_and_draws_history(service: MoodtunesService) -> None:
    assert (await service.history(ANN, HERE)).text == texts.HISTORY_OFF
    assert (await service.run_command(ANN, HERE, "journal")).text == texts.JOURNAL_STATUS_OFF
    await service.handle_photo(ANN, HERE, photo("Colin_Powell"))  # before consent: not recorded
    question = await service.text_command(ANN, HERE, "/journal on")
    assert question is not None and question.text == texts.JOURNAL_CONSENT
    assert (await service.history(ANN, HERE)).text == texts.HISTORY_OFF  # asking is not consenting
    # Only Ann can answer Ann's question.
    refused = await service.press(BOB, HERE, data_of(question.buttons, Action.JOURNAL_YES))
    assert refused.error and not refused.closes_question
    yes = await service.press(ANN, HERE, data_of(question.buttons, Action.JOURNAL_YES))
    assert yes.text == texts.JOURNAL_ON and yes.closes_question
    again = await service.press(ANN, HERE, data_of(question.buttons, Action.JOURNAL_YES))
    assert "answered already" in again.text  # a double tap, or a redelivered update
    assert (await service.history(ANN, HERE)).text == texts.HISTORY_EMPTY

    replies = [
        await service.handle_photo(ANN, HERE, photo(p)) for p in ("Tony_Blair", "Hugo_Chavez", "Colin_Powell")
    ]
    user = await service.store.ensure_user("local", "ann")
    rows = await service.store.journal_entries(user, 0)
    assert [r.emotion for r in rows] == [r.emotion for r in replies]
    assert all(r.tracks == 10 and r.valence is not None and r.mood for r in rows)
    status = await service.run_command(ANN, HERE, "journal")
    assert status.text == texts.JOURNAL_STATUS_ON.format(count=3)

    history = await service.history(ANN, HERE)
    assert history.photo is not None and history.text.startswith("Mostly ")
    assert "(3 photo(s))" in history.text
    with Image.open(io.BytesIO(history.photo)) as chart:
        assert chart.format == "PNG" and chart.size == (900, 560)
    # In a shared chat the chart goes privately.
    shared = await service.history(ANN, GROUP)
    assert shared.text == texts.HISTORY_SENT_PRIVATELY and shared.direct is not None
    assert shared.direct.photo is not None

    off = await service.text_command(ANN, HERE, "/journal off")
    assert off is not None and off.text == texts.JOURNAL_OFF.format(count=3)
    assert await service.store.journal_entries(user, 0) == []
    await service.handle_photo(ANN, HERE, photo("Tony_Blair"))
    assert await service.store.journal_entries(user, 0) == []
    assert (await service.history(ANN, HERE)).text == texts.HISTORY_OFF


async def test_a_disliked_song_never_comes_back(service: MoodtunesService) -> None:
    """Ann says "not this one" to the first song; it is in none of the next 20 replies (photos of
    several people, so several emotions, "More tracks", and a switch of policy), on a new service too."""
    first = await service.handle_photo(ANN, HERE, photo("Tony_Blair"))
    rate = await service.press(ANN, HERE, data_of(first.buttons, Action.RATE))
    assert [m.symbol for m in rate.menus] == ["👎", "👍"] and len(rate.menus[0].options) == 10
    assert rate.menus[0].options[0].label.startswith(f"1. {first.tracks[0].name}")
    other = await service.press(BOB, HERE, rate.menus[0].options[0].data)
    assert other.text == texts.NOT_YOURS
    done = await service.press(ANN, HERE, rate.menus[0].options[0].data)
    assert "won't send you" in done.text and first.tracks[0].name in done.text
    gone = first.tracks[0].id

    await service.set_track_count(ANN, HERE, 50)
    seen: list[Reply] = []
    people = ["Tony_Blair", "Hugo_Chavez", "Colin_Powell", "George_W_Bush", "Gerhard_Schroeder"]
    for i in range(10):
        reply = await service.handle_photo(ANN, HERE, photo(people[i % len(people)], i // len(people)))
        seen.append(reply)
        button = Action.LIFT if i % 3 == 0 else Action.MORE
        seen.append(await service.press(ANN, HERE, data_of(reply.buttons, button)))
    assert len(seen) == 20 and len({r.emotion for r in seen}) >= 2
    assert all(len(r.tracks) >= 10 for r in seen)
    assert not [r for r in seen if gone in {t.id for t in r.tracks}]
    # A liked song's verdict replaces the dislike (an undo), by number from the last list.
    last = await service.handle_photo(ANN, HERE, photo("Tony_Blair"))
    liked = await service.text_command(ANN, HERE, "/like 2")
    assert liked is not None and last.tracks[1].name in liked.text
    too_far = await service.text_command(ANN, HERE, "/dislike 50")
    assert too_far is not None and not too_far.error  # the last list has 50 songs
    nothing = await service.text_command(BOB, HERE, "/dislike 1")
    assert nothing is not None and nothing.text == texts.RATE_NOTHING


async def test_rating_menus_page_and_notice_a_changed_list(service: MoodtunesService) -> None:
    await service.set_track_count(ANN, HERE, 15)
    reply = await service.handle_photo(ANN, HERE, photo("Colin_Powell"))
    page = await service.press(ANN, HERE, data_of(reply.buttons, Action.RATE))
    assert len(page.menus[1].options) == 10 and [b.label for b in page.buttons] == [texts.RATE_NEXT]
    second = await service.press(ANN, HERE, page.buttons[0].data)
    assert [o.label.split(".")[0] for o in second.menus[1].options] == [str(n) for n in range(11, 16)]
    assert second.buttons == ()
    liked = await service.press(ANN, HERE, second.menus[1].options[0].data)
    assert "more like" in liked.text
    # "Lift my mood" starts a new chain: the old list's menu says so instead of rating other songs.
    await service.press(ANN, HERE, data_of(reply.buttons, Action.LIFT))
    gone = await service.press(ANN, HERE, data_of(reply.buttons, Action.RATE))
    assert gone.text == texts.RATE_GONE
    assert (await service.press(ANN, HERE, "rate:nope")).error
    assert (await service.press(ANN, HERE, f"nope:{'x' * 12}.{'y' * 22}")).text == texts.EXPIRED


async def test_spotify_top_artists_come_first_within_the_mood(
    service: MoodtunesService, fake_spotify: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.app.taste")
    catalog = service.catalog
    assert catalog is not None
    plain = await service.handle_photo(ANN, HERE, photo("Colin_Powell"))
    emotion = plain.emotion
    assert emotion is not None
    ranked = catalog.recommend(emotion=emotion, n=50)
    shown = {a for t in plain.tracks for a in t.artists}
    favourites = [a for t in ranked[25:] for a in t.artists if a not in shown][:3]
    assert favourites
    fake_spotify.add_user("ann-spotify", "Ann S")
    fake_spotify.set_top(
        "ann-spotify",
        artists=[*favourites, "An Artist Not In The Catalog"],
        tracks=[("0nbXyq5TXYPCO7pr3N8S4I", "A top track", [favourites[0]])],
    )
    user = await service.store.ensure_user("local", "ann")
    await link_by_paste(service.spotify, fake_spotify, user, "ann-spotify")

    personal = await service.handle_photo(ANN, HERE, photo("Colin_Powell"))  # the same photo again
    assert personal.emotion == emotion
    first = personal.tracks[:3]
    assert all(set(t.artists) & set(favourites) for t in first), [t.artists for t in personal.tracks]
    chosen = set(catalog.chosen_clusters(EMOTION_MOODS[emotion]))
    assert all(catalog.cluster_of(t.id) in chosen for t in personal.tracks)
    calls = fake_spotify.calls_to("GET", "/v1/me/top/*")
    assert [c.path for c in calls] == ["/v1/me/top/artists", "/v1/me/top/tracks"]
    assert calls[0].query["time_range"] == "medium_term" and calls[0].query["limit"] == "20"

    # At most once a day: the next photo uses the cache.
    await service.handle_photo(ANN, HERE, photo("Colin_Powell"))
    assert len(fake_spotify.calls_to("GET", "/v1/me/top/*")) == 2
    taste = await service.store.taste_get(user)
    assert taste is not None and taste.ok and taste.artists[: len(favourites)] == tuple(favourites)

    # Unlinking drops the cache; Bob, never linked, gets today's behaviour and no Spotify call.
    await service.unlink_spotify(ANN, HERE)
    assert await service.store.taste_get(user) is None
    bob = await service.handle_photo(BOB, HERE, photo("Colin_Powell", 1))
    assert not bob.error and len(fake_spotify.calls_to("GET", "/v1/me/top/*")) == 2


async def test_spotify_failures_fall_back_silently(
    service: MoodtunesService, fake_spotify: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.app.taste")
    user = await service.store.ensure_user("local", "ann")
    await link_by_paste(service.spotify, fake_spotify, user, "alice")
    fake_spotify.fail(
        "GET", "/v1/me/top/artists", 403, body={"error": {"status": 403, "message": "Forbidden"}}
    )
    reply = await service.handle_photo(ANN, HERE, photo("Tony_Blair"))
    assert not reply.error and len(reply.tracks) == 10
    assert "spotify taste unavailable" in caplog.text
    # Tried once today; no retry on the next photo.
    await service.handle_photo(ANN, HERE, photo("Tony_Blair", 1))
    assert len(fake_spotify.calls_to("GET", "/v1/me/top/artists")) == 1
    # Spotify down (503s) for Bob: retried briefly, then the ordinary songs.
    bob = await service.store.ensure_user("local", "bob")
    await link_by_paste(service.spotify, fake_spotify, bob, "bob")
    fake_spotify.fail("GET", "/v1/me/top/artists", 503, times=5)
    reply = await service.handle_photo(BOB, HERE, photo("Tony_Blair"))
    assert not reply.error and len(reply.tracks) == 10
    assert caplog.text.count("spotify taste unavailable") == 2


async def test_forget_deletes_the_journal_ratings_and_taste(
    service: MoodtunesService, fake_spotify: FakeSpotify
) -> None:
    question = await service.journal_command(ANN, HERE, "on")
    await service.press(ANN, HERE, data_of(question.buttons, Action.JOURNAL_YES))
    user = await service.store.ensure_user("local", "ann")
    await link_by_paste(service.spotify, fake_spotify, user, "alice")
    fake_spotify.set_top("alice", artists=["Drake"])
    reply = await service.handle_photo(ANN, HERE, photo("Tony_Blair"))
    await service.text_command(ANN, HERE, "/dislike 1")
    await service.text_command(ANN, HERE, "/like 2")
    assert await service.store.taste_get(user) is not None
    confirm = await service.forget(ANN, HERE)
    done = await service.press(ANN, HERE, data_of(confirm.buttons, Action.FORGET_YES))
    assert "1 mood journal entry(ies), 2 song rating(s) and your Spotify link" in done.text
    for table in ("journal_settings", "journal_entries", "track_feedback", "spotify_taste"):
        assert await service.store.db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    assert reply.tracks


async def test_the_console_rates_by_number_and_saves_the_chart(service: MoodtunesService) -> None:
    """In the terminal, songs are rated with /like N and /dislike N (no rating button), and the chart is
    written as a .png file."""
    out = io.StringIO()
    chat = ConsoleChat(service, out=out, user="cleo")
    path = str(sorted(data_path("faces", "lfw10", "Tony_Blair").iterdir())[0])
    question = await chat.handle("/journal on")
    assert question is not None and question.text == texts.JOURNAL_CONSENT
    chat.show(question)
    on = await chat.handle("yes")
    assert on is not None and on.text == texts.JOURNAL_ON
    reply = await chat.handle(path)
    assert reply is not None and len(reply.tracks) == 10
    chat.show(reply)
    assert texts.RATE_HINT in out.getvalue()
    assert texts.RATE_BUTTON not in [b.label for b in chat.buttons]
    disliked = await chat.handle("/dislike 1")
    assert disliked is not None and reply.tracks[0].name in disliked.text
    history = await chat.handle("/history")
    assert history is not None and history.photo is not None
    chat.show(history)
    saved = Path(out.getvalue().rsplit("(chart: ", 1)[1].split(")", 1)[0])
    assert saved.suffix == ".png" and saved.read_bytes().startswith(b"\x89PNG")
