"""Linking a Spotify account: real spotipy over HTTP to the loopback fake, callback server and pasting."""

from __future__ import annotations

import hashlib
import socket
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from core.config import ConfigError, Settings, load_settings
from core.spotify import (
    PendingLink,
    SpotifyLinkRefused,
    SpotifyNotConfigured,
    SpotifyService,
    SpotifyUserNotAllowed,
)
from core.spotify.callback_server import CallbackServer
from core.storage import Store, open_store
from tests.fakes.spotify import CLIENT_ID, FakeSpotify, fast_policy, link_by_paste


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


async def test_start_link_url_and_hashed_single_state(
    fake_spotify: FakeSpotify,
    spotify_service: SpotifyService,
    spotify_store: Store,
    spotify_settings: Settings,
) -> None:
    user = await spotify_store.ensure_user("telegram", "1", "Ann")
    url = await spotify_service.start_link(user)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert url.startswith(f"{fake_spotify.accounts_url}/authorize?")
    assert query["client_id"] == CLIENT_ID
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == spotify_settings.spotify_redirect_uri
    assert set(query["scope"].split()) == {
        "playlist-modify-private",
        "playlist-read-private",
        "user-top-read",
    }
    state = query["state"]
    assert len(state) >= 43
    rows = _rows(spotify_settings.db_path, "SELECT state_hash, user_id FROM spotify_oauth_states")
    assert rows == [(hashlib.sha256(state.encode()).hexdigest(), user)]
    # A second link gets a different state.
    again = parse_qs(urlsplit(await spotify_service.start_link(user)).query)["state"][0]
    assert again != state


async def test_pending_states_are_capped_per_user(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService, spotify_store: Store
) -> None:
    ann = await spotify_store.ensure_user("telegram", "1")
    ben = await spotify_store.ensure_user("telegram", "2")
    ben_url = await spotify_service.start_link(ben)
    urls = [await spotify_service.start_link(ann) for _ in range(7)]
    assert await spotify_store.spotify_count_states(ann) == 5
    with pytest.raises(SpotifyLinkRefused):  # the oldest were dropped
        await spotify_service.finish_link(ann, await fake_spotify.authorize(urls[0]))
    assert await spotify_service.finish_link(ann, await fake_spotify.authorize(urls[-1]))
    assert await spotify_service.finish_link(ben, await fake_spotify.authorize(ben_url, user="bob"))


async def test_link_by_pasting(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService, spotify_store: Store
) -> None:
    user = await spotify_store.ensure_user("telegram", "1", "Ann")
    url = await spotify_service.start_link(user)
    redirect = await fake_spotify.authorize(url, user="alice")
    assert redirect.startswith("http://127.0.0.1:8888/spotify/callback?")
    pasted = f"  <{redirect}>\n"  # people paste with spaces and brackets
    pending = await spotify_service.finish_link(user, pasted)
    assert (pending.user_id, pending.display_name, pending.spotify_id) == (user, "Alice A.", "alice")
    assert not await spotify_service.is_linked(user)  # not before the user confirms it in the chat
    assert await spotify_service.confirm_link(user, pending.confirm) == "Alice A."
    assert await spotify_service.is_linked(user)
    assert await spotify_service.linked_name(user) == "Alice A."
    assert fake_spotify.token_grants() == ["authorization_code"]
    assert await spotify_store.spotify_count_states() == 0


@dataclass
class Callback:
    service: SpotifyService
    store: Store
    redirect_uri: str
    notified: list[PendingLink]


