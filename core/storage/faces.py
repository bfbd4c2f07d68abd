"""Face samples: enrolment under a chat's gallery lock, galleries with their generation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from core.errors import UserGone
from core.storage.database import Database
from core.storage.queries import Queries
from core.storage.rows import MAX_SAMPLES_PER_SCOPE, GalleryRows


class FaceQueries(Queries):
    """Face embeddings per user, chat and model."""

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
