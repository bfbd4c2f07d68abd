"""Emotion → music mood: the explicit table, the moods, and the two policies.

A mood is recognised by the fitted mood model (:mod:`core.music.profiles`: P(mood | track) from
valence, energy, danceability, acousticness, instrumentalness, loudness and tempo, fitted on
human-labelled tracks). Each mood also keeps a target point in Spotify's (valence, energy) plane,
both in [0, 1]: it places the two moods the labelled data lacks (intense, dark) in the model's
feature space, names clusters in diagnostics, and drives the legacy ranking that the fitted one is
measured against. Catalog clusters are picked by how well their tracks fit the mood, never by
cluster number.

Policies:

* ``match`` (default): every track aims at the mood of the face.
* ``lift``: for sad, angry, fearful or disgusted faces, the list starts at the matching mood and
  moves step by step towards a calmer or happier one (the "iso principle" of music therapy: meet
  the listener's mood first, then lead it). Track ``i`` of ``n`` aims a fraction ``i / (n - 1)``
  of the way from the start to the goal (:meth:`MoodPlan.mix`; the fitted ranking rounds it to
  quarters and mixes the two moods' fits). Faces whose mood needs no lifting (happy, neutral,
  surprise) get the ``match`` list.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.vision.emotion.labels import EMOTIONS


@dataclass(frozen=True, slots=True)
class Mood:
    """A named music mood: a target ``valence`` and ``energy`` (both 0-1) and a short ``label``."""

    name: str
    label: str
    valence: float
    energy: float

    @property
    def target(self) -> tuple[float, float]:
        """``(valence, energy)``."""
        return (self.valence, self.energy)

    @property
    def labelled(self) -> bool:
        """True for the moods the mood model learnt from human labels; False for intense and dark."""
        return self.name in LABELLED_MOODS


MOODS: dict[str, Mood] = {
    m.name: m
    for m in (
        Mood("happy", "upbeat and happy", 0.80, 0.70),
        Mood("energetic", "bright and energetic", 0.60, 0.85),
        Mood("calm", "calm and mellow", 0.55, 0.30),
        Mood("sad", "slow and melancholic", 0.20, 0.30),
        Mood("intense", "loud and intense", 0.25, 0.85),
        Mood("dark", "dark and tense", 0.20, 0.55),
    )
}
"""Every mood by name. ``happy``, ``sad``, ``calm`` and ``energetic`` are the ones users pick by name."""

LABELLED_MOODS: tuple[str, ...] = ("happy", "sad", "calm", "energetic")
"""Moods with human labels in ``moods-dev.csv`` (Happy, Sad, Calm, Energetic): fitted from data.

``intense`` and ``dark`` are derived: placed at their (valence, energy) target, with the texture the
labelled data has there (:mod:`core.music.profiles`)."""

FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "valence": ("melancholic", "cheerful"),
    "energy": ("low energy", "high energy"),
    "danceability": ("loose rhythm", "danceable"),
    "acousticness": ("electric", "acoustic"),
    "instrumentalness": ("sung", "instrumental"),
    "loudness": ("quiet", "loud"),
    "tempo": ("slow", "fast"),
}
"""How a reply says a feature is low or high: ``(low word, high word)``. The explanation of a mood
(:meth:`core.music.profiles.MoodModel.explain`) picks the words from the fitted profile: the
features that set the mood apart most, e.g. ``"calm: instrumental, quiet, low energy"``."""
EXPLAIN_WORDS = 3
"""At most this many features are named."""
EXPLAIN_MIN_Z = 0.5
"""A feature is named only if the mood's mean sits at least this many standard deviations from the
labelled tracks' mean."""

EMOTION_MOODS: dict[str, str] = {
    "angry": "intense",
    "disgust": "dark",
    "fear": "dark",
    "happy": "happy",
    "neutral": "calm",
    "sad": "sad",
    "surprise": "energetic",
}
"""The mood that matches each of the 7 FER2013 emotions (valence and arousal of the face)."""

LIFT_GOALS: dict[str, str] = {
    "sad": "happy",
    "intense": "calm",
    "dark": "calm",
}
"""Where the ``lift`` policy leads each low-valence mood; moods not listed are not lifted."""

POLICIES: tuple[str, ...] = ("match", "lift")
"""``match`` the mood of the face (default) or ``lift`` it."""


@dataclass(frozen=True, slots=True)
class MoodPlan:
    """What one request aims at: the ``start`` mood and the ``goal`` (the same mood for ``match``)."""

    start: Mood
    goal: Mood
    policy: str

    @property
    def lifting(self) -> bool:
        """True when the list moves from ``start`` towards a different ``goal``."""
        return self.goal != self.start

    @property
    def label(self) -> str:
        """Short description for a reply, e.g. ``"slow and melancholic, lifting towards upbeat and happy"``.

        For ``match`` it is the mood's own label.
        """
        if not self.lifting:
            return self.start.label
        return f"{self.start.label}, lifting towards {self.goal.label}"

    def mix(self, n: int) -> list[float]:
        """``n`` fractions, one per list position: how far towards ``goal`` it aims (all 0 for ``match``)."""
        if not self.lifting or n == 1:
            return [0.0] * n
        return [i / (n - 1) for i in range(n)]

    def targets(self, n: int) -> list[tuple[float, float]]:
        """``n`` (valence, energy) points, one per list position, from ``start`` to ``goal``."""
        if not self.lifting or n == 1:
            return [self.start.target] * n
        (v0, e0), (v1, e1) = self.start.target, self.goal.target
        steps = [i / (n - 1) for i in range(n)]
        return [(v0 + (v1 - v0) * t, e0 + (e1 - e0) * t) for t in steps]


def plan_for(emotion: str | None = None, mood: str | None = None, policy: str = "match") -> MoodPlan:
    """The plan for exactly one of ``emotion`` (a FER2013 label) or ``mood`` (a :data:`MOODS` name).

    Raises ValueError with a friendly message for an unknown emotion, mood or policy.
    """
    if (emotion is None) == (mood is None):
        raise ValueError("give exactly one of an emotion or a mood")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}: choose {' or '.join(POLICIES)}")
    if emotion is not None:
        key = emotion.strip().lower()
        if key not in EMOTION_MOODS:
            raise ValueError(f"unknown emotion {emotion!r}: choose one of {', '.join(EMOTIONS)}")
        mood = EMOTION_MOODS[key]
    assert mood is not None
    key = mood.strip().lower()
    if key not in MOODS:
        raise ValueError(f"unknown mood {mood!r}: choose one of {', '.join(MOODS)}")
    start = MOODS[key]
    goal = MOODS[LIFT_GOALS[key]] if policy == "lift" and key in LIFT_GOALS else start
    return MoodPlan(start, goal, policy)


def describe_point(valence: float, energy: float) -> str:
    """Words for a point of the (valence, energy) plane, e.g. ``"bright, energetic"``."""
    v = "dark" if valence < 0.35 else "bright" if valence >= 0.6 else "neutral"
    e = "calm" if energy < 0.4 else "energetic" if energy >= 0.7 else "moderate"
    return f"{v}, {e}"


def nearest_mood(valence: float, energy: float) -> Mood:
    """The mood whose target is closest (Euclidean) to the point."""
    return min(MOODS.values(), key=lambda m: (m.valence - valence) ** 2 + (m.energy - energy) ** 2)
