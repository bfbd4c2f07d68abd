"""A fake Spotify (accounts service and Web API) on 127.0.0.1, for tests with the real spotipy.

One aiohttp app serves both halves on a random free loopback port:

* accounts: ``GET /authorize`` (the consent page: answers at once with a 302 to the redirect URI
  carrying ``code`` and ``state``, or ``error=access_denied``) and ``POST /api/token`` (grants
  ``authorization_code`` and ``refresh_token``, client authenticated by HTTP Basic or form fields);
* Web API under ``/v1``: ``GET /me``, ``GET`` and ``POST /me/playlists``, ``POST`` and
  ``GET /playlists/{id}/items``, ``GET /me/top/artists`` and ``GET /me/top/tracks`` (paging objects
  of full artist / track objects, ``time_range`` short_term, medium_term or long_term, ``limit``
  1-50, ``offset``; scope ``user-top-read``).

It behaves like Spotify where that matters to us: ``localhost`` redirect URIs are refused, codes are
single-use and bound to their redirect URI, access tokens expire, refresh tokens can be revoked
(``invalid_grant``), users of a development-mode app must be registered (403 "User not registered in the
Developer Dashboard"), private playlists need the ``playlist-modify-private`` scope to be made and
``playlist-read-private`` to be listed or read, top artists and tracks need ``user-top-read``, at most
100 items per add. Tests steer it directly::

    async with FakeSpotify() as fake:                       # or the ``fake_spotify`` fixture
        settings = fake.settings(tmp_path / "db.sqlite3")   # MOODTUNES_* pointed at the fake
        fake.fail("POST", "/v1/playlists/*/items", 429, headers={"Retry-After": "1"})
        fake.delay("GET", "/v1/me", 2.0)                    # slower than the client's timeout
        fake.revoke_refresh_tokens("alice"); fake.expire_access_tokens("alice")
        redirect = await fake.authorize(auth_url, user="bob")   # the browser's consent, returns Location
        fake.calls_to("POST", "/v1/playlists/*/items")     # every request is recorded
        fake.playlists[pid].items                            # what ended up on "Spotify"
        fake.set_top("alice", artists=["Koffee"], tracks=[("0nbXyq5TXYPCO7pr3N8S4I", "Box", ["Ricch"])])

For synchronous tests (a CLI run with ``asyncio.run``), :meth:`FakeSpotify.in_thread` serves the fake
from its own event loop in a daemon thread. At the bottom: fixtures ``fake_spotify``, ``spotify_settings``,
``spotify_store``, ``spotify_service`` (fast retries, fixed date) and ``no_proxy_env``, plus the helpers
:func:`fast_policy` and :func:`link_by_paste` (authorise, then confirm as the user would). A test
module imports the fixtures it needs by their function names
(``from tests.fakes.spotify import fake_spotify_fixture  # noqa: F401``), or the root conftest lists this
module in ``pytest_plugins``. :attr:`FakeSpotify.issued` keeps every code and token handed out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fnmatch
import hashlib
import json
import secrets
import string
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest
import pytest_asyncio
import requests
from aiohttp import web

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
SECRET_KEY = "PUhbjWUFOVaJa3M6dwmD1JzS4wMGiojA9RAAmrlgcy4="
"""A fixed Fernet key for tests (never use it anywhere else)."""

DEFAULT_REDIRECT = "http://127.0.0.1:8888/spotify/callback"
_BASE62 = string.ascii_letters + string.digits


def spotify_id() -> str:
    """A random 22-character base-62 id, like Spotify's."""
    return "".join(secrets.choice(_BASE62) for _ in range(22))


@dataclass
class FakeUser:
    """A Spotify account. ``registered=False``: not on the development-mode app's user list."""

    id: str
    display_name: str
    registered: bool = True


@dataclass
class FakePlaylist:
    """A playlist made on the fake; ``add_batches`` keeps the URIs of each add request in order."""

    id: str
    owner: str
    name: str
    description: str
    public: bool
    collaborative: bool
    items: list[str] = field(default_factory=list)
    add_batches: list[list[str]] = field(default_factory=list)

    def as_json(self, base: str) -> dict[str, Any]:
        """The playlist object as the Web API returns it."""
        return {
            "id": self.id,
            "type": "playlist",
            "name": self.name,
            "description": self.description,
            "public": self.public,
            "collaborative": self.collaborative,
            "owner": {"id": self.owner, "type": "user"},
            "uri": f"spotify:playlist:{self.id}",
            "href": f"{base}/v1/playlists/{self.id}",
            "external_urls": {"spotify": f"https://open.spotify.com/playlist/{self.id}"},
            "items": {"total": len(self.items), "href": f"{base}/v1/playlists/{self.id}/items"},
            "snapshot_id": f"snap{len(self.add_batches)}",
        }


