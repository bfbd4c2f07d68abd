"""Spotify tokens at rest: Fernet-encrypted JSON in SQLite, behind a spotipy ``CacheHandler`` per user.

spotipy reads and writes tokens synchronously from the worker thread it runs in; the store is async
(aiosqlite) on the event loop. :class:`EncryptedTokenCache` bridges the two with
:func:`asyncio.run_coroutine_threadsafe`, so a refreshed token is encrypted and written to SQLite the
moment spotipy receives it. It must therefore only be used from a worker thread
(``asyncio.to_thread``), never on the loop itself, which it checks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from spotipy.cache_handler import CacheHandler

from core.storage import Store

T = TypeVar("T")
STORE_TIMEOUT_S = 30.0


def generate_key() -> str:
    """A new Fernet key (URL-safe base64 of 32 random bytes), for ``MOODTUNES_SECRET_KEY``."""
    return Fernet.generate_key().decode("ascii")


class TokenUnreadable(Exception):
    """A stored token cannot be decrypted (the key changed) or parsed."""


class TokenCipher:
    """Fernet encryption of JSON objects.

    ``keys`` is ``MOODTUNES_SECRET_KEY``: one Fernet key, or several separated by commas to rotate keys
    (the first encrypts, all decrypt; :meth:`rotate` re-encrypts under the first, after which the
    others can be dropped). Raises ValueError when a key is not a valid Fernet key.
    """

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("no key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in parts])
        except (ValueError, UnicodeEncodeError) as exc:
            raise ValueError("not a Fernet key (32 url-safe base64-encoded bytes)") from exc

    def encrypt(self, obj: dict[str, Any]) -> bytes:
        """Ciphertext of ``obj`` as compact JSON."""
        return self._fernet.encrypt(json.dumps(obj, separators=(",", ":")).encode("utf-8"))

    def rotate(self, blob: bytes) -> bytes:
        """The same plaintext encrypted under the first key (its timestamp kept); raises
        :class:`TokenUnreadable` when no key decrypts it."""
        try:
            return self._fernet.rotate(blob)
        except InvalidToken as exc:
            raise TokenUnreadable("stored Spotify data cannot be decrypted") from exc

    def decrypt(self, blob: bytes) -> dict[str, Any]:
        """The object back; raises :class:`TokenUnreadable` on a wrong key or damaged data."""
        try:
            obj = json.loads(self._fernet.decrypt(blob))
        except (InvalidToken, ValueError) as exc:
            raise TokenUnreadable("stored Spotify data cannot be decrypted") from exc
        if not isinstance(obj, dict):
            raise TokenUnreadable("stored Spotify data is not an object")
        return obj


class EncryptedTokenCache(CacheHandler):
    """spotipy ``CacheHandler`` for one user: their encrypted ``token_info`` row in ``spotify_tokens``.

    Saving never creates a link: it only replaces the token of a user who is still linked, so a refresh
    that races with ``unlink`` or ``/forget`` cannot bring deleted tokens back.
    """

    def __init__(
        self, store: Store, user_id: int, cipher: TokenCipher, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.store = store
        self.user_id = user_id
        self.cipher = cipher
        self.loop = loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coro.close()
            raise RuntimeError("EncryptedTokenCache must be used from a worker thread, not the event loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(STORE_TIMEOUT_S)

    def get_cached_token(self) -> dict[str, Any] | None:
        """The user's decrypted ``token_info``, None if not linked; raises TokenUnreadable."""
        blob = self._run(self.store.spotify_token(self.user_id))
        return None if blob is None else self.cipher.decrypt(blob)

    def save_token_to_cache(self, token_info: dict[str, Any]) -> None:
        """Encrypt and store a (refreshed) ``token_info`` for the user, if still linked."""
        self._run(self.store.spotify_update_token(self.user_id, self.cipher.encrypt(dict(token_info))))
