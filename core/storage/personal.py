"""The mood journal and song feedback."""

from __future__ import annotations

import json
from collections.abc import Sequence

from core.storage.queries import Queries
from core.storage.rows import JournalEntry, JournalState


class PersonalQueries(Queries):
    """Per-user journal entries and song verdicts."""

    # Mood journal ------------------------------------------------------------------------------------

    async def journal_state(self, user_id: int) -> JournalState:
        """The user's journal switch (off, no question, when never asked)."""
        row = await self.db.fetchrow(
            "SELECT enabled, ask_token, ask_until FROM journal_settings WHERE user_id = ?", user_id
        )
        if row is None:
            return JournalState(False)
        return JournalState(int(row[0]) == 1, row[1], float(row[2]) if row[2] is not None else None)

    async def journal_ask(self, user_id: int, token: str, until: float, now: float) -> None:
        """Open the consent question ``token`` (its Yes/No buttons work until ``until``); the switch
        itself does not change."""
        await self.db.execute(
            "INSERT INTO journal_settings (user_id, enabled, ask_token, ask_until, changed_at) "
            "VALUES (?, 0, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
            "ask_token = excluded.ask_token, ask_until = excluded.ask_until",
            user_id,
            token,
            until,
            now,
        )

    async def journal_answer(self, user_id: int, token: str, enable: bool, now: float) -> bool:
        """The user's answer to their open question ``token``: switch on (``enable``) or just close it.
        False (nothing changes) when no such question of this user is open, or it expired."""
        changed = await self.db.execute(
            "UPDATE journal_settings SET enabled = CASE WHEN ? THEN 1 ELSE enabled END, "
            "ask_token = NULL, ask_until = NULL, changed_at = ? "
            "WHERE user_id = ? AND ask_token = ? AND ask_until > ?",
            enable,
            now,
            user_id,
            token,
            now,
        )
        return changed > 0

    async def journal_disable(self, user_id: int, now: float) -> int:
        """Switch the journal off and delete its entries; returns how many were deleted."""
        async with self.db.transaction() as tx:
            await tx.lock(f"journal:{user_id}")
            await tx.execute(
                "UPDATE journal_settings SET enabled = 0, ask_token = NULL, ask_until = NULL, "
                "changed_at = ? WHERE user_id = ?",
                now,
                user_id,
            )
            return await tx.execute("DELETE FROM journal_entries WHERE user_id = ?", user_id)

    async def journal_add(self, user_id: int, entry: JournalEntry) -> bool:
        """Record a photo, only if the user's journal is on (checked under the user's journal lock, so
        it never lands after ``/journal off``); True if recorded."""
        async with self.db.transaction() as tx:
            await tx.lock(f"journal:{user_id}")
            enabled = await tx.fetchval(
                "SELECT enabled FROM journal_settings WHERE user_id = ? AND enabled = 1", user_id
            )
            if enabled is None:
                return False
            await tx.execute(
                "INSERT INTO journal_entries (user_id, at, emotion, mood, policy, tracks, valence, energy) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                user_id,
                entry.at,
                entry.emotion,
                entry.mood,
                entry.policy,
                entry.tracks,
                entry.valence,
                entry.energy,
            )
        return True

    async def journal_entries(self, user_id: int, since: float) -> list[JournalEntry]:
        """The user's entries at or after ``since``, oldest first."""
        rows = await self.db.fetch(
            "SELECT at, emotion, mood, policy, tracks, valence, energy FROM journal_entries "
            "WHERE user_id = ? AND at >= ? ORDER BY at, id",
            user_id,
            since,
        )
        return [
            JournalEntry(
                float(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                int(r[4]),
                float(r[5]) if r[5] is not None else None,
                float(r[6]) if r[6] is not None else None,
            )
            for r in rows
        ]

    # Song feedback -----------------------------------------------------------------------------------

    async def feedback_set(
        self, user_id: int, track_id: str, verdict: str, artists: Sequence[str], now: float
    ) -> None:
        """The user's verdict on a track: ``nope`` (never again) or ``like`` (more like it); the latest
        verdict replaces an earlier one."""
        await self.db.execute(
            "INSERT INTO track_feedback (user_id, track_id, verdict, artists, at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, track_id) DO UPDATE SET verdict = excluded.verdict, "
            "artists = excluded.artists, at = excluded.at",
            user_id,
            track_id,
            verdict,
            json.dumps(list(artists)),
            now,
        )

    async def feedback_tracks(self, user_id: int, verdict: str) -> set[str]:
        """Ids of the tracks the user gave ``verdict``."""
        rows = await self.db.fetch(
            "SELECT track_id FROM track_feedback WHERE user_id = ? AND verdict = ?", user_id, verdict
        )
        return {str(r[0]) for r in rows}

    async def feedback_liked_artists(self, user_id: int) -> list[str]:
        """Artists of the tracks the user liked, newest like first, each once."""
        rows = await self.db.fetch(
            "SELECT artists FROM track_feedback WHERE user_id = ? AND verdict = 'like' ORDER BY at DESC",
            user_id,
        )
        names: dict[str, None] = {}
        for row in rows:
            for name in json.loads(str(row[0]) or "[]"):
                names.setdefault(str(name), None)
        return list(names)
