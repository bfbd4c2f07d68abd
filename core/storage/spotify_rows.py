"""Spotify: encrypted tokens, pending links and OAuth states (hashed), and the cached taste."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from core.errors import UserGone
from core.storage.queries import Queries
from core.storage.rows import TasteRow


class SpotifyQueries(Queries):
    """Spotify rows; secrets arrive here already encrypted or hashed."""

    # Spotify ---------------------------------------------------------------------------------------
    # Tokens and account details arrive here already encrypted (core.spotify.token_cache); OAuth states
    # arrive hashed. Nothing in this section ever sees a secret in the clear.

    async def spotify_update_token(self, user_id: int, token: bytes) -> bool:
        """Replace the encrypted token of a linked user; False (nothing written) if not linked."""
        changed = await self.db.execute(
            "UPDATE spotify_tokens SET token = ?, updated_at = CURRENT_TIMESTAMP WHERE user_id = ?",
            token,
            user_id,
        )
        return changed > 0

    async def spotify_token(self, user_id: int) -> bytes | None:
        """The user's encrypted token, None if not linked."""
        value = await self.db.fetchval("SELECT token FROM spotify_tokens WHERE user_id = ?", user_id)
        return bytes(value) if value is not None else None

    async def spotify_account(self, user_id: int) -> bytes | None:
        """The user's encrypted account details, None if not linked."""
        value = await self.db.fetchval("SELECT account FROM spotify_tokens WHERE user_id = ?", user_id)
        return bytes(value) if value is not None else None

    async def spotify_linked_users(self) -> list[int]:
        """Every user with a stored token (for re-encryption under a new key)."""
        return [int(r[0]) for r in await self.db.fetch("SELECT user_id FROM spotify_tokens ORDER BY 1")]

    async def spotify_delete_link(self, user_id: int) -> bool:
        """Delete the user's token and what was read with it (the taste cache); True if there was one."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM spotify_taste WHERE user_id = ?", user_id)
            return await tx.execute("DELETE FROM spotify_tokens WHERE user_id = ?", user_id) > 0

    async def spotify_add_state(
        self,
        state_hash: str,
        user_id: int,
        expires_at: float,
        now: float,
        keep: int = 5,
        notify: dict[str, Any] | None = None,
    ) -> None:
        """Record a pending OAuth state (hashed) for the user, with where to tell them it finished.

        States expired at ``now`` are purged, and the user keeps only their ``keep`` newest pending states.
        """
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM spotify_oauth_states WHERE expires_at <= ?", now)
            await tx.execute(
                "INSERT INTO spotify_oauth_states (state_hash, user_id, expires_at, notify) "
                "VALUES (?, ?, ?, ?)",
                state_hash,
                user_id,
                expires_at,
                json.dumps(notify or {}),
            )
            await tx.execute(
                "DELETE FROM spotify_oauth_states WHERE user_id = ? AND state_hash NOT IN ("
                " SELECT state_hash FROM spotify_oauth_states WHERE user_id = ?"
                " ORDER BY expires_at DESC LIMIT ?)",
                user_id,
                user_id,
                keep,
            )

    async def spotify_take_state(self, state_hash: str) -> tuple[int, float, dict[str, Any]] | None:
        """Delete a pending state and return ``(user_id, expires_at, notify)``; None if unknown or used."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "DELETE FROM spotify_oauth_states WHERE state_hash = ? RETURNING user_id, expires_at, notify",
                state_hash,
            )
        if row is None:
            return None
        notify = json.loads(str(row[2])) if row[2] else {}
        return int(row[0]), float(row[1]), notify

    async def spotify_count_states(self, user_id: int | None = None) -> int:
        """Pending OAuth states (of one user, or all)."""
        if user_id is None:
            return int(await self.db.fetchval("SELECT count(*) FROM spotify_oauth_states") or 0)
        return int(
            await self.db.fetchval("SELECT count(*) FROM spotify_oauth_states WHERE user_id = ?", user_id)
            or 0
        )

    async def spotify_add_pending(
        self,
        confirm_hash: str,
        user_id: int,
        token: bytes,
        account: bytes,
        expires_at: float,
        request: str | None = None,
    ) -> None:
        """Keep an authorised account (encrypted) until its user answers the confirmation question,
        under the hash of the question's token; it replaces the user's earlier pending account.

        Raises ``UserGone`` when the user was deleted while the link was being made.
        """
        async with self.db.transaction() as tx:
            if await tx.fetchrow("SELECT 1 FROM users WHERE id = ?", user_id) is None:
                raise UserGone("Your data was deleted meanwhile, so nothing was linked.")
            await tx.execute(
                "INSERT INTO spotify_pending_links "
                "(confirm_hash, user_id, token, account, expires_at, request) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET "
                "confirm_hash = excluded.confirm_hash, token = excluded.token, "
                "account = excluded.account, expires_at = excluded.expires_at, request = excluded.request",
                confirm_hash,
                user_id,
                token,
                account,
                expires_at,
                request,
            )

    async def spotify_reask_pending(
        self, user_id: int, request: str, confirm_hash: str, now: float
    ) -> tuple[bytes, float] | None:
        """The account a chat request already authorised (a redelivery of that request after a worker
        died before asking): give its question a new token (the old one never reached the user) and
        return ``(account, expires_at)``; None when this request authorised nothing still waiting."""
        row = await self.db.fetchrow(
            "UPDATE spotify_pending_links SET confirm_hash = ? "
            "WHERE user_id = ? AND request = ? AND expires_at > ? RETURNING account, expires_at",
            confirm_hash,
            user_id,
            request,
            now,
        )
        return (bytes(row[0]), float(row[1])) if row is not None else None

    async def spotify_confirm_pending(self, confirm_hash: str, user_id: int, now: float) -> bytes | None:
        """The user said Yes: move their pending account to the linked tokens, in one transaction.

        Returns its encrypted account details, or None (nothing changes) when no such question of this
        user is pending or it expired (an expired one is deleted).
        """
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "DELETE FROM spotify_pending_links WHERE confirm_hash = ? AND user_id = ? "
                "RETURNING token, account, expires_at",
                confirm_hash,
                user_id,
            )
            if row is None or float(row[2]) <= now:
                return None
            await tx.execute(
                "INSERT INTO spotify_tokens (user_id, token, account) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET token = excluded.token, account = excluded.account, "
                "linked_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP",
                user_id,
                bytes(row[0]),
                bytes(row[1]),
            )
        return bytes(row[1])

    async def spotify_drop_pending(self, confirm_hash: str, user_id: int) -> bool:
        """The user said No: delete their pending account; True if it was there."""
        return (
            await self.db.execute(
                "DELETE FROM spotify_pending_links WHERE confirm_hash = ? AND user_id = ?",
                confirm_hash,
                user_id,
            )
            > 0
        )

    async def spotify_count_pending(self, user_id: int | None = None) -> int:
        """Accounts waiting for confirmation (of one user, or all)."""
        if user_id is None:
            return int(await self.db.fetchval("SELECT count(*) FROM spotify_pending_links") or 0)
        return int(
            await self.db.fetchval("SELECT count(*) FROM spotify_pending_links WHERE user_id = ?", user_id)
            or 0
        )

    async def spotify_encrypted_rows(self) -> list[tuple[str, int, bytes, bytes]]:
        """Every encrypted Spotify row, for re-encryption under a new key: ``(table, user_id, token,
        account)`` with table ``linked`` or ``pending``."""
        linked = await self.db.fetch("SELECT user_id, token, account FROM spotify_tokens ORDER BY 1")
        pending = await self.db.fetch("SELECT user_id, token, account FROM spotify_pending_links ORDER BY 1")
        return [
            *(("linked", int(r[0]), bytes(r[1]), bytes(r[2])) for r in linked),
            *(("pending", int(r[0]), bytes(r[1]), bytes(r[2])) for r in pending),
        ]

    async def spotify_reencrypt(
        self, table: str, user_id: int, old_token: bytes, token: bytes, account: bytes
    ) -> bool:
        """Replace a row's ciphertexts by the same values under a new key, unless the token changed
        meanwhile (a refresh already wrote it under the new key); True if replaced."""
        name = {"linked": "spotify_tokens", "pending": "spotify_pending_links"}[table]
        return (
            await self.db.execute(
                f"UPDATE {name} SET token = ?, account = ? WHERE user_id = ? AND token = ?",
                token,
                account,
                user_id,
                old_token,
            )
            > 0
        )

    # Spotify taste -----------------------------------------------------------------------------------

    async def taste_get(self, user_id: int) -> TasteRow | None:
        """The user's cached Spotify taste, None if never read."""
        row = await self.db.fetchrow(
            "SELECT artists, tracks, fetched_at, ok FROM spotify_taste WHERE user_id = ?", user_id
        )
        if row is None:
            return None
        return TasteRow(
            tuple(str(a) for a in json.loads(str(row[0]) or "[]")),
            tuple(str(t) for t in json.loads(str(row[1]) or "[]")),
            float(row[2]),
            int(row[3]) == 1,
        )

    async def taste_claim(self, user_id: int, now: float, max_age_s: float) -> bool:
        """Claim the reading of the user's taste from Spotify, at most once per ``max_age_s`` across
        every worker: True for the one caller that should read it now (the attempt is recorded at once;
        earlier values stay until :meth:`taste_save`)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "INSERT INTO spotify_taste (user_id, fetched_at) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET fetched_at = excluded.fetched_at "
                "WHERE spotify_taste.fetched_at <= ? RETURNING user_id",
                user_id,
                now,
                now - max_age_s,
            )
        return row is not None

    async def taste_save(
        self, user_id: int, artists: Sequence[str], tracks: Sequence[str], now: float
    ) -> None:
        """Store what Spotify said (only while the user is still linked)."""
        await self.db.execute(
            "UPDATE spotify_taste SET artists = ?, tracks = ?, fetched_at = ?, ok = 1 WHERE user_id = ? "
            "AND EXISTS (SELECT 1 FROM spotify_tokens WHERE user_id = ?)",
            json.dumps(list(artists)),
            json.dumps(list(tracks)),
            now,
            user_id,
            user_id,
        )
