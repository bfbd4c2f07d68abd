"""The Spotify service: link a chat user's Spotify account and make playlists on it.

One object, :class:`SpotifyService`, is all the adapters use::

    spotify = SpotifyService(settings, store)
    spotify.on_pending(ask)               # async ask(pending): an account authorised on the callback page
    url = await spotify.start_link(user_id, notify={...})   # send this to the user (privately)
    pending = await spotify.finish_link(user_id, pasted_redirect_url)   # or the callback server does it
    name = await spotify.confirm_link(user_id, pending.confirm)   # the user's "Yes" (or cancel_link)
    playlist_url = await spotify.create_playlist(user_id, track_ids, "happy")
    taste = await spotify.top_taste(user_id)   # top artists and tracks (scope user-top-read)
    await spotify.unlink(user_id)
    await spotify.rotate_key()            # re-encrypt everything under the first MOODTUNES_SECRET_KEY

A browser that finishes the authorisation proves only that *someone* consented on Spotify: whoever
opens a user's link would otherwise attach their own account to that user. So a finished
authorisation is a :class:`PendingLink` (tokens encrypted in the store, expiring with the question),
and it becomes the user's link only when that user confirms in the chat that the named account is
theirs (:meth:`SpotifyService.confirm_link`).

Every spotipy call (synchronous, requests-based) runs in ``asyncio.to_thread``; waits between retries
are ``asyncio.sleep`` on the loop. Errors reach callers as :mod:`core.spotify.errors`, each a friendly
sentence. Tokens and authorisation codes are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import requests
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.exceptions import SpotifyBaseException, SpotifyException

from core.app.i18n import N_, Message
from core.config import Settings
from core.errors import UserGone
from core.spotify.client import NotLinkedSignal, UserAuth, make_api, make_oauth, new_session
from core.spotify.errors import (
    SpotifyError,
    SpotifyLinkRefused,
    SpotifyNotConfigured,
    SpotifyNotLinked,
    SpotifyRelinkNeeded,
    SpotifyUnavailable,
    SpotifyUserNotAllowed,
)
from core.spotify.oauth_state import STATE_TTL_S, RedirectParams, hash_state, new_state, parse_redirect
from core.spotify.playlists import (
    batches,
    find_made,
    playlist_description,
    playlist_name,
    playlist_url,
    request_mark,
    track_uris,
)
from core.spotify.retry import Failure, RetryPolicy, classify, retry_after_s
from core.spotify.token_cache import EncryptedTokenCache, TokenCipher, TokenUnreadable
from core.spotify.top import (
    DEFAULT_TIME_RANGE,
    TIME_RANGES,
    TOP_LIMIT,
    TopTaste,
    parse_top_artists,
    parse_top_tracks,
)
from core.storage import Store

log = logging.getLogger(__name__)
T = TypeVar("T")
DESCRIPTION_LIMIT = 300
"""Characters Spotify keeps of a playlist description."""

PendingNotifier = Callable[["PendingLink"], Awaitable[None]]
"""``async ask(pending)``, registered with :meth:`SpotifyService.on_pending`."""

CONFIRM_TTL_S = STATE_TTL_S
"""How long an authorised account waits for its user's confirmation (10 minutes)."""

_ERROR_WORD = re.compile(r"^[a-z_]{1,40}$")
UNNAMED = N_("your Spotify account")
"""The name of an authorised account whose profile has no display name nor id."""
BAD_CLIENT = N_(
    "Spotify rejected this bot's client id or secret; the operator must check "
    "MOODTUNES_SPOTIFY_CLIENT_ID and MOODTUNES_SPOTIFY_CLIENT_SECRET."
)


@dataclass(frozen=True)
class PendingLink:
    """An account authorised in a browser, waiting for its chat user to confirm it: our user id, the
    Spotify account's display name (or id when it has none) and id, and the question's token."""

    user_id: int
    display_name: str
    spotify_id: str
    confirm: str
    """The random token the Yes/No buttons carry (the store keeps only its hash)."""
    expires_at: float
    notify: dict[str, Any] = field(default_factory=dict)
    """What :meth:`SpotifyService.start_link` was given to say where to ask the user."""