@dataclass(frozen=True)
class FakeArtist:
    """An artist on the fake (ids are made from the name, so the same name is the same artist)."""

    name: str

    @property
    def id(self) -> str:
        """A stable 22-character base-62 id."""
        digest = int.from_bytes(hashlib.sha256(self.name.encode()).digest(), "big")
        out = ""
        for _ in range(22):
            digest, rest = divmod(digest, 62)
            out += _BASE62[rest]
        return out

    def simplified(self, base: str) -> dict[str, Any]:
        """The simplified artist object (inside a track)."""
        return {
            "id": self.id,
            "name": self.name,
            "type": "artist",
            "uri": f"spotify:artist:{self.id}",
            "href": f"{base}/v1/artists/{self.id}",
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{self.id}"},
        }

    def as_json(self, base: str) -> dict[str, Any]:
        """The full artist object, as ``/me/top/artists`` lists it."""
        return {
            **self.simplified(base),
            "followers": {"href": None, "total": 1000},
            "genres": [],
            "images": [],
            "popularity": 50,
        }


@dataclass(frozen=True)
class FakeTrack:
    """A track on the fake: bare id, name and artist names."""

    id: str
    name: str
    artists: tuple[str, ...]

    def as_json(self, base: str) -> dict[str, Any]:
        """The full track object, as ``/me/top/tracks`` lists it."""
        artists = [FakeArtist(a).simplified(base) for a in self.artists]
        return {
            "id": self.id,
            "name": self.name,
            "type": "track",
            "uri": f"spotify:track:{self.id}",
            "href": f"{base}/v1/tracks/{self.id}",
            "external_urls": {"spotify": f"https://open.spotify.com/track/{self.id}"},
            "artists": artists,
            "album": {"id": spotify_id(), "name": self.name, "type": "album", "artists": artists},
            "duration_ms": 200_000,
            "explicit": False,
            "popularity": 50,
            "track_number": 1,
            "disc_number": 1,
            "is_local": False,
        }


TIME_RANGES = ("short_term", "medium_term", "long_term")


@dataclass
class Call:
    """One request the fake answered. ``grant`` is the token grant type; ``user`` the token's owner."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    user: str | None = None
    grant: str | None = None


@dataclass
class Rule:
    """A scripted answer for requests matching ``method`` and the ``path`` glob, ``times`` times.

    With ``status``: answer that instead of the real thing (or after it, with ``after_applying``).
    With ``delay_s`` only: wait, then answer normally (a client with a shorter timeout sees a timeout).
    """

    method: str
    path: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay_s: float = 0.0
    times: int = 1
    after_applying: bool = False
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether the rule applies (and has uses left)."""
        return self.times > 0 and self.method in (method, "*") and fnmatch.fnmatchcase(path, self.path)


@dataclass
class _Token:
    user: str
    scope: str
    expires_at: float