@pytest.fixture
async def callback(fake_spotify: FakeSpotify, tmp_path: Path) -> AsyncIterator[Callback]:
    """A Spotify service whose redirect URI is a running :class:`CallbackServer` on a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    redirect_uri = f"http://127.0.0.1:{port}/spotify/callback"
    settings = fake_spotify.settings(tmp_path / "db.sqlite3", redirect_uri=redirect_uri)
    store = await open_store(settings.db)
    service = SpotifyService(settings, store, policy=fast_policy())
    notified: list[PendingLink] = []

    async def notify(pending: PendingLink) -> None:
        notified.append(pending)

    service.on_pending(notify)
    server = CallbackServer(service)
    assert (server.host, server.port, server.path) == ("127.0.0.1", port, "/spotify/callback")
    await server.start(sock=sock)
    try:
        yield Callback(service, store, redirect_uri, notified)
    finally:
        await server.close()
        await store.close()


async def test_link_through_callback_server(fake_spotify: FakeSpotify, callback: Callback) -> None:
    service, notified = callback.service, callback.notified
    user = await callback.store.ensure_user("discord", "42", "Dee")
    location = await fake_spotify.authorize(await service.start_link(user), user="bob")
    assert location.startswith(callback.redirect_uri + "?")
    async with aiohttp.ClientSession() as browser:
        async with browser.head(location) as page:  # link checkers must not spend the state
            assert page.status == 405
        async with browser.get(location) as page:
            body = await page.text()
            assert page.status == 200
            assert page.headers["Cache-Control"] == "no-store"
            assert page.headers["Referrer-Policy"] == "no-referrer"
        assert "Bob B." in body and "go back to the chat" in body and "not linked yet" in body
        assert [(p.user_id, p.display_name) for p in notified] == [(user, "Bob B.")]
        assert not await service.is_linked(user)  # the user confirms it in the chat first
        assert await service.confirm_link(user, notified[0].confirm) == "Bob B."
        assert await service.is_linked(user)
        # Reloading the page replays the state: refused, nothing changes, nobody notified again.
        async with browser.get(location) as page:
            assert page.status == 400
            assert "not valid" in await page.text()
        async with browser.get(callback.redirect_uri.replace("/spotify/callback", "/elsewhere")) as page:
            assert page.status == 404
    assert len(notified) == 1
    assert fake_spotify.token_grants() == ["authorization_code"]


async def test_callback_page_says_why_a_link_failed(fake_spotify: FakeSpotify, callback: Callback) -> None:
    service, store = callback.service, callback.store
    fake_spotify.add_user("carol", "Carol C.", registered=False)

    async def consent(external_id: str, **how: object) -> str:
        url = await service.start_link(await store.ensure_user("telegram", external_id))
        return await fake_spotify.authorize(url, **how)  # type: ignore[arg-type]

    denied, carol, down = await consent("1", deny=True), await consent("2", user="carol"), await consent("3")
    async with aiohttp.ClientSession() as browser:
        for location, status, words in (
            (denied, 400, "access_denied"),
            (carol, 403, "development mode"),
            (down, 502, "try again"),
        ):
            if location is down:
                fake_spotify.fail("POST", "/api/token", 503, times=10)  # the accounts service is down
            async with browser.get(location) as page:
                body = await page.text()
                assert page.status == status and "Spotify was not linked" in body and words in body
    assert callback.notified == []
    assert _rows(store.path, "SELECT COUNT(*) FROM spotify_tokens") == [(0,)]


async def test_callback_notifier_failure_does_not_undo_link(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService, spotify_store: Store
) -> None:
    async def broken(pending: PendingLink) -> None:
        raise RuntimeError("adapter is down")

    spotify_service.on_pending(broken)
    user = await spotify_store.ensure_user("telegram", "1")
    location = await fake_spotify.authorize(await spotify_service.start_link(user))
    params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    pending = await spotify_service.handle_callback(params)
    assert (pending.user_id, pending.display_name, pending.spotify_id) == (user, "Alice A.", "alice")
    assert await spotify_service.store.spotify_count_pending(user) == 1  # still waiting for the user
    await spotify_service.confirm_link(user, pending.confirm)
    assert await spotify_service.is_linked(user)


async def test_replayed_state_refused(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService, spotify_store: Store
) -> None:
    user = await spotify_store.ensure_user("telegram", "1")
    redirect = await fake_spotify.authorize(await spotify_service.start_link(user))
    await spotify_service.confirm_link(user, (await spotify_service.finish_link(user, redirect)).confirm)
    stored = await spotify_store.spotify_token(user)
    with pytest.raises(SpotifyLinkRefused, match="already used"):
        await spotify_service.finish_link(user, redirect)
    assert await spotify_store.spotify_token(user) == stored
    assert fake_spotify.token_grants() == ["authorization_code"]  # the code was not even tried again


async def test_expired_state_refused(fake_spotify: FakeSpotify, spotify_settings: Settings) -> None:
    now = [1_000_000.0]
    store = await open_store(spotify_settings.db)
    service = SpotifyService(spotify_settings, store, policy=fast_policy(), clock=lambda: now[0])
    try:
        late = await store.ensure_user("telegram", "1")
        on_time = await store.ensure_user("telegram", "2")
        late_url = await service.start_link(late)
        now[0] += 300
        on_time_url = await service.start_link(on_time)
        now[0] += 301  # 601 s after the first URL, 301 s after the second
        with pytest.raises(SpotifyLinkRefused, match="expired"):
            await service.finish_link(late, await fake_spotify.authorize(late_url))
        assert not await service.is_linked(late)
        assert fake_spotify.token_grants() == []
        pending = await service.finish_link(on_time, await fake_spotify.authorize(on_time_url, user="bob"))
        await service.confirm_link(on_time, pending.confirm)
        assert await service.is_linked(on_time)
        # An expired state is purged when the next link starts.
        stale = await service.start_link(late)
        now[0] += 601
        await service.start_link(on_time)
        assert await store.spotify_count_states() == 1
        with pytest.raises(SpotifyLinkRefused):
            await service.finish_link(late, await fake_spotify.authorize(stale))
    finally:
        await store.close()


async def test_foreign_state_refused(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService, spotify_store: Store
) -> None:
    ann = await spotify_store.ensure_user("telegram", "1", "Ann")
    eve = await spotify_store.ensure_user("telegram", "2", "Eve")
    redirect = await fake_spotify.authorize(await spotify_service.start_link(ann), user="alice")
    with pytest.raises(SpotifyLinkRefused, match="someone else"):
        await spotify_service.finish_link(eve, redirect)
    assert not await spotify_service.is_linked(eve)
    assert not await spotify_service.is_linked(ann)
    assert fake_spotify.token_grants() == []
    # The state is spent: a leaked redirect cannot be used by anyone afterwards.
    with pytest.raises(SpotifyLinkRefused):
        await spotify_service.finish_link(ann, redirect)


async def test_forged_or_missing_state_refused(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService, spotify_store: Store
) -> None:
    user = await spotify_store.ensure_user("telegram", "1")
    url = await spotify_service.start_link(user)
    redirect = await fake_spotify.authorize(url)
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    forged = f"http://127.0.0.1:8888/spotify/callback?code={code}&state=forged-state-value"
    with pytest.raises(SpotifyLinkRefused):
        await spotify_service.finish_link(user, forged)
    with pytest.raises(SpotifyLinkRefused, match="no Spotify link state"):
        await spotify_service.finish_link(user, f"http://127.0.0.1:8888/spotify/callback?code={code}")
    with pytest.raises(SpotifyLinkRefused, match="no Spotify link state"):
        await spotify_service.finish_link(user, "hello")
    assert not await spotify_service.is_linked(user)
    assert fake_spotify.token_grants() == []
    assert await spotify_store.spotify_count_states() == 1  # the real state is still pending


async def test_denied_consent_refused(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService, spotify_store: Store
) -> None:
    user = await spotify_store.ensure_user("telegram", "1")
    redirect = await fake_spotify.authorize(await spotify_service.start_link(user), deny=True)
    with pytest.raises(SpotifyLinkRefused, match="access_denied"):
        await spotify_service.finish_link(user, redirect)
    assert not await spotify_service.is_linked(user)


async def test_unregistered_user_of_development_app(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService, spotify_store: Store
) -> None:
    fake_spotify.add_user("carol", "Carol C.", registered=False)
    user = await spotify_store.ensure_user("telegram", "3")
    redirect = await fake_spotify.authorize(await spotify_service.start_link(user), user="carol")
    with pytest.raises(SpotifyUserNotAllowed) as info:
        await spotify_service.finish_link(user, redirect)
    message = str(info.value)
    assert "development mode" in message and "not on its list of users" in message
    assert "dashboard" in message
    assert not await spotify_service.is_linked(user)  # nothing stored


async def test_profile_timeout_is_retried(
    fake_spotify: FakeSpotify, spotify_settings: Settings, spotify_store: Store
) -> None:
    service = SpotifyService(spotify_settings, spotify_store, policy=fast_policy(timeout_s=0.2))
    fake_spotify.delay("GET", "/v1/me*", 0.5)
    user = await spotify_store.ensure_user("telegram", "1")
    assert await link_by_paste(service, fake_spotify, user) == "Alice A."
    assert [c.path for c in fake_spotify.calls_to("GET", "/v1/me*")] == ["/v1/me/", "/v1/me/"]


async def test_wrong_client_secret(fake_spotify: FakeSpotify, tmp_path: Path) -> None:
    settings = fake_spotify.settings(tmp_path / "db.sqlite3", spotify_client_secret="wrong")
    store = await open_store(settings.db)
    try:
        service = SpotifyService(settings, store, policy=fast_policy())
        user = await store.ensure_user("telegram", "1")
        redirect = await fake_spotify.authorize(await service.start_link(user))
        with pytest.raises(SpotifyNotConfigured, match="client id or secret"):
            await service.finish_link(user, redirect)
        assert not await service.is_linked(user)
    finally:
        await store.close()


async def test_missing_credentials_disable_spotify(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, db=tmp_path / "db.sqlite3")  # type: ignore[call-arg]
    assert not settings.spotify_enabled
    store = await open_store(settings.db)
    try:
        service = SpotifyService(settings, store)
        assert not service.enabled
        user = await store.ensure_user("telegram", "1")
        for call in (service.start_link(user), service.create_playlist(user, ["0" * 22], "happy")):
            with pytest.raises(SpotifyNotConfigured, match="MOODTUNES_SPOTIFY_CLIENT_ID"):
                await call
        assert not await service.is_linked(user)  # the rest still works
        assert not await service.unlink(user)
    finally:
        await store.close()


async def test_invalid_secret_key_disables_spotify(fake_spotify: FakeSpotify, tmp_path: Path) -> None:
    settings = fake_spotify.settings(tmp_path / "db.sqlite3", secret_key="not-a-fernet-key")
    store = await open_store(settings.db)
    try:
        service = SpotifyService(settings, store)
        assert not service.enabled
        with pytest.raises(SpotifyNotConfigured, match="moodtunes keygen"):
            await service.start_link(await store.ensure_user("telegram", "1"))
    finally:
        await store.close()


def test_localhost_redirect_uri_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOODTUNES_SPOTIFY_REDIRECT_URI", "http://localhost:8888/spotify/callback")
    with pytest.raises(ConfigError, match="never localhost"):
        load_settings()
    with pytest.raises(ValueError, match="reverse proxy"):
        from core.spotify.callback_server import listen_address

        listen_address("https://bot.example.org/spotify/callback")
