"""A loaded track catalog: the tracks (columnar, read-only), their clustering and the recommender.

A catalog is built once by the importer (or read back from its Parquet file) and then answers
requests without touching pandas: the columns are NumPy arrays and each cluster keeps its tracks in
popularity order (:class:`~core.music.recommend.ClusterIndex`). It is immutable and safe to share
between threads.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.music.clustering import ClusterInfo, ClusterModel, cluster_infos
from core.music.importer import ImportReport
from core.music.moods import plan_for
from core.music.recommend import ClusterIndex, check_count, pick
from core.music.schema import FEATURES, Track


def tracks_table(frame: pd.DataFrame, labels: np.ndarray) -> pa.Table:
    """The stored form of normalised tracks (see :func:`core.music.importer.read_tracks`).

    ``labels`` (``(n,)``) is each track's cluster. Columns: ``id, name`` (string), ``artists``
    (list of string), ``popularity`` (int16), ``year`` (int16, null if unknown), ``genre`` (string,
    null if unknown), the features (float32) and ``cluster`` (int16).
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
    columns["cluster"] = pa.array(np.asarray(labels, dtype=np.int16))
    return pa.table(columns)


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


class Catalog:
    """Tracks with audio features, clustered by mood; :meth:`recommend` picks lists of them.

    ``table`` has the columns of :func:`tracks_table`; ``model`` is the clustering those ``cluster``
    labels come from; ``report`` tells how the import went (None if unknown); ``source`` names the
    file the tracks came from.
    """

    def __init__(
        self, table: pa.Table, model: ClusterModel, report: ImportReport | None = None, source: str = ""
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
        self._labels = table["cluster"].to_numpy().astype(np.int16)
        self._labels.flags.writeable = False
        self.clusters: tuple[ClusterInfo, ...] = cluster_infos(model, self._labels)
        self._index = ClusterIndex(self._labels, self._popularity, model.mood_centroids())
        self._by_id: dict[str, int] | None = None

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
        """One audio feature of every track, shape ``(n,)`` float32 (read-only view)."""
        values = self._features[name].view()
        values.flags.writeable = False
        return values

    def mean(self, name: str) -> float:
        """Catalog mean of one audio feature."""
        return float(self._features[name].mean())

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
    ) -> list[Track]:
        """Up to ``n`` (1..50) tracks for exactly one of ``emotion`` or ``mood``.

        ``policy`` is ``"match"`` or ``"lift"`` (:mod:`core.music.moods`); ``exclude`` holds track
        ids already shown (a "more tracks" request). Tracks come from the clusters nearest to the
        mood, most popular first, never twice, no artist more than twice. Fewer than ``n`` come back
        only when the catalog runs out. Raises ValueError for an unknown emotion, mood or policy, or
        ``n`` outside 1..50.
        """
        plan = plan_for(emotion, mood, policy)
        rows = pick(self._index, plan.targets(check_count(n)), self._id, self._artists, exclude)
        return [self.track(r) for r in rows]

    def mood_of(self, emotion: str | None = None, policy: str = "match", *, mood: str | None = None) -> str:
        """Short label of the music chosen, e.g. ``"upbeat and happy"``; ValueError like :meth:`recommend`."""
        return plan_for(emotion, mood, policy).label

    def describe(self) -> list[str]:
        """One line per cluster (by valence), e.g. ``"cluster 3: 2,611 tracks, bright, energetic (...)"``."""
        infos = sorted(self.clusters, key=lambda c: (c.valence, c.energy))
        return [f"cluster {c.index}: {c.size:,} tracks, {c.description}" for c in infos]