class FakeSpotify:
    """The fake service; ``await start()`` / ``await close()`` or ``async with``. See the module docstring.

    Args:
        client_id, client_secret: the app's credentials the token endpoint accepts.
        token_lifetime_s: ``expires_in`` of new access tokens (under 60 s, spotipy refreshes at once).
        rotate_refresh_tokens: hand out a new refresh token on every refresh (and revoke the old one).
        redirect_uris: the redirect URIs "registered in the dashboard"; empty: any but localhost.
    """

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        token_lifetime_s: int = 3600,
        rotate_refresh_tokens: bool = False,
        redirect_uris: set[str] | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime_s = token_lifetime_s
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.redirect_uris: set[str] = set(redirect_uris or ())
        self.users: dict[str, FakeUser] = {}
        self.browser_user = "alice"
        """Who is logged in to Spotify in the fake browser (:meth:`authorize` without ``user``)."""
        self.playlists: dict[str, FakePlaylist] = {}
        self.top_artists: dict[tuple[str, str], list[FakeArtist]] = {}
        """(user, time_range) -> the user's top artists, most listened first (see :meth:`set_top`)."""
        self.top_tracks: dict[tuple[str, str], list[FakeTrack]] = {}
        self.list_descriptions = True
        """False: ``GET /me/playlists`` answers ``description: null``, as Spotify's docs allow."""
        self.calls: list[Call] = []
        self.rules: list[Rule] = []
        self.issued: list[str] = []
        """Every code, access token and refresh token the fake handed out (for "never logged" checks)."""
        self._codes: dict[str, tuple[str, str, str]] = {}  # code -> (user, redirect_uri, scope)
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, tuple[str, str]] = {}  # refresh token -> (user, scope)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.add_user("alice", "Alice A.")
        self.add_user("bob", "Bob B.")

    # Life cycle ---------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeSpotify:
        """Listen on ``host`` (loopback) and a free port; returns self."""
        if host not in ("127.0.0.1", "::1"):
            raise ValueError("the fake Spotify listens on loopback only")
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/api/token", self._token)
        app.router.add_get("/v1/me", self._me)
        app.router.add_get("/v1/me/", self._me)
        app.router.add_get("/v1/me/playlists", self._list_playlists)
        app.router.add_post("/v1/me/playlists", self._create_playlist)
        app.router.add_post("/v1/playlists/{playlist_id}/items", self._add_items)
        app.router.add_get("/v1/playlists/{playlist_id}/items", self._get_items)
        app.router.add_get("/v1/me/top/{kind}", self._top)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeSpotify:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextmanager
    def in_thread(self) -> Iterator[FakeSpotify]:
        """Serve from a private event loop in a daemon thread (for synchronous tests)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-spotify", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(10)
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    # Addresses and settings ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def accounts_url(self) -> str:
        """For ``MOODTUNES_SPOTIFY_ACCOUNTS_URL``."""
        return self.base_url

    @property
    def api_url(self) -> str:
        """For ``MOODTUNES_SPOTIFY_API_URL``."""
        return f"{self.base_url}/v1/"

    def env(self, redirect_uri: str = DEFAULT_REDIRECT) -> dict[str, str]:
        """``MOODTUNES_*`` variables pointing the app at this fake (credentials and a test key included)."""
        return {
            "MOODTUNES_SPOTIFY_CLIENT_ID": self.client_id,
            "MOODTUNES_SPOTIFY_CLIENT_SECRET": self.client_secret,
            "MOODTUNES_SPOTIFY_REDIRECT_URI": redirect_uri,
            "MOODTUNES_SPOTIFY_ACCOUNTS_URL": self.accounts_url,
            "MOODTUNES_SPOTIFY_API_URL": self.api_url,
            "MOODTUNES_SECRET_KEY": SECRET_KEY,
        }

    def settings(
        self, db: Path, redirect_uri: str = "http://127.0.0.1:8888/spotify/callback", **more: Any
    ) -> Any:
        """``core.config.Settings`` pointed at this fake (no environment, no ``.env`` file)."""
        from core.config import Settings

        values: dict[str, Any] = {
            "db": db,
            "spotify_client_id": self.client_id,
            "spotify_client_secret": self.client_secret,
            "spotify_redirect_uri": redirect_uri,
            "spotify_accounts_url": self.accounts_url,
            "spotify_api_url": self.api_url,
            "secret_key": SECRET_KEY,
        }
        values.update(more)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    # Steering -----------------------------------------------------------------------------------

    def add_user(self, user_id: str, display_name: str | None = None, registered: bool = True) -> FakeUser:
        """Create (or replace) a Spotify account."""
        user = FakeUser(user_id, display_name if display_name is not None else user_id, registered)
        self.users[user_id] = user
        return user

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        after_applying: bool = False,
    ) -> Rule:
        """Answer the next ``times`` matching requests with ``status`` (path is a glob, e.g. ``/v1/me*``).

        ``after_applying``: do the real work first, then answer ``status`` (a response lost on the way).
        """
        rule = Rule(method.upper(), path, status, dict(headers or {}), body, 0.0, times, after_applying)
        self.rules.append(rule)
        return rule

    def delay(self, method: str, path: str, seconds: float, *, times: int = 1) -> Rule:
        """Hold the next ``times`` matching requests for ``seconds`` before answering normally."""
        rule = Rule(method.upper(), path, None, {}, None, seconds, times)
        self.rules.append(rule)
        return rule

    def set_top(
        self,
        user: str,
        artists: list[str] | None = None,
        tracks: list[tuple[str, str, list[str]]] | None = None,
        time_range: str | None = None,
    ) -> None:
        """The user's top artists (names) and tracks (``(id, name, artist names)``), most listened first,
        for one ``time_range`` or (None) all three."""
        for window in (time_range,) if time_range else TIME_RANGES:
            if artists is not None:
                self.top_artists[(user, window)] = [FakeArtist(a) for a in artists]
            if tracks is not None:
                self.top_tracks[(user, window)] = [FakeTrack(i, n, tuple(a)) for i, n, a in tracks]

    def revoke_refresh_tokens(self, user: str) -> int:
        """Revoke every refresh token (and access token) of the user, as when they remove the app."""
        doomed = [t for t, (u, _) in self._refresh.items() if u == user]
        for token in doomed:
            del self._refresh[token]
        self.expire_access_tokens(user)
        return len(doomed)

    def expire_access_tokens(self, user: str | None = None) -> int:
        """Make access tokens (of one user, or all) invalid now, whatever the client thinks."""
        doomed = [t for t, tok in self._access.items() if user is None or tok.user == user]
        for token in doomed:
            del self._access[token]
        return len(doomed)

    def calls_to(self, method: str, path: str) -> list[Call]:
        """Recorded calls matching ``method`` (or ``*``) and the ``path`` glob, in order."""
        return [
            c for c in self.calls if method.upper() in (c.method, "*") and fnmatch.fnmatchcase(c.path, path)
        ]

    def token_grants(self) -> list[str]:
        """Grant types of the successful token requests, in order."""
        return [c.grant or "" for c in self.calls if c.path == "/api/token" and c.status == 200]

    def access_tokens(self, user: str) -> list[str]:
        """The user's currently valid access tokens."""
        return [t for t, tok in self._access.items() if tok.user == user]

    def refresh_tokens(self, user: str) -> list[str]:
        """The user's currently valid refresh tokens."""
        return [t for t, (u, _) in self._refresh.items() if u == user]

    # The browser --------------------------------------------------------------------------------

    def consent_location(self, auth_url: str, user: str | None = None, deny: bool = False) -> str:
        """What a browser does with the authorisation URL, synchronously: returns the redirect's Location."""
        headers = {"X-Fake-Spotify-User": user or self.browser_user}
        if deny:
            headers["X-Fake-Spotify-Deny"] = "1"
        response = requests.get(auth_url, headers=headers, allow_redirects=False, timeout=10)
        if response.status_code != 302:
            raise AssertionError(f"authorize answered {response.status_code}: {response.text}")
        return str(response.headers["Location"])

    async def authorize(self, auth_url: str, user: str | None = None, deny: bool = False) -> str:
        """The browser's visit to the authorisation URL (``user`` logs in and agrees); returns Location."""
        headers = {"X-Fake-Spotify-User": user or self.browser_user}
        if deny:
            headers["X-Fake-Spotify-Deny"] = "1"
        async with (
            aiohttp.ClientSession() as session,
            session.get(auth_url, headers=headers, allow_redirects=False) as response,
        ):
            if response.status != 302:
                raise AssertionError(f"authorize answered {response.status}: {await response.text()}")
            return str(response.headers["Location"])

    # Server side --------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        grant = None
        if request.method == "POST":
            if request.path == "/api/token":
                form = await request.post()
                grant = str(form.get("grant_type", ""))
                body = {"grant_type": grant}  # never record codes or tokens
            else:
                raw = await request.read()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
        call = Call(
            request.method, request.path, dict(request.query), body, 0, self._bearer_user(request), grant
        )
        self.calls.append(call)
        scripted: web.StreamResponse | None = None
        for rule in self.rules:
            if rule.matches(request.method, request.path):
                rule.times -= 1
                rule.hits += 1
                if rule.delay_s:
                    await asyncio.sleep(rule.delay_s)
                if rule.status is not None:
                    payload = rule.body
                    if payload is None:
                        payload = {"error": {"status": rule.status, "message": f"scripted {rule.status}"}}
                    scripted = web.json_response(payload, status=rule.status, headers=rule.headers)
                    if rule.after_applying:
                        with contextlib.suppress(web.HTTPException):
                            await handler(request)
                break
        if scripted is not None:
            call.status = scripted.status
            return scripted
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            call.status = exc.status
            raise
        call.status = response.status
        return response

    def _bearer_user(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = self._access.get(auth[7:])
            return token.user if token else None
        return None

    @staticmethod
    def _api_error(status: int, message: str) -> web.Response:
        return web.json_response({"error": {"status": status, "message": message}}, status=status)

    @staticmethod
    def _oauth_error(status: int, error: str, description: str) -> web.Response:
        return web.json_response({"error": error, "error_description": description}, status=status)

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != self.client_id:
            return web.Response(status=400, text="INVALID_CLIENT: Invalid client")
        redirect = q.get("redirect_uri", "")
        parts = urlsplit(redirect)
        if parts.hostname == "localhost" or parts.scheme not in ("http", "https"):
            return web.Response(status=400, text="INVALID_CLIENT: Insecure redirect URI")
        if self.redirect_uris and redirect not in self.redirect_uris:
            return web.Response(status=400, text="INVALID_CLIENT: Invalid redirect URI")
        if q.get("response_type") != "code":
            return web.Response(status=400, text="unsupported_response_type")
        user = request.headers.get("X-Fake-Spotify-User") or self.browser_user
        if user not in self.users:
            return web.Response(status=400, text=f"no such fake user {user!r}")
        params: dict[str, str] = {}
        if request.headers.get("X-Fake-Spotify-Deny"):
            params["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(24)
            self.issued.append(code)
            self._codes[code] = (user, redirect, q.get("scope", ""))
            params["code"] = code
        if "state" in q:
            params["state"] = q["state"]
        sep = "&" if parts.query else "?"
        raise web.HTTPFound(redirect + sep + urlencode(params))

    def _client_ok(self, request: web.Request, form: Any) -> bool:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
            except ValueError:
                return False
        else:
            cid, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        return cid == self.client_id and secret == self.client_secret

    def _issue(self, user: str, scope: str, refresh: str | None) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        self.issued.append(access)
        self._access[access] = _Token(user, scope, time.time() + self.token_lifetime_s)
        out: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime_s,
            "scope": scope,
        }
        if refresh is None:
            refresh = secrets.token_urlsafe(32)
            self.issued.append(refresh)
            self._refresh[refresh] = (user, scope)
            out["refresh_token"] = refresh
        return out

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not self._client_ok(request, form):
            return self._oauth_error(400, "invalid_client", "Invalid client secret")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            found = self._codes.pop(str(form.get("code", "")), None)
            if found is None:
                return self._oauth_error(400, "invalid_grant", "Invalid authorization code")
            user, redirect, scope = found
            if form.get("redirect_uri") != redirect:
                return self._oauth_error(400, "invalid_grant", "Invalid redirect URI")
            return web.json_response(self._issue(user, scope, None))
        if grant == "refresh_token":
            old = str(form.get("refresh_token", ""))
            owner = self._refresh.get(old)
            if owner is None:
                return self._oauth_error(400, "invalid_grant", "Refresh token revoked")
            user, scope = owner
            if self.rotate_refresh_tokens:
                del self._refresh[old]
                return web.json_response(self._issue(user, scope, None))
            return web.json_response(self._issue(user, scope, old))
        return self._oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _authenticate(self, request: web.Request) -> _Token | web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self._api_error(401, "No token provided")
        token = self._access.get(auth[7:])
        if token is None:
            return self._api_error(401, "Invalid access token")
        if token.expires_at <= time.time():
            return self._api_error(401, "The access token expired")
        if not self.users[token.user].registered:
            return self._api_error(403, "User not registered in the Developer Dashboard")
        return token

    async def _me(self, request: web.Request) -> web.Response:
        token = self._authenticate(request)
        if isinstance(token, web.Response):
            return token
        user = self.users[token.user]
        return web.json_response(
            {
                "id": user.id,
                "display_name": user.display_name,
                "type": "user",
                "uri": f"spotify:user:{user.id}",
                "external_urls": {"spotify": f"https://open.spotify.com/user/{user.id}"},
            }
        )

    async def _create_playlist(self, request: web.Request) -> web.Response:
        token = self._authenticate(request)
        if isinstance(token, web.Response):
            return token
        try:
            data = await request.json()
        except ValueError:
            return self._api_error(400, "Error parsing JSON.")
        if not isinstance(data, dict) or not data.get("name"):
            return self._api_error(400, "Missing required field: name")
        public = bool(data.get("public", True))
        needed = "playlist-modify-public" if public else "playlist-modify-private"
        if needed not in token.scope.split():
            return self._api_error(403, "Insufficient client scope")
        playlist = FakePlaylist(
            id=spotify_id(),
            owner=token.user,
            name=str(data["name"]),
            description=str(data.get("description") or ""),
            public=public,
            collaborative=bool(data.get("collaborative", False)),
        )
        self.playlists[playlist.id] = playlist
        return web.json_response(playlist.as_json(self.base_url), status=201)

    async def _list_playlists(self, request: web.Request) -> web.Response:
        """The user's own playlists, newest first; private ones only with ``playlist-read-private``."""
        token = self._authenticate(request)
        if isinstance(token, web.Response):
            return token
        reads_private = "playlist-read-private" in token.scope.split()
        mine = [
            p
            for p in reversed(self.playlists.values())
            if p.owner == token.user and (p.public or reads_private)
        ]
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", 20))
        if not 1 <= limit <= 50:
            return self._api_error(400, "Invalid limit")
        page = mine[offset : offset + limit]
        more = offset + limit < len(mine)
        href = f"{self.base_url}/v1/me/playlists"
        listed = [p.as_json(self.base_url) for p in page]
        if not self.list_descriptions:
            for item in listed:
                item["description"] = None
        return web.json_response(
            {
                "href": f"{href}?offset={offset}&limit={limit}",
                "items": listed,
                "total": len(mine),
                "limit": limit,
                "offset": offset,
                "next": f"{href}?offset={offset + limit}&limit={limit}" if more else None,
            }
        )

    async def _add_items(self, request: web.Request) -> web.Response:
        token = self._authenticate(request)
        if isinstance(token, web.Response):
            return token
        playlist = self.playlists.get(request.match_info["playlist_id"])
        if playlist is None:
            return self._api_error(404, "Not found.")
        if playlist.owner != token.user:
            return self._api_error(403, "You cannot add items to a playlist you don't own.")
        raw = await request.read()
        uris: list[str] = []
        position = request.query.get("position")
        if raw:
            try:
                data = json.loads(raw)
            except ValueError:
                return self._api_error(400, "Error parsing JSON.")
            if isinstance(data, dict):
                uris = list(data.get("uris") or [])
                position = data.get("position", position)
            elif isinstance(data, list):
                uris = list(data)
        elif request.query.get("uris"):
            uris = request.query["uris"].split(",")
        if not uris:
            return self._api_error(400, "No uris provided")
        if len(uris) > 100:
            return self._api_error(400, "Too many ids requested")
        for uri in uris:
            kind, _, tid = str(uri).rpartition(":")
            if kind not in ("spotify:track", "spotify:episode") or len(tid) != 22 or not tid.isalnum():
                return self._api_error(400, f"Invalid base62 id: {uri}")
        at = len(playlist.items) if position is None else int(position)
        playlist.items[at:at] = uris
        playlist.add_batches.append(list(uris))
        return web.json_response({"snapshot_id": f"snap{len(playlist.add_batches)}"}, status=201)

    async def _top(self, request: web.Request) -> web.Response:
        """``GET /me/top/{artists|tracks}``: a paging object; needs ``user-top-read``."""
        token = self._authenticate(request)
        if isinstance(token, web.Response):
            return token
        kind = request.match_info["kind"]
        if kind not in ("artists", "tracks"):
            return self._api_error(404, "Service not found")
        if "user-top-read" not in token.scope.split():
            return self._api_error(403, "Insufficient client scope")
        time_range = request.query.get("time_range", "medium_term")
        if time_range not in TIME_RANGES:
            return self._api_error(400, "Invalid time range")
        try:
            limit = int(request.query.get("limit", 20))
            offset = int(request.query.get("offset", 0))
        except ValueError:
            return self._api_error(400, "Invalid limit or offset")
        if not 1 <= limit <= 50 or offset < 0:
            return self._api_error(400, "Invalid limit" if not 1 <= limit <= 50 else "Invalid offset")
        source: list[Any] = (
            self.top_artists.get((token.user, time_range), [])
            if kind == "artists"
            else self.top_tracks.get((token.user, time_range), [])
        )
        page = source[offset : offset + limit]
        href = f"{self.base_url}/v1/me/top/{kind}"

        def at(start: int) -> str:
            return f"{href}?time_range={time_range}&limit={limit}&offset={start}"

        return web.json_response(
            {
                "href": at(offset),
                "items": [item.as_json(self.base_url) for item in page],
                "limit": limit,
                "offset": offset,
                "total": len(source),
                "next": at(offset + limit) if offset + limit < len(source) else None,
                "previous": at(max(0, offset - limit)) if offset > 0 else None,
            }
        )

    async def _get_items(self, request: web.Request) -> web.Response:
        token = self._authenticate(request)
        if isinstance(token, web.Response):
            return token
        playlist = self.playlists.get(request.match_info["playlist_id"])
        if playlist is None:
            return self._api_error(404, "Not found.")
        if not playlist.public and "playlist-read-private" not in token.scope.split():
            return self._api_error(403, "Insufficient client scope")
        offset = int(request.query.get("offset", 0))
        limit = min(100, int(request.query.get("limit", 100)))
        page = playlist.items[offset : offset + limit]
        more = offset + limit < len(playlist.items)
        return web.json_response(
            {
                "items": [{"track": {"uri": u, "id": u.rpartition(":")[2], "type": "track"}} for u in page],
                "total": len(playlist.items),
                "limit": limit,
                "offset": offset,
                "next": (
                    f"{self.base_url}/v1/playlists/{playlist.id}/items?offset={offset + limit}&limit={limit}"
                    if more
                    else None
                ),
            }
        )


# Fixtures ----------------------------------------------------------------------------------------
# Defined as ``*_fixture`` functions with ``name=``, so a test module can import the ones it needs
# without its test parameters shadowing the imports (or list this module in the root pytest_plugins):
#     from tests.fakes.spotify import fake_spotify_fixture, no_proxy_env_fixture


@pytest.fixture(name="no_proxy_env")
def no_proxy_env_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HTTP proxy from the environment: test traffic stays on 127.0.0.1."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,::1")


