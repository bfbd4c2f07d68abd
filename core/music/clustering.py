"""KMeans over the audio features, with k chosen by the elbow of the inertia curve.

Features (:data:`core.music.schema.FEATURES`): valence, energy, danceability, acousticness,
loudness and tempo, the ones that describe mood (instrumentalness, speechiness and liveness describe
production and genre, and instrumentalness's two-peaked distribution would dominate the split).
Each is standardised (zero mean, unit variance) and valence and energy are then weighted by
:data:`MOOD_AXIS_WEIGHT`, so the clusters tile the (valence, energy) plane the moods live in while
still grouping tracks of similar texture.

Choosing k: for every k in :data:`K_CANDIDATES`, KMeans is fitted to a sample and the inertia
(within-cluster sum of squares) recorded; k is the elbow of that curve, found with the kneedle
rule (the point farthest below the straight line from the first to the last point of the curve,
both axes scaled to [0, 1]). Audio features have no well-separated clusters, so silhouette and
Calinski-Harabasz both peak at k=2 (acoustic vs not), which cannot tell moods apart; the elbow is
where more clusters stop paying for themselves and it is stable across seeds.

KMeans numbers clusters arbitrarily; nothing downstream may rely on a cluster's number. Each
cluster is described by its centroid in (valence, energy) terms and picked by distance.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from core.music.moods import describe_point, nearest_mood
from core.music.schema import FEATURES

log = logging.getLogger(__name__)

MOOD_AXIS_WEIGHT = 2.0
"""Weight of standardised valence and energy relative to the other features (1.0)."""

K_CANDIDATES: tuple[int, ...] = tuple(range(2, 17))
"""The k values the elbow is sought among (fewer for tiny catalogs: at most one cluster per 10 tracks)."""

SELECT_SAMPLE = 20_000
"""Tracks sampled to draw the inertia curve."""
FIT_SAMPLE = 60_000
"""Tracks sampled for the final fit; every track is then assigned to its nearest centroid."""
SILHOUETTE_SAMPLE = 4_000
"""Tracks sampled to report the silhouette of the final clustering (information only)."""
N_INIT_SELECT, N_INIT_FINAL = 3, 8
"""KMeans restarts per candidate k, and for the final fit."""

SELECT_SEED = 0
"""Seed of the k measurement (sample and KMeans starts), so a catalog's k never depends on ``seed``."""

CRITERION = "elbow (kneedle) of KMeans inertia"


def feature_weights() -> np.ndarray:
    """Per-feature weights, shape ``(len(FEATURES),)``: valence and energy weighted up."""
    return np.array([MOOD_AXIS_WEIGHT if f in ("valence", "energy") else 1.0 for f in FEATURES])


def kneedle(ks: list[int], inertia: list[float]) -> int:
    """The elbow of a decreasing curve: the k farthest below the chord from its first to last point."""
    if len(ks) < 3 or inertia[0] <= inertia[-1]:
        return ks[-1] if len(ks) < 3 else ks[0]
    x = (np.asarray(ks, dtype=float) - ks[0]) / (ks[-1] - ks[0])
    y = (np.asarray(inertia) - inertia[-1]) / (inertia[0] - inertia[-1])
    return ks[int(np.argmax((1.0 - x) - y))]


@dataclass(frozen=True)
class ClusterInfo:
    """One cluster: its ``index`` (arbitrary), ``size`` (tracks) and centroid ``valence``/``energy`` (0-1)."""

    index: int
    size: int
    valence: float
    energy: float

    @property
    def description(self) -> str:
        """E.g. ``"bright, energetic (valence 0.78, energy 0.73), nearest mood happy"``."""
        mood = nearest_mood(self.valence, self.energy).name
        words = describe_point(self.valence, self.energy)
        return f"{words} (valence {self.valence:.2f}, energy {self.energy:.2f}), nearest mood {mood}"


