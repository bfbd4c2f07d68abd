"""Recommendations on the real shared catalog (../shared/data/spotify/tracks.csv) and a synthetic one."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from core.music import Catalog, ClusterModel, Track, import_catalog
from core.music.moods import EMOTION_MOODS, MOODS
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
    assert happy_v > valence + MARGIN and happy_e > energy + MARGIN, (happy_v, happy_e, valence, energy)
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


def test_clusters_are_picked_by_distance_not_by_number() -> None:
    catalog = shared_catalog(0)
    for emotion in ("happy", "sad", "angry", "neutral"):
        target = MOODS[EMOTION_MOODS[emotion]].target
        first = catalog.recommend(emotion=emotion, n=1)[0]
        index = catalog.cluster_of(first.id)
        distances = {c.index: np.hypot(c.valence - target[0], c.energy - target[1]) for c in catalog.clusters}
        assert index == min(distances, key=distances.__getitem__), emotion


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


@pytest.mark.parametrize("n", [1, 10, 50])
def test_ranking_rules(synthetic: Catalog, n: int) -> None:
    for emotion in EMOTIONS:
        tracks = synthetic.recommend(emotion=emotion, n=n)
        assert len(tracks) == n
        assert len({t.id for t in tracks}) == n
        per_artist = Counter(a.casefold() for t in tracks for a in t.artists)
        assert max(per_artist.values()) <= 2
        # Within each cluster, most popular first.
        by_cluster: dict[int | None, list[int]] = {}
        for t in tracks:
            by_cluster.setdefault(synthetic.cluster_of(t.id), []).append(t.popularity)
        for pops in by_cluster.values():
            assert pops == sorted(pops, reverse=True)


def test_most_popular_of_the_nearest_cluster_come_first(synthetic: Catalog) -> None:
    tracks = synthetic.recommend(emotion="happy", n=5)
    cluster = synthetic.cluster_of(tracks[0].id)
    rows = np.flatnonzero(synthetic.labels == cluster)
    assert tracks[0].popularity == max(synthetic.track(int(i)).popularity for i in rows)
    assert all(synthetic.cluster_of(t.id) == cluster for t in tracks)  # a big cluster fills the list


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
    assert max(t.popularity for t in more) <= max(t.popularity for t in first)
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
