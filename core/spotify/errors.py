"""User-facing Spotify errors: ``str(error)`` is one friendly sentence, ``code`` is stable for JSON;
``error.localized()`` is the sentence in the user's language (see :mod:`core.errors`)."""

from __future__ import annotations

from core.app.i18n import N_
from core.errors import MoodtunesError


class SpotifyError(MoodtunesError):
    """Base class of every Spotify problem the user or the operator can act on."""

    code = "spotify_error"
    default = N_("Something went wrong with Spotify.")


class SpotifyNotConfigured(SpotifyError):
    """The operator has not set the Spotify credentials (or the token key); Spotify features are off."""

    code = "spotify_not_configured"
    default = N_(
        "Spotify playlists are switched off on this bot: the operator has not set "
        "MOODTUNES_SPOTIFY_CLIENT_ID, MOODTUNES_SPOTIFY_CLIENT_SECRET and MOODTUNES_SECRET_KEY."
    )


class SpotifyNotLinked(SpotifyError):
    """The user has no linked Spotify account."""

    code = "spotify_not_linked"
    default = N_("Your Spotify account is not linked yet; link it first and try again.")


class SpotifyLinkRefused(SpotifyError):
    """The link could not be finished: state unknown, used, expired or another user's; consent denied."""

    code = "spotify_link_refused"
    default = N_(
        "That Spotify link is not valid (expired, already used or meant for someone else); "
        "please ask for a new one."
    )


class SpotifyRelinkNeeded(SpotifyError):
    """The stored authorisation no longer works (revoked, unreadable); the link was removed."""

    code = "spotify_relink_needed"
    default = N_(
        "Spotify no longer accepts this bot's access to your account, so I unlinked it; "
        "please link Spotify again."
    )


class SpotifyUnavailable(SpotifyError):
    """Spotify did not answer usefully (rate limits, server errors, timeouts) even after retries."""

    code = "spotify_unavailable"
    default = N_("Spotify is not answering right now; please try again in a few minutes.")


class SpotifyUserNotAllowed(SpotifyError):
    """403 from a development-mode app: the Spotify account is not on the app's user list."""

    code = "spotify_user_not_allowed"
    default = N_(
        "This bot's Spotify app is in development mode and your Spotify account is not on its list of "
        "users; ask the bot's operator to add you in the Spotify developer dashboard (5 users at most)."
    )
