"""Music: a local track catalog with audio features, clustered by mood, and emotion-driven picks.

``load_catalog(path)`` gives a :class:`Catalog` (a raw CSV in one of the common public layouts is
imported on the fly; an imported Parquet catalog loads in about a second); ``catalog.recommend(
emotion="sad", n=10, policy="lift")`` gives :class:`Track` lists. The pieces, one module each:

* :mod:`~core.music.schema` the normalised schema and :class:`Track`
* :mod:`~core.music.importer` CSV layouts → schema, validation and de-duplication
* :mod:`~core.music.clustering` scaling + KMeans, k by the elbow criterion
* :mod:`~core.music.moods` the emotion → mood table and the match / lift policies
* :mod:`~core.music.recommend` ranking within the nearest clusters
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
    from core.music.importer import ImportReport
    from core.music.moods import EMOTION_MOODS, LIFT_GOALS, MOODS, POLICIES, Mood, MoodPlan, plan_for
    from core.music.recommend import DEFAULT_TRACKS, MAX_TRACKS, MIN_TRACKS
    from core.music.schema import FEATURES, Track
    from core.music.store import import_catalog, load_catalog, read_catalog, save_catalog

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("Catalog",), "catalog"),
    **dict.fromkeys(("ClusterInfo", "ClusterModel"), "clustering"),
    **dict.fromkeys(("CatalogError", "ChecksumMismatch", "FetchError"), "errors"),
    **dict.fromkeys(("ImportReport",), "importer"),
    **dict.fromkeys(
        ("EMOTION_MOODS", "LIFT_GOALS", "MOODS", "POLICIES", "Mood", "MoodPlan", "plan_for"), "moods"
    ),
    **dict.fromkeys(("DEFAULT_TRACKS", "MAX_TRACKS", "MIN_TRACKS"), "recommend"),
    **dict.fromkeys(("FEATURES", "Track"), "schema"),
    **dict.fromkeys(("import_catalog", "load_catalog", "read_catalog", "save_catalog"), "store"),
}
__all__ = [
    "DEFAULT_TRACKS",
    "EMOTION_MOODS",
    "FEATURES",
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
    "ImportReport",
    "Mood",
    "MoodPlan",
    "Track",
    "import_catalog",
    "load_catalog",
    "plan_for",
    "read_catalog",
    "save_catalog",
]


def __getattr__(name: str) -> Any:
    """Import on first use: the moods and schema stay light; pandas and scikit-learn load with the catalog."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core.music' has no attribute {name!r}")
    return getattr(importlib.import_module(f"core.music.{module}"), name)
