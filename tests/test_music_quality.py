"""Quality of the fitted mood ranking: the published held-out figures, variety, "more tracks", explanations.

The held-out figures are recomputed with the protocol of ``training/fit_moods.py`` (deterministic) and
must match the published ones (``benchmarks/results/music_quality.json`` and the constants below)
to 0.01. The tests that need ../shared/data skip when it is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from core.music import Catalog, Track, import_catalog
from core.music.moods import EMOTION_MOODS, FEATURE_WORDS, LABELLED_MOODS, MOODS
from core.music.profiles import MoodModel, MoodModels, explain, mood_models
from core.music.recommend import VARIETY
from core.music.schema import FEATURES
from core.vision.emotion.labels import EMOTIONS
from tests.conftest import ROOT, data_path
from tests.synthetic_catalog import write_synthetic_catalog
from training import fit_moods

FIGURES = ROOT / "benchmarks" / "results" / "music_quality.json"
TOLERANCE = 0.01

PUBLISHED_FITTED = {
    "happy": 0.7644,
    "sad": 0.9600,
    "calm": 0.9956,
    "energetic": 0.8311,
    "happy|energetic": 0.8933,
    "sad|calm": 0.9644,
}
"""Mean top-15 precision over the 15 held-out folds, fitted ranking with instrumentalness (shipped)."""
PUBLISHED_FITTED_POOLED = {
    "happy": 0.9467,
    "sad": 0.9867,
    "calm": 1.0,
    "energetic": 0.8667,
    "happy|energetic": 0.9733,
    "sad|calm": 0.9867,
}
"""The same models, each repeat's three held-out folds ranked as one 343-track pool (5 pools)."""
PUBLISHED_FITTED_WITHOUT_INSTRUMENTALNESS = {
    "happy": 0.7600,
    "sad": 0.8533,
    "calm": 0.9600,
    "energetic": 0.7911,
    "happy|energetic": 0.8711,
    "sad|calm": 0.9600,
}
PUBLISHED_CEILING = {
    "lda": {"happy": 0.7644, "energetic": 0.8489, "happy|energetic": 0.9156},
    "logistic C=1": {"happy": 0.7956, "energetic": 0.8844, "happy|energetic": 0.9111},
}
"""IN-SAMPLE, per fold: each head fitted on all of moods-dev, scored on the folds it saw (no popularity).
Even so, happy stays under 0.85 and happy -> Happy|Energetic under 0.95: the per-fold goal is out of
reach of this model family on these features, not only of the held-out fit."""
PUBLISHED_LEGACY = {
    "happy": 0.6711,
    "sad": 0.6089,
    "calm": 0.2356,
    "energetic": 0.2933,
    "happy|energetic": 0.9156,
    "sad|calm": 0.9422,
}
"""The same protocol, the ranking before the fitted model (valence/energy targets, popularity)."""


@pytest.fixture(scope="module")
def labelled() -> pd.DataFrame:
    return fit_moods.read_labelled(data_path("spotify", "moods-dev.csv"))


@pytest.fixture(scope="module")
def shared() -> Catalog:
    return import_catalog(data_path("spotify", "tracks.csv"), seed=0)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    path = tmp_path_factory.mktemp("quality") / "tracks.csv"
    write_synthetic_catalog(path, 3000, "kaggle-1921-2020", seed=11)
    return import_catalog(path, seed=0)


def means(figures: dict[str, dict[str, float]]) -> dict[str, float]:
    return {k: v["mean"] for k, v in figures.items()}


# ------------------------------------------------------------------------------------ published figures


def test_published_figures_file_matches_the_constants() -> None:
    figures = json.loads(FIGURES.read_text())
    with_i = figures["held_out"]["with_instrumentalness"]
    without_i = figures["held_out"]["without_instrumentalness"]
    assert means(with_i["fitted"]) == pytest.approx(PUBLISHED_FITTED, abs=1e-4)
    assert means(with_i["fitted_pooled"]) == pytest.approx(PUBLISHED_FITTED_POOLED, abs=1e-4)
    assert means(with_i["legacy"]) == pytest.approx(PUBLISHED_LEGACY, abs=1e-4)
    assert means(without_i["fitted"]) == pytest.approx(PUBLISHED_FITTED_WITHOUT_INSTRUMENTALNESS, abs=1e-4)
    assert figures["parameters"]["folds"] == 3 and figures["parameters"]["repeats"] == 5
    assert with_i["held_out_folds"] == 15


