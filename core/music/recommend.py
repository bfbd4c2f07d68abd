"""Ranking: pick tracks for a mood plan from the catalog clusters that fit the mood best.

The fitted ranking (:class:`MoodRanking`, what :meth:`~core.music.catalog.Catalog.recommend` uses):

* Every track has ``P(mood | track)`` from the fitted mood model (:mod:`core.music.profiles`) and a
  popularity percentile in the catalog (0-1, ties shared). Its score for a mood is the blend
  ``(1 - w) * P(mood | track) + w * percentile``, with ``w`` the model's ``popularity_weight``
  (chosen by cross-validation). Percentiles make ``w`` mean the same on any catalog.
* Clusters: a cluster's fit is the mean ``P(mood | track)`` of its tracks. The clusters whose fit is
  at least :data:`CLUSTER_SHARE` of the best cluster's are the chosen ones. The order: typical
  tracks (:mod:`core.music.profiles`: not far beyond every labelled mood, i.e. not white noise) of
  the chosen clusters by score, then the other typical tracks by score, then the atypical ones by
  score (so "more tracks" never runs dry early).
* A ``lift`` plan aims position ``i`` at a mix ``t`` of start and goal (rounded to quarters,
  :data:`LIFT_STEPS`): the fit is ``(1 - t) * P(start) + t * P(goal)``, clusters chosen the same
  way for that mix.
* Rules of a list: no track twice, none of ``exclude``, no artist more than
  :data:`~core.music.schema.MAX_PER_ARTIST` times; tracks in ``recent`` only when nothing else is left.
* Variety: with a ``seed``, a ``match`` list of ``n`` is drawn (uniformly, without replacement) from
  the best ``VARIETY * n`` allowed tracks and shown in ranking order; each ``lift`` position draws
  from its best ``VARIETY`` allowed tracks. The same seed gives the same list.
* Personal preference (``preferred`` rows: tracks by artists a user liked or listens to most): up to
  :data:`PREFER_SHARE` of a list comes first from the preferred rows that are *within the mood*, i.e.
  typical tracks of the chosen clusters (of that position's mix, for ``lift``), best score first; the
  rest follows the ordinary order. A preferred track outside the mood's clusters is never pulled in.

Each mood's order is computed on first use and kept (a partial sort of the best few hundred rows,
extended when a request walks past them), so a request costs microseconds to a millisecond,
whatever the catalog size.

The legacy ranking (:class:`ClusterIndex` and :func:`pick`) is kept to measure against: clusters by
the distance of their (valence, energy) centroid to the mood's target, the most popular first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

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
    """Legacy ranking: per-cluster track rows in popularity order, and the cluster centroids in mood terms.

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
    """Legacy ranking: row numbers of the chosen tracks, one per (valence, energy) target.

    For each target, the most popular allowed track of the nearest cluster that has one (fewer tracks
    if the catalog runs out). ``track_id(row)`` and ``artists(row)`` read the catalog; ``exclude``
    holds track ids not to return (e.g. those already shown).
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


CLUSTER_SHARE = 0.5
"""A cluster is chosen for a mood when its mean fit is at least this share of the best cluster's."""
VARIETY = 2
"""With a seed, a list of ``n`` is drawn from the best ``VARIETY * n`` allowed tracks."""
_FIRST_ROWS = 256
"""Rows of a mood's order sorted on first use (doubled whenever a request walks past them)."""
_TIER = 2.0
"""Added to the score of tracks in chosen clusters (scores lie in [0, 1]), so they come first."""
PREFER_SHARE = 0.5
"""At most this share of a list (rounded up) comes first from a user's preferred artists."""
LIFT_STEPS = 4
"""A ``lift`` position's mix is rounded to a multiple of ``1 / LIFT_STEPS`` (0, 1/4, ..., 1), so a
plan needs at most ``LIFT_STEPS + 1`` orders, kept between requests."""


def preferred_quota(n: int) -> int:
    """How many of a list of ``n`` may come first from preferred artists (:data:`PREFER_SHARE`, up)."""
    return int(np.ceil(n * PREFER_SHARE)) if n > 0 else 0


