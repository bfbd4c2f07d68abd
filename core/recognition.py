"""Enrol and identify faces within a chat: the face half of the service, shared by CLI and bots."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import numpy as np

from core.errors import FaceBelongsToOther
from core.identity import Gallery, Match, enrollment_face
from core.inference import InferenceWorker
from core.pipeline import FaceAnalysis
from core.storage import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentifiedFace:
    """A face of the photo with who it is (``match``) and how they feel (``analysis.emotion``)."""

    analysis: FaceAnalysis
    match: Match


@dataclass(frozen=True)
class Enrollment:
    """Result of enrolling one photo: the face used and the samples the user now has in the chat."""

    analysis: FaceAnalysis
    samples: int


class Recognizer:
    """Galleries per chat (cached, rebuilt after every change) over the store and the inference worker."""

    def __init__(self, store: Store, worker: InferenceWorker) -> None:
        self.store = store
        self.worker = worker
        self.model_id = worker.pipeline.model_id
        self.threshold = worker.pipeline.threshold
        self._galleries: dict[int, Gallery] = {}
        self._lock = asyncio.Lock()

    async def gallery(self, chat_id: int) -> Gallery:
        """The chat's gallery for the current model (SVM fitted off the event loop)."""
        cached = self._galleries.get(chat_id)
        if cached is not None:
            return cached
        rows = await self.store.gallery(chat_id, self.model_id)
        gallery = await asyncio.to_thread(Gallery, rows.user_ids, rows.vectors, rows.names, self.threshold)
        self._galleries[chat_id] = gallery
        return gallery

    def invalidate(self, chat_id: int | None = None) -> None:
        """Forget cached galleries (of one chat, or all) after enrolments or deletions."""
        if chat_id is None:
            self._galleries.clear()
        else:
            self._galleries.pop(chat_id, None)

    async def identify(self, chat_id: int, rgb: np.ndarray) -> list[IdentifiedFace]:
        """Every face of the photo, largest first, matched against the chat's gallery."""
        analyses = await self.worker.analyze(rgb)
        if not analyses:
            return []
        gallery = await self.gallery(chat_id)
        matches = gallery.match(np.stack([a.embedding for a in analyses]))
        return [IdentifiedFace(a, m) for a, m in zip(analyses, matches, strict=True)]

    async def enroll(self, user_id: int, chat_id: int, rgb: np.ndarray) -> Enrollment:
        """Store the embedding of the selfie's dominant face for the user in the chat.

        Raises ``NoFace``, ``AmbiguousFace``, ``FaceTooSmall`` (see
        :func:`core.identity.enrollment_face`) or ``FaceBelongsToOther`` when the face matches a
        different enrolled user of this chat.
        """
        analyses = await self.worker.analyze(rgb)
        face = enrollment_face([a.face for a in analyses])
        analysis = next(a for a in analyses if a.face is face)
        async with self._lock:  # two enrolments in one chat must see each other
            gallery = await self.gallery(chat_id)
            others = gallery.users != user_id
            if others.any():
                similarity = gallery.user_similarities(analysis.embedding[None])[0][others]
                if similarity.max() >= self.threshold:
                    other = int(gallery.users[others][int(similarity.argmax())])
                    log.info(
                        "enrol refused: user %s too close to user %s (%.3f)", user_id, other, similarity.max()
                    )
                    raise FaceBelongsToOther(
                        "That face is already enrolled here as someone else, so I can't enrol it "
                        "for you. If it really is you, ask them to /forget first."
                    )
            samples = await self.store.add_embeddings(
                user_id, chat_id, self.model_id, analysis.embedding[None]
            )
            self.invalidate(chat_id)
        return Enrollment(analysis, samples)

    async def forget(self, user_id: int) -> None:
        """Drop cached galleries after the user's data was deleted from the store."""
        self.invalidate()
