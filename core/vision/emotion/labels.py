"""The seven FER2013 emotion classes, in the order the model outputs them."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""Class names; index ``i`` of a probability vector is ``EMOTIONS[i]``."""

VALENCE_GROUPS: dict[str, str] = {
    "happy": "happy",
    "sad": "sad",
    "angry": "rest",
    "disgust": "rest",
    "fear": "rest",
    "neutral": "rest",
    "surprise": "rest",
}
"""Coarse grouping used to report happy-vs-sad-vs-rest accuracy (the music mostly needs valence)."""
