"""The store: every SQL statement of the application, over SQLite or PostgreSQL.

Open it with :func:`open_store` (the engine follows ``MOODTUNES_DB``: a file path is SQLite, a
``postgresql://`` URL is PostgreSQL). The SQL is written once, in the subset both engines share; the
schema of each engine lives in ``core/storage/sql/<dialect>/``. Everything a later message or button
press needs (reply results, conversations, rate windows, handled updates, Spotify link state) lives
here with an expiry, so any worker can answer and a restart loses nothing; :meth:`Store.sweep`
deletes what has expired.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from core.errors import UserGone
from core.storage.database import Database, PostgresDatabase, SqliteDatabase

JOURNAL_KEEP_S = 31 * 86_400.0
"""Mood journal entries older than this are swept (the history shows 30 days)."""
MAX_SAMPLES_PER_SCOPE = 20
"""Face samples kept per user and chat; enrolling more replaces the oldest."""
PLAYLIST_CLAIM_S = 120.0
"""A playlist being made by a worker that has not finished in this time is taken over by another."""


@dataclass(frozen=True)
class UserSettings:
    """Per-user preferences: tracks per reply (1..50), the mood policy (``match`` or ``lift``) and the
    language chosen with ``/language`` (None: the platform's)."""

    track_count: int
    mood_policy: str
    language: str | None = None


@dataclass(frozen=True)
class UserLanguage:
    """What decides a user's language: their ``/language`` ``choice`` (None: follow the platform) and
    the ``locale`` their platform last reported (None: never reported)."""

    choice: str | None = None
    locale: str | None = None


LOCALE_LIMIT = 35
"""Characters of a platform's language code kept (BCP 47 tags are shorter)."""


@dataclass(frozen=True)
class GalleryRows:
    """Enrolled samples of one chat for one model: ``vectors`` (N, dim) float32, ``user_ids`` (N,);
    ``generation`` is the chat's gallery generation these rows were read at."""

    user_ids: np.ndarray
    vectors: np.ndarray
    names: dict[int, str]
    generation: int = 0


@dataclass(frozen=True)
class Deleted:
    """What :meth:`Store.delete_user` removed, for the confirmation message."""

    users: int
    embeddings: int
    spotify_tokens: int = 0
    journal_entries: int = 0
    ratings: int = 0


@dataclass
class ResultRow:
    """What a photo reply's buttons act on: the emotion and policy, tracks per list, the track ids
    shown so far in the chain and those of the latest list; ``version`` guards concurrent updates."""

    token: str
    user_id: int
    chat_id: int
    emotion: str
    policy: str
    count: int
    shown: list[str] = field(default_factory=list)
    tracks: list[str] = field(default_factory=list)
    version: int = 0


@dataclass(frozen=True)
class Conversation:
    """An open conversation step; an enrolment photo given with /enroll waits as its ``embedding``."""

    step: str
    expires_at: float
    model: str | None = None
    embedding: np.ndarray | None = None
    request: str | None = None
    """The platform request (e.g. a Telegram update) that made this step."""


@dataclass(frozen=True)
class JournalEntry:
    """One photo in the mood journal: when, the emotion the songs followed, and the songs' mood
    (``valence`` and ``energy`` are the means of the songs sent, None when none were sent)."""

    at: float
    emotion: str
    mood: str = ""
    policy: str = "match"
    tracks: int = 0
    valence: float | None = None
    energy: float | None = None


@dataclass(frozen=True)
class JournalState:
    """A user's journal switch: ``enabled``, and the open consent question's token (None if none)."""

    enabled: bool
    ask_token: str | None = None
    ask_until: float | None = None


@dataclass(frozen=True)
class TasteRow:
    """A linked user's cached Spotify taste: artist names (most listened first), top track ids, when it
    was last read (or tried) and whether that read worked."""

    artists: tuple[str, ...]
    tracks: tuple[str, ...]
    fetched_at: float
    ok: bool


@dataclass(frozen=True)
class UpdateClaim:
    """Outcome of :meth:`Store.claim_update`: ``state`` is ``claimed`` (handle it; ``progress``
    messages of its answer were already sent by a worker that died), ``done`` or ``busy``."""

    state: str
    progress: int = 0


@dataclass(frozen=True)
class PlaylistClaim:
    """Outcome of :meth:`Store.claim_playlist`: ``mine`` (make it now), or the ``url`` already made,
    or neither (another worker is making it: wait and ask again)."""

    mine: bool
    url: str | None = None


async def open_store(db: str | Path, pool_size: int = 10) -> Store:
    """The store for ``MOODTUNES_DB``: a SQLite file path, or a ``postgresql://`` URL."""
    text = str(db)
    if text.startswith(("postgresql://", "postgres://")):
        return Store(await PostgresDatabase.open(text, pool_size), text)
    return Store(await SqliteDatabase.open(Path(text)), text)


def _ids(text: str) -> list[str]:
    return text.split() if text else []


class Store:
    """The application's queries over one :class:`~core.storage.database.Database`."""

    def __init__(self, db: Database, url: str = "") -> None:
        self.db = db
        self.url = url
        """What the store was opened with (a SQLite path or a PostgreSQL URL)."""
        self.default_track_count = 10

    @classmethod
    async def open(cls, path: str | Path) -> Store:
        """Same as :func:`open_store` (kept for callers that open a SQLite file by path)."""
        return await open_store(path)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.db.dialect

    @property
    def path(self) -> Path | None:
        """The SQLite file, None on PostgreSQL."""
        return self.db.path if isinstance(self.db, SqliteDatabase) else None

    async def close(self) -> None:
        """Close the connection(s)."""
        await self.db.close()

    async def schema_versions(self) -> list[int]:
        """Applied migration numbers, ascending."""
        return [int(r[0]) for r in await self.db.fetch("SELECT version FROM schema_migrations ORDER BY 1")]

    # Users and chats -------------------------------------------------------------------------

    async def ensure_user(
        self, platform: str, external_id: str, display_name: str = "", locale: str | None = None
    ) -> int:
        """Id of the user, created if new; a non-empty ``display_name`` is updated, and so is the
        language code the platform reports (``locale``, e.g. ``"es-ES"``) when there is one."""
        locale = locale.strip()[:LOCALE_LIMIT] or None if locale else None
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "INSERT INTO users (platform, external_id, display_name, locale) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (platform, external_id) DO UPDATE SET display_name = "
                "CASE WHEN excluded.display_name != '' THEN excluded.display_name "
                "ELSE users.display_name END, locale = COALESCE(excluded.locale, users.locale) RETURNING id",
                platform,
                str(external_id),
                display_name,
                locale,
            )
        assert row is not None
        return int(row[0])

    async def find_user(self, platform: str, external_id: str) -> int | None:
        """Id of the user, or None if unknown."""
        value = await self.db.fetchval(
            "SELECT id FROM users WHERE platform = ? AND external_id = ?", platform, str(external_id)
        )
        return int(value) if value is not None else None

    async def user_exists(self, user_id: int) -> bool:
        """Whether the user still exists (in-flight work checks this before writing)."""
        return await self.db.fetchrow("SELECT 1 FROM users WHERE id = ?", user_id) is not None

    async def user_name(self, user_id: int) -> str | None:
        """Display name (or external id when blank) of a user, None if no such user."""
        value = await self.db.fetchval(
            "SELECT CASE WHEN display_name != '' THEN display_name ELSE external_id END "
            "FROM users WHERE id = ?",
            user_id,
        )
        return str(value) if value is not None else None

    async def ensure_chat(
        self, platform: str, external_id: str, title: str = "", owner_user_id: int | None = None
    ) -> int:
        """Id of the chat (the face-matching scope), created if new.

        ``owner_user_id`` marks a private chat: it belongs to that user and is deleted with them. A
        private chat first stored without its owner (by an older version) gets it now, and its title
        is cleared: a Telegram private chat's id is its user's id.
        """
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "INSERT INTO chats (platform, external_id, title, owner_user_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (platform, external_id) DO UPDATE SET "
                "title = CASE WHEN excluded.owner_user_id IS NOT NULL AND chats.owner_user_id IS NULL "
                "THEN '' ELSE chats.title END, "
                "owner_user_id = COALESCE(chats.owner_user_id, excluded.owner_user_id) RETURNING id",
                platform,
                str(external_id),
                title,
                owner_user_id,
            )
        assert row is not None
        return int(row[0])

    async def find_chat(self, platform: str, external_id: str) -> int | None:
        """Id of the chat, or None if unknown."""
        value = await self.db.fetchval(
            "SELECT id FROM chats WHERE platform = ? AND external_id = ?", platform, str(external_id)
        )
        return int(value) if value is not None else None

    async def delete_user(self, user_id: int) -> Deleted:
        """Delete the user and, by cascade, everything of theirs: embeddings, settings, Spotify data,
        results, conversations, rate windows and their private chats. Galleries they were in move to a
        new generation, so no cached copy can match them again."""
        async with self.db.transaction() as tx:
            embeddings = int(
                await tx.fetchval("SELECT count(*) FROM face_embeddings WHERE user_id = ?", user_id) or 0
            )
            tokens = int(
                await tx.fetchval("SELECT count(*) FROM spotify_tokens WHERE user_id = ?", user_id) or 0
            )
            journal = int(
                await tx.fetchval("SELECT count(*) FROM journal_entries WHERE user_id = ?", user_id) or 0
            )
            ratings = int(
                await tx.fetchval("SELECT count(*) FROM track_feedback WHERE user_id = ?", user_id) or 0
            )
            await tx.execute(
                "UPDATE chats SET gallery_generation = gallery_generation + 1 WHERE id IN "
                "(SELECT DISTINCT chat_id FROM face_embeddings WHERE user_id = ?)",
                user_id,
            )
            users = await tx.execute("DELETE FROM users WHERE id = ?", user_id)
        await self.db.after_forget()
        return Deleted(
            users=users,
            embeddings=embeddings,
            spotify_tokens=tokens,
            journal_entries=journal,
            ratings=ratings,
        )

    # Settings -----------------------------------------------------------------------------------

    async def get_settings(self, user_id: int) -> UserSettings:
        """The user's settings, defaults when never set."""
        row = await self.db.fetchrow(
            "SELECT track_count, mood_policy, language FROM user_settings WHERE user_id = ?", user_id
        )
        if row is None:
            return UserSettings(self.default_track_count, "match")
        return UserSettings(int(row[0]), str(row[1]), str(row[2]) if row[2] is not None else None)

    async def set_language(self, user_id: int, language: str | None) -> None:
        """The ``/language`` choice (a language code), or None to follow the platform again."""
        await self.db.execute(
            "INSERT INTO user_settings (user_id, track_count, language) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET language = excluded.language, "
            "updated_at = CURRENT_TIMESTAMP",
            user_id,
            self.default_track_count,
            language,
        )

    async def user_language(self, user_id: int) -> UserLanguage:
        """The user's ``/language`` choice and the language their platform last reported."""
        row = await self.db.fetchrow(
            "SELECT s.language, u.locale FROM users u LEFT JOIN user_settings s ON s.user_id = u.id "
            "WHERE u.id = ?",
            user_id,
        )
        return _user_language(row)

    async def find_user_language(self, platform: str, external_id: str) -> UserLanguage:
        """:meth:`user_language` of a platform's user, without creating them (empty if unknown)."""
        row = await self.db.fetchrow(
            "SELECT s.language, u.locale FROM users u LEFT JOIN user_settings s ON s.user_id = u.id "
            "WHERE u.platform = ? AND u.external_id = ?",
            platform,
            str(external_id),
        )
        return _user_language(row)

    async def set_track_count(self, user_id: int, count: int) -> None:
        """Tracks per reply, 1..50 (the database refuses anything else)."""
        await self.db.execute(
            "INSERT INTO user_settings (user_id, track_count) VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET track_count = excluded.track_count, "
            "updated_at = CURRENT_TIMESTAMP",
            user_id,
            count,
        )

    async def set_mood_policy(self, user_id: int, policy: str) -> None:
        """``match`` or ``lift``."""
        await self.db.execute(
            "INSERT INTO user_settings (user_id, track_count, mood_policy) VALUES (?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET mood_policy = excluded.mood_policy, "
            "updated_at = CURRENT_TIMESTAMP",
            user_id,
            self.default_track_count,
            policy,
        )

    # Face embeddings -----------------------------------------------------------------------------

    async def add_embeddings(
        self,
        user_id: int,
        chat_id: int,
        model: str,
        vectors: np.ndarray,
        keep: int = MAX_SAMPLES_PER_SCOPE,
        check: Callable[[GalleryRows], None] | None = None,
    ) -> int:
        """Store (N, dim) float32 vectors for the user in the chat; keep the newest ``keep``.

        ``check(rows)`` sees the chat's current gallery (this model) inside the transaction, under the
        chat's gallery lock, and may raise to refuse. Raises ``UserGone`` when the user was deleted.
        Returns the number of samples the user now has in this chat for this model.
        """
        vectors = np.asarray(vectors, dtype="<f4")
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be (N, dim), got {vectors.shape}")
        async with self.db.transaction() as tx:
            await tx.lock(f"gallery:{chat_id}")
            if await tx.fetchrow("SELECT 1 FROM users WHERE id = ?", user_id) is None:
                raise UserGone("Your data was deleted meanwhile, so nothing was stored.")
            if check is not None:
                check(await self._gallery_rows(tx, chat_id, model))
            await tx.executemany(
                "INSERT INTO face_embeddings (user_id, chat_id, model, dim, vector) VALUES (?, ?, ?, ?, ?)",
                [(user_id, chat_id, model, vectors.shape[1], v.tobytes()) for v in vectors],
            )
            await tx.execute(
                "DELETE FROM face_embeddings WHERE user_id = ? AND chat_id = ? AND model = ? AND id NOT IN ("
                " SELECT id FROM face_embeddings WHERE user_id = ? AND chat_id = ? AND model = ?"
                " ORDER BY id DESC LIMIT ?)",
                user_id,
                chat_id,
                model,
                user_id,
                chat_id,
                model,
                keep,
            )
            await tx.execute(
                "UPDATE chats SET gallery_generation = gallery_generation + 1 WHERE id = ?", chat_id
            )
            count = await tx.fetchval(
                "SELECT count(*) FROM face_embeddings WHERE user_id = ? AND chat_id = ? AND model = ?",
                user_id,
                chat_id,
                model,
            )
        return int(count or 0)

    async def gallery_generation(self, chat_id: int) -> int:
        """The chat's gallery generation: it changes whenever a sample is added or removed."""
        return int(await self.db.fetchval("SELECT gallery_generation FROM chats WHERE id = ?", chat_id) or 0)

    async def gallery(self, chat_id: int, model: str) -> GalleryRows:
        """Every enrolled sample in a chat for one model, ordered by user then age, read in one
        transaction with the generation they belong to."""
        async with self.db.transaction() as tx:
            return await self._gallery_rows(tx, chat_id, model)

    @staticmethod
    async def _gallery_rows(tx: Database, chat_id: int, model: str) -> GalleryRows:
        generation = int(await tx.fetchval("SELECT gallery_generation FROM chats WHERE id = ?", chat_id) or 0)
        rows = await tx.fetch(
            "SELECT e.user_id, e.dim, e.vector, "
            " CASE WHEN u.display_name != '' THEN u.display_name ELSE u.external_id END "
            "FROM face_embeddings e JOIN users u ON u.id = e.user_id "
            "WHERE e.chat_id = ? AND e.model = ? ORDER BY e.user_id, e.id",
            chat_id,
            model,
        )
        if not rows:
            return GalleryRows(np.zeros(0, np.int64), np.zeros((0, 0), np.float32), {}, generation)
        dim = int(rows[0][1])
        vectors = np.frombuffer(b"".join(bytes(r[2]) for r in rows), dtype="<f4").reshape(len(rows), dim)
        return GalleryRows(
            np.array([r[0] for r in rows], dtype=np.int64),
            vectors.astype(np.float32),
            {int(r[0]): str(r[3]) for r in rows},
            generation,
        )

    async def count_samples(self, user_id: int, chat_id: int, model: str) -> int:
        """The user's face samples in one chat for one model."""
        value = await self.db.fetchval(
            "SELECT count(*) FROM face_embeddings WHERE user_id = ? AND chat_id = ? AND model = ?",
            user_id,
            chat_id,
            model,
        )
        return int(value or 0)

    async def count_embeddings(self, user_id: int) -> int:
        """All face samples of the user, every chat and model."""
        return int(
            await self.db.fetchval("SELECT count(*) FROM face_embeddings WHERE user_id = ?", user_id) or 0
        )

    async def delete_embeddings(self, user_id: int, chat_id: int | None = None) -> int:
        """Delete the user's face samples (in one chat, or everywhere); returns how many."""
        scope = "" if chat_id is None else " AND chat_id = ?"
        args: tuple[Any, ...] = (user_id,) if chat_id is None else (user_id, chat_id)
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE chats SET gallery_generation = gallery_generation + 1 WHERE id IN "
                f"(SELECT DISTINCT chat_id FROM face_embeddings WHERE user_id = ?{scope})",
                *args,
            )
            return await tx.execute(f"DELETE FROM face_embeddings WHERE user_id = ?{scope}", *args)

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
        self, confirm_hash: str, user_id: int, token: bytes, account: bytes, expires_at: float
    ) -> None:
        """Keep an authorised account (encrypted) until its user answers the confirmation question,
        under the hash of the question's token; it replaces the user's earlier pending account.

        Raises ``UserGone`` when the user was deleted while the link was being made.
        """
        async with self.db.transaction() as tx:
            if await tx.fetchrow("SELECT 1 FROM users WHERE id = ?", user_id) is None:
                raise UserGone("Your data was deleted meanwhile, so nothing was linked.")
            await tx.execute(
                "INSERT INTO spotify_pending_links (confirm_hash, user_id, token, account, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET "
                "confirm_hash = excluded.confirm_hash, token = excluded.token, "
                "account = excluded.account, expires_at = excluded.expires_at",
                confirm_hash,
                user_id,
                token,
                account,
                expires_at,
            )

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

    # Expiry -----------------------------------------------------------------------------------------

    async def sweep(
        self,
        now: float | None = None,
        rate_window_s: float = 3600.0,
        keep_updates_s: float = 86_400.0,
        journal_keep_s: float = JOURNAL_KEEP_S,
    ) -> dict[str, int]:
        """Delete every expired row; returns how many per table.

        Rate events older than the longest window ``rate_window_s`` are no longer counted; handled
        update ids are kept ``keep_updates_s`` (Telegram stops redelivering after 24 hours); mood journal
        entries ``journal_keep_s``.
        """
        now = time.time() if now is None else now
        swept = {
            "reply_results": await self.db.execute("DELETE FROM reply_results WHERE expires_at <= ?", now),
            "conversations": await self.db.execute("DELETE FROM conversations WHERE expires_at <= ?", now),
            "spotify_oauth_states": await self.db.execute(
                "DELETE FROM spotify_oauth_states WHERE expires_at <= ?", now
            ),
            "spotify_pending_links": await self.db.execute(
                "DELETE FROM spotify_pending_links WHERE expires_at <= ?", now
            ),
            "rate_events": await self.db.execute(
                "DELETE FROM rate_events WHERE at <= ?", now - rate_window_s
            ),
            "processed_updates": await self.db.execute(
                "DELETE FROM processed_updates WHERE updated_at <= ?", now - keep_updates_s
            ),
            "journal_entries": await self.db.execute(
                "DELETE FROM journal_entries WHERE at <= ?", now - journal_keep_s
            ),
        }
        return swept


def tracks_key(track_ids: Sequence[str]) -> str:
    """A short stable key for a list of track ids (sha256 hex)."""
    return hashlib.sha256(" ".join(track_ids).encode()).hexdigest()


def _user_language(row: Sequence[Any] | None) -> UserLanguage:
    if row is None:
        return UserLanguage()
    return UserLanguage(
        str(row[0]) if row[0] is not None else None, str(row[1]) if row[1] is not None else None
    )