@pytest.mark.slow
def test_held_out_precision_is_reproduced(labelled: pd.DataFrame) -> None:
    result = fit_moods.cross_validate(labelled, fit_moods.FEATURE_SETS["with_instrumentalness"])
    assert means(result["fitted"]) == pytest.approx(PUBLISHED_FITTED, abs=TOLERANCE)
    assert means(result["fitted_pooled"]) == pytest.approx(PUBLISHED_FITTED_POOLED, abs=TOLERANCE)
    assert means(result["legacy"]) == pytest.approx(PUBLISHED_LEGACY, abs=TOLERANCE)
    published = json.loads(FIGURES.read_text())["held_out"]["with_instrumentalness"]
    assert means(result["fitted_varied_seeds"]) == pytest.approx(
        means(published["fitted_varied_seeds"]), abs=TOLERANCE
    )
    assert means(result["legacy_pooled"]) == pytest.approx(means(published["legacy_pooled"]), abs=TOLERANCE)
    assert result["chosen"] == published["chosen"]
    # What the fitted ranking fixed: calm and sad are what people labelled them.
    fitted, legacy = means(result["fitted"]), means(result["legacy"])
    for mood in LABELLED_MOODS:
        assert fitted[mood] > legacy[mood], mood
    assert fitted["calm"] >= 0.95 and fitted["sad"] >= 0.9 and fitted["sad|calm"] >= 0.95


@pytest.mark.slow
def test_in_sample_ceiling_is_reproduced(labelled: pd.DataFrame) -> None:
    features = fit_moods.FEATURE_SETS["with_instrumentalness"]
    ceiling = fit_moods.in_sample_ceiling(labelled, features)
    published = json.loads(FIGURES.read_text())["in_sample_ceiling"]
    assert published["features"] == list(features)
    for classifier, expected in PUBLISHED_CEILING.items():
        got, shown = means(ceiling[classifier]), means(published["per_fold"][classifier])
        assert {k: shown[k] for k in expected} == pytest.approx(expected, abs=1e-4)
        assert got == pytest.approx(shown, abs=TOLERANCE)
        assert got["happy"] < 0.85 and got["happy|energetic"] < 0.95
    assert max(means(c)["happy"] for c in ceiling.values()) >= PUBLISHED_FITTED["happy"]


@pytest.mark.slow
def test_held_out_precision_without_instrumentalness_is_reproduced(labelled: pd.DataFrame) -> None:
    features = fit_moods.FEATURE_SETS["without_instrumentalness"]
    result = fit_moods.cross_validate(labelled, features, legacy=False)
    assert means(result["fitted"]) == pytest.approx(PUBLISHED_FITTED_WITHOUT_INSTRUMENTALNESS, abs=TOLERANCE)


@pytest.mark.slow
def test_the_shipped_model_is_what_the_script_fits(labelled: pd.DataFrame) -> None:
    source = {"file": "moods-dev.csv"}
    fitted, _ = fit_moods.fit_all(labelled, source)
    shipped = mood_models()
    assert [m.features for m in fitted.models] == [m.features for m in shipped.models]
    for mine, theirs in zip(fitted.models, shipped.models, strict=True):
        assert mine.moods == theirs.moods and mine.labelled == theirs.labelled
        assert mine.popularity_weight == theirs.popularity_weight
        assert (mine.head_coef is None) == (theirs.head_coef is None)
        for name in (
            "mean",
            "scale",
            "coef",
            "intercept",
            "profile",
            "precision",
            "head_coef",
            "head_intercept",
        ):
            if getattr(mine, name) is None:
                continue
            np.testing.assert_allclose(getattr(mine, name), getattr(theirs, name), atol=2e-6, err_msg=name)
        assert mine.typical_distance2 == pytest.approx(theirs.typical_distance2, abs=1e-5)


