"""The fitted mood model: P(mood | track) from audio features, and the words that explain a mood.

The model is fitted by ``training/fit_moods.py`` on ``moods-dev.csv`` (343 tracks a person labelled
Happy, Sad, Calm or Energetic) and shipped as ``core/music/mood_model.json``, read here with
:mod:`importlib.resources`. It is a linear discriminant analysis (LDA: one mean per mood, one shared
covariance with Ledoit-Wolf shrinkage, equal priors) on standardised features, stored in its linear
form: for mood ``m``, ``logit_m(x) = coef_m . z(x) + intercept_m`` with ``z`` the standardised features.

* The four labelled moods (happy, sad, calm, energetic): ``P(m | x)`` is the softmax of their four
  logits.
* The derived moods (intense, dark) have no label in the data. Each is a point in the same
  standardised space: its valence and energy are its (valence, energy) target in
  :data:`~core.music.moods.MOODS`, and every other feature is what a linear regression fitted on
  ``moods-dev.csv`` predicts at that valence and energy (the texture music of that valence and energy
  typically has). Its logit uses the shared covariance like a labelled mood, and ``P(d | x)`` is the
  softmax of its logit against the four labelled ones (how much more the track looks like ``d``
  than like any labelled mood).

The file holds one model per feature set, best first: with ``instrumentalness`` (the best measured)
and without it, for catalogs that lack the column. :meth:`MoodModels.for_features` picks the first one
the catalog can feed. A track whose optional feature is unknown gets the training mean for it
(standardised value 0), which leaves its other features to decide.

Typical tracks: LDA extrapolates, so a track far beyond every labelled profile (white noise, rain
sounds: loudness -35 dB, no beat, tempo 0) would look "more calm than calm". A track is *typical*
when its squared Mahalanobis distance (shared covariance) to the nearest labelled mood's profile is
at most ``typical_distance2``, the 99th percentile of that distance over the labelled tracks; the
ranking puts atypical tracks after all typical ones.

A model may also carry a *classifier head* for the labelled moods: a multinomial logistic regression
on the same standardised features (``head_coef``, ``head_intercept``), chosen over the LDA logits by
cross-validation where it ranks better (it fits the boundaries directly instead of assuming one shared
Gaussian spread). With a head, ``P(labelled mood | x)`` is the softmax of the head's logits; the derived
moods, the typical-track distance and the explanation words still come from the LDA profiles.

Each model also carries ``popularity_weight``, the weight of popularity against mood fit in the
ranking, chosen by cross-validation (:mod:`core.music.recommend`; the protocol is in the training
script and ``benchmarks/results/music_quality.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from core.music.moods import EXPLAIN_MIN_Z, EXPLAIN_WORDS, FEATURE_WORDS, MOODS

MODEL_FILE = "mood_model.json"
"""Data file of the fitted models, inside the ``core.music`` package."""
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class MoodModel:
    """One fitted model over one feature set.

    ``features`` (``d``) with training ``mean`` and ``scale`` (raw units, ``(d,)``) standardise;
    ``moods`` (``m``) name the rows of ``coef`` (``(m, d)``, standardised space), ``intercept``
    (``(m,)``) and ``profile`` (``(m, d)``: each mood's mean in standardised units, what
    :meth:`explain` reads). ``labelled`` are the moods fitted from labels, the others are derived.
    ``head_coef`` (``(l, d)``, rows in :attr:`labelled` order) and ``head_intercept`` (``(l,)``) are
    the optional classifier head (module docstring). ``precision`` (``(d, d)``) is the inverse of the
    shared covariance and ``typical_distance2`` the largest squared distance to the nearest labelled
    profile that counts as typical (module docstring). ``popularity_weight`` (0-1) is the blend weight
    of popularity in the ranking.
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    moods: tuple[str, ...]
    labelled: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray
    profile: np.ndarray
    precision: np.ndarray
    typical_distance2: float
    popularity_weight: float
    head_coef: np.ndarray | None = None
    head_intercept: np.ndarray | None = None

    def __post_init__(self) -> None:
        d, m = len(self.features), len(self.moods)
        if self.coef.shape != (m, d) or self.profile.shape != (m, d) or self.intercept.shape != (m,):
            raise ValueError(f"mood model shapes do not match {m} moods x {d} features")
        if self.mean.shape != (d,) or self.scale.shape != (d,) or not set(self.labelled) <= set(self.moods):
            raise ValueError("mood model: bad mean, scale or labelled moods")
        if self.precision.shape != (d, d):
            raise ValueError(f"mood model precision must be {d} x {d}")
        if (self.head_coef is None) != (self.head_intercept is None):
            raise ValueError("mood model head: coef and intercept go together")
        if self.head_coef is not None and self.head_intercept is not None:
            k = len(self.labelled)
            if self.head_coef.shape != (k, d) or self.head_intercept.shape != (k,):
                raise ValueError(f"mood model head must be {k} labelled moods x {d} features")
        if not 0.0 <= self.popularity_weight <= 1.0:
            raise ValueError(f"popularity_weight must lie in [0, 1], got {self.popularity_weight}")

    def with_weight(self, popularity_weight: float) -> MoodModel:
        """The same model with another popularity weight (for measuring the blend)."""
        return replace(self, popularity_weight=float(popularity_weight))

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """Raw features ``(n, d)`` in :attr:`features` order → standardised ``(n, d)``; NaN → 0 (the mean).

        Float32 input stays float32 (a 600k-track catalog is analysed at load), other input is float64.
        """
        x = np.asarray(x)
        dtype = np.float32 if x.dtype == np.float32 else np.float64
        z = (x - self.mean.astype(dtype)) / self.scale.astype(dtype)
        missing = np.isnan(z)
        if missing.any():
            z[missing] = 0.0
        return z

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``(n, m)`` linear scores of raw features ``(n, d)``."""
        return self._logits(self.standardise(x))

    def _logits(self, z: np.ndarray) -> np.ndarray:
        return z @ self.coef.T.astype(z.dtype) + self.intercept.astype(z.dtype)

    def analyse(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`probabilities` and :meth:`typical` of raw features ``(n, d)`` in one pass."""
        z = self.standardise(x)
        logits = self._logits(z)
        return self._probabilities(z, logits), self._distance2(z, logits) <= self.typical_distance2

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """``P(mood | track)`` of raw features ``(n, d)``: ``(n, m)`` float32, columns in :attr:`moods` order.

        Labelled moods: softmax over the labelled moods (of the head's logits when the model has a
        head). A derived mood: softmax of its LDA logit against the labelled LDA logits (module
        docstring). So the labelled columns sum to 1; derived ones stand alone.
        """
        z = self.standardise(x)
        return self._probabilities(z, self._logits(z))

    def _probabilities(self, z: np.ndarray, logits: np.ndarray) -> np.ndarray:
        cols = [self.moods.index(m) for m in self.labelled]
        lab = logits[:, cols].astype(np.float64)
        top = lab.max(axis=1)
        lab -= top[:, None]
        np.exp(lab, out=lab)
        total = lab.sum(axis=1)
        out = np.empty(logits.shape, dtype=np.float32)
        if self.head_coef is not None and self.head_intercept is not None:
            out[:, cols] = _softmax(
                z @ self.head_coef.T.astype(z.dtype) + self.head_intercept.astype(z.dtype)
            )
        else:
            out[:, cols] = lab / total[:, None]
        with np.errstate(over="ignore"):  # a derived logit far below the labelled ones: P = 0
            for j, mood in enumerate(self.moods):
                if mood not in self.labelled:  # e^l / (e^l + sum e^lab) = 1 / (1 + total e^(top - l))
                    out[:, j] = 1.0 / (1.0 + total * np.exp(top - logits[:, j]))
        return out

    def distance2(self, x: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of raw features ``(n, d)`` to the nearest labelled profile."""
        z = self.standardise(x)
        return self._distance2(z, self._logits(z))

    def _distance2(self, z: np.ndarray, logits: np.ndarray) -> np.ndarray:
        # (z - mu)' P (z - mu) = z'Pz - 2 (z'P mu - mu'P mu / 2) = z'Pz - 2 logit
        quad = ((z @ self.precision.astype(z.dtype)) * z).sum(axis=1)
        cols = [self.moods.index(m) for m in self.labelled]
        return np.maximum(quad - 2.0 * logits[:, cols].max(axis=1), 0.0).astype(np.float64)

    def typical(self, x: np.ndarray) -> np.ndarray:
        """``(n,)`` bool: the track lies within :attr:`typical_distance2` of a labelled profile."""
        return self.distance2(x) <= self.typical_distance2

    def words(self, mood: str, reference: tuple[np.ndarray, np.ndarray] | None = None) -> list[str]:
        """Up to :data:`EXPLAIN_WORDS` words for the features that set ``mood`` apart, strongest first.

        Read from the fitted profile: the features whose mean for ``mood`` is furthest from the
        reference mean, in reference standard deviations (at least :data:`EXPLAIN_MIN_Z`), each said
        with :data:`FEATURE_WORDS` (e.g. ``"low energy"``). ``reference`` is ``(mean, std)`` in raw
        units over :attr:`features` (a catalog's, so the words say how the songs differ from the
        rest of it); None compares with the labelled tracks the model was fitted on.
        """
        row = self.profile[self.moods.index(mood)]
        if reference is not None:
            ref_mean, ref_std = (np.asarray(r, dtype=np.float64) for r in reference)
            raw = self.mean + row * self.scale
            row = np.where(ref_std > 0, (raw - ref_mean) / np.where(ref_std > 0, ref_std, 1.0), 0.0)
        order = sorted(range(len(self.features)), key=lambda i: (-abs(row[i]), i))
        picked = [i for i in order if abs(row[i]) >= EXPLAIN_MIN_Z and self.features[i] in FEATURE_WORDS]
        return [FEATURE_WORDS[self.features[i]][int(row[i] > 0)] for i in picked[:EXPLAIN_WORDS]]

    def explain(self, mood: str, reference: tuple[np.ndarray, np.ndarray] | None = None) -> str:
        """One line, e.g. ``"calm: instrumental, quiet, acoustic"``; ``reference`` as in :meth:`words`."""
        words = self.words(mood, reference)
        return f"{mood}: {', '.join(words)}" if words else mood

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (one entry of the model file's ``models``)."""
        head = None
        if self.head_coef is not None and self.head_intercept is not None:
            head = {
                "kind": "logistic regression",
                "coef": {m: _floats(self.head_coef[i]) for i, m in enumerate(self.labelled)},
                "intercept": {
                    m: round(float(self.head_intercept[i]), 6) for i, m in enumerate(self.labelled)
                },
            }
        return {
            "features": list(self.features),
            "mean": _floats(self.mean),
            "scale": _floats(self.scale),
            "labelled": list(self.labelled),
            "popularity_weight": self.popularity_weight,
            "typical_distance2": round(float(self.typical_distance2), 6),
            "precision": [_floats(r) for r in self.precision],
            "moods": {
                m: {
                    "coef": _floats(self.coef[i]),
                    "intercept": round(float(self.intercept[i]), 6),
                    "profile": _floats(self.profile[i]),
                }
                for i, m in enumerate(self.moods)
            },
            "head": head,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MoodModel:
        """Inverse of :meth:`to_json`."""
        moods = tuple(data["moods"])
        rows = [data["moods"][m] for m in moods]
        labelled = tuple(data["labelled"])
        head = data.get("head")
        return cls(
            features=tuple(data["features"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            moods=moods,
            labelled=labelled,
            coef=np.asarray([r["coef"] for r in rows], dtype=np.float64),
            intercept=np.asarray([r["intercept"] for r in rows], dtype=np.float64),
            profile=np.asarray([r["profile"] for r in rows], dtype=np.float64),
            precision=np.asarray(data["precision"], dtype=np.float64),
            typical_distance2=float(data["typical_distance2"]),
            popularity_weight=float(data["popularity_weight"]),
            head_coef=None
            if head is None
            else np.asarray([head["coef"][m] for m in labelled], dtype=np.float64),
            head_intercept=None
            if head is None
            else np.asarray([head["intercept"][m] for m in labelled], dtype=np.float64),
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(n, k)`` logits, in their float type (float32 for a loaded catalog)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    return shifted / shifted.sum(axis=1, keepdims=True)


def _floats(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


@dataclass(frozen=True, eq=False)
class MoodModels:
    """The model file: fitted models, best first, and how they were made (``meta``)."""

    models: tuple[MoodModel, ...]
    meta: dict[str, Any]

    def for_features(self, available: set[str] | frozenset[str]) -> MoodModel:
        """The first model whose features are all ``available``; ValueError if none is."""
        for model in self.models:
            if set(model.features) <= set(available):
                return model
        raise ValueError(f"no mood model for the features {sorted(available)}")

    def to_json(self) -> dict[str, Any]:
        """JSON-able form of the whole file."""
        return {"format_version": FORMAT_VERSION, **self.meta, "models": [m.to_json() for m in self.models]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MoodModels:
        """Inverse of :meth:`to_json`; ValueError for another format version or a model lacking a mood."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"mood model format {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        models = tuple(MoodModel.from_json(m) for m in data["models"])
        for model in models:
            if set(model.moods) != set(MOODS):
                raise ValueError(f"mood model covers {sorted(model.moods)}, expected {sorted(MOODS)}")
        meta = {k: v for k, v in data.items() if k not in ("format_version", "models")}
        return cls(models, meta)


@cache
def mood_models() -> MoodModels:
    """The shipped models (``core/music/mood_model.json``), read once."""
    text = resources.files("core.music").joinpath(MODEL_FILE).read_text(encoding="utf-8")
    return MoodModels.from_json(json.loads(text))


def explain(
    mood: str,
    goal: str | None = None,
    model: MoodModel | None = None,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
) -> str:
    """Why these songs, in one line: ``"sad: acoustic, low energy"``, or for a lifting plan
    ``"sad: acoustic, low energy; lifting towards happy: high energy, cheerful"``.

    ``model`` defaults to the best shipped model; ``reference`` as in :meth:`MoodModel.words`.
    """
    model = model or mood_models().models[0]
    text = model.explain(mood, reference)
    if goal is not None and goal != mood:
        text += f"; lifting towards {model.explain(goal, reference)}"
    return text
