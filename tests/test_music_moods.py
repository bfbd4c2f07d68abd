"""The emotion → mood table, the policies, and the choice of k."""

from __future__ import annotations

import numpy as np
import pytest

from core.music.clustering import K_CANDIDATES, fit_clusters, kneedle
from core.music.moods import EMOTION_MOODS, LIFT_GOALS, MOODS, POLICIES, nearest_mood, plan_for
from core.vision.emotion.labels import EMOTIONS
from tests.synthetic_catalog import synthetic_tracks


def test_every_emotion_has_an_explicit_mood() -> None:
    assert set(EMOTION_MOODS) == set(EMOTIONS)
    assert EMOTION_MOODS == {
        "angry": "intense",
        "disgust": "dark",
        "fear": "dark",
        "happy": "happy",
        "neutral": "calm",
        "sad": "sad",
        "surprise": "energetic",
    }
    assert set(EMOTION_MOODS.values()) <= set(MOODS)
    assert {"happy", "sad", "calm", "energetic"} <= set(MOODS)  # the moods users can ask for by name


def test_mood_targets_sit_where_their_names_say() -> None:
    happy, sad, calm, energetic = (MOODS[m] for m in ("happy", "sad", "calm", "energetic"))
    assert happy.valence > 0.6 and sad.valence < 0.35
    assert happy.energy > calm.energy and sad.energy < 0.4 and calm.energy < 0.4
    assert energetic.energy > 0.8 and MOODS["intense"].energy > 0.8 and MOODS["intense"].valence < 0.35
    for mood in MOODS.values():
        assert 0 <= mood.valence <= 1 and 0 <= mood.energy <= 1
        assert nearest_mood(mood.valence, mood.energy) == mood


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_plan_for_each_emotion(emotion: str) -> None:
    match = plan_for(emotion=emotion)
    assert match.start == match.goal == MOODS[EMOTION_MOODS[emotion]]
    assert match.label == match.start.label and not match.lifting
    lift = plan_for(emotion=emotion, policy="lift")
    assert lift.start == match.start
    assert lift.lifting == (emotion in ("sad", "angry", "fear", "disgust"))


def test_lift_moves_sad_towards_happier_and_angry_towards_calmer() -> None:
    assert LIFT_GOALS == {"sad": "happy", "intense": "calm", "dark": "calm"}
    sad = plan_for(emotion="sad", policy="lift")
    targets = sad.targets(11)
    assert targets[0] == MOODS["sad"].target and targets[-1] == pytest.approx(MOODS["happy"].target)
    valences = [v for v, _ in targets]
    assert valences == sorted(valences) and len(set(valences)) == 11  # a step at every position
    assert sad.label == "slow and melancholic, lifting towards upbeat and happy"
    angry = plan_for(emotion="angry", policy="lift").targets(6)
    energies = [e for _, e in angry]
    assert energies == sorted(energies, reverse=True) and energies[-1] == pytest.approx(MOODS["calm"].energy)
    assert angry[-1][0] > angry[0][0]  # calmer and happier
    assert plan_for(emotion="sad", policy="lift").targets(1) == [MOODS["sad"].target]
    assert plan_for(mood="sad", policy="lift") == sad  # moods lift like the emotions they match


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"emotion": "bored"}, "unknown emotion 'bored'"),
        ({"mood": "groovy"}, "unknown mood 'groovy'"),
        ({"emotion": "sad", "policy": "boost"}, "unknown policy 'boost'"),
        ({"emotion": "sad", "mood": "happy"}, "exactly one"),
        ({}, "exactly one"),
    ],
)
def test_plan_for_rejects_bad_input(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_for(**kwargs)


def test_policies() -> None:
    assert POLICIES == ("match", "lift")


def test_kneedle_finds_the_elbow() -> None:
    ks = list(range(2, 11))
    curve = [100.0, 60.0, 30.0, 26.0, 23.0, 21.0, 19.5, 18.0, 17.0]  # bends at k=4
    assert kneedle(ks, curve) == 4
    assert kneedle([2, 3], [5.0, 4.0]) == 3  # too few points: the largest k


def test_k_is_measured_on_the_data_not_the_seed() -> None:
    tracks = synthetic_tracks(3000, seed=0)
    x = tracks[["valence", "energy", "danceability", "acousticness", "loudness", "tempo"]].to_numpy()
    models = [fit_clusters(x, seed=s) for s in (0, 1, 2)]
    for model in models:
        assert set(model.inertia) == set(K_CANDIDATES)
        values = [model.inertia[k] for k in K_CANDIDATES]
        assert values == sorted(values, reverse=True)  # inertia falls as k grows
        assert model.k == kneedle(list(K_CANDIDATES), values)
        assert "elbow" in model.criterion and model.silhouette is not None
    assert len({m.k for m in models}) == 1
    # The six planted mood centres are found: a centroid near each, whatever the seed.
    for model in models:
        centres = model.mood_centroids()
        for target in ((0.80, 0.75), (0.18, 0.25), (0.25, 0.88)):
            assert np.min(np.hypot(*(centres - np.array(target)).T)) < 0.12


def test_tiny_catalogs_get_one_cluster() -> None:
    x = synthetic_tracks(12, seed=0)[
        ["valence", "energy", "danceability", "acousticness", "loudness", "tempo"]
    ]
    model = fit_clusters(x.to_numpy())
    assert model.k == 1 and model.silhouette is None
    assert (model.predict(x.to_numpy()) == 0).all()
