"""A loaded track catalog: the tracks (columnar, read-only), their clustering and the recommender.

A catalog is built once by the importer (or read back from its Parquet file) and then answers
requests without touching pandas: the columns are NumPy arrays, every track's fit to every mood is
computed once at load (:mod:`core.music.profiles`) and each mood's ranking is sorted on first use
(:class:`~core.music.recommend.MoodRanking`). Apart from those caches it is immutable, and safe to
share between threads (a cache filled twice by two threads holds the same values).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.music.clustering import ClusterInfo, ClusterModel, cluster_infos
from core.music.importer import ImportReport
from core.music.moods import plan_for
from core.music.profiles import MoodModel, explain, mood_models
from core.music.recommend import ClusterIndex, MoodRanking, check_count, pick
from core.music.schema import FEATURES, OPTIONAL_FEATURES, Track


def tracks_table(frame: pd.DataFrame, labels: np.ndarray) -> pa.Table:
    """The stored form of normalised tracks (see :func:`core.music.importer.read_tracks`).

    ``labels`` (``(n,)``) is each track's cluster. Columns: ``id, name`` (string), ``artists``
    (list of string), ``popularity`` (int16), ``year`` (int16, null if unknown), ``genre`` (string,
    null if unknown), the features (float32), the optional features (float32, null if unknown; the
    column is left out when every value is unknown) and ``cluster`` (int16).
    """
    artists = frame["artists"].tolist()
    offsets = np.zeros(len(artists) + 1, dtype=np.int32)
    np.cumsum([len(a) for a in artists], out=offsets[1:])
    flat = pa.array(list(itertools.chain.from_iterable(artists)), type=pa.string())
    year = frame["year"].to_numpy(dtype=np.float64)
    columns: dict[str, pa.Array] = {
        "id": pa.array(frame["id"].tolist(), type=pa.string()),
        "name": pa.array(frame["name"].tolist(), type=pa.string()),
        "artists": pa.ListArray.from_arrays(pa.array(offsets), flat),
        "popularity": pa.array(frame["popularity"].to_numpy(dtype=np.int16)),
        "year": pa.array(np.nan_to_num(year, nan=0).astype(np.int16), mask=np.isnan(year)),
        "genre": pa.array([g if isinstance(g, str) else None for g in frame["genre"]], type=pa.string()),
    }
    for f in FEATURES:
        columns[f] = pa.array(frame[f].to_numpy(dtype=np.float32))
    for f in OPTIONAL_FEATURES:
        if f in frame:
            values = frame[f].to_numpy(dtype=np.float32)
            known = ~np.isnan(values)
            if known.any():
                columns[f] = pa.array(np.nan_to_num(values), mask=~known)
    columns["cluster"] = pa.array(np.asarray(labels, dtype=np.int16))
    return pa.table(columns)


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


class Catalog:
    """Tracks with audio features, clustered by mood; :meth:`recommend` picks lists of them.

    ``table`` has the columns of :func:`tracks_table`; ``model`` is the clustering those ``cluster``
    labels come from; ``report`` tells how the import went (None if unknown); ``source`` names the
    file the tracks came from; ``moods`` is the mood model (None: the shipped model for the features
    the table has, see :meth:`core.music.profiles.MoodModels.for_features`).
    """

    def __init__(
        self,
        table: pa.Table,
        model: ClusterModel,
        report: ImportReport | None = None,
        source: str = "",
        moods: MoodModel | None = None,
    ) -> None:
        self.table = table
        self.model = model
        self.report = report
        self.source = source
        self._ids = _strings(table["id"])
        self._names = _strings(table["name"])
        artists = table["artists"].combine_chunks()
        self._artist_offsets = (artists.offsets.to_numpy() - artists.offsets[0].as_py()).astype(np.int64)
        self._artist_names = _strings(pa.chunked_array([artists.flatten()]))
        self._popularity = table["popularity"].to_numpy().astype(np.int16)
        self._year = pc.fill_null(table["year"], 0).to_numpy().astype(np.int16)
        self._genre = _strings(table["genre"])
        self._features = {f: table[f].to_numpy().astype(np.float32) for f in FEATURES}
        for f in OPTIONAL_FEATURES:  # absent (an older file, or a CSV without it): all unknown
            column = table[f] if f in table.column_names else pa.nulls(len(table), pa.float32())
            self._features[f] = pc.fill_null(column.cast(pa.float32()), np.nan).to_numpy().astype(np.float32)
        self._labels = table["cluster"].to_numpy().astype(np.int16)
        self._labels.flags.writeable = False
        self.clusters: tuple[ClusterInfo, ...] = cluster_infos(model, self._labels)
        known = {f for f in self._features if not np.isnan(self._features[f]).all()}
        self.moods: MoodModel = moods or mood_models().for_features(known)
        x = np.column_stack([self._features[f] for f in self.moods.features])
        self._fit, self._typical = self.moods.analyse(x)
        self._reference: tuple[np.ndarray, np.ndarray] | None = None
        self._ranking = MoodRanking(
            self._labels,
            self._popularity,
            self._fit,
            self.moods.moods,
            self.moods.popularity_weight,
            model.k,
            typical=self._typical,
        )
        self._legacy: ClusterIndex | None = None
        self._by_id: dict[str, int] | None = None
        self._by_artist: dict[str, np.ndarray] | None = None

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, model: ClusterModel, report: ImportReport | None = None, source: str = ""
    ) -> Catalog:
        """Build from normalised tracks, assigning each to its nearest cluster of ``model``."""
        labels = model.predict(frame[list(FEATURES)].to_numpy(dtype=np.float64))
        return cls(tracks_table(frame, labels), model, report, source)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"<Catalog {self.source!r}: {len(self):,} tracks, {self.model.k} clusters>"

    def feature(self, name: str) -> np.ndarray:
        """One audio feature of every track, shape ``(n,)`` float32 (read-only view; NaN if unknown)."""
        values = self._features[name].view()
        values.flags.writeable = False
        return values

    def mean(self, name: str) -> float:
        """Catalog mean of one audio feature (NaN if unknown for every track)."""
        values = self._features[name]
        return float(values[~np.isnan(values)].mean()) if not np.isnan(values).all() else float("nan")

    def mood_fit(self, mood: str) -> np.ndarray:
        """``P(mood | track)`` of every track from the mood model, shape ``(n,)`` float32 (read-only)."""
        values = self._fit[:, self.moods.moods.index(mood)]
        values.flags.writeable = False
        return values

    def ranking_score(self, mood: str) -> np.ndarray:
        """Blended score of every track for ``mood``: ``(1 - w) * fit + w * popularity percentile``, ``(n,)``.

        ``w`` is the mood model's ``popularity_weight``; see :mod:`core.music.recommend`.
        """
        return self._ranking.scores(mood)

    def chosen_clusters(self, mood: str) -> list[int]:
        """Indices of the clusters whose tracks come first for ``mood`` (see :mod:`core.music.recommend`)."""
        return [int(c) for c in self._ranking.chosen_clusters(mood)]

    @property
    def typical(self) -> np.ndarray:
        """``(n,)`` bool: the track is like the labelled music (not, say, white noise); read-only."""
        values = self._typical.view()
        values.flags.writeable = False
        return values

    def _artists(self, row: int) -> tuple[str, ...]:
        return tuple(self._artist_names[self._artist_offsets[row] : self._artist_offsets[row + 1]])

    def _id(self, row: int) -> str:
        return str(self._ids[row])

    def track(self, row: int) -> Track:
        """The track at row ``row`` (0-based, storage order)."""
        year = int(self._year[row])
        genre = self._genre[row]
        return Track(
            id=str(self._ids[row]),
            name=str(self._names[row]),
            artists=self._artists(row),
            popularity=int(self._popularity[row]),
            year=year or None,
            genre=genre if isinstance(genre, str) else None,
            valence=round(float(self._features["valence"][row]), 4),
            energy=round(float(self._features["energy"][row]), 4),
            danceability=round(float(self._features["danceability"][row]), 4),
        )

    def get(self, track_id: str) -> Track | None:
        """The track with this bare Spotify id, or None."""
        if self._by_id is None:
            self._by_id = {str(t): i for i, t in enumerate(self._ids)}
        row = self._by_id.get(track_id)
        return None if row is None else self.track(row)

    def artist_rows(self, names: Iterable[str]) -> np.ndarray:
        """Rows of every track credited to any of the artists ``names`` (any case), ``(k,)`` int64."""
        if self._by_artist is None:
            owners = np.repeat(np.arange(len(self._ids)), np.diff(self._artist_offsets))
            index: dict[str, list[int]] = {}
            for row, name in zip(owners.tolist(), self._artist_names.tolist(), strict=True):
                index.setdefault(str(name).casefold(), []).append(row)
            self._by_artist = {k: np.asarray(v, dtype=np.int64) for k, v in index.items()}
        found = [self._by_artist[k] for k in {n.casefold() for n in names} if k in self._by_artist]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    @property
    def labels(self) -> np.ndarray:
        """Cluster index of every track, shape ``(n,)`` int16 (read-only; numbers are arbitrary)."""
        return self._labels

    def cluster_of(self, track_id: str) -> int | None:
        """Cluster index of a track (an arbitrary number, for diagnostics), or None if unknown."""
        if self._by_id is None:
            self._by_id = {str(t): i for i, t in enumerate(self._ids)}
        row = self._by_id.get(track_id)
        return None if row is None else int(self._labels[row])

    def recommend(
        self,
        emotion: str | None = None,
        mood: str | None = None,
        n: int = 10,
        policy: str = "match",
        exclude: Iterable[str] = frozenset(),
        *,
        recent: Iterable[str] = (),
        seed: int | None = None,
        prefer: Iterable[str] = (),
    ) -> list[Track]:
        """Up to ``n`` (1..50) tracks for exactly one of ``emotion`` or ``mood``.

        ``policy`` is ``"match"`` or ``"lift"`` (:mod:`core.music.moods`). ``exclude`` holds track
        ids never to return (those already shown: a "more tracks" request). ``recent`` holds ids to
        avoid (the user's recent tracks): they come only when nothing else is left. ``seed`` (None:
        the best list, always the same) draws a different list that still fits, the same one for
        the same seed: from the best ``2n`` tracks for ``match``, from the best two at each position
        for ``lift``. Tracks come from the clusters that fit the mood, ranked by a blend of mood fit
        and popularity (:mod:`core.music.recommend`), never twice, no artist more than twice. Fewer
        than ``n`` come back only when the catalog runs out. ``prefer`` names artists a user likes
        (any case): up to half the list comes first from their tracks *within the mood* (typical
        tracks of the mood's chosen clusters, :mod:`core.music.recommend`), never from outside it.
        Raises ValueError for an unknown emotion, mood or policy, or ``n`` outside 1..50.
        """
        plan = plan_for(emotion, mood, policy)
        count = check_count(n)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")
        rows = self._ranking.pick(
            plan.start.name,
            plan.goal.name,
            plan.mix(count),
            self._id,
            self._artists,
            exclude,
            _ids(recent),
            None if seed is None else int(seed),
            self.artist_rows(liked) if (liked := _ids(prefer)) else None,
        )
        return [self.track(r) for r in rows]

    def recommend_legacy(
        self,
        emotion: str | None = None,
        mood: str | None = None,
        n: int = 10,
        policy: str = "match",
        exclude: Iterable[str] = frozenset(),
    ) -> list[Track]:
        """The ranking before the fitted mood model, kept to measure against: clusters by the distance
        of their (valence, energy) centroid to the mood's target, most popular first (ValueError like
        :meth:`recommend`)."""
        plan = plan_for(emotion, mood, policy)
        if self._legacy is None:
            self._legacy = ClusterIndex(self._labels, self._popularity, self.model.mood_centroids())
        rows = pick(self._legacy, plan.targets(check_count(n)), self._id, self._artists, exclude)
        return [self.track(r) for r in rows]

    def mood_of(self, emotion: str | None = None, policy: str = "match", *, mood: str | None = None) -> str:
        """Short label of the music chosen, e.g. ``"upbeat and happy"``; ValueError like :meth:`recommend`."""
        return plan_for(emotion, mood, policy).label

    def explain(self, emotion: str | None = None, policy: str = "match", *, mood: str | None = None) -> str:
        """Why these songs, one short line from the fitted mood profile compared with this catalog, e.g.
        ``"calm: instrumental, quiet, acoustic"`` (``"...; lifting towards happy: ..."`` for a lifting
        plan); ValueError like :meth:`recommend`."""
        plan = plan_for(emotion, mood, policy)
        if self._reference is None and len(self):
            x = np.column_stack([self._features[f] for f in self.moods.features]).astype(np.float64)
            self._reference = (np.nanmean(x, axis=0), np.nanstd(x, axis=0))
        return explain(plan.start.name, plan.goal.name, self.moods, self._reference)

    def describe(self) -> list[str]:
        """One line per cluster (by valence), e.g. ``"cluster 3: 2,611 tracks, bright, energetic (...)"``."""
        infos = sorted(self.clusters, key=lambda c: (c.valence, c.energy))
        return [f"cluster {c.index}: {c.size:,} tracks, {c.description}" for c in infos]


def _ids(values: Iterable[str] | Sequence[str]) -> frozenset[str]:
    """Track ids as a set (a user's recent tracks may come as any iterable, ``str`` alone is one id)."""
    return frozenset((values,)) if isinstance(values, str) else frozenset(values)
