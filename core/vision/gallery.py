"""Who is this face? Open-set matching against the enrolled users of one chat.

A :class:`Gallery` is a snapshot of one chat's enrolled samples for one FaceNet model. Each user's
similarity to a face is the cosine similarity to the centroid of that user's samples (the
normalised mean): steadier than the nearest single sample, it rejects more strangers at the same
recognition rate (``models/calibrate_faces.py``). With at least two users holding
``svm_min_samples`` samples each, a linear SVM trained on the samples picks the user; either way the
pick is accepted only when its similarity reaches the calibrated ``threshold``, so a stranger comes
back as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.svm import SVC

from core.app.i18n import N_
from core.errors import AmbiguousFace, FaceTooSmall, NoFace
from core.vision.faces.detection import DetectedFace

SVM_MIN_SAMPLES = 3
"""Samples each of at least two users needs before the SVM decides between users."""
RIVAL_AREA_RATIO = 0.25
"""A second face with less than this fraction of the largest face's area is background."""
RIVAL_MIN_SCORE = 0.95
"""A second face detected with lower probability than this does not count against enrolment."""
MIN_ENROLL_SIDE = 48
"""Smallest face side (pixels) accepted for enrolment."""


@dataclass(frozen=True)
class Match:
    """Result for one face: ``user_id``/``name`` (None if unknown) and the cosine ``similarity``.

    For an unknown face, ``similarity`` is that of the closest enrolled user (or 0 with none).
    """

    user_id: int | None
    name: str | None
    similarity: float

    @property
    def known(self) -> bool:
        """True when the face was recognised."""
        return self.user_id is not None


class Gallery:
    """Enrolled samples of one scope.

    Args:
        user_ids: (N,) int user id of each sample.
        vectors: (N, D) L2-normalised embeddings.
        names: display name of each user id.
        threshold: cosine similarity needed to accept a match (calibrated per model, see
            ``models/manifest.json``).
        svm_min_samples: samples per user (of at least two users) that switch the SVM on.
    """

    def __init__(
        self,
        user_ids: np.ndarray,
        vectors: np.ndarray,
        names: dict[int, str],
        threshold: float,
        svm_min_samples: int = SVM_MIN_SAMPLES,
    ) -> None:
        self.user_ids = np.asarray(user_ids, dtype=np.int64)
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.names = names
        self.threshold = threshold
        self.users = np.unique(self.user_ids)
        counts = np.array([(self.user_ids == u).sum() for u in self.users])
        self.centroids = np.zeros((len(self.users), self.vectors.shape[1] if len(self) else 0), np.float32)
        for j, user in enumerate(self.users):
            mean = self.vectors[self.user_ids == user].mean(axis=0)
            self.centroids[j] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        self._svm: SVC | None = None
        if len(self.users) >= 2 and (counts >= svm_min_samples).sum() >= 2:
            eligible = self.users[counts >= svm_min_samples]
            mask = np.isin(self.user_ids, eligible)
            self._svm = SVC(kernel="linear", C=1.0, class_weight="balanced")
            self._svm.fit(self.vectors[mask], self.user_ids[mask])

    def __len__(self) -> int:
        return len(self.user_ids)

    @property
    def uses_svm(self) -> bool:
        """True when the SVM decides between users."""
        return self._svm is not None

    def user_similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """(M, D) unit embeddings -> (M, U) cosine similarity to each user's centroid (``self.users``)."""
        return np.asarray(embeddings, dtype=np.float32) @ self.centroids.T

    def match(self, embeddings: np.ndarray) -> list[Match]:
        """One :class:`Match` per row of (M, D) ``embeddings``."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if len(embeddings) == 0:
            return []
        if len(self) == 0:
            return [Match(None, None, 0.0) for _ in embeddings]
        per_user = self.user_similarities(embeddings)
        if self._svm is not None:
            picked = self._svm.predict(embeddings)
            columns = np.searchsorted(self.users, picked)
        else:
            columns = per_user.argmax(axis=1)
        matches = []
        for row, column in zip(per_user, columns, strict=True):
            similarity = float(row[column])
            if similarity >= self.threshold:
                user = int(self.users[column])
                matches.append(Match(user, self.names.get(user), similarity))
            else:
                matches.append(Match(None, None, float(row.max())))
        return matches


def enrollment_face(faces: list[DetectedFace]) -> DetectedFace:
    """The one face of a selfie to enrol, from faces sorted largest first.

    Background faces do not count: a face with less than a quarter of the largest face's area, or
    detected with probability below 0.95. Raises ``NoFace``, ``AmbiguousFace`` (two or more faces of
    similar size) or ``FaceTooSmall``.
    """
    if not faces:
        raise NoFace()
    dominant = max(faces, key=lambda f: f.side)
    rivals = [
        f
        for f in faces
        if f is not dominant
        and f.score >= RIVAL_MIN_SCORE
        and f.side**2 >= RIVAL_AREA_RATIO * dominant.side**2
    ]
    if rivals:
        raise AmbiguousFace(
            N_(
                "I see {count} faces of similar size. To enrol, send a selfie with only you "
                "in front (people far behind you are fine)."
            ),
            count=len(rivals) + 1,
        )
    if dominant.side < MIN_ENROLL_SIDE:
        raise FaceTooSmall(
            N_("Your face is only {side:.0f} pixels wide; move closer to the camera (at least {limit} px)."),
            side=dominant.side,
            limit=MIN_ENROLL_SIDE,
        )
    return dominant