@pytest_asyncio.fixture(name="fake_spotify")
async def fake_spotify_fixture(no_proxy_env: None) -> AsyncIterator[FakeSpotify]:
    """A running fake Spotify on the test's event loop."""
    async with FakeSpotify() as fake:
        yield fake


@pytest.fixture(name="spotify_settings")
def spotify_settings_fixture(fake_spotify: FakeSpotify, tmp_path: Path) -> Any:
    """Settings pointed at ``fake_spotify`` with a database in ``tmp_path``."""
    return fake_spotify.settings(tmp_path / "moodtunes.sqlite3")


def fast_policy(**overrides: Any) -> Any:
    """A ``RetryPolicy`` with tiny waits, so retry tests take milliseconds."""
    from core.spotify import RetryPolicy

    values: dict[str, Any] = {
        "max_attempts": 3,
        "backoff_s": 0.01,
        "backoff_max_s": 0.05,
        "max_retry_after_s": 5.0,
        "timeout_s": 2.0,
    }
    values.update(overrides)
    return RetryPolicy(**values)


@pytest_asyncio.fixture(name="spotify_store")
async def spotify_store_fixture(spotify_settings: Any) -> AsyncIterator[Any]:
    """The SQLite store of ``spotify_settings``, open for the test."""
    from core.storage import open_store

    store = await open_store(spotify_settings.db)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(name="spotify_service")
def spotify_service_fixture(spotify_settings: Any, spotify_store: Any) -> Any:
    """A ``SpotifyService`` on the fake, with :func:`fast_policy` and a fixed date (2026-11-23)."""
    from datetime import date

    from core.spotify import SpotifyService

    return SpotifyService(
        spotify_settings, spotify_store, policy=fast_policy(), today=lambda: date(2026, 11, 23)
    )


async def link_by_paste(service: Any, fake: FakeSpotify, user_id: int, spotify_user: str = "alice") -> str:
    """Link ``user_id`` to the fake account ``spotify_user`` the paste way, confirming the account as the
    user would in the chat; returns the display name."""
    url = await service.start_link(user_id)
    pending = await service.finish_link(user_id, await fake.authorize(url, user=spotify_user))
    return str(await service.confirm_link(user_id, pending.confirm))
