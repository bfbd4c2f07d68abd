"""Blending the emotions of several faces into one (core.music.group)."""

from __future__ import annotations

import math

import pytest

from core.music import GroupMood, blend_faces
from core.music.group import emotion_vector, face_weights
from core.vision.emotion.labels import EMOTIONS


def one_hot(emotion: str, p: float = 1.0) -> dict[str, float]:
    """``p`` on ``emotion``, the rest spread evenly."""
    rest = (1.0 - p) / (len(EMOTIONS) - 1)
    return {e: (p if e == emotion else rest) for e in EMOTIONS}


def test_weights_grow_with_the_square_root_of_the_area() -> None:
    weights = face_weights([100 * 100, 200 * 200, 100 * 100])
    assert weights == pytest.approx([0.25, 0.5, 0.25])  # twice as wide counts twice as much, not 4x
    assert sum(face_weights([3.0, 7.5, 1e6])) == pytest.approx(1.0)


def test_bigger_faces_weigh_more() -> None:
    # One big sad face and one small happy face: the blend leans sad.
    group = blend_faces([(one_hot("sad", 0.9), 300 * 300), (one_hot("happy", 0.9), 100 * 100)])
    assert group.emotion == "sad"
    assert group.weights == pytest.approx((0.75, 0.25))
    expected_sad = 0.75 * 0.9 + 0.25 * (0.1 / 6)
    assert group.probabilities["sad"] == pytest.approx(expected_sad)
    assert sum(group.probabilities.values()) == pytest.approx(1.0)
    assert list(group.probabilities) == list(EMOTIONS)
    assert group.counts["sad"] == group.counts["happy"] == 1
    assert group.text == "mixed, leaning sad: 1 of 2 faces"
    # The same faces at equal size: a tie on the blend goes to the first emotion in EMOTIONS order.
    tie = blend_faces([(one_hot("sad", 0.9), 100), (one_hot("happy", 0.9), 100)])
    assert tie.emotion == "happy"


def test_counts_and_text() -> None:
    faces = [(one_hot("happy", 0.8), 90 * 90)] * 4 + [(one_hot("neutral", 0.7), 90 * 90)] * 2
    group = blend_faces(faces)
    assert isinstance(group, GroupMood)
    assert (group.emotion, group.faces, group.agreeing) == ("happy", 6, 4)
    assert group.counts == {
        "angry": 0,
        "disgust": 0,
        "fear": 0,
        "happy": 4,
        "neutral": 2,
        "sad": 0,
        "surprise": 0,
    }
    assert group.text == "mostly happy: 4 of 6 faces"
    assert blend_faces([(one_hot("sad"), 50)] * 3).text == "all sad: 3 of 3 faces"
    assert blend_faces([(one_hot("fear"), 2500)]).text == "fear: 1 face"
    mixed = blend_faces([(one_hot(e, 0.9), 100) for e in ("angry", "angry", "sad", "happy", "surprise")])
    assert mixed.text == "mixed, leaning angry: 2 of 5 faces"


def test_vectors_and_dicts_are_the_same_input() -> None:
    vector = [0.05, 0.0, 0.05, 0.6, 0.2, 0.1, 0.0]
    as_dict = dict(zip(EMOTIONS, vector, strict=True))
    a = blend_faces([(vector, 400.0), ((0, 0, 0, 0, 1, 0, 0), 100)])
    b = blend_faces([(as_dict, 400.0), ({"neutral": 1.0}, 100)])  # missing emotions are 0
    assert a == b
    assert emotion_vector({"happy": 2.0, "sad": 2.0}) == pytest.approx(
        [0, 0, 0, 0.5, 0, 0.5, 0]
    )  # normalised


@pytest.mark.parametrize(
    ("faces", "message"),
    [
        ([], "no faces"),
        ([({"joy": 1.0}, 100)], "unknown emotion"),
        ([([0.5, 0.5], 100)], "expected 7 probabilities"),
        ([({"happy": -0.1, "sad": 1.0}, 100)], "finite and >= 0"),
        ([({"happy": math.nan}, 100)], "finite and >= 0"),
        ([({"happy": 0.0}, 100)], "all zero"),
        ([({"happy": 1.0}, 0)], "positive number"),
        ([({"happy": 1.0}, -5.0)], "positive number"),
        ([({"happy": 1.0}, math.inf)], "positive number"),
    ],
)
def test_bad_input_is_refused_clearly(faces: list[tuple[object, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        blend_faces(faces)  # type: ignore[arg-type]