def test_held_out_tracks_duplicated_in_training_are_dropped(labelled: pd.DataFrame) -> None:
    train, test = labelled.iloc[:200], labelled.iloc[150:]  # rows 150-199 in both
    copy = labelled.iloc[[0]].assign(id="0" * 22, name=labelled.iloc[0]["name"].upper())  # same song, new id
    kept = fit_moods.held_out(train, pd.concat([test, copy]))
    assert len(kept) == len(test) - 50  # the 50 shared ids and the renamed copy are gone
    assert not set(kept["id"]) & set(train["id"])


# ------------------------------------------------------------------------------------ the model file


def test_the_model_file_loads_and_covers_every_mood() -> None:
    models = mood_models()
    assert isinstance(models, MoodModels) and len(models.models) == 2
    best, fallback = models.models
    assert "instrumentalness" in best.features and fallback.features == FEATURES
    assert models.for_features({*FEATURES, "instrumentalness"}) is best
    assert models.for_features(set(FEATURES)) is fallback
    with pytest.raises(ValueError, match="no mood model"):
        models.for_features({"valence", "energy"})
    for model in models.models:
        assert set(model.moods) == set(MOODS) and model.labelled == LABELLED_MOODS
        assert 0 <= model.popularity_weight <= 1 and model.typical_distance2 > 0
        again = MoodModel.from_json(json.loads(json.dumps(model.to_json())))
        np.testing.assert_array_equal(again.coef, model.coef)
        np.testing.assert_array_equal(again.head_coef, model.head_coef)
        np.testing.assert_array_equal(again.head_intercept, model.head_intercept)
    assert best.head_coef is not None  # cross-validation chose the logistic regression head
    assert models.meta["source"]["rows"] == 343


def test_probabilities() -> None:
    model = mood_models().models[0]
    profile = np.array([[0.15, 0.15, 0.42, 0.88, 0.89, -21.0, 110.0]])  # moods-dev's Calm average
    x = np.vstack([profile, [[0.6, 0.77, 0.63, 0.15, 0.1, -7.2, 121.0]]])  # and its Happy average
    p = model.probabilities(x)
    labelled = [model.moods.index(m) for m in model.labelled]
    np.testing.assert_allclose(p[:, labelled].sum(axis=1), 1.0, rtol=1e-5)
    assert p[0, model.moods.index("calm")] > 0.9 and p[1, model.moods.index("happy")] > 0.5
    assert ((p >= 0) & (p <= 1)).all()
    assert model.typical(x).all()
    noise = np.array([[0.0, 0.3, 0.0, 0.99, 0.7, -38.0, 0.0]])  # white noise: no beat, very quiet
    assert not model.typical(noise).any()
    unknown = profile.copy()
    unknown[0, model.features.index("instrumentalness")] = np.nan  # unknown: the training mean
    assert np.isfinite(model.probabilities(unknown)).all()


# ------------------------------------------------------------------------------------ variety


def ids(tracks: list[Track]) -> list[str]:
    return [t.id for t in tracks]


@pytest.mark.parametrize("policy", ["match", "lift"])
def test_seeds_give_different_lists_that_still_fit(synthetic: Catalog, policy: str) -> None:
    for emotion in EMOTIONS:
        best = synthetic.recommend(emotion=emotion, n=10, policy=policy)
        a = synthetic.recommend(emotion=emotion, n=10, policy=policy, seed=1)
        b = synthetic.recommend(emotion=emotion, n=10, policy=policy, seed=2)
        assert a == synthetic.recommend(emotion=emotion, n=10, policy=policy, seed=1)  # deterministic
        assert len(a) == len(b) == 10 and ids(a) != ids(b), emotion
        if policy == "match" or emotion in ("happy", "neutral", "surprise"):
            top = set(ids(synthetic.recommend(emotion=emotion, n=VARIETY * 10)))
            assert set(ids(a)) <= top and set(ids(b)) <= top, emotion  # drawn from the best 2n
            assert len(set(ids(a)) & set(ids(best))) >= 2  # varied, not a different list altogether


