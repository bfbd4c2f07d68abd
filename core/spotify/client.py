"""spotipy objects pointed at the configured Spotify URLs, with spotipy's own retries switched off.

* :func:`make_oauth` builds a ``SpotifyOAuth`` whose authorise and token URLs come from
  ``MOODTUNES_SPOTIFY_ACCOUNTS_URL`` (spotipy keeps them in the class attributes
  ``OAUTH_AUTHORIZE_URL`` / ``OAUTH_TOKEN_URL``; we set them on the instance).
* :func:`make_api` builds a ``Spotify`` client whose ``prefix`` is ``MOODTUNES_SPOTIFY_API_URL``. It
  gets a plain ``requests.Session`` (no urllib3 ``Retry`` mounted), so every 429, 5xx and timeout
  reaches :mod:`core.spotify.retry` with its real status and headers.
* :class:`UserAuth` is the auth manager of one linked user: it reads the token through the user's
  cache handler and refreshes it when expired (or when told to, after a 401). Unlike
  ``SpotifyOAuth.get_access_token`` it never falls back to an interactive prompt.
"""

from __future__ import annotations

from typing import Any

import requests
from spotipy import Spotify
from spotipy.cache_handler import CacheHandler
from spotipy.oauth2 import SpotifyOAuth

from core.config import Settings

SCOPE = "playlist-modify-private playlist-read-private user-top-read"
"""All we ask for: create private playlists and add tracks to them, and read them back (to check,
before a retry, whether a request whose answer was lost went through); read the user's top artists
and tracks (``/me/top/...``, to prefer their artists within a mood); ``/me`` needs no scope."""


class NotLinkedSignal(Exception):
    """Raised inside a spotipy call when the user has no stored token."""


def new_session() -> requests.Session:
    """A plain requests session: connection pooling, no automatic retries."""
    return requests.Session()


def make_oauth(
    settings: Settings,
    cache_handler: CacheHandler,
    session: requests.Session | None = None,
    timeout_s: float | None = None,
) -> SpotifyOAuth:
    """Authorization-code flow manager for the configured app, accounts URL and redirect URI."""
    oauth = SpotifyOAuth(
        client_id=settings.spotify_client_id,
        client_secret=settings.spotify_client_secret.get_secret_value(),
        redirect_uri=settings.spotify_redirect_uri,
        scope=SCOPE,
        cache_handler=cache_handler,
        requests_session=session if session is not None else True,
        requests_timeout=timeout_s,
        open_browser=False,
        show_dialog=True,  # always show whose account is being linked, even to someone who authorised before
    )
    base = settings.spotify_accounts_url.rstrip("/")
    oauth.OAUTH_AUTHORIZE_URL = f"{base}/authorize"
    oauth.OAUTH_TOKEN_URL = f"{base}/api/token"
    return oauth


def make_api(
    settings: Settings,
    session: requests.Session,
    timeout_s: float,
    *,
    access_token: str | None = None,
    auth_manager: Any = None,
) -> Spotify:
    """Web API client on the configured API URL: a fixed ``access_token`` or an ``auth_manager``."""
    client = Spotify(
        auth=access_token,
        auth_manager=auth_manager,
        requests_session=session,
        requests_timeout=timeout_s,
        retries=0,
        status_retries=0,
    )
    prefix = settings.spotify_api_url
    client.prefix = prefix if prefix.endswith("/") else prefix + "/"
    return client


class UserAuth:
    """spotipy auth manager for one linked user (see the module docstring)."""

    def __init__(self, oauth: SpotifyOAuth) -> None:
        self.oauth = oauth
        self.force_refresh = False

    def get_access_token(self, as_dict: bool = False) -> str:
        """The user's access token, refreshed first if it expires within a minute or was rejected."""
        info = self.oauth.cache_handler.get_cached_token()
        if not info or not info.get("refresh_token"):
            raise NotLinkedSignal()
        expired = "expires_at" not in info or self.oauth.is_token_expired(info)
        if self.force_refresh or expired:
            info = self.oauth.refresh_access_token(info["refresh_token"])
            self.force_refresh = False
        return str(info["access_token"])
