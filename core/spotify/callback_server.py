"""The small web server at the Spotify redirect URI: authorises a link and answers the browser.

Spotify sends the browser to ``MOODTUNES_SPOTIFY_REDIRECT_URI?code=...&state=...``. With the default
``http://127.0.0.1:8888/spotify/callback`` this server listens on 127.0.0.1:8888 itself; with an
``https://`` redirect URI a reverse proxy terminates TLS and forwards to the host and port given here.
Only GET on the redirect path is served. The access log is off (the query holds the authorisation
code) and the pages tell the browser not to cache them or send a referrer. The page names the
Spotify account and sends the user back to the chat, where the account is linked only once they
confirm it is theirs (see :mod:`core.app.linking`).

The server faces the internet (behind a proxy or not), so it holds no connection longer than a
request needs (:class:`Limits`): a client must send its request head within ``header_timeout_s`` of
connecting, the whole request must be answered within ``request_timeout_s``, every connection closes
after one response (no keep-alive, no lingering to read an unread body), and at most
``max_connections`` are open at once: a new one pushes out the oldest that has not yet sent its
request head, so a crowd of slow clients cannot lock out a real browser.
"""

from __future__ import annotations

import asyncio
import html
import logging
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from core.spotify.errors import SpotifyError, SpotifyLinkRefused, SpotifyUserNotAllowed
from core.spotify.service import CONFIRM_TTL_S, SpotifyService

