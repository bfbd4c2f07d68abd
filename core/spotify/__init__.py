"""Spotify: link a chat user's account (OAuth with a one-time state) and make playlists on it.

Adapters use :class:`SpotifyService` (and :class:`CallbackServer` for the redirect). Tokens are
Fernet-encrypted in SQLite; every spotipy call runs in a worker thread under :class:`RetryPolicy`.
"""

from core.spotify.errors import (
    SpotifyError,
    SpotifyLinkRefused,
    SpotifyNotConfigured,
    SpotifyNotLinked,
    SpotifyRelinkNeeded,
    SpotifyUnavailable,
    SpotifyUserNotAllowed,
)
from core.spotify.retry import RetryPolicy
from core.spotify.service import LinkedAccount, LinkedNotifier, SpotifyService
from core.spotify.token_cache import generate_key

__all__ = [
    "LinkedAccount",
    "LinkedNotifier",
    "RetryPolicy",
    "SpotifyError",
    "SpotifyLinkRefused",
    "SpotifyNotConfigured",
    "SpotifyNotLinked",
    "SpotifyRelinkNeeded",
    "SpotifyService",
    "SpotifyUnavailable",
    "SpotifyUserNotAllowed",
    "generate_key",
]