def test_seeded_lists_on_the_shared_catalog(shared: Catalog) -> None:
    calm = shared.mood_fit("calm")
    rows = {t: i for i, t in enumerate(shared.table["id"].to_pylist())}
    lists = [shared.recommend(emotion="neutral", n=10, seed=s) for s in range(1, 6)]
    assert len({tuple(ids(x)) for x in lists}) == 5
    assert len(set(ids(lists[0])) & set(ids(lists[1]))) == 5  # published: 5 of 10 shared
    for tracks in lists:
        assert min(float(calm[rows[t.id]]) for t in tracks) > 0.9  # every one of them calm


def test_recent_tracks_are_avoided_until_nothing_else_is_left(synthetic: Catalog) -> None:
    first = synthetic.recommend(emotion="sad", n=10)
    again = synthetic.recommend(emotion="sad", n=10, recent=ids(first))
    assert len(again) == 10 and not set(ids(first)) & set(ids(again))
    assert synthetic.recommend(emotion="sad", n=10, recent=iter(ids(first))) == again  # any iterable
    lift = synthetic.recommend(emotion="sad", n=10, policy="lift", recent=ids(first), seed=3)
    assert len(lift) == 10 and not set(ids(first)) & set(ids(lift))
    # Only recent tracks left: they come back rather than nothing.
    everything = {synthetic.track(i).id for i in range(len(synthetic))}
    left = everything - set(ids(first))
    back = synthetic.recommend(emotion="sad", n=10, exclude=left, recent=ids(first))
    assert set(ids(back)) == set(ids(first))
    assert synthetic.recommend(emotion="sad", n=10, exclude=everything, recent=ids(first)) == []


@pytest.mark.parametrize(("policy", "seed"), [("match", None), ("match", 7), ("lift", None), ("lift", 7)])
def test_more_tracks_never_repeats_over_a_chain_of_five(
    synthetic: Catalog, policy: str, seed: int | None
) -> None:
    for emotion in ("happy", "sad", "neutral", "angry"):
        shown: list[str] = []
        for step in range(5):
            more = synthetic.recommend(
                emotion=emotion,
                n=10,
                policy=policy,
                exclude=set(shown),
                seed=None if seed is None else seed + step,
            )
            assert len(more) == 10, (emotion, step)
            assert not set(ids(more)) & set(shown), (emotion, step)
            shown += ids(more)
        assert len(set(shown)) == 50


def test_more_tracks_chain_on_the_shared_catalog(shared: Catalog) -> None:
    shown: list[str] = []
    for step in range(5):
        more = shared.recommend(emotion="neutral", n=10, exclude=shown, seed=step)
        assert len(more) == 10 and not set(ids(more)) & set(shown)
        shown += ids(more)


