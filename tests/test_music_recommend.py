"""Recommendations on the real shared catalog (../shared/data/spotify/tracks.csv) and a synthetic one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from core.music import Catalog, ClusterModel, Track, import_catalog
from core.music.moods import EMOTION_MOODS
from core.music.recommend import CLUSTER_SHARE
from core.vision.emotion.labels import EMOTIONS
from tests.conftest import data_path
from tests.synthetic_catalog import write_synthetic_catalog

SEEDS = (0, 1, 2)
TOP = 15
MARGIN = 0.08
"""How far (in feature units, 0-1) the top-15 mean must sit from the catalog mean to count as clear."""

_imported: dict[int, Catalog] = {}


def shared_catalog(seed: int) -> Catalog:
    """The shared catalog imported with KMeans seed ``seed`` (once per seed per test session)."""
    if seed not in _imported:
        _imported[seed] = import_catalog(data_path("spotify", "tracks.csv"), seed=seed)
    return _imported[seed]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    path = tmp_path_factory.mktemp("music") / "tracks.csv"
    write_synthetic_catalog(path, 2000, "kaggle-1921-2020", seed=7)
    return import_catalog(path, seed=0)


def means(tracks: list[Track]) -> tuple[float, float]:
    return float(np.mean([t.valence for t in tracks])), float(np.mean([t.energy for t in tracks]))


@pytest.mark.parametrize("seed", SEEDS)
def test_happy_is_clearly_happier_and_sad_clearly_sadder_for_every_seed(seed: int) -> None:
    catalog = shared_catalog(seed)
    valence, energy = catalog.mean("valence"), catalog.mean("energy")
    happy_v, happy_e = means(catalog.recommend(emotion="happy", n=TOP))
    sad_v, sad_e = means(catalog.recommend(emotion="sad", n=TOP))
    # The fitted Happy profile is told apart from Energetic (which is louder and more energetic), so a
    # happy list is clearly brighter and only somewhat more energetic than the catalog.
    assert happy_v > valence + 3 * MARGIN and happy_e > energy, (happy_v, happy_e, valence, energy)
    assert sad_v < valence - MARGIN and sad_e < energy - MARGIN, (sad_v, sad_e, valence, energy)


def test_the_seed_changes_cluster_numbers_not_the_music() -> None:
    catalogs = [shared_catalog(s) for s in SEEDS]
    assert len({c.model.k for c in catalogs}) == 1
    for emotion in ("happy", "sad"):
        lists = [{t.id for t in c.recommend(emotion=emotion, n=TOP)} for c in catalogs]
        for other in lists[1:]:
            assert len(lists[0] & other) >= TOP // 2, emotion  # mostly the same tracks
        # The cluster the list starts from has nearly the same centroid under every seed.
        centres = []
        for c in catalogs:
            first = c.recommend(emotion=emotion, n=1)[0]
            index = c.cluster_of(first.id)
            assert index is not None
            info = c.clusters[index]
            centres.append((info.valence, info.energy))
        assert np.ptp(np.array(centres), axis=0).max() < 0.05, centres


def test_clusters_are_picked_by_mood_fit_not_by_number() -> None:
    catalog = shared_catalog(0)
    for emotion in ("happy", "sad", "angry", "neutral"):
        mood = EMOTION_MOODS[emotion]
        fit = catalog.mood_fit(mood)
        by_cluster = {
            c.index: float(fit[catalog.labels == c.index].mean()) for c in catalog.clusters if c.size
        }
        chosen = catalog.chosen_clusters(mood)
        best = max(by_cluster.values())
        assert max(by_cluster, key=by_cluster.__getitem__) in chosen
        assert chosen == sorted(c for c, f in by_cluster.items() if f >= CLUSTER_SHARE * best - 1e-9)
        tracks = catalog.recommend(emotion=emotion, n=TOP)
        assert all(catalog.cluster_of(t.id) in chosen for t in tracks), emotion


def relabelled(catalog: Catalog, permutation: np.ndarray) -> Catalog:
    """The same catalog with cluster ``i`` renumbered ``permutation[i]`` (as another KMeans run might)."""
    model = catalog.model
    centroids = np.empty_like(model.centroids)
    centroids[permutation] = model.centroids
    new_model = ClusterModel(
        model.features, model.mean, model.scale, model.weights, centroids, model.seed, model.criterion
    )
    labels = permutation[catalog.table["cluster"].to_numpy()].astype(np.int16)
    table = catalog.table.set_column(
        catalog.table.schema.get_field_index("cluster"), "cluster", pa.array(labels)
    )
    return Catalog(table, new_model, catalog.report, catalog.source)


def test_renumbering_the_clusters_changes_nothing(synthetic: Catalog) -> None:
    k = synthetic.model.k
    for permutation in (np.arange(k)[::-1], np.roll(np.arange(k), 1)):
        other = relabelled(synthetic, permutation)
        assert other.clusters[int(permutation[0])].size == synthetic.clusters[0].size
        for emotion in EMOTIONS:
            for policy in ("match", "lift"):
                assert other.recommend(emotion=emotion, n=12, policy=policy) == synthetic.recommend(
                    emotion=emotion, n=12, policy=policy
                )


def rank_keys(catalog: Catalog, mood: str, tracks: list[Track]) -> list[tuple[int, int, float]]:
    """(typical, in a chosen cluster, blended score) of each track: what the fitted ranking sorts by."""
    score = catalog.ranking_score(mood)
    chosen = set(catalog.chosen_clusters(mood))
    ids = catalog.table["id"].to_pylist()
    rows = [ids.index(t.id) for t in tracks]
    return [
        (int(catalog.typical[r]), int(catalog.cluster_of(t.id) in chosen), float(score[r]))
        for r, t in zip(rows, tracks, strict=True)
    ]


@pytest.mark.parametrize("n", [1, 10, 50])
def test_ranking_rules(synthetic: Catalog, n: int) -> None:
    for emotion in EMOTIONS:
        tracks = synthetic.recommend(emotion=emotion, n=n)
        assert len(tracks) == n
        assert len({t.id for t in tracks}) == n
        per_artist = Counter(a.casefold() for t in tracks for a in t.artists)
        assert max(per_artist.values()) <= 2
        if emotion in ("happy", "neutral", "surprise"):  # match plans: best (tier, blended score) first
            keys = rank_keys(synthetic, EMOTION_MOODS[emotion], tracks)
            assert keys == sorted(keys, key=lambda k: (-k[0], -k[1], -k[2])), emotion


def test_best_blend_of_fit_and_popularity_comes_first(synthetic: Catalog) -> None:
    tracks = synthetic.recommend(emotion="happy", n=5)
    score = synthetic.ranking_score("happy")
    allowed = np.isin(synthetic.labels, synthetic.chosen_clusters("happy")) & synthetic.typical
    ids = synthetic.table["id"].to_pylist()
    assert ids.index(tracks[0].id) == int(np.flatnonzero(allowed)[np.argmax(score[allowed])])
    w = synthetic.moods.popularity_weight
    assert 0 < w < 1
    fit = synthetic.mood_fit("happy")
    first = ids.index(tracks[0].id)
    percentile = (score[first] - (1 - w) * fit[first]) / w
    assert 0 < percentile <= 1


def test_no_artist_more_than_twice_even_when_one_dominates(tmp_path: Path) -> None:
    head = "id,name,artists,popularity,valence,energy,danceability,acousticness,loudness,tempo\n"
    rows = [
        f"{i:022d},Hit {i},\"['Star', 'Guest {i % 2}']\",{99 - i},0.8,0.7,0.7,0.1,-5,120" for i in range(6)
    ] + [f"{i:022d},Other {i},['Band {i}'],{50 - i},0.8,0.7,0.7,0.1,-5,120" for i in range(10, 20)]
    path = tmp_path / "t.csv"
    path.write_text(head + "\n".join(rows) + "\n")
    catalog = import_catalog(path)
    tracks = catalog.recommend(emotion="happy", n=8)
    assert [t.name for t in tracks[:2]] == ["Hit 0", "Hit 1"]
    assert sum("Star" in t.artists for t in tracks) == 2
    assert len(tracks) == 8


def test_exclude_gives_more_tracks(synthetic: Catalog) -> None:
    first = synthetic.recommend(emotion="happy", n=10)
    more = synthetic.recommend(emotion="happy", n=10, exclude={t.id for t in first})
    assert len(more) == 10 and not {t.id for t in first} & {t.id for t in more}
    first_keys, more_keys = rank_keys(synthetic, "happy", first), rank_keys(synthetic, "happy", more)
    assert max(more_keys) <= min(first_keys)  # the next best, never better than what was shown
    everything = {synthetic.track(i).id for i in range(len(synthetic))}
    assert synthetic.recommend(emotion="happy", n=10, exclude=everything) == []  # runs out, no error


def test_lift_moves_gradually(synthetic: Catalog) -> None:
    sad = synthetic.recommend(emotion="sad", n=20, policy="lift")
    start_v, _ = means(sad[:5])
    end_v, _ = means(sad[-5:])
    assert start_v < synthetic.mean("valence") < end_v and end_v - start_v > 0.3
    angry = synthetic.recommend(emotion="angry", n=20, policy="lift")
    _, start_e = means(angry[:5])
    _, end_e = means(angry[-5:])
    assert start_e > synthetic.mean("energy") > end_e and start_e - end_e > 0.3
    assert synthetic.recommend(emotion="happy", policy="lift") == synthetic.recommend(emotion="happy")


def test_lift_on_the_shared_catalog() -> None:
    catalog = shared_catalog(0)
    sad = catalog.recommend(emotion="sad", n=20, policy="lift")
    assert means(sad[:5])[0] + 0.2 < means(sad[-5:])[0]
    assert means(sad[:5])[0] < catalog.mean("valence")


def test_moods_by_name(synthetic: Catalog) -> None:
    v, e = synthetic.mean("valence"), synthetic.mean("energy")
    assert means(synthetic.recommend(mood="calm"))[1] < e - 0.15
    assert means(synthetic.recommend(mood="energetic"))[1] > e + 0.15
    assert means(synthetic.recommend(mood="happy"))[0] > v + 0.15
    assert means(synthetic.recommend(mood="sad"))[0] < v - 0.15


def test_mood_labels(synthetic: Catalog) -> None:
    assert synthetic.mood_of("happy") == "upbeat and happy"
    assert synthetic.mood_of("sad", "lift") == "slow and melancholic, lifting towards upbeat and happy"
    assert synthetic.mood_of(mood="calm") == "calm and mellow"
    for emotion in EMOTIONS:
        assert synthetic.mood_of(emotion)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"emotion": "happy", "n": 0}, "between 1 and 50"),
        ({"emotion": "happy", "n": 51}, "between 1 and 50"),
        ({"emotion": "joy"}, "unknown emotion"),
        ({"mood": "groovy"}, "unknown mood"),
        ({"emotion": "sad", "policy": "boost"}, "unknown policy"),
        ({"emotion": "sad", "mood": "sad"}, "exactly one"),
    ],
)
def test_bad_requests(synthetic: Catalog, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        synthetic.recommend(**kwargs)  # type: ignore[arg-type]


def test_track_json_form(synthetic: Catalog) -> None:
    track = synthetic.recommend(emotion="neutral", n=1)[0]
    record = track.as_dict()
    assert list(record) == ["id", "name", "artists", "popularity", "valence", "energy", "danceability", "url"]
    assert record["url"] == f"https://open.spotify.com/track/{track.id}" == track.url
    assert isinstance(record["artists"], list) and len(track.id) == 22
    assert 0 <= record["popularity"] <= 100 and all(0 <= record[f] <= 1 for f in ("valence", "energy"))
    with pytest.raises(AttributeError):
        track.name = "changed"  # type: ignore[misc]


def test_every_emotion_on_the_shared_catalog() -> None:
    catalog = shared_catalog(0)
    for emotion in EMOTIONS:
        for policy in ("match", "lift"):
            tracks = catalog.recommend(emotion=emotion, n=10, policy=policy)
            assert len(tracks) == 10 and len({t.id for t in tracks}) == 10
    first = catalog.recommend(emotion="happy", n=3)
    assert catalog.get(first[0].id) == first[0]
    assert catalog.get("0" * 22) is None
