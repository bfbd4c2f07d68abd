"""The small web server at the Spotify redirect URI: authorises a link and answers the browser.

Spotify sends the browser to ``MOODTUNES_SPOTIFY_REDIRECT_URI?code=...&state=...``. With the default
``http://127.0.0.1:8888/spotify/callback`` this server listens on 127.0.0.1:8888 itself; with an
``https://`` redirect URI a reverse proxy terminates TLS and forwards to the host and port given here.
Only GET on the redirect path is served. The access log is off (the query holds the authorisation
code) and the pages tell the browser not to cache them or send a referrer. The page names the
Spotify account and sends the user back to the chat, where the account is linked only once they
confirm it is theirs (see :mod:`core.app.linking`).
"""

from __future__ import annotations

import html
import logging
import socket
from types import TracebackType
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


class CallbackServer:
    """aiohttp server for the redirect; use ``async with CallbackServer(service):`` or start/close.

    Args:
        service: the Spotify service that authorises links (and asks the users to confirm them).
        host, port: where to listen; default: from the redirect URI (which must then be loopback http).
        path: the path to serve; default: the redirect URI's path.
    """

    def __init__(
        self,
        service: SpotifyService,
        *,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
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
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application (one route)."""
        app = web.Application()
        app.router.add_get(self.path, self._callback, allow_head=False)  # a HEAD must not use the state
        return app

    async def start(self, sock: socket.socket | None = None) -> None:
        """Start listening (on ``sock`` if given: an already bound socket, e.g. port 0 in tests)."""
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site: web.BaseSite
            if sock is not None:
                site = web.SockSite(runner, sock)
            else:
                site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("Spotify callback server listening on %s:%s%s", self.host, self.port, self.path)

    async def close(self) -> None:
        """Stop listening and finish open requests."""
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