def test_bad_seed(synthetic: Catalog) -> None:
    with pytest.raises(ValueError, match="seed"):
        synthetic.recommend(emotion="happy", seed="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        synthetic.recommend(emotion="happy", seed=True)


def test_old_keyword_and_positional_calls_still_work(synthetic: Catalog) -> None:
    # bot/cli/music.py and core/service.py call recommend(emotion=, mood=, n=, policy=, exclude=).
    a = synthetic.recommend("happy", None, 5, "match", {"x"})
    b = synthetic.recommend(emotion="happy", mood=None, n=5, policy="match", exclude={"x"})
    assert a == b and len(a) == 5


# ------------------------------------------------------------------------------------ explanations


def test_explanations_come_from_the_fitted_profile() -> None:
    model = mood_models().models[0]
    words = {w for pair in FEATURE_WORDS.values() for w in pair}
    for mood in MOODS:
        line = model.explain(mood)
        named = line.split(": ", 1)[1].split(", ") if ": " in line else []
        assert line.split(":")[0] == mood and len(named) <= 3 and set(named) <= words
    # Against the labelled tracks themselves (no catalog given); sad sits in their middle, so it
    # gets no words there, while against a real catalog it does (test below).
    assert model.explain("calm") == "calm: instrumental, quiet, low energy"
    assert model.explain("sad") == "sad"
    assert explain("calm", "happy") == f"{model.explain('calm')}; lifting towards {model.explain('happy')}"


def test_explanation_words_follow_the_profile() -> None:
    features = ("valence", "energy", "tempo")
    eye = np.eye(3)
    profile = np.array([[0.2, -1.5, -0.8], [1.0, 0.3, 0.0], [0.0, 0.0, 0.0]])
    model = MoodModel(
        features=features,
        mean=np.zeros(3),
        scale=np.ones(3),
        moods=("calm", "happy", "sad"),
        labelled=("calm", "happy", "sad"),
        coef=eye,
        intercept=np.zeros(3),
        profile=profile,
        precision=eye,
        typical_distance2=10.0,
        popularity_weight=0.2,
    )
    assert model.explain("calm") == "calm: low energy, slow"  # strongest first; valence 0.2 too weak
    assert model.explain("happy") == "happy: cheerful"
    assert model.explain("sad") == "sad"  # nothing sets it apart: no words rather than wrong ones
    reference = (np.array([0.0, -2.0, 0.0]), np.array([1.0, 1.0, 1.0]))  # a catalog of very calm music
    assert model.explain("calm", reference) == "calm: slow, high energy"


def test_catalog_explanations_compare_with_the_catalog(shared: Catalog) -> None:
    published = json.loads(FIGURES.read_text())["catalog"]["explanations"]
    for mood in MOODS:
        assert shared.explain(mood=mood) == published[mood]
    assert shared.explain(mood="calm") == "calm: instrumental, quiet, acoustic"
    assert shared.explain("neutral") == shared.explain(mood="calm")
    assert shared.explain("sad", "lift") == f"{published['sad']}; lifting towards {published['happy']}"
    with pytest.raises(ValueError, match="unknown emotion"):
        shared.explain("joy")


# ------------------------------------------------------------------------------------ the shared catalog


def test_calm_is_calm_and_replies_stay_known_songs(shared: Catalog) -> None:
    published = json.loads(FIGURES.read_text())["catalog"]
    calm = shared.recommend(mood="calm", n=10)
    assert [f"{t.label()} ({t.popularity})" for t in calm] == published["fitted"]["calm_top10"]
    legacy = shared.recommend_legacy(mood="calm", n=10)
    assert [f"{t.label()} ({t.popularity})" for t in legacy] == published["legacy"]["calm_top10"]
    assert not set(ids(calm)) & set(ids(legacy))
    assert np.mean([t.energy for t in calm]) < shared.mean("energy") - 0.3
    per_emotion = {e: np.mean([t.popularity for t in shared.recommend(emotion=e, n=10)]) for e in EMOTIONS}
    mean_popularity = float(np.mean(list(per_emotion.values())))
    assert mean_popularity == pytest.approx(published["fitted"]["top10_popularity_mean"], abs=0.01)
    catalog_mean = float(shared.table["popularity"].to_numpy().mean())
    assert mean_popularity > catalog_mean + 5  # above the catalog's average: songs people know


def test_atypical_tracks_come_last(tmp_path: Path) -> None:
    head = "id,name,artists,popularity,valence,energy,danceability,acousticness,instrumentalness,"
    head += "loudness,tempo\n"
    rows = [
        f"{i:022d},Piano {i},['Pianist {i}'],{40 + i},0.15,0.1,0.4,0.9,0.9,-21,{90 + i}" for i in range(8)
    ]
    rows.append(f"{99:022d},White Noise,['Noise Co'],100,0.0,0.3,0.0,0.99,0.7,-38,0")
    path = tmp_path / "t.csv"
    path.write_text(head + "\n".join(rows) + "\n")
    catalog = import_catalog(path)
    assert catalog.moods.features == mood_models().models[0].features
    assert not catalog.typical[[t == "White Noise" for t in catalog.table["name"].to_pylist()]].any()
    tracks = catalog.recommend(mood="calm", n=9)
    assert [t.name for t in tracks][-1] == "White Noise"  # the most popular, and still last
    assert tracks[0].name == "Piano 7"


def test_catalogs_without_instrumentalness_use_the_other_model(tmp_path: Path) -> None:
    path = tmp_path / "tracks.csv"
    write_synthetic_catalog(path, 600, "tracks-114k", seed=4)
    catalog = import_catalog(path)
    assert "instrumentalness" not in catalog.table.column_names
    assert catalog.moods.features == FEATURES
    assert len(catalog.recommend(mood="calm", n=10)) == 10
    # A catalog stored before instrumentalness was read: the column is simply absent.
    kaggle = tmp_path / "kaggle.csv"
    write_synthetic_catalog(kaggle, 600, "kaggle-1921-2020", seed=4)
    full = import_catalog(kaggle)
    assert "instrumentalness" in full.table.column_names
    old = full.table.drop_columns(["instrumentalness"])
    older = Catalog(old, full.model, full.report, full.source)
    assert older.moods.features == FEATURES
    assert len(older.recommend(emotion="happy")) == 10
    # Unknown values inside a present column: the model's mean stands in, nothing breaks.
    column = full.table.schema.get_field_index("instrumentalness")
    values = full.table["instrumentalness"].to_numpy().copy()
    holes = pa.array(values, mask=np.arange(len(values)) % 3 == 0)
    partial = Catalog(full.table.set_column(column, "instrumentalness", holes), full.model)
    assert partial.moods.features == full.moods.features
    assert np.isfinite(partial.mood_fit("calm")).all()


def test_every_emotion_maps_to_a_mood_of_the_model() -> None:
    model = mood_models().models[0]
    for emotion, mood in EMOTION_MOODS.items():
        assert mood in model.moods, emotion
    # Derived moods sit at their (valence, energy) target in the model's space.
    for name in ("intense", "dark"):
        row = model.profile[model.moods.index(name)]
        raw = model.mean + row * model.scale
        assert raw[model.features.index("valence")] == pytest.approx(MOODS[name].valence, abs=1e-6)
        assert raw[model.features.index("energy")] == pytest.approx(MOODS[name].energy, abs=1e-6)


def test_a_classifier_head_sets_the_labelled_moods_only() -> None:
    """With a head, P(labelled mood) is the head's softmax; derived moods and typicality stay the LDA's;
    a file entry without a head (older files) loads as a plain LDA."""
    lda = mood_models().models[0]
    x = np.array([[0.6, 0.77, 0.63, 0.15, 0.1, -7.2, 121.0], [0.15, 0.15, 0.42, 0.88, 0.89, -21.0, 110.0]])
    plain = MoodModel.from_json({**lda.to_json(), "head": None})
    labelled = [lda.moods.index(m) for m in lda.labelled]
    derived = [i for i, m in enumerate(lda.moods) if m not in lda.labelled]
    head_coef = np.zeros((len(lda.labelled), len(lda.features)))
    head_coef[lda.labelled.index("sad"), lda.features.index("valence")] = 50.0  # "sad" wins on any valence
    headed = MoodModel.from_json(
        {
            **plain.to_json(),
            "head": {
                "kind": "logistic regression",
                "coef": {m: list(head_coef[i]) for i, m in enumerate(lda.labelled)},
                "intercept": dict.fromkeys(lda.labelled, 0.0),
            },
        }
    )
    p_plain, p_head = plain.probabilities(x), headed.probabilities(x)
    assert p_head[0, lda.moods.index("sad")] > 0.99  # valence above the mean: the head says sad
    np.testing.assert_allclose(p_head[:, labelled].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(p_head[:, derived], p_plain[:, derived])
    np.testing.assert_array_equal(headed.typical(x), plain.typical(x))
    assert headed.explain("calm") == plain.explain("calm")
    with pytest.raises(ValueError, match="head"):
        MoodModel.from_json(
            {
                **plain.to_json(),
                "head": {
                    "coef": {m: [0.0] for m in lda.labelled},
                    "intercept": dict.fromkeys(lda.labelled, 0.0),
                },
            }
        )