log = logging.getLogger(__name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>moodtunes · {title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}</style>
</head><body><h1>{title}</h1><p>{message}</p></body></html>
"""


def render_page(title: str, message: str, status: int = 200) -> web.Response:
    """A small HTML page; never cached, never leaks the address as a referrer."""
    body = _PAGE.format(title=html.escape(title), message=html.escape(message))
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def listen_address(redirect_uri: str) -> tuple[str, int, str]:
    """``(host, port, path)`` to serve for a redirect URI; ValueError if it is not served locally."""
    parts = urlsplit(redirect_uri)
    path = parts.path or "/"
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1") and parts.port:
        return parts.hostname, parts.port, path
    raise ValueError(
        f"the redirect URI {redirect_uri} is not http://127.0.0.1:PORT/...; give the host and port "
        "that its reverse proxy forwards to"
    )


@dataclass(frozen=True)
class Limits:
    """How long and how many connections the callback server keeps (see the module docstring).

    Args:
        header_timeout_s: from connecting until the request head (request line and headers) is in.
        request_timeout_s: from the request head until the answer is sent (the Spotify code exchange
            and profile read with their retries happen in it); then the connection is closed.
        max_connections: connections open at once.
    """

    header_timeout_s: float = 10.0
    request_timeout_s: float = 60.0
    max_connections: int = 64


class _Guard(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection: enforces :class:`Limits` on it."""

    def __init__(self, owner: _Guards, inner: Any) -> None:
        self.owner = owner
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.head_done = False
        self.refused = False
        self._tail = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.owner.admit(self):
            self.refused = True
            transport.abort()
            return
        self._timer = self.owner.loop.call_later(self.owner.limits.header_timeout_s, self._expire, "header")
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if not self.head_done:
            seen = self._tail + data
            if b"\r\n\r\n" in seen or b"\n\n" in seen:
                self.head_done = True
                self.owner.waiting.pop(self, None)
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = self.owner.loop.call_later(
                    self.owner.limits.request_timeout_s, self._expire, "request"
                )
            self._tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self.refused else self.inner.eof_received()

    def pause_writing(self) -> None:
        if not self.refused:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if not self.refused:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.owner.forget(self)
        if not self.refused:
            self.inner.connection_lost(exc)

    def _expire(self, what: str) -> None:
        self.owner.expired[what] += 1
        log.info("Spotify callback connection closed: no %s within the time limit", what)
        self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


class _Guards:
    """The open connections of one server, and the limits they are held to."""

    def __init__(self, limits: Limits, loop: asyncio.AbstractEventLoop) -> None:
        self.limits = limits
        self.loop = loop
        self.open: set[_Guard] = set()
        self.waiting: dict[_Guard, None] = {}
        """Connections still sending their request head, oldest first."""
        self.expired = {"header": 0, "request": 0, "evicted": 0, "refused": 0}

    def admit(self, guard: _Guard) -> bool:
        """Make room for a new connection (pushing out the oldest one without a request head);
        False when every open connection is busy with a request."""
        if len(self.open) >= self.limits.max_connections:
            if not self.waiting:
                self.expired["refused"] += 1
                log.warning("Spotify callback connection refused: %d requests in progress", len(self.open))
                return False
            oldest = next(iter(self.waiting))
            self.forget(oldest)
            self.expired["evicted"] += 1
            oldest.close()
        self.open.add(guard)
        self.waiting[guard] = None
        return True

    def forget(self, guard: _Guard) -> None:
        self.open.discard(guard)
        self.waiting.pop(guard, None)


class CallbackServer:
    """aiohttp server for the redirect; use ``async with CallbackServer(service):`` or start/close.

    Args:
        service: the Spotify service that authorises links (and asks the users to confirm them).
        host, port: where to listen; default: from the redirect URI (which must then be loopback http).
        path: the path to serve; default: the redirect URI's path.
        limits: time and connection limits (:class:`Limits`; tests pass short ones).
    """

    def __init__(
        self,
        service: SpotifyService,
        *,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.service = service
        redirect = service.settings.spotify_redirect_uri
        if host is None or port is None:
            default_host, default_port, default_path = listen_address(redirect)
            host = host or default_host
            port = default_port if port is None else port
        else:
            default_path = urlsplit(redirect).path or "/"
        self.host = host
        self.port = port
        self.path = path or default_path
        self.limits = limits or Limits()
        self.guards: _Guards | None = None
        """The open connections and how many were closed for each limit (tests read it)."""
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    def app(self) -> web.Application:
        """The aiohttp application (one route); every answer closes its connection."""
        app = web.Application(client_max_size=1024)
        app.router.add_get(self.path, self._callback, allow_head=False)  # a HEAD must not use the state
        app.on_response_prepare.append(_close_after)
        return app

    async def start(self, sock: socket.socket | None = None) -> None:
        """Start listening (on ``sock`` if given: an already bound socket, e.g. port 0 in tests)."""
        if self._runner is not None:
            return
        limits = self.limits
        runner = web.AppRunner(
            self.app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5.0,
            keepalive_timeout=limits.header_timeout_s,  # aiohttp's own idle limit, as a second guard
            lingering_time=0,  # never wait to read a body the handler did not read
        )
        await runner.setup()
        loop = asyncio.get_running_loop()
        guards = _Guards(limits, loop)
        inner = runner.server
        assert inner is not None
        try:
            if sock is not None:
                server = await loop.create_server(lambda: _Guard(guards, inner()), sock=sock)
            else:
                server = await loop.create_server(
                    lambda: _Guard(guards, inner()), self.host, self.port, reuse_address=True
                )
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._server, self.guards = runner, server, guards
        log.info("Spotify callback server listening on %s:%s%s", self.host, self.port, self.path)

    async def close(self) -> None:
        """Stop listening and finish open requests."""
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> CallbackServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _callback(self, request: web.Request) -> web.Response:
        try:
            pending = await self.service.handle_callback(dict(request.query))
        except SpotifyLinkRefused as exc:
            return render_page("Spotify was not linked", str(exc), 400)
        except SpotifyUserNotAllowed as exc:
            return render_page("Spotify was not linked", str(exc), 403)
        except SpotifyError as exc:
            return render_page("Spotify was not linked", str(exc), 502)
        except Exception:
            log.exception("Spotify callback failed")
            return render_page("Spotify was not linked", "Something went wrong; please try again.", 500)
        minutes = round(CONFIRM_TTL_S / 60)
        account = pending.display_name
        if pending.spotify_id and pending.spotify_id != account:
            account = f"{account} (Spotify user id {pending.spotify_id})"
        return render_page(
            "Go back to the chat to confirm",
            f"Spotify let you in as {account}. It is not linked yet: go back to the chat and confirm "
            f"there that this is your account (within {minutes} minutes). You can close this tab.",
        )


async def _close_after(request: web.Request, response: web.StreamResponse) -> None:
    """One request per connection: nothing is kept alive for a client to trickle the next one."""
    response.force_close()
    response.headers["Connection"] = "close"  # tell the client too (aiohttp decided before this hook)