@dataclass(frozen=True)
class Rotation:
    """What :meth:`SpotifyService.rotate_key` did: rows re-encrypted under the first key, and rows no
    key could read (left as they are: their users must link again)."""

    reencrypted: int
    unreadable: int


def _disabled_reason(settings: Settings) -> str | None:
    missing = [
        name
        for name, value in (
            ("MOODTUNES_SPOTIFY_CLIENT_ID", settings.spotify_client_id),
            ("MOODTUNES_SPOTIFY_CLIENT_SECRET", settings.spotify_client_secret.get_secret_value()),
            ("MOODTUNES_SECRET_KEY", settings.secret_key.get_secret_value()),
        )
        if not value
    ]
    if missing:
        return (
            "Spotify playlists are switched off on this bot: the operator has not set "
            + ", ".join(missing)
            + "."
        )
    return None


class SpotifyService:
    """Linking and playlists for chat users (``users.id`` of the store).

    Args:
        settings: Spotify credentials, URLs and ``secret_key`` (see :mod:`core.config`). Missing
            credentials leave the service constructed but disabled (:attr:`enabled` is False, and the
            Spotify calls raise :class:`SpotifyNotConfigured` saying what is missing).
        store: the open SQLite store.
        policy: retries, backoff and timeouts (:class:`RetryPolicy`; tests pass tiny delays).
        clock: Unix time, for state expiry (default ``time.time``).
        today: the date put in playlist names (default ``date.today``).
        sleep: the async sleep used between retries (default ``asyncio.sleep``).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        today: Callable[[], date] = date.today,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.store = store
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._today = today
        self._sleep = sleep
        self._notifiers: list[PendingNotifier] = []
        self._locks: dict[int, asyncio.Lock] = {}
        self._cipher: TokenCipher | None = None
        self.disabled_reason = _disabled_reason(settings)
        if self.disabled_reason is None:
            try:
                self._cipher = TokenCipher(settings.secret_key.get_secret_value())
            except ValueError:
                self.disabled_reason = (
                    "Spotify playlists are switched off on this bot: MOODTUNES_SECRET_KEY is not a valid "
                    "Fernet key (make one with `moodtunes keygen`)."
                )
        if self.disabled_reason:
            log.info("Spotify disabled: %s", self.disabled_reason)
        # spotipy logs request headers and bodies (bearer tokens, client secret, codes) at DEBUG.
        spotipy_log = logging.getLogger("spotipy")
        if spotipy_log.getEffectiveLevel() < logging.INFO:
            spotipy_log.setLevel(logging.INFO)

    # Status and notifications -------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """True when credentials and a valid token key are configured."""
        return self._cipher is not None

    def on_pending(self, callback: PendingNotifier) -> None:
        """Register ``async callback(pending)``, awaited when the callback page has an account
        waiting for its user's confirmation (the adapter asks the user privately)."""
        self._notifiers.append(callback)

    async def is_linked(self, user_id: int) -> bool:
        """Whether the user has a stored Spotify token (works even when Spotify is switched off)."""
        return await self.store.spotify_token(user_id) is not None

    async def linked_name(self, user_id: int) -> str | None:
        """Display name of the linked Spotify account, None if not linked (or unreadable)."""
        blob = await self.store.spotify_account(user_id)
        if blob is None or self._cipher is None:
            return None
        try:
            return str(self._cipher.decrypt(blob).get("display_name") or "") or None
        except TokenUnreadable:
            return None

    async def unlink(self, user_id: int) -> bool:
        """Delete the user's tokens; True if they had any. (Works even when Spotify is switched off.)"""
        async with self._lock(user_id):
            removed = await self.store.spotify_delete_link(user_id)
        if removed:
            log.info("Spotify unlinked for user %d", user_id)
        return removed

    # Linking ------------------------------------------------------------------------------------

    async def start_link(self, user_id: int, notify: dict[str, Any] | None = None) -> str:
        """The Spotify authorisation URL for the user, with a fresh single-use state valid 10 minutes.

        ``notify`` (JSON-able) is kept with the state and handed back in :class:`PendingLink`, so
        whichever process finishes the authorisation knows where to ask the user.
        """
        self._require_enabled()
        state = new_state()
        now = self._clock()
        await self.store.spotify_add_state(hash_state(state), user_id, now + STATE_TTL_S, now, notify=notify)
        session = new_session()
        try:
            oauth = make_oauth(self.settings, MemoryCacheHandler(), session)
            return str(oauth.get_authorize_url(state=state))
        finally:
            session.close()

    async def finish_link(self, user_id: int, pasted_url: str, request: str | None = None) -> PendingLink:
        """Authorise from the address the user was redirected to: the account, waiting for the user's
        confirmation (:meth:`confirm_link`); nothing is linked yet.

        ``request`` names the chat request carrying the address: delivered again (its worker died
        before asking), it gets the same account back with a fresh question instead of a refusal of
        its used state. Raises SpotifyLinkRefused when the state is unknown, used, expired or belongs
        to another user (the state is used up either way, and nothing is stored),
        SpotifyUserNotAllowed for accounts not added to a development-mode app, SpotifyUnavailable when
        Spotify does not answer.
        """
        cipher = self._require_enabled()
        if request is not None:
            confirm = new_state()
            again = await self.store.spotify_reask_pending(
                user_id, request, hash_state(confirm), self._clock()
            )
            if again is not None:
                account = cipher.decrypt(again[0])
                log.info("Spotify question asked again for a redelivered request of user %d", user_id)
                return PendingLink(
                    user_id,
                    str(account.get("display_name") or ""),
                    str(account.get("id") or ""),
                    confirm,
                    again[1],
                )
        return await self._finish(parse_redirect(pasted_url), expected_user=user_id, request=request)

    async def handle_callback(self, params: Mapping[str, str]) -> PendingLink:
        """Authorise from the redirect's query parameters (the callback server), then ask the user.

        The user is the one the state was issued to; nothing about the browser is trusted, so the
        account only waits for that user's confirmation in the chat. Registered :meth:`on_pending`
        callbacks are awaited after it is stored; their failures are logged, never raised.
        """
        self._require_enabled()
        redirect = RedirectParams(
            state=params.get("state") or None,
            code=params.get("code") or None,
            error=params.get("error") or None,
        )
        pending = await self._finish(redirect, expected_user=None)
        for notify in list(self._notifiers):
            try:
                await notify(pending)
            except Exception:  # an adapter's failure must not lose the question for the others
                log.exception("Spotify on_pending callback failed for user %d", pending.user_id)
        return pending

    async def confirm_link(self, user_id: int, confirm: str) -> str:
        """The user's "Yes" to the question of :class:`PendingLink` ``confirm``: link that account;
        returns its display name. Raises SpotifyLinkRefused when the question is not this user's, was
        answered already or expired (nothing changes then)."""
        cipher = self._require_enabled()
        async with self._lock(user_id):
            account = await self.store.spotify_confirm_pending(hash_state(confirm), user_id, self._clock())
        if account is None:
            raise SpotifyLinkRefused(
                N_(
                    "That Spotify question has expired or was answered already, so nothing was linked; "
                    "please ask for a new link."
                )
            )
        log.info("Spotify linked for user %d", user_id)
        try:
            name = str(cipher.decrypt(account).get("display_name") or "")
        except TokenUnreadable:
            name = ""
        return name or UNNAMED

    async def cancel_link(self, user_id: int, confirm: str) -> bool:
        """The user's "No": delete the account waiting for confirmation; True if it was there.
        (Works even when Spotify is switched off.)"""
        dropped = await self.store.spotify_drop_pending(hash_state(confirm), user_id)
        if dropped:
            log.info("Spotify authorisation declined by user %d; deleted", user_id)
        return dropped

    async def rotate_key(self) -> Rotation:
        """Re-encrypt every stored Spotify token and account (linked and pending) under the first key of
        ``MOODTUNES_SECRET_KEY`` (``new,old``), so that the old key can be dropped afterwards.

        Needs only the key (not the Spotify credentials). A row whose token changes meanwhile (a refresh)
        is left alone: it was just written under the first key. Raises SpotifyNotConfigured without a
        valid key.
        """
        cipher = self._cipher
        if cipher is None:
            try:
                cipher = TokenCipher(self.settings.secret_key.get_secret_value())
            except ValueError:
                raise SpotifyNotConfigured(
                    N_(
                        "MOODTUNES_SECRET_KEY is not set to valid Fernet keys (new,old), so nothing can be "
                        "re-encrypted."
                    )
                ) from None
        done = unreadable = 0
        for table, user_id, token, account in await self.store.spotify_encrypted_rows():
            try:
                new_token, new_account = cipher.rotate(token), cipher.rotate(account)
            except TokenUnreadable:
                unreadable += 1
                log.warning("Spotify %s data of user %d cannot be read with any key", table, user_id)
                continue
            async with self._lock(user_id):
                if await self.store.spotify_reencrypt(table, user_id, token, new_token, new_account):
                    done += 1
        log.info("Spotify key rotation: reencrypted=%d unreadable=%d", done, unreadable)
        return Rotation(done, unreadable)

    async def _finish(
        self, redirect: RedirectParams, expected_user: int | None, request: str | None = None
    ) -> PendingLink:
        cipher = self._require_enabled()
        if not redirect.state:
            raise SpotifyLinkRefused(
                N_("That address has no Spotify link state in it; paste the whole address you were sent to.")
            )
        taken = await self.store.spotify_take_state(hash_state(redirect.state))
        if taken is None:
            log.warning("Spotify link refused: unknown or already used state")
            if expected_user is not None and await self.is_linked(expected_user):
                raise SpotifyLinkRefused(
                    N_("That Spotify link was already used (or has expired); your Spotify account is linked.")
                )
            raise SpotifyLinkRefused()
        owner, expires_at, notify = taken
        if expected_user is not None and owner != expected_user:
            log.warning("Spotify link refused: state of user %d presented by user %d", owner, expected_user)
            raise SpotifyLinkRefused()
        if expires_at <= self._clock():
            raise SpotifyLinkRefused(
                N_("That Spotify link has expired (links last {minutes} minutes); please ask for a new one."),
                minutes=round(STATE_TTL_S / 60),
            )
        if redirect.error:
            reason = redirect.error if _ERROR_WORD.match(redirect.error) else "error"
            raise SpotifyLinkRefused(
                N_("Spotify did not grant access ({reason}), so nothing was linked."), reason=reason
            )
        if not redirect.code:
            raise SpotifyLinkRefused(
                N_("That address has no Spotify authorisation code in it; please ask for a new link.")
            )
        token_info = await self._exchange_code(redirect.code)
        profile = await self._profile(str(token_info["access_token"]))
        spotify_id = str(profile.get("id") or "")
        name = str(profile.get("display_name") or spotify_id or UNNAMED)
        confirm = new_state()
        expires_at = self._clock() + CONFIRM_TTL_S
        try:
            await self.store.spotify_add_pending(
                hash_state(confirm),
                owner,
                cipher.encrypt(token_info),
                cipher.encrypt({"id": spotify_id, "display_name": name}),
                expires_at,
                request,
            )
        except UserGone:  # the user was deleted (/forget) while linking
            raise SpotifyLinkRefused(N_("Your data was deleted meanwhile, so nothing was linked.")) from None
        log.info("Spotify account authorised for user %d; waiting for the user's confirmation", owner)
        return PendingLink(owner, name, spotify_id, confirm, expires_at, notify)

    async def _exchange_code(self, code: str) -> dict[str, Any]:
        """Trade the authorisation code for tokens (not retried: a code works once)."""

        def exchange() -> dict[str, Any]:
            memory = MemoryCacheHandler()
            session = new_session()
            try:
                oauth = make_oauth(self.settings, memory, session, self.policy.timeout_s)
                oauth.get_access_token(code=code, as_dict=False, check_cache=False)
            finally:
                session.close()
            info = memory.get_cached_token()
            if not info or "access_token" not in info or "refresh_token" not in info:
                raise SpotifyUnavailable(N_("Spotify sent no usable token; please ask for a new link."))
            return dict(info)

        try:
            return await asyncio.to_thread(exchange)
        except (SpotifyBaseException, requests.RequestException) as exc:
            kind = classify(exc)
            log.warning("Spotify code exchange failed: %s", kind.value)
            if kind is Failure.REVOKED:
                raise SpotifyLinkRefused(
                    N_(
                        "Spotify did not accept that authorisation (it may have been used already); "
                        "please ask for a new link."
                    )
                ) from None
            if kind is Failure.BAD_CLIENT:
                raise SpotifyNotConfigured(BAD_CLIENT) from None
            raise SpotifyUnavailable(
                N_(
                    "Spotify did not answer while linking your account; please ask for a new link and "
                    "try again."
                )
            ) from None

    async def _profile(self, access_token: str) -> dict[str, Any]:
        """``GET /me`` with a fresh access token (before anything is stored)."""
        session = new_session()
        try:
            api = make_api(self.settings, session, self.policy.timeout_s, access_token=access_token)
            me = await self._call(api.me, N_("read your Spotify profile"))
        finally:
            session.close()
        if not isinstance(me, dict):
            raise SpotifyUnavailable(N_("Spotify sent an unreadable profile; please ask for a new link."))
        return me

    # Playlists ----------------------------------------------------------------------------------

    async def create_playlist(
        self,
        user_id: int,
        track_ids: Sequence[str],
        mood: str,
        *,
        description: str | None = None,
    ) -> str:
        """Make a private playlist of the tracks on the user's account; return its web address.

        ``track_ids`` are bare 22-character Spotify ids (``spotify:track:`` URIs are accepted too);
        duplicates are dropped, order is kept, and they are added 100 per request. The name is like
        ``moodtunes · happy · 2026-11-23``. Raises ValueError for no or malformed ids; SpotifyNotLinked,
        SpotifyRelinkNeeded (the link was removed), SpotifyUserNotAllowed or SpotifyUnavailable.
        """
        cipher = self._require_enabled()
        uris = track_uris(track_ids)
        if not uris:
            raise ValueError("no tracks for the playlist")
        name = playlist_name(mood, self._today())
        text = description if description is not None else playlist_description(mood, len(uris))
        if not await self.is_linked(user_id):
            raise SpotifyNotLinked()
        loop = asyncio.get_running_loop()
        async with self._lock(user_id):
            session = new_session()
            try:
                cache = EncryptedTokenCache(self.store, user_id, cipher, loop)
                auth = UserAuth(make_oauth(self.settings, cache, session, self.policy.timeout_s))
                api = make_api(self.settings, session, self.policy.timeout_s, auth_manager=auth)
                playlist = await self._call(
                    _CreatePlaylist(api, name, text),
                    N_("create the playlist"),
                    user_id=user_id,
                    auth=auth,
                )
                if not isinstance(playlist, dict) or not playlist.get("id"):
                    raise SpotifyUnavailable(
                        N_("Spotify did not say which playlist it made; please try again.")
                    )
                playlist_id = str(playlist["id"])
                added = 0
                for batch in batches(uris):
                    await self._call(
                        _AddBatch(api, playlist_id, batch, added),
                        N_("add songs to the playlist"),
                        user_id=user_id,
                        auth=auth,
                    )
                    added += len(batch)
            finally:
                session.close()
        log.info("Spotify playlist made for user %d: %d tracks", user_id, len(uris))
        return playlist_url(playlist)

    # Taste ----------------------------------------------------------------------------------------

    async def top_taste(
        self,
        user_id: int,
        *,
        limit: int = TOP_LIMIT,
        time_range: str = DEFAULT_TIME_RANGE,
        policy: RetryPolicy | None = None,
    ) -> TopTaste:
        """The linked user's top artists and top tracks (``GET /me/top/artists`` and ``/me/top/tracks``,
        scope ``user-top-read``), ``limit`` (1-50) of each over ``time_range`` (``short_term``,
        ``medium_term``, ``long_term``).

        ``policy`` overrides the retry policy (callers on a reply's path pass a short one). Raises
        ValueError for a bad limit or time range; SpotifyNotLinked, SpotifyRelinkNeeded,
        SpotifyUserNotAllowed, SpotifyError (403: e.g. a link made before the scope was asked for) or
        SpotifyUnavailable.
        """
        cipher = self._require_enabled()
        if not 1 <= limit <= 50 or time_range not in TIME_RANGES:
            raise ValueError(f"limit must be 1-50 and time_range one of {TIME_RANGES}")
        if not await self.is_linked(user_id):
            raise SpotifyNotLinked()
        policy = policy or self.policy
        loop = asyncio.get_running_loop()
        async with self._lock(user_id):
            session = new_session()
            try:
                cache = EncryptedTokenCache(self.store, user_id, cipher, loop)
                auth = UserAuth(make_oauth(self.settings, cache, session, policy.timeout_s))
                api = make_api(self.settings, session, policy.timeout_s, auth_manager=auth)
                artists = await self._call(
                    lambda: api.current_user_top_artists(limit=limit, offset=0, time_range=time_range),
                    N_("read your top artists"),
                    user_id=user_id,
                    auth=auth,
                    policy=policy,
                )
                tracks = await self._call(
                    lambda: api.current_user_top_tracks(limit=limit, offset=0, time_range=time_range),
                    N_("read your top tracks"),
                    user_id=user_id,
                    auth=auth,
                    policy=policy,
                )
            finally:
                session.close()
        taste = TopTaste(parse_top_artists(artists), parse_top_tracks(tracks))
        log.info(
            "Spotify taste read for user %d: %d artists, %d tracks",
            user_id,
            len(taste.artists),
            len(taste.tracks),
        )
        return taste

    # Calls, retries and error mapping -------------------------------------------------------------

    async def _call(
        self,
        call: Callable[[], T],
        what: str,
        *,
        user_id: int | None = None,
        auth: UserAuth | None = None,
        policy: RetryPolicy | None = None,
    ) -> T:
        """Run a spotipy call in a thread under the retry policy (``policy``, default the service's);
        map failures to Spotify errors."""
        policy = policy or self.policy
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            try:
                return await asyncio.to_thread(call)
            except NotLinkedSignal:
                raise SpotifyNotLinked() from None
            except TokenUnreadable:
                await self._drop_link(user_id, "stored token unreadable")
                raise SpotifyRelinkNeeded(
                    N_(
                        "Your stored Spotify link can no longer be read (the bot's key changed), so I "
                        "removed it; please link Spotify again."
                    )
                ) from None
            except (SpotifyBaseException, requests.RequestException) as exc:
                kind = classify(exc)
                if kind is Failure.UNAUTHORIZED and auth is not None and not refreshed:
                    refreshed = True  # the access token was rejected early: refresh once and retry
                    auth.force_refresh = True
                    attempt -= 1
                    continue
                if kind is Failure.RATE_LIMITED:
                    headers = exc.headers if isinstance(exc, SpotifyException) else None
                    wait = retry_after_s(headers)
                    if wait is None:
                        wait = policy.delay(attempt)
                    if wait > policy.max_retry_after_s:
                        raise SpotifyUnavailable(
                            N_(
                                "Spotify asks this bot to wait {duration} before trying again; "
                                "please try later."
                            ),
                            duration=_duration(wait),
                        ) from None
                elif kind is Failure.TRANSIENT:
                    wait = policy.delay(attempt)
                else:
                    raise await self._final_error(kind, exc, what, user_id) from None
                if attempt >= policy.max_attempts:
                    log.warning("Spotify gave up to %s after %d attempts (%s)", what, attempt, kind.value)
                    raise SpotifyUnavailable(
                        N_(
                            "Spotify is not answering right now (I tried {attempts} times to {what}); "
                            "please try again in a few minutes."
                        ),
                        attempts=attempt,
                        what=Message(what),
                    ) from None
                log.warning(
                    "Spotify %s while trying to %s; retry %d/%d in %.1f s",
                    kind.value,
                    what,
                    attempt,
                    policy.max_attempts - 1,
                    wait,
                )
                await self._sleep(wait)

    async def _final_error(
        self, kind: Failure, exc: BaseException, what: str, user_id: int | None
    ) -> SpotifyError:
        status = getattr(exc, "http_status", None)
        log.warning("Spotify failed to %s: %s (HTTP %s)", what, kind.value, status)
        if kind in (Failure.REVOKED, Failure.UNAUTHORIZED):
            if user_id is None:  # linking: the fresh token was rejected; nothing is stored
                return SpotifyLinkRefused(
                    N_("Spotify rejected the new authorisation; please ask for a new link.")
                )
            await self._drop_link(user_id, kind.value)
            return SpotifyRelinkNeeded()
        if kind is Failure.NOT_ALLOWED:
            return SpotifyUserNotAllowed()
        if kind is Failure.BAD_CLIENT:
            return SpotifyNotConfigured(BAD_CLIENT)
        if kind is Failure.FORBIDDEN:
            return SpotifyError(N_("Spotify did not allow this bot to {what}."), what=Message(what))
        return SpotifyUnavailable(
            N_("Spotify could not {what} (HTTP {status}); please try again later."),
            what=Message(what),
            status=status or "error",
        )

    async def _drop_link(self, user_id: int | None, why: str) -> None:
        if user_id is not None and await self.store.spotify_delete_link(user_id):
            log.info("Spotify link removed for user %d: %s", user_id, why)

    def _require_enabled(self) -> TokenCipher:
        if self._cipher is None:
            raise SpotifyNotConfigured(self.disabled_reason)
        return self._cipher

    def _lock(self, user_id: int) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock


class _CreatePlaylist:
    """The ``current_user_playlist_create`` request, safe to retry: the description carries a fresh
    marker, and before a retry it looks among the user's newest playlists for the one the failed
    attempt made after all (lost response, see :func:`find_made`) instead of making a second one."""

    def __init__(self, api: Any, name: str, description: str) -> None:
        self.api = api
        self.name = name
        self.mark = request_mark()
        room = DESCRIPTION_LIMIT - len(self.mark) - 1  # the marker must survive Spotify's length limit
        self.description = f"{description[:room]} {self.mark}"
        self.tried = False

    def __call__(self) -> Any:
        if self.tried:
            made = find_made(self.api.current_user_playlists(limit=50), self.mark, self.name)
            if made is not None:
                return made
        self.tried = True
        return self.api.current_user_playlist_create(self.name, public=False, description=self.description)


class _AddBatch:
    """One ``playlist_add_items`` request, safe to retry: before a retry it asks Spotify how many items
    the playlist holds, and skips the add if the failed attempt landed after all (lost response)."""

    def __init__(self, api: Any, playlist_id: str, uris: list[str], before: int) -> None:
        self.api = api
        self.playlist_id = playlist_id
        self.uris = uris
        self.before = before
        self.tried = False

    def __call__(self) -> None:
        if self.tried:
            page = self.api.playlist_items(self.playlist_id, fields="total", limit=1)
            total = page.get("total") if isinstance(page, dict) else None
            if isinstance(total, int) and total >= self.before + len(self.uris):
                return
        self.tried = True
        self.api.playlist_add_items(self.playlist_id, self.uris)


def _duration(seconds: float) -> Message:
    if seconds < 90:
        return Message(N_("{count} seconds"), count=round(seconds))
    if seconds < 5400:
        return Message(N_("{count} minutes"), count=round(seconds / 60))
    return Message(N_("{count} hours"), count=round(seconds / 3600))
