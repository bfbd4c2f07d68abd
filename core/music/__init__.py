"""Music: a local track catalog with audio features, clustered by mood, and emotion-driven picks.

``load_catalog(path)`` gives a :class:`Catalog` (a raw CSV in one of the common public layouts is
imported on the fly; an imported Parquet catalog loads in about a second); ``catalog.recommend(
emotion="sad", n=10, policy="lift", exclude=shown, recent=recent_ids, seed=request_number)`` gives
:class:`Track` lists, ``catalog.explain("sad")`` one line saying why; ``blend_faces(...)`` turns the
emotions of several faces into one. The pieces, one module each:

* :mod:`~core.music.schema` the normalised schema and :class:`Track`
* :mod:`~core.music.importer` CSV layouts → schema, validation and de-duplication
* :mod:`~core.music.clustering` scaling + KMeans, k by the elbow criterion
* :mod:`~core.music.moods` the emotion → mood table and the match / lift policies
* :mod:`~core.music.profiles` the fitted mood model (``mood_model.json``, made by
  ``training/fit_moods.py``): P(mood | track) and the words that explain a mood
* :mod:`~core.music.recommend` ranking within the clusters that fit the mood: mood fit blended with
  popularity, variety by seed
* :mod:`~core.music.group` one emotion for a group photo
* :mod:`~core.music.catalog` the loaded catalog; :mod:`~core.music.store` its Parquet file and cache
* :mod:`~core.music.fetch` download of a public catalog with a pinned checksum
* :mod:`~core.music.demo` the music step of ``moodtunes demo``
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.music.catalog import Catalog
    from core.music.clustering import ClusterInfo, ClusterModel
    from core.music.errors import CatalogError, ChecksumMismatch, FetchError
    from core.music.group import GroupMood, blend_faces
    from core.music.importer import ImportReport
    from core.music.moods import (
        EMOTION_MOODS,
        LABELLED_MOODS,
        LIFT_GOALS,
        MOODS,
        POLICIES,
        Mood,
        MoodPlan,
        plan_for,
    )
    from core.music.profiles import MoodModel, MoodModels, explain, mood_models
    from core.music.recommend import DEFAULT_TRACKS, MAX_TRACKS, MIN_TRACKS
    from core.music.schema import FEATURES, Track
    from core.music.store import import_catalog, load_catalog, read_catalog, save_catalog

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("Catalog",), "catalog"),
    **dict.fromkeys(("ClusterInfo", "ClusterModel"), "clustering"),
    **dict.fromkeys(("CatalogError", "ChecksumMismatch", "FetchError"), "errors"),
    **dict.fromkeys(("GroupMood", "blend_faces"), "group"),
    **dict.fromkeys(("ImportReport",), "importer"),
    **dict.fromkeys(
        (
            "EMOTION_MOODS",
            "LABELLED_MOODS",
            "LIFT_GOALS",
            "MOODS",
            "POLICIES",
            "Mood",
            "MoodPlan",
            "plan_for",
        ),
        "moods",
    ),
    **dict.fromkeys(("MoodModel", "MoodModels", "explain", "mood_models"), "profiles"),
    **dict.fromkeys(("DEFAULT_TRACKS", "MAX_TRACKS", "MIN_TRACKS"), "recommend"),
    **dict.fromkeys(("FEATURES", "Track"), "schema"),
    **dict.fromkeys(("import_catalog", "load_catalog", "read_catalog", "save_catalog"), "store"),
}
__all__ = [
    "DEFAULT_TRACKS",
    "EMOTION_MOODS",
    "FEATURES",
    "LABELLED_MOODS",
    "LIFT_GOALS",
    "MAX_TRACKS",
    "MIN_TRACKS",
    "MOODS",
    "POLICIES",
    "Catalog",
    "CatalogError",
    "ChecksumMismatch",
    "ClusterInfo",
    "ClusterModel",
    "FetchError",
    "GroupMood",
    "ImportReport",
    "Mood",
    "MoodModel",
    "MoodModels",
    "MoodPlan",
    "Track",
    "blend_faces",
    "explain",
    "import_catalog",
    "load_catalog",
    "mood_models",
    "plan_for",
    "read_catalog",
    "save_catalog",
]


def __getattr__(name: str) -> Any:
    """Import on first use: moods and schema stay light; pandas and scikit-learn load with the catalog."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core.music' has no attribute {name!r}")
    return getattr(importlib.import_module(f"core.music.{module}"), name)
