"""Spotify: link a chat user's account (OAuth with a one-time state) and make playlists on it.

Adapters use :class:`SpotifyService` (and :class:`CallbackServer` for the redirect). An authorised
account is linked only once its chat user confirms it (:class:`PendingLink`). Tokens are
Fernet-encrypted in the store; every spotipy call runs in a worker thread under :class:`RetryPolicy`.
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
from core.spotify.service import PendingLink, PendingNotifier, Rotation, SpotifyService
from core.spotify.token_cache import generate_key
from core.spotify.top import TopTaste, TopTrack

__all__ = [
    "PendingLink",
    "PendingNotifier",
    "RetryPolicy",
    "Rotation",
    "SpotifyError",
    "SpotifyLinkRefused",
    "SpotifyNotConfigured",
    "SpotifyNotLinked",
    "SpotifyRelinkNeeded",
    "SpotifyService",
    "SpotifyUnavailable",
    "SpotifyUserNotAllowed",
    "TopTaste",
    "TopTrack",
    "generate_key",
]
