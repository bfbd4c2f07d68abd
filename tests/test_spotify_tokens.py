"""Tokens at rest: encrypted, refreshed, revoked, deleted, and never crossed between users."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import SecretStr

from core.config import Settings
from core.spotify import (
    SpotifyNotLinked,
    SpotifyRelinkNeeded,
    SpotifyService,
    generate_key,
)
from core.spotify.token_cache import EncryptedTokenCache, TokenCipher, TokenUnreadable
from core.storage import Store, open_store
from tests.fakes.spotify import SECRET_KEY, FakeSpotify, fast_policy, link_by_paste

TRACKS = ["4uLU6hMCjMI75M1A2tKUQC", "0nbXyq5TXYPCO7pr3N8S4I", "696DnlkuDOXcMAnKlTgXXK"]


async def _stored_token(store: Store, user_id: int) -> dict[str, object]:
    blob = await store.spotify_token(user_id)
    assert blob is not None
    return TokenCipher(SECRET_KEY).decrypt(blob)


def _raw_bytes(db: Path) -> bytes:
    """Every byte SQLite keeps for the database: the file, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")) if p.is_file())


async def test_sqlite_file_holds_no_plain_token(
    fake_spotify: FakeSpotify, spotify_settings: Settings
) -> None:
    store = await open_store(spotify_settings.db)
    service = SpotifyService(spotify_settings, store, policy=fast_policy())
    user = await store.ensure_user("telegram", "1", "Ann")
    url = await service.start_link(user)
    pending_state = url.split("state=")[1].split("&")[0]
    other = await store.ensure_user("telegram", "2", "Ben")
    await link_by_paste(service, fake_spotify, other, "bob")
    await link_by_paste(service, fake_spotify, user, "alice")
    fake_spotify.expire_access_tokens()  # force a refresh, so a refreshed token is written too
    await service.create_playlist(user, TRACKS, "happy")
    secrets = [
        *fake_spotify.access_tokens("alice"),
        *fake_spotify.refresh_tokens("alice"),
        *fake_spotify.access_tokens("bob"),
        *fake_spotify.refresh_tokens("bob"),
    ]
    assert len(secrets) == 3  # bob's access token was expired above
    stored = await _stored_token(store, user)
    assert stored["access_token"] in secrets and stored["refresh_token"] in secrets
    for raw in (_raw_bytes(spotify_settings.db_path), None):
        if raw is None:  # again after the WAL is checkpointed into the main file
            await store.close()
            raw = _raw_bytes(spotify_settings.db_path)
        for secret in [*secrets, pending_state, "Alice A.", "Bob B."]:
            assert secret.encode() not in raw


