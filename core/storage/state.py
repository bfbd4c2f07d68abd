"""State that outlives a process: reply results and playlists, conversations, rate windows, handled
updates."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from core.storage.queries import Queries
from core.storage.rows import (
    PLAYLIST_CLAIM_S,
    Conversation,
    PlaylistClaim,
    ResultRow,
    UpdateClaim,
    _ids,
    tracks_key,
)


class StateQueries(Queries):
    """Everything a later message or button press needs, with expiries."""

    # Reply results (the buttons under a photo reply) ---------------------------------------------

    async def add_result(self, result: ResultRow, ttl_s: float, now: float | None = None) -> None:
        """Remember a photo reply's result for ``ttl_s`` seconds."""
        now = time.time() if now is None else now
        await self.db.execute(
            "INSERT INTO reply_results (token, user_id, chat_id, emotion, policy, count, shown, tracks,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            result.token,
            result.user_id,
            result.chat_id,
            result.emotion,
            result.policy,
            result.count,
            " ".join(result.shown),
            " ".join(result.tracks),
            now,
            now + ttl_s,
        )

    async def get_result(self, token: str, now: float | None = None) -> ResultRow | None:
        """The result behind a button, None if unknown or expired."""
        now = time.time() if now is None else now
        row = await self.db.fetchrow(
            "SELECT token, user_id, chat_id, emotion, policy, count, shown, tracks, version "
            "FROM reply_results WHERE token = ? AND expires_at > ?",
            token,
            now,
        )
        if row is None:
            return None
        return ResultRow(
            str(row[0]),
            int(row[1]),
            int(row[2]),
            str(row[3]),
            str(row[4]),
            int(row[5]),
            _ids(str(row[6])),
            _ids(str(row[7])),
            int(row[8]),
        )

    async def latest_result(self, user_id: int, chat_id: int, now: float | None = None) -> ResultRow | None:
        """The user's newest photo reply result in the chat (unexpired), None if there is none."""
        now = time.time() if now is None else now
        token = await self.db.fetchval(
            "SELECT token FROM reply_results WHERE user_id = ? AND chat_id = ? AND expires_at > ? "
            "ORDER BY created_at DESC LIMIT 1",
            user_id,
            chat_id,
            now,
        )
        return None if token is None else await self.get_result(str(token), now)

    async def recent_tracks(self, user_id: int, emotion: str, replies: int) -> set[str]:
        """Track ids the user was shown in their last ``replies`` replies for ``emotion``."""
        rows = await self.db.fetch(
            "SELECT shown FROM reply_results WHERE user_id = ? AND emotion = ? "
            "ORDER BY created_at DESC LIMIT ?",
            user_id,
            emotion,
            replies,
        )
        return {track for row in rows for track in _ids(str(row[0]))}

    async def update_result(self, result: ResultRow) -> bool:
        """Save ``policy``, ``shown`` and ``tracks`` if nobody changed the result since it was read
        (same ``version``); returns False (nothing written) otherwise."""
        changed = await self.db.execute(
            "UPDATE reply_results SET policy = ?, shown = ?, tracks = ?, version = version + 1 "
            "WHERE token = ? AND version = ?",
            result.policy,
            " ".join(result.shown),
            " ".join(result.tracks),
            result.token,
            result.version,
        )
        if changed:
            result.version += 1
        return changed > 0

    async def claim_playlist(
        self, token: str, track_ids: Sequence[str], now: float | None = None
    ) -> PlaylistClaim:
        """Claim the making of the playlist of ``track_ids`` for a result, once across all workers.

        Returns ``mine`` for the caller that must make it (a claim abandoned for
        :data:`PLAYLIST_CLAIM_S` is taken over), the URL if it exists, or neither while another
        worker is making it.
        """
        now = time.time() if now is None else now
        key = tracks_key(track_ids)
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "INSERT INTO result_playlists (token, tracks_key, url, claimed_at) VALUES (?, ?, NULL, ?) "
                "ON CONFLICT (token, tracks_key) DO UPDATE SET claimed_at = excluded.claimed_at "
                "WHERE result_playlists.url IS NULL AND result_playlists.claimed_at < ? "
                "RETURNING url",
                token,
                key,
                now,
                now - PLAYLIST_CLAIM_S,
            )
            if row is not None:
                return PlaylistClaim(mine=True)
            url = await tx.fetchval(
                "SELECT url FROM result_playlists WHERE token = ? AND tracks_key = ?", token, key
            )
        return PlaylistClaim(mine=False, url=str(url) if url is not None else None)

    async def finish_playlist(self, token: str, track_ids: Sequence[str], url: str | None) -> None:
        """Record the playlist made for a claim, or (``url`` None) give the claim up after a failure."""
        key = tracks_key(track_ids)
        if url is None:
            await self.db.execute(
                "DELETE FROM result_playlists WHERE token = ? AND tracks_key = ? AND url IS NULL", token, key
            )
        else:
            await self.db.execute(
                "UPDATE result_playlists SET url = ? WHERE token = ? AND tracks_key = ?", url, token, key
            )

    # Conversations --------------------------------------------------------------------------------

    async def set_conversation(
        self,
        user_id: int,
        chat_id: int,
        step: str,
        expires_at: float,
        model: str | None = None,
        embedding: np.ndarray | None = None,
        request: str | None = None,
    ) -> None:
        """Open (or move) the user's conversation in the chat to ``step`` until ``expires_at``."""
        blob = None if embedding is None else np.asarray(embedding, dtype="<f4").tobytes()
        await self.db.execute(
            "INSERT INTO conversations (user_id, chat_id, step, model, embedding, request, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, chat_id) DO UPDATE SET step = excluded.step, "
            "model = excluded.model, embedding = excluded.embedding, request = excluded.request, "
            "expires_at = excluded.expires_at",
            user_id,
            chat_id,
            step,
            model,
            blob,
            request,
            expires_at,
        )

    async def get_conversation(
        self, user_id: int, chat_id: int, now: float | None = None
    ) -> Conversation | None:
        """The open conversation, None if there is none or it expired."""
        now = time.time() if now is None else now
        row = await self.db.fetchrow(
            "SELECT step, expires_at, model, embedding, request FROM conversations "
            "WHERE user_id = ? AND chat_id = ? AND expires_at > ?",
            user_id,
            chat_id,
            now,
        )
        if row is None:
            return None
        embedding = None if row[3] is None else np.frombuffer(bytes(row[3]), dtype="<f4").astype(np.float32)
        return Conversation(str(row[0]), float(row[1]), row[2], embedding, row[4])

    async def end_conversation(
        self, user_id: int, chat_id: int | None = None, step: str | None = None
    ) -> bool:
        """Close the conversation (in one chat or all; only at ``step`` if given); True if one was open."""
        sql, args = "DELETE FROM conversations WHERE user_id = ?", [cast(Any, user_id)]
        if chat_id is not None:
            sql, args = sql + " AND chat_id = ?", [*args, chat_id]
        if step is not None:
            sql, args = sql + " AND step = ?", [*args, step]
        return await self.db.execute(sql, *args) > 0

    # Rate limits ------------------------------------------------------------------------------------

    async def rate_check(
        self, user_id: int, kind: str, limit: int, window_s: float, now: float | None = None
    ) -> float:
        """Count one ``kind`` event for the user and return 0, or return the seconds to wait when
        ``limit`` events already happened in the last ``window_s`` seconds (nothing counted then).
        Atomic across every worker sharing the database."""
        now = time.time() if now is None else now
        async with self.db.transaction() as tx:
            await tx.lock(f"rate:{user_id}:{kind}")
            rows = await tx.fetch(
                "SELECT at FROM rate_events WHERE user_id = ? AND kind = ? AND at > ? ORDER BY at",
                user_id,
                kind,
                now - window_s,
            )
            if len(rows) >= limit:
                return float(rows[len(rows) - limit][0]) + window_s - now
            await tx.execute(
                "INSERT INTO rate_events (user_id, kind, at) VALUES (?, ?, ?)", user_id, kind, now
            )
        return 0.0

    # Handled updates --------------------------------------------------------------------------------

    async def claim_update(
        self, platform: str, update_id: str, worker: str, lease_s: float, now: float | None = None
    ) -> UpdateClaim:
        """Claim a platform update before handling it: ``claimed`` (handle it), ``done`` (it was
        handled: answer the redelivery without handling it again) or ``busy`` (another worker is on it
        and its lease runs). A claim whose lease ran out (its worker died) is taken over, with the
        progress that worker recorded (:meth:`record_progress`)."""
        now = time.time() if now is None else now
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "INSERT INTO processed_updates (platform, update_id, state, worker, lease_until, updated_at) "
                "VALUES (?, ?, 'working', ?, ?, ?) ON CONFLICT (platform, update_id) DO UPDATE SET "
                "worker = excluded.worker, lease_until = excluded.lease_until, "
                "updated_at = excluded.updated_at "
                "WHERE processed_updates.state = 'working' AND processed_updates.lease_until < ? "
                "RETURNING progress",
                platform,
                str(update_id),
                worker,
                now + lease_s,
                now,
                now,
            )
            if row is not None:
                return UpdateClaim("claimed", int(row[0]))
            state = await tx.fetchval(
                "SELECT state FROM processed_updates WHERE platform = ? AND update_id = ?",
                platform,
                str(update_id),
            )
        return UpdateClaim("done" if state == "done" else "busy")

    async def record_progress(self, platform: str, update_id: str, worker: str, progress: int) -> bool:
        """Record that ``progress`` messages of an update's answer were sent (a worker taking the
        update over sends only the rest); False if this worker lost the claim."""
        changed = await self.db.execute(
            "UPDATE processed_updates SET progress = ? "
            "WHERE platform = ? AND update_id = ? AND worker = ? AND state = 'working'",
            progress,
            platform,
            str(update_id),
            worker,
        )
        return changed > 0

    async def renew_update(
        self, platform: str, update_id: str, worker: str, lease_s: float, now: float | None = None
    ) -> bool:
        """Extend this worker's lease on an update it is still handling; False if it lost the claim."""
        now = time.time() if now is None else now
        return (
            await self.db.execute(
                "UPDATE processed_updates SET lease_until = ?, updated_at = ? "
                "WHERE platform = ? AND update_id = ? AND worker = ? AND state = 'working'",
                now + lease_s,
                now,
                platform,
                str(update_id),
                worker,
            )
            > 0
        )

    async def finish_update(
        self, platform: str, update_id: str, done: bool, now: float | None = None
    ) -> None:
        """Mark an update handled (``done``), or release the claim so a redelivery handles it."""
        now = time.time() if now is None else now
        if done:
            await self.db.execute(
                "UPDATE processed_updates SET state = 'done', updated_at = ? "
                "WHERE platform = ? AND update_id = ?",
                now,
                platform,
                str(update_id),
            )
        else:
            await self.db.execute(
                "DELETE FROM processed_updates WHERE platform = ? AND update_id = ? AND state = 'working'",
                platform,
                str(update_id),
            )