def popularity_percentile(popularity: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each 0-100 popularity in the catalog, ``(n,)`` float64 in (0, 1]."""
    pop = np.clip(np.asarray(popularity, dtype=np.int64), 0, 100)
    counts = np.bincount(pop, minlength=101).astype(np.float64)
    below = np.concatenate([[0.0], np.cumsum(counts)[:-1]])
    mid = (below + (counts + 1) / 2) / max(len(pop), 1)
    return mid[pop]


class _Order:
    """Rows by descending key, ties by row; sorted lazily a prefix at a time."""

    def __init__(self, key: np.ndarray) -> None:
        self.key = key
        self.rows = np.empty(0, dtype=np.int64)

    def prefix(self, size: int) -> np.ndarray:
        """At least the first ``size`` rows of the order (all rows if fewer)."""
        n = len(self.key)
        if len(self.rows) < min(size, n):
            size = min(max(size, 2 * len(self.rows), _FIRST_ROWS), n)
            if size >= n:
                sel = np.arange(n)
            else:  # every row whose key reaches the size-th best: whole tie groups, so prefixes agree
                neg = -self.key
                sel = np.flatnonzero(neg <= np.partition(neg, size - 1)[size - 1])
            self.rows = sel[np.lexsort((sel, -self.key[sel]))]
        return self.rows

    def walk(self) -> Iterator[int]:
        """Every row in order."""
        done = 0
        while done < len(self.key):
            rows = self.prefix(done + 1)
            yield from rows[done:].tolist()
            done = len(rows)


class MoodRanking:
    """Fitted ranking for one catalog (module docstring).

    ``labels`` (``(n,)`` cluster of each track, ``0..k-1``), ``popularity`` (``(n,)``, 0-100),
    ``fit`` (``(n, m)`` P(mood | track), columns named by ``moods``), ``popularity_weight`` (0-1)
    and ``typical`` (``(n,)`` bool, see :mod:`core.music.profiles`; None: every track).
    """

    def __init__(
        self,
        labels: np.ndarray,
        popularity: np.ndarray,
        fit: np.ndarray,
        moods: Sequence[str],
        popularity_weight: float,
        k: int,
        typical: np.ndarray | None = None,
    ) -> None:
        self.typical = (
            np.ones(len(labels), dtype=bool) if typical is None else np.asarray(typical, dtype=bool)
        )
        self.labels = np.asarray(labels, dtype=np.int64)
        self.fit = np.asarray(fit, dtype=np.float32)
        self.moods = tuple(moods)
        self.weight = float(popularity_weight)
        self.percentile = popularity_percentile(popularity)
        sizes = np.bincount(self.labels, minlength=k).astype(np.float64)
        sums = np.stack(
            [np.bincount(self.labels, weights=self.fit[:, j], minlength=k) for j in range(len(moods))]
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            self.cluster_fit = np.where(sizes > 0, sums / sizes, np.nan).T  # (k, m); NaN for empty clusters
        self._orders: dict[tuple[str, str, float], _Order] = {}

    def column(self, mood: str) -> int:
        """Column of ``mood`` in :attr:`fit`."""
        return self.moods.index(mood)

    def chosen_clusters(self, start: str, goal: str | None = None, t: float = 0.0) -> np.ndarray:
        """Cluster indices chosen for the mix ``t`` of ``start`` and ``goal`` (``t=0``: ``start`` alone)."""
        fit = self._mix(self.cluster_fit, start, goal, t)
        valid = ~np.isnan(fit)
        if not valid.any():
            return np.empty(0, dtype=np.int64)
        best = float(np.nanmax(fit))
        return np.flatnonzero(valid & (fit >= CLUSTER_SHARE * best - 1e-12))

    def _mix(self, values: np.ndarray, start: str, goal: str | None, t: float) -> np.ndarray:
        a = values[:, self.column(start)].astype(np.float64)
        if goal is None or goal == start or t == 0.0:
            return a
        return (1.0 - t) * a + t * values[:, self.column(goal)].astype(np.float64)

    def scores(self, start: str, goal: str | None = None, t: float = 0.0) -> np.ndarray:
        """``(n,)`` blended score of every track for the mix ``t`` of ``start`` and ``goal``."""
        return (1.0 - self.weight) * self._mix(self.fit, start, goal, t) + self.weight * self.percentile

    def _order(self, start: str, goal: str | None, t: float) -> _Order:
        if goal is None or goal == start or t <= 0.0:
            goal, t = start, 0.0
        elif t >= 1.0:
            start, t = goal, 0.0
        key = (start, goal if t else start, round(t, 6))
        order = self._orders.get(key)
        if order is None:
            chosen = np.zeros(self.cluster_fit.shape[0], dtype=bool)
            chosen[self.chosen_clusters(start, goal, t)] = True
            tiers = _TIER * chosen[self.labels] + 2 * _TIER * self.typical
            order = _Order((self.scores(start, goal, t) + tiers).astype(np.float32))
            if len(self._orders) < 64:
                self._orders[key] = order
        return order

    def order(self, mood: str) -> Iterator[int]:
        """Every row, best first for ``mood``: chosen clusters by score, then the rest by score."""
        return self._order(mood, None, 0.0).walk()

    def within_mood(
        self, rows: np.ndarray, start: str, goal: str | None = None, t: float = 0.0
    ) -> np.ndarray:
        """Those of ``rows`` that are typical tracks of the clusters chosen for the mix ``t`` of ``start``
        and ``goal``, best first (the ones :meth:`pick` may move up for a user's preferred artists)."""
        key = self._order(start, goal, t).key
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        rows = rows[key[rows] >= 3 * _TIER]  # chosen cluster (+_TIER) and typical (+2 _TIER)
        return rows[np.lexsort((rows, -key[rows]))]

    def pick(
        self,
        start: str,
        goal: str,
        mix: Sequence[float],
        track_id: Callable[[int], str],
        artists: Callable[[int], Iterable[str]],
        exclude: Iterable[str] = (),
        recent: Iterable[str] = (),
        seed: int | None = None,
        preferred: np.ndarray | None = None,
    ) -> list[int]:
        """Row numbers of the chosen tracks, one per entry of ``mix`` (fewer if the catalog runs out).

        ``mix[i]`` is how far position ``i`` aims from ``start`` towards ``goal`` (all 0 for a
        ``match`` plan); ``track_id(row)`` and ``artists(row)`` read the catalog; ``exclude`` holds
        ids never to return, ``recent`` ids to return only when nothing else is left; ``seed`` draws
        a varied list (module docstring), None gives the best one; ``preferred`` holds rows by a
        user's preferred artists, of which those within the mood come first (:data:`PREFER_SHARE`).
        """
        state = _Picking(track_id, artists, exclude, recent)
        rng = None if seed is None else np.random.default_rng(seed)
        n = len(mix)
        if n == 0:
            return []
        quota = preferred_quota(n) if preferred is not None and len(preferred) else 0
        if all(t == 0.0 for t in mix) or goal == start:
            first: list[int] = []
            if quota:
                assert preferred is not None
                first = state.take(iter(self.within_mood(preferred, start).tolist()), quota)
            wanted = n - len(first)
            window = wanted if rng is None else VARIETY * wanted
            rows = state.take(self._order(start, None, 0.0).walk(), window) if wanted else []
            if rng is not None and len(rows) > wanted:
                keep = np.sort(rng.choice(len(rows), size=wanted, replace=False))
                rows = [rows[i] for i in keep]
                state.reset(first + rows)
            rows = first + rows
        else:
            rows = []
            for t in mix:
                step = round(t * LIFT_STEPS) / LIFT_STEPS
                count = 1 if rng is None else VARIETY
                found: list[int] = []
                if quota:
                    assert preferred is not None
                    found = state.take(iter(self.within_mood(preferred, start, goal, step).tolist()), count)
                    quota = quota - 1 if found else 0  # none left within the mood: stop looking
                if not found:
                    found = state.take(self._order(start, goal, step).walk(), count)
                if not found:
                    break
                row = found[int(rng.integers(len(found)))] if rng is not None else found[0]
                rows.append(row)
                if len(found) > 1:  # undo the candidates not drawn
                    state.reset(rows)
        if len(rows) < n:  # the catalog ran out: recent tracks after all, still by the rules
            rows += state.take(iter(state.recent_rows), n - len(rows), allow_recent=True)
        return rows


class _Picking:
    """The rules of one list: used ids, artists counted, recent tracks set aside."""

    def __init__(
        self,
        track_id: Callable[[int], str],
        artists: Callable[[int], Iterable[str]],
        exclude: Iterable[str],
        recent: Iterable[str],
    ) -> None:
        self.track_id = track_id
        self.artists = artists
        self.excluded = set(exclude)
        self.recent = set(recent) - self.excluded
        self.recent_rows: list[int] = []
        self._seen_recent: set[int] = set()
        self.reset([])

    def reset(self, rows: list[int]) -> None:
        """Make ``rows`` the list so far (ids used, artists counted)."""
        self.used = set(self.excluded) | {self.track_id(r) for r in rows}
        self.per_artist: Counter[str] = Counter(a.casefold() for r in rows for a in set(self.artists(r)))

    def take(self, rows: Iterator[int], count: int, allow_recent: bool = False) -> list[int]:
        """Up to ``count`` allowed rows from ``rows``, in order, counted as used while this list is built.

        The counts are undone by the caller's next :meth:`reset` (a draw keeps only some of them).
        """
        found: list[int] = []
        for row in rows:
            tid = self.track_id(row)
            if tid in self.used:
                continue
            if tid in self.recent and not allow_recent:
                if row not in self._seen_recent:
                    self._seen_recent.add(row)
                    self.recent_rows.append(row)
                continue
            names = {a.casefold() for a in self.artists(row)}
            if any(self.per_artist[a] >= MAX_PER_ARTIST for a in names):
                continue
            self.used.add(tid)
            self.per_artist.update(names)
            found.append(row)
            if len(found) >= count:
                break
        return found
