"""Ranking: pick tracks for a list of mood targets from the clusters nearest to each.

For each list position the clusters are ordered by the distance of their (valence, energy)
centroid to that position's target; the position takes the most popular track of the nearest
cluster that is still allowed: not excluded, not already in the list, and no artist already
listed :data:`~core.music.schema.MAX_PER_ARTIST` times. When a cluster runs out, the next nearest
one is used. Each cluster keeps a cursor into its popularity order, so one request walks only the
few dozen tracks it looks at (microseconds, whatever the catalog size).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from core.music.schema import MAX_PER_ARTIST

MIN_TRACKS, MAX_TRACKS, DEFAULT_TRACKS = 1, 50, 10
"""Allowed list lengths (the ``/tracks N`` setting) and the default."""


def check_count(n: int) -> int:
    """``n`` if it is a valid list length (1..50); ValueError with a friendly message otherwise."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not MIN_TRACKS <= n <= MAX_TRACKS:
        raise ValueError(f"the number of tracks must be between {MIN_TRACKS} and {MAX_TRACKS}, got {n!r}")
    return int(n)


class ClusterIndex:
    """Per-cluster track rows in popularity order, and the cluster centroids in mood terms.

    ``labels`` (``(n,)`` ints in ``0..k-1``) and ``popularity`` (``(n,)``) describe the tracks;
    ``centres`` (``(k, 2)``) holds each cluster's centroid (valence, energy).
    """

    def __init__(self, labels: np.ndarray, popularity: np.ndarray, centres: np.ndarray) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        self.centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
        k = len(self.centres)
        if len(labels) and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"cluster labels must lie in 0..{k - 1}")
        # Sort by cluster, then popularity (descending), then row (stable, deterministic ties).
        order = np.lexsort((np.arange(len(labels)), -np.asarray(popularity, dtype=np.int64), labels))
        bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=k))])
        self.members: list[np.ndarray] = [order[bounds[c] : bounds[c + 1]] for c in range(k)]
        self._nearest: dict[tuple[float, float], list[int]] = {}

    def nearest(self, valence: float, energy: float) -> list[int]:
        """Cluster indices, nearest centroid to (valence, energy) first (empty clusters left out)."""
        key = (round(valence, 6), round(energy, 6))
        found = self._nearest.get(key)
        if found is None:
            d2 = (self.centres[:, 0] - valence) ** 2 + (self.centres[:, 1] - energy) ** 2
            found = [int(c) for c in np.argsort(d2, kind="stable") if len(self.members[c])]
            if len(self._nearest) < 4096:
                self._nearest[key] = found
        return found


def pick(
    index: ClusterIndex,
    targets: Sequence[tuple[float, float]],
    track_id: Callable[[int], str],
    artists: Callable[[int], Iterable[str]],
    exclude: Iterable[str] = (),
) -> list[int]:
    """Row numbers of the chosen tracks, one per target (fewer if the catalog runs out).

    ``track_id(row)`` and ``artists(row)`` read the catalog; ``exclude`` holds track ids not to
    return (e.g. those already shown).
    """
    used = set(exclude)
    per_artist: Counter[str] = Counter()
    cursors = [0] * len(index.members)
    chosen: list[int] = []

    def take(cluster: int) -> int | None:
        members = index.members[cluster]
        pos = cursors[cluster]
        while pos < len(members):
            row = int(members[pos])
            pos += 1
            tid = track_id(row)
            if tid in used:
                continue
            names = {a.casefold() for a in artists(row)}
            if any(per_artist[a] >= MAX_PER_ARTIST for a in names):
                continue  # counts only grow, so this track stays out for the whole request
            used.add(tid)
            per_artist.update(names)
            cursors[cluster] = pos
            return row
        cursors[cluster] = pos
        return None

    for valence, energy in targets:
        for cluster in index.nearest(valence, energy):
            row = take(cluster)
            if row is not None:
                chosen.append(row)
                break
        else:
            break  # every cluster is exhausted
    return chosen
