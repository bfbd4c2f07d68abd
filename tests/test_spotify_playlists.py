"""Playlists: batching and order, the retry policy (429, 5xx, timeouts), development-mode 403s."""

from __future__ import annotations

import asyncio
import random
import string
import time
from datetime import date

import pytest
import requests
from spotipy.exceptions import SpotifyException, SpotifyOauthError

from core.config import Settings
from core.spotify import (
    RetryPolicy,
    SpotifyNotLinked,
    SpotifyService,
    SpotifyUnavailable,
    SpotifyUserNotAllowed,
)
from core.spotify.oauth_state import parse_redirect
from core.spotify.playlists import batches, find_made, playlist_description, playlist_name, track_uris
from core.spotify.retry import Failure, classify, retry_after_s
from core.storage import Store
from tests.fakes.spotify import FakeSpotify, fast_policy, link_by_paste

ITEMS = "/v1/playlists/*/items"


def track_ids(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits
    return ["".join(rng.choice(alphabet) for _ in range(22)) for _ in range(n)]


async def _linked(service: SpotifyService, fake: FakeSpotify, spotify_user: str = "alice") -> int:
    user = await service.store.ensure_user("telegram", spotify_user)
    await link_by_paste(service, fake, user, spotify_user)
    return user


def _service(
    settings: Settings, store: Store, sleeps: list[float] | None = None, **policy: float
) -> SpotifyService:
    async def record(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return SpotifyService(
        settings,
        store,
        policy=fast_policy(**policy),
        today=lambda: date(2026, 11, 23),
        sleep=record if sleeps is not None else asyncio.sleep,
    )


async def test_playlist_of_120_tracks(fake_spotify: FakeSpotify, spotify_service: SpotifyService) -> None:
    user = await _linked(spotify_service, fake_spotify)
    ids = track_ids(120)
    url = await spotify_service.create_playlist(user, ids, "happy")
    [playlist] = fake_spotify.playlists.values()
    assert url == f"https://open.spotify.com/playlist/{playlist.id}"
    assert playlist.owner == "alice"
    assert playlist.public is False and playlist.collaborative is False
    assert playlist.name == "moodtunes · happy · 2026-11-23"
    assert "moodtunes" in playlist.description and "happy" in playlist.description
    assert "120 songs" in playlist.description
    adds = fake_spotify.calls_to("POST", ITEMS)
    assert len(adds) == 2
    assert [len(c.body) for c in adds] == [100, 20]
    assert playlist.add_batches == [
        [f"spotify:track:{i}" for i in ids[:100]],
        [f"spotify:track:{i}" for i in ids[100:]],
    ]
    assert playlist.items == [f"spotify:track:{i}" for i in ids]
    assert [c.path for c in fake_spotify.calls if c.path.startswith("/v1/")] == [
        "/v1/me/",
        "/v1/me/playlists",
        f"/v1/playlists/{playlist.id}/items",
        f"/v1/playlists/{playlist.id}/items",
    ]


async def test_exactly_100_tracks_is_one_add_and_duplicates_are_dropped(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    user = await _linked(spotify_service, fake_spotify)
    ids = track_ids(100)
    await spotify_service.create_playlist(user, [*ids, ids[0], f"spotify:track:{ids[1]}"], "calm")
    [playlist] = fake_spotify.playlists.values()
    assert len(fake_spotify.calls_to("POST", ITEMS)) == 1
    assert playlist.items == [f"spotify:track:{i}" for i in ids]


async def test_bad_track_ids_are_refused_before_any_call(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    user = await _linked(spotify_service, fake_spotify)
    before = len(fake_spotify.calls)
    with pytest.raises(ValueError, match="not a Spotify track id"):
        await spotify_service.create_playlist(user, ["short"], "happy")
    with pytest.raises(ValueError, match="no tracks"):
        await spotify_service.create_playlist(user, [], "happy")
    assert len(fake_spotify.calls) == before


async def test_not_linked(spotify_service: SpotifyService) -> None:
    user = await spotify_service.store.ensure_user("telegram", "9")
    with pytest.raises(SpotifyNotLinked):
        await spotify_service.create_playlist(user, track_ids(3), "happy")


async def test_429_waits_for_retry_after(fake_spotify: FakeSpotify, spotify_service: SpotifyService) -> None:
    user = await _linked(spotify_service, fake_spotify)
    fake_spotify.fail("POST", ITEMS, 429, headers={"Retry-After": "1"})
    ids = track_ids(120)
    started = time.monotonic()
    await spotify_service.create_playlist(user, ids, "happy")
    elapsed = time.monotonic() - started
    assert elapsed >= 1.0  # the real asyncio.sleep honoured Retry-After: 1
    assert elapsed < 4.0
    assert [c.status for c in fake_spotify.calls_to("POST", ITEMS)] == [429, 201, 201]
    [playlist] = fake_spotify.playlists.values()
    assert playlist.items == [f"spotify:track:{i}" for i in ids]


async def test_429_sleeps_exactly_retry_after(
    fake_spotify: FakeSpotify, spotify_settings: Settings, spotify_store: Store
) -> None:
    sleeps: list[float] = []
    service = _service(spotify_settings, spotify_store, sleeps)
    user = await _linked(service, fake_spotify)
    fake_spotify.fail("POST", "/v1/me/playlists", 429, headers={"Retry-After": "3"}, times=2)
    await service.create_playlist(user, track_ids(5), "happy")
    assert sleeps == [3.0, 3.0]
    assert [c.status for c in fake_spotify.calls_to("POST", "/v1/me/playlists")] == [429, 429, 201]


async def test_429_with_a_long_retry_after_gives_up_at_once(
    fake_spotify: FakeSpotify, spotify_settings: Settings, spotify_store: Store
) -> None:
    sleeps: list[float] = []
    service = _service(spotify_settings, spotify_store, sleeps)
    user = await _linked(service, fake_spotify)
    fake_spotify.fail("POST", "/v1/me/playlists", 429, headers={"Retry-After": "7200"})
    with pytest.raises(SpotifyUnavailable, match="wait 2 hours"):
        await service.create_playlist(user, track_ids(5), "happy")
    assert sleeps == []


async def test_5xx_retries_with_backoff(
    fake_spotify: FakeSpotify, spotify_settings: Settings, spotify_store: Store
) -> None:
    sleeps: list[float] = []
    service = _service(spotify_settings, spotify_store, sleeps)
    user = await _linked(service, fake_spotify)
    fake_spotify.fail("POST", "/v1/me/playlists", 503, times=2)
    await service.create_playlist(user, track_ids(5), "happy")
    assert sleeps == [0.01, 0.02]
    assert [c.status for c in fake_spotify.calls_to("POST", "/v1/me/playlists")] == [503, 503, 201]
    assert len(fake_spotify.playlists) == 1


async def test_5xx_gives_up_with_a_clear_message(
    fake_spotify: FakeSpotify, spotify_settings: Settings, spotify_store: Store
) -> None:
    sleeps: list[float] = []
    service = _service(spotify_settings, spotify_store, sleeps)
    user = await _linked(service, fake_spotify)
    fake_spotify.fail("POST", "/v1/me/playlists", 502, times=10)
    with pytest.raises(SpotifyUnavailable) as info:
        await service.create_playlist(user, track_ids(5), "happy")
    assert str(info.value) == (
        "Spotify is not answering right now (I tried 3 times to create the playlist); "
        "please try again in a few minutes."
    )
    assert len(fake_spotify.calls_to("POST", "/v1/me/playlists")) == 3
    assert sleeps == [0.01, 0.02]
    assert await service.is_linked(user)  # a Spotify outage does not unlink anyone


async def test_timeouts_retry_then_give_up(
    fake_spotify: FakeSpotify, spotify_settings: Settings, spotify_store: Store
) -> None:
    service = _service(spotify_settings, spotify_store, timeout_s=0.2)
    user = await _linked(service, fake_spotify)
    fake_spotify.delay("POST", "/v1/me/playlists", 0.5, times=3)
    started = time.monotonic()
    with pytest.raises(SpotifyUnavailable, match="tried 3 times"):
        await service.create_playlist(user, track_ids(5), "happy")
    assert time.monotonic() - started < 3.0
    assert len(fake_spotify.calls_to("POST", "/v1/me/playlists")) == 3


async def test_token_endpoint_outage_is_retried(
    fake_spotify: FakeSpotify, spotify_settings: Settings, spotify_store: Store
) -> None:
    sleeps: list[float] = []
    service = _service(spotify_settings, spotify_store, sleeps)
    user = await _linked(service, fake_spotify)
    fake_spotify.expire_access_tokens()
    fake_spotify.fail("POST", "/api/token", 500, body={"error": "server_error"})
    await service.create_playlist(user, track_ids(5), "happy")
    assert await service.is_linked(user)
    assert len(sleeps) == 1


async def test_lost_add_response_does_not_duplicate_tracks(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    user = await _linked(spotify_service, fake_spotify)
    fake_spotify.fail("POST", ITEMS, 502, after_applying=True)  # added, but the answer was lost
    ids = track_ids(120)
    await spotify_service.create_playlist(user, ids, "happy")
    [playlist] = fake_spotify.playlists.values()
    assert playlist.items == [f"spotify:track:{i}" for i in ids]
    assert [c.status for c in fake_spotify.calls_to("POST", ITEMS)] == [502, 201]
    assert len(fake_spotify.calls_to("GET", ITEMS)) == 1  # the check before the retry


async def test_lost_create_response_does_not_make_a_second_playlist(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    user = await _linked(spotify_service, fake_spotify)
    fake_spotify.fail("POST", "/v1/me/playlists", 502, after_applying=True)  # made, answer lost
    ids = track_ids(30)
    url = await spotify_service.create_playlist(user, ids, "happy")
    [playlist] = fake_spotify.playlists.values()
    assert url == f"https://open.spotify.com/playlist/{playlist.id}"
    assert playlist.items == [f"spotify:track:{i}" for i in ids]
    assert [c.status for c in fake_spotify.calls_to("POST", "/v1/me/playlists")] == [502]
    assert len(fake_spotify.calls_to("GET", "/v1/me/playlists")) == 1  # the check before the retry


async def test_lost_create_found_by_name_when_listings_carry_no_description(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    user = await _linked(spotify_service, fake_spotify)
    older = await spotify_service.create_playlist(user, track_ids(5, seed=1), "happy")  # same name, full
    fake_spotify.list_descriptions = False
    fake_spotify.fail("POST", "/v1/me/playlists", 502, after_applying=True)
    url = await spotify_service.create_playlist(user, track_ids(5, seed=2), "happy")
    assert url != older and len(fake_spotify.playlists) == 2
    assert [c.status for c in fake_spotify.calls_to("POST", "/v1/me/playlists")] == [201, 502]


def test_find_made_prefers_the_marker_then_an_empty_namesake() -> None:
    def listed(pid: str, name: str, description: str | None, total: int) -> dict[str, object]:
        return {"id": pid, "name": name, "description": description, "items": {"total": total}}

    name, mark = "moodtunes · happy · 2026-11-23", "[mt 0badcafe]"
    page = {
        "items": [
            listed("full", name, None, 10),
            listed("empty", name, None, 0),
            listed("marked", name, f"Made by moodtunes. {mark}", 0),
        ]
    }
    assert (find_made(page, mark, name) or {})["id"] == "marked"
    assert (find_made(page, "[mt 11111111]", name) or {})["id"] == "empty"
    assert find_made({"items": page["items"][:1]}, mark, name) is None  # a full namesake is not ours
    assert find_made({"items": [{"name": name, "tracks": {"total": 0}}]}, mark, name) is not None
    assert find_made(None, mark, name) is None and find_made({"items": None}, mark, name) is None


async def test_failed_create_is_retried_without_taking_an_older_playlist(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    user = await _linked(spotify_service, fake_spotify)
    first = await spotify_service.create_playlist(user, track_ids(5, seed=1), "happy")
    fake_spotify.fail("POST", "/v1/me/playlists", 503)  # refused before anything was made
    second = await spotify_service.create_playlist(user, track_ids(5, seed=2), "happy")
    assert second != first  # same name and day, but not the same request
    assert len(fake_spotify.playlists) == 2
    assert [c.status for c in fake_spotify.calls_to("POST", "/v1/me/playlists")] == [201, 503, 201]
    made = fake_spotify.playlists[second.rsplit("/", 1)[1]]
    assert made.items == [f"spotify:track:{i}" for i in track_ids(5, seed=2)]


async def test_user_not_added_to_development_app(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    user = await _linked(spotify_service, fake_spotify)
    fake_spotify.users["alice"].registered = False  # the operator removed her from the dashboard
    with pytest.raises(SpotifyUserNotAllowed) as info:
        await spotify_service.create_playlist(user, track_ids(5), "happy")
    assert str(info.value) == (
        "This bot's Spotify app is in development mode and your Spotify account is not on its list of "
        "users; ask the bot's operator to add you in the Spotify developer dashboard (5 users at most)."
    )
    assert len(fake_spotify.calls_to("POST", "/v1/me/playlists")) == 1  # not retried
    assert await spotify_service.is_linked(user)


async def test_spotify_calls_leave_the_event_loop_free(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    user = await _linked(spotify_service, fake_spotify)
    fake_spotify.delay("POST", "/v1/me/playlists", 0.4)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await spotify_service.create_playlist(user, track_ids(5), "happy")
    finally:
        task.cancel()
    assert ticks >= 10


# Pure helpers ---------------------------------------------------------------------------------


def test_names_batches_and_uris() -> None:
    assert playlist_name("happy", date(2026, 11, 23)) == "moodtunes · happy · 2026-11-23"
    assert playlist_name("  very\n  sad ", date(2026, 1, 2)) == "moodtunes · very sad · 2026-01-02"
    assert playlist_name("", date(2026, 1, 2)) == "moodtunes · mixed · 2026-01-02"
    assert "\n" not in playlist_description("happy", 1) and "1 song " in playlist_description("happy", 1)
    assert [len(b) for b in batches([str(i) for i in range(201)])] == [100, 100, 1]
    assert batches([]) == []
    tid = "4uLU6hMCjMI75M1A2tKUQC"
    assert track_uris([tid, f"spotify:track:{tid}", f" {tid} "]) == [f"spotify:track:{tid}"]
    for bad in ("spotify:album:4uLU6hMCjMI75M1A2tKUQC", "4uLU6hMCjMI75M1A2tKUQ!", ""):
        with pytest.raises(ValueError):
            track_uris([bad])


def test_parse_redirect() -> None:
    got = parse_redirect(" <http://127.0.0.1:8888/spotify/callback?code=abc&state=xyz#_=_> ")
    assert (got.state, got.code, got.error) == ("xyz", "abc", None)
    assert parse_redirect("?state=s&error=access_denied").error == "access_denied"
    assert parse_redirect("code=c&state=s").code == "c"
    assert parse_redirect("nothing here").state is None


def test_classify_and_retry_after() -> None:
    def api(status: int, msg: str = "x", headers: dict[str, str] | None = None) -> SpotifyException:
        return SpotifyException(status, -1, msg, headers=headers)

    assert classify(api(429)) is Failure.RATE_LIMITED
    assert classify(api(500)) is Failure.TRANSIENT and classify(api(504)) is Failure.TRANSIENT
    assert classify(api(401)) is Failure.UNAUTHORIZED
    assert classify(api(403, "url:\n User not registered in the Developer Dashboard")) is Failure.NOT_ALLOWED
    assert classify(api(403, "url:\n User not approved for app")) is Failure.NOT_ALLOWED
    assert classify(api(403, "Insufficient client scope")) is Failure.FORBIDDEN
    assert classify(api(404)) is Failure.OTHER
    assert classify(SpotifyOauthError("x", error="invalid_grant")) is Failure.REVOKED
    assert classify(SpotifyOauthError("x", error="invalid_client")) is Failure.BAD_CLIENT
    assert classify(SpotifyOauthError("x", error="Internal Server Error")) is Failure.TRANSIENT
    outage = {"status": 503, "message": "Service unavailable"}  # a JSON object where the code should be
    assert classify(SpotifyOauthError("x", error=outage)) is Failure.TRANSIENT  # type: ignore[arg-type]
    assert classify(SpotifyOauthError("x", error=None)) is Failure.TRANSIENT
    assert classify(requests.exceptions.ReadTimeout()) is Failure.TRANSIENT
    assert classify(requests.exceptions.ConnectionError()) is Failure.TRANSIENT
    assert classify(ValueError()) is Failure.OTHER
    assert retry_after_s({"Retry-After": "2"}) == 2.0
    assert retry_after_s({"retry-after": "1.5"}) == 1.5
    assert retry_after_s({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert retry_after_s({"Retry-After": "soon"}) is None
    assert retry_after_s({}) is None and retry_after_s(None) is None
    policy = RetryPolicy(backoff_s=0.5, backoff_max_s=3.0)
    assert [policy.delay(a) for a in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
