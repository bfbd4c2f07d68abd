"""Users, chats and settings."""

from __future__ import annotations

from core.storage.queries import Queries
from core.storage.rows import LOCALE_LIMIT, Deleted, UserLanguage, UserSettings, _user_language


class PeopleQueries(Queries):
    """Users, chats (a private chat belongs to its user) and per-user settings."""

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