async def test_token_refreshed_when_expired(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    fake_spotify.token_lifetime_s = 30  # spotipy treats tokens expiring within 60 s as expired
    user = await spotify_service.store.ensure_user("telegram", "1")
    await link_by_paste(spotify_service, fake_spotify, user)
    before = await _stored_token(spotify_service.store, user)
    await spotify_service.create_playlist(user, TRACKS, "happy")
    assert fake_spotify.token_grants()[:2] == ["authorization_code", "refresh_token"]
    after = await _stored_token(spotify_service.store, user)
    assert after["access_token"] != before["access_token"]
    assert after["refresh_token"] == before["refresh_token"]  # Spotify sent no new one: kept
    assert after["access_token"] in fake_spotify.access_tokens("alice")
    # Every Web API call ran with a valid token: no 401 on the way.
    assert all(c.status in (200, 201) for c in fake_spotify.calls if c.path.startswith("/v1/"))


async def test_rotated_refresh_token_is_stored(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    fake_spotify.rotate_refresh_tokens = True
    user = await spotify_service.store.ensure_user("telegram", "1")
    await link_by_paste(spotify_service, fake_spotify, user)
    fake_spotify.expire_access_tokens()
    await spotify_service.create_playlist(user, TRACKS, "calm")
    stored = await _stored_token(spotify_service.store, user)
    assert fake_spotify.refresh_tokens("alice") == [stored["refresh_token"]]
    fake_spotify.expire_access_tokens()
    await spotify_service.create_playlist(user, TRACKS, "calm")  # the rotated token works
    assert fake_spotify.token_grants().count("refresh_token") == 2


async def test_server_side_expiry_refreshes_once(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    user = await spotify_service.store.ensure_user("telegram", "1")
    await link_by_paste(spotify_service, fake_spotify, user)
    fake_spotify.expire_access_tokens("alice")  # the client still thinks its token is fresh
    url = await spotify_service.create_playlist(user, TRACKS, "happy")
    assert url.startswith("https://open.spotify.com/playlist/")
    assert [c.status for c in fake_spotify.calls_to("POST", "/v1/me/playlists")] == [401, 201]
    assert fake_spotify.token_grants() == ["authorization_code", "refresh_token"]


@pytest.mark.parametrize("how", ["revoked", "revoked-and-expired"])
async def test_revoked_refresh_token_unlinks(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService, how: str
) -> None:
    if how == "revoked-and-expired":
        fake_spotify.token_lifetime_s = 30  # refreshed before the first call: invalid_grant at once
    user = await spotify_service.store.ensure_user("telegram", "1")
    await link_by_paste(spotify_service, fake_spotify, user)
    fake_spotify.revoke_refresh_tokens("alice")  # the user removed the app at spotify.com
    with pytest.raises(SpotifyRelinkNeeded) as info:
        await spotify_service.create_playlist(user, TRACKS, "happy")
    assert "link Spotify again" in str(info.value)
    assert not await spotify_service.is_linked(user)
    assert fake_spotify.playlists == {}
    with pytest.raises(SpotifyNotLinked):
        await spotify_service.create_playlist(user, TRACKS, "happy")
    # Linking again works.
    await link_by_paste(spotify_service, fake_spotify, user)
    assert await spotify_service.create_playlist(user, TRACKS, "happy")


async def test_two_users_tokens_never_cross(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    fake_spotify.token_lifetime_s = 30  # both refresh, concurrently, on every playlist
    store = spotify_service.store
    ann = await store.ensure_user("telegram", "1", "Ann")
    ben = await store.ensure_user("discord", "1", "Ben")
    names = await asyncio.gather(
        link_by_paste(spotify_service, fake_spotify, ann, "alice"),
        link_by_paste(spotify_service, fake_spotify, ben, "bob"),
    )
    assert names == ["Alice A.", "Bob B."]
    urls = await asyncio.gather(
        *(
            spotify_service.create_playlist(user, TRACKS, mood)
            for user, mood in [(ann, "happy"), (ben, "sad"), (ann, "calm"), (ben, "angry")]
        )
    )
    owner_of = {p.id: p.owner for p in fake_spotify.playlists.values()}
    owners = [owner_of[url.rsplit("/", 1)[1]] for url in urls]
    assert owners == ["alice", "bob", "alice", "bob"]
    moods = {p.owner + ":" + p.name.split(" · ")[1] for p in fake_spotify.playlists.values()}
    assert moods == {"alice:happy", "alice:calm", "bob:sad", "bob:angry"}
    ann_token = await _stored_token(store, ann)
    ben_token = await _stored_token(store, ben)
    assert ann_token["refresh_token"] in fake_spotify.refresh_tokens("alice")
    assert ben_token["refresh_token"] in fake_spotify.refresh_tokens("bob")
    assert await spotify_service.linked_name(ann) == "Alice A."
    assert await spotify_service.linked_name(ben) == "Bob B."
    # Unlinking one leaves the other alone.
    assert await spotify_service.unlink(ann)
    assert not await spotify_service.unlink(ann)
    assert await spotify_service.is_linked(ben)
    with pytest.raises(SpotifyNotLinked):
        await spotify_service.create_playlist(ann, TRACKS, "happy")
    await spotify_service.create_playlist(ben, TRACKS, "happy")


async def test_forget_deletes_tokens_and_pending_states(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService
) -> None:
    store = spotify_service.store
    ann = await store.ensure_user("telegram", "1", "Ann")
    ben = await store.ensure_user("telegram", "2", "Ben")
    await link_by_paste(spotify_service, fake_spotify, ann)
    await link_by_paste(spotify_service, fake_spotify, ben, "bob")
    await spotify_service.start_link(ann)  # a pending state too
    deleted = await store.delete_user(ann)
    assert deleted.spotify_tokens == 1
    assert await store.spotify_token(ann) is None
    assert await store.spotify_count_states(ann) == 0
    assert await spotify_service.is_linked(ben)


async def test_key_rotation_keeps_links_and_lost_key_needs_relink(
    fake_spotify: FakeSpotify, spotify_settings: Settings, spotify_store: Store
) -> None:
    user = await spotify_store.ensure_user("telegram", "1")
    await link_by_paste(
        SpotifyService(spotify_settings, spotify_store, policy=fast_policy()), fake_spotify, user
    )

    def with_key(key: str) -> SpotifyService:
        settings = spotify_settings.model_copy(update={"secret_key": SecretStr(key)})
        return SpotifyService(settings, spotify_store, policy=fast_policy())

    # MOODTUNES_SECRET_KEY="new,old": the new key encrypts, the old one still reads existing links.
    rotated = with_key(f"{generate_key()},{SECRET_KEY}")
    fake_spotify.expire_access_tokens()
    assert await rotated.create_playlist(user, TRACKS, "happy")
    assert await rotated.linked_name(user) == "Alice A."
    # A key that reads nothing: the link is dropped with a clear message.
    lost = with_key(generate_key())
    with pytest.raises(SpotifyRelinkNeeded, match="key changed"):
        await lost.create_playlist(user, TRACKS, "happy")
    assert not await lost.is_linked(user)


def test_cipher_roundtrip_and_bad_keys() -> None:
    cipher = TokenCipher(SECRET_KEY)
    blob = cipher.encrypt({"access_token": "abc", "n": 1})
    assert b"abc" not in blob
    assert cipher.decrypt(blob) == {"access_token": "abc", "n": 1}
    with pytest.raises(TokenUnreadable):
        TokenCipher(generate_key()).decrypt(blob)
    with pytest.raises(TokenUnreadable):
        cipher.decrypt(b"garbage")
    for bad in ("", "short", "ä" * 44):
        with pytest.raises(ValueError):
            TokenCipher(bad)


async def test_cache_handler_refuses_the_event_loop(spotify_store: Store) -> None:
    cache = EncryptedTokenCache(spotify_store, 1, TokenCipher(SECRET_KEY), asyncio.get_running_loop())
    with pytest.raises(RuntimeError, match="worker thread"):
        cache.get_cached_token()
    assert await asyncio.to_thread(cache.get_cached_token) is None