@dataclass(frozen=True)
class ClusterModel:
    """A fitted clustering.

    ``mean`` and ``scale`` (shape ``(d,)``, raw feature units) standardise, ``weights`` (``(d,)``)
    weight, ``centroids`` (``(k, d)``) live in that weighted standardised space. ``inertia`` is the
    curve k chose from (``{k: inertia}``; empty when k was given), ``silhouette`` that of the final
    clustering on a sample (None for k=1).
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    centroids: np.ndarray
    seed: int
    criterion: str
    inertia: dict[int, float] = field(default_factory=dict)
    silhouette: float | None = None

    @property
    def k(self) -> int:
        """Number of clusters."""
        return int(self.centroids.shape[0])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Raw features ``(n, d)`` → weighted standardised ``(n, d)`` float64."""
        return (np.asarray(x, dtype=np.float64) - self.mean) / self.scale * self.weights

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Nearest centroid of each row of raw features ``(n, d)`` → labels ``(n,)`` int16."""
        z = self.transform(x)
        labels = np.empty(len(z), dtype=np.int16)
        for start in range(0, len(z), 65_536):  # bounded memory: n x k distances per block
            block = z[start : start + 65_536]
            d2 = ((block[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
            labels[start : start + len(block)] = d2.argmin(axis=1)
        return labels

    def centroids_raw(self) -> np.ndarray:
        """Centroids in raw feature units, shape ``(k, d)``."""
        return self.centroids / self.weights * self.scale + self.mean

    def mood_centroids(self) -> np.ndarray:
        """Centroid (valence, energy) of each cluster, shape ``(k, 2)``."""
        raw = self.centroids_raw()
        return raw[:, [self.features.index("valence"), self.features.index("energy")]]

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (stored in the catalog file)."""
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "centroids": self.centroids.tolist(),
            "seed": self.seed,
            "criterion": self.criterion,
            "inertia": {str(k): v for k, v in self.inertia.items()},
            "silhouette": self.silhouette,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterModel:
        """Inverse of :meth:`to_json`."""
        return cls(
            features=tuple(data["features"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            weights=np.asarray(data["weights"], dtype=np.float64),
            centroids=np.asarray(data["centroids"], dtype=np.float64).reshape(-1, len(data["features"])),
            seed=int(data["seed"]),
            criterion=str(data["criterion"]),
            inertia={int(k): float(v) for k, v in data.get("inertia", {}).items()},
            silhouette=data.get("silhouette"),
        )


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size, replace=False))


def _kmeans(z: np.ndarray, k: int, seed: int, n_init: int) -> KMeans:
    # One thread: the samples are small, and OpenMP threads fighting a busy machine (or torch in the
    # same process) made each fit ~50x slower in measurements.
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # duplicate points in tiny catalogs
        return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(z)


def fit_clusters(x: np.ndarray, seed: int = 0, k: int | None = None) -> ClusterModel:
    """Fit the clustering to raw features ``x`` of shape ``(n, len(FEATURES))``, n >= 1.

    ``k=None`` chooses k by the elbow criterion (module docstring), measured with
    :data:`SELECT_SEED`; ``seed`` drives the sampling and initialisation of the final fit.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(FEATURES) or len(x) == 0:
        raise ValueError(f"need an (n, {len(FEATURES)}) feature array with n >= 1, got {x.shape}")
    rng = np.random.default_rng(seed)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    weights = feature_weights()
    z = (x - mean) / scale * weights
    inertia: dict[int, float] = {}
    if k is None:  # k is a property of the data: measured with a fixed seed, whatever ``seed`` is
        zs = z[_sample(len(z), SELECT_SAMPLE, np.random.default_rng(SELECT_SEED))]
        distinct = len(np.unique(zs, axis=0))
        ks = [c for c in K_CANDIDATES if c <= distinct // 10]
        if not ks:
            k = 1
        else:
            for c in ks:
                inertia[c] = float(_kmeans(zs, c, SELECT_SEED, N_INIT_SELECT).inertia_)
            k = kneedle(ks, [inertia[c] for c in ks])
        criterion = f"{CRITERION} over k={ks[0]}..{ks[-1]}" if ks else "one cluster (too few tracks)"
    else:
        if not 1 <= k <= len(z):
            raise ValueError(f"k must be between 1 and the number of tracks ({len(z)}), got {k}")
        criterion = "given"
    fit_rows = _sample(len(z), FIT_SAMPLE, rng)
    model = _kmeans(z[fit_rows], k, seed, N_INIT_FINAL)
    silhouette = None
    labels_fit = np.asarray(model.labels_)
    rows = _sample(len(fit_rows), SILHOUETTE_SAMPLE, rng)
    if 2 <= len(np.unique(labels_fit[rows])) < len(rows):
        with threadpool_limits(1):
            silhouette = float(silhouette_score(z[fit_rows][rows], labels_fit[rows]))
    log.info("clustering: k=%d (%s), silhouette %s", k, criterion, silhouette)
    return ClusterModel(
        features=FEATURES,
        mean=mean,
        scale=scale,
        weights=weights,
        centroids=np.asarray(model.cluster_centers_, dtype=np.float64),
        seed=seed,
        criterion=criterion,
        inertia=inertia,
        silhouette=silhouette,
    )


def cluster_infos(model: ClusterModel, labels: np.ndarray) -> tuple[ClusterInfo, ...]:
    """A :class:`ClusterInfo` per cluster, given every track's label (``(n,)`` ints)."""
    sizes = np.bincount(labels.astype(np.int64), minlength=model.k)
    centres = model.mood_centroids()
    return tuple(
        ClusterInfo(i, int(sizes[i]), float(centres[i, 0]), float(centres[i, 1])) for i in range(model.k)
    )
