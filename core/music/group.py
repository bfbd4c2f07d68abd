"""One mood for a group photo: blend the emotions of several faces.

:func:`blend_faces` takes, for each face, its 7 emotion probabilities and its area in pixels², and
returns a :class:`GroupMood`: the blended probabilities, the dominant emotion, how many faces show
it, and a short text such as ``"mostly happy: 4 of 6 faces"``. Pure functions, no I/O.

Weighting: each face weighs the square root of its area (its width, for a square box), normalised
to sum 1. Bigger faces are nearer the camera and usually the people the photo is of, so they count
more; the square root keeps that proportional to size (a face twice as wide counts twice as much)
rather than to area (where it would count four times as much and one close face would outvote a
whole row of friends).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from core.vision.emotion.labels import EMOTIONS

FaceEmotions = Mapping[str, float] | Sequence[float]
"""A face's emotion probabilities: a dict by emotion name (missing ones are 0) or a 7-vector in
:data:`core.vision.emotion.labels.EMOTIONS` order. Normalised to sum 1."""


@dataclass(frozen=True, slots=True)
class GroupMood:
    """The blended emotion of a group.

    ``emotion`` is the dominant one (highest blended probability; ties go to the first in
    :data:`~core.vision.emotion.labels.EMOTIONS` order); ``probabilities`` the blend (every emotion, in
    ``EMOTIONS`` order, sums to 1); ``counts`` how many faces have each emotion as their own most
    likely one (every emotion, ``EMOTIONS`` order); ``weights`` each face's share in the blend.
    """

    emotion: str
    probabilities: dict[str, float]
    counts: dict[str, int]
    weights: tuple[float, ...]

    @property
    def faces(self) -> int:
        """Number of faces."""
        return len(self.weights)

    @property
    def agreeing(self) -> int:
        """Faces whose own most likely emotion is the dominant one."""
        return self.counts[self.emotion]

    @property
    def text(self) -> str:
        """Short summary: ``"happy: 1 face"``, ``"all happy: 3 of 3 faces"``, ``"mostly happy: 4 of 6
        faces"`` (more than half agree) or ``"mixed, leaning happy: 2 of 5 faces"``."""
        n, k = self.faces, self.agreeing
        if n == 1:
            return f"{self.emotion}: 1 face"
        if k == n:
            lead = "all"
        elif 2 * k > n:
            lead = "mostly"
        else:
            lead = "mixed, leaning"
        return f"{lead} {self.emotion}: {k} of {n} faces"


def face_weights(areas: Sequence[float]) -> list[float]:
    """Each face's share of the blend: ``sqrt(area)`` normalised to sum 1 (module docstring).

    ValueError for an empty list or an area that is not a positive finite number.
    """
    if not areas:
        raise ValueError("no faces to blend")
    for area in areas:
        if (
            isinstance(area, bool)
            or not isinstance(area, int | float)
            or not math.isfinite(area)
            or area <= 0
        ):
            raise ValueError(f"a face area must be a positive number of pixels², got {area!r}")
    roots = [math.sqrt(a) for a in areas]
    total = sum(roots)
    return [r / total for r in roots]


def emotion_vector(probabilities: FaceEmotions) -> list[float]:
    """A face's probabilities as a 7-list in ``EMOTIONS`` order, normalised to sum 1.

    ValueError for an unknown emotion name, a vector of another length, a negative or non-finite
    value, or all zeros.
    """
    if isinstance(probabilities, Mapping):
        unknown = sorted(set(probabilities) - set(EMOTIONS))
        if unknown:
            raise ValueError(f"unknown emotion(s) {', '.join(map(repr, unknown))}: use {', '.join(EMOTIONS)}")
        values = [probabilities.get(e, 0.0) for e in EMOTIONS]
    else:
        values = list(probabilities)
        if len(values) != len(EMOTIONS):
            raise ValueError(
                f"expected {len(EMOTIONS)} probabilities ({', '.join(EMOTIONS)}), got {len(values)}"
            )
    floats = [float(v) for v in values]
    if any(not math.isfinite(v) or v < 0 for v in floats):
        raise ValueError(f"emotion probabilities must be finite and >= 0, got {floats}")
    total = sum(floats)
    if total <= 0:
        raise ValueError("emotion probabilities are all zero")
    return [v / total for v in floats]


def _top(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def blend_faces(faces: Sequence[tuple[FaceEmotions, float]]) -> GroupMood:
    """Blend ``(probabilities, area in pixels²)`` of each face into one :class:`GroupMood`.

    The blend is the weighted mean of the faces' (normalised) probabilities with the weights of
    :func:`face_weights`. ValueError for no faces or a bad face (see :func:`emotion_vector`).
    """
    if not faces:
        raise ValueError("no faces to blend")
    vectors = [emotion_vector(p) for p, _ in faces]
    weights = face_weights([a for _, a in faces])
    blend = [sum(w * v[i] for w, v in zip(weights, vectors, strict=True)) for i in range(len(EMOTIONS))]
    counts = dict.fromkeys(EMOTIONS, 0)
    for v in vectors:
        counts[EMOTIONS[_top(v)]] += 1
    return GroupMood(
        emotion=EMOTIONS[_top(blend)],
        probabilities=dict(zip(EMOTIONS, blend, strict=True)),
        counts=counts,
        weights=tuple(weights),
    )
