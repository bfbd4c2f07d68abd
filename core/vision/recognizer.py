"""Enrol and identify faces within a chat: the face half of the application, shared by chat and CLI.

Each chat's gallery is cached per process and tagged with the chat's *gallery generation*, a counter
the store bumps in the same transaction as every enrolment or deletion. Before matching, the cached
gallery's generation is compared with the store's, so a gallery changed by another worker, by
``moodtunes forget`` in another process, or by ``/forget`` is never used stale.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from core.errors import FaceBelongsToOther
from core.storage import GalleryRows, Store
from core.vision.analyzer import FaceAnalysis
from core.vision.faces import FaceList
from core.vision.gallery import Gallery, Match, enrollment_face
from core.vision.worker import InferenceWorker

log = logging.getLogger(__name__)
GALLERIES_CACHED = 1000
"""Chats whose gallery is kept in memory (least recently used dropped first)."""


@dataclass(frozen=True)
class IdentifiedFace:
    """A face of the photo with who it is (``match``) and how they feel (``analysis.emotion``)."""

    analysis: FaceAnalysis
    match: Match


@dataclass(frozen=True)
class Enrollment:
    """Result of enrolling one face: its analysis and the samples the user now has in the chat."""

    analysis: FaceAnalysis
    samples: int


class Recognizer:
    """Galleries per chat over the store and the inference worker."""

    def __init__(self, store: Store, worker: InferenceWorker) -> None:
        self.store = store
        self.worker = worker
        self.model_id = worker.analyzer.model_id
        self.threshold = worker.analyzer.threshold
        self._galleries: OrderedDict[int, tuple[int, Gallery]] = OrderedDict()

    async def gallery(self, chat_id: int | None) -> Gallery:
        """The chat's current gallery (SVM fitted off the event loop); empty for no chat."""
        if chat_id is None:
            return self._build(GalleryRows(np.zeros(0, np.int64), np.zeros((0, 0), np.float32), {}))
        generation = await self.store.gallery_generation(chat_id)
        cached = self._galleries.get(chat_id)
        if cached is not None and cached[0] == generation:
            self._galleries.move_to_end(chat_id)
            return cached[1]
        rows = await self.store.gallery(chat_id, self.model_id)
        gallery = await asyncio.to_thread(self._build, rows)
        self._galleries[chat_id] = (rows.generation, gallery)
        while len(self._galleries) > GALLERIES_CACHED:
            self._galleries.popitem(last=False)
        return gallery

    def _build(self, rows: GalleryRows) -> Gallery:
        return Gallery(rows.user_ids, rows.vectors, rows.names, self.threshold)

    async def identify(self, chat_id: int | None, rgb: np.ndarray) -> FaceList[IdentifiedFace]:
        """Every analysed face of the photo (its largest, up to the analyser's ``max_faces``), largest
        first, matched against the chat's gallery; ``found`` on the list counts all its faces."""
        return await self.match(chat_id, await self.worker.analyze(rgb))

    async def match(self, chat_id: int | None, analyses: list[FaceAnalysis]) -> FaceList[IdentifiedFace]:
        """Match already analysed faces against the chat's gallery (the counts of a
        :class:`~core.vision.faces.FaceList` carry over)."""
        counts = analyses if isinstance(analyses, FaceList) else FaceList(analyses)
        if not analyses:
            return counts.carrying([])
        gallery = await self.gallery(chat_id)
        matches = gallery.match(np.stack([a.embedding for a in analyses]))
        return counts.carrying(IdentifiedFace(a, m) for a, m in zip(analyses, matches, strict=True))

    async def enrollment(self, rgb: np.ndarray) -> FaceAnalysis:
        """The analysed face a selfie would enrol (see :func:`core.vision.gallery.enrollment_face`)."""
        analyses = await self.worker.analyze(rgb)
        face = enrollment_face([a.face for a in analyses])
        return next(a for a in analyses if a.face is face)

    async def enroll(self, user_id: int, chat_id: int, rgb: np.ndarray) -> Enrollment:
        """Store the embedding of the selfie's dominant face for the user in the chat.

        Raises ``NoFace``, ``AmbiguousFace``, ``FaceTooSmall`` (see :func:`enrollment_face`),
        ``FaceBelongsToOther`` or ``UserGone`` (see :meth:`enroll_embedding`).
        """
        analysis = await self.enrollment(rgb)
        samples = await self.enroll_embedding(user_id, chat_id, analysis.embedding)
        return Enrollment(analysis, samples)

    async def enroll_embedding(self, user_id: int, chat_id: int, embedding: np.ndarray) -> int:
        """Store a (512,) embedding for the user in the chat; returns the user's samples there.

        Refused with ``FaceBelongsToOther`` when it matches a different enrolled user of the chat; the
        check and the insert hold the chat's gallery lock, so two enrolments (in any workers) see each
        other. ``UserGone`` when the user was deleted meanwhile.
        """

        def refuse_if_someone_else(rows: GalleryRows) -> None:
            others = rows.user_ids != user_id
            if not others.any():
                return
            gallery = self._build(GalleryRows(rows.user_ids[others], rows.vectors[others], rows.names))
            similarity = gallery.user_similarities(np.asarray(embedding, np.float32)[None])[0]
            if similarity.max() >= self.threshold:
                other = int(gallery.users[int(similarity.argmax())])
                log.info(
                    "enrol refused: user %s too close to user %s (%.3f)", user_id, other, similarity.max()
                )
                raise FaceBelongsToOther()

        return await self.store.add_embeddings(
            user_id, chat_id, self.model_id, np.asarray(embedding)[None], check=refuse_if_someone_else
        )
