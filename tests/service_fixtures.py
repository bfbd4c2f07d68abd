"""Build the real :class:`MoodtunesService` for end-to-end tests: real models, a real database (a
SQLite file by default, or any ``db`` URL), the shared track catalog, and Spotify pointed at a
loopback :class:`FakeSpotify`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.app.context import load_app_catalog
from core.app.service import MoodtunesService
from core.config import Settings
from core.spotify import SpotifyService
from core.storage import open_store
from core.vision.analyzer import FaceAnalyzer
from core.vision.worker import InferenceWorker
from tests.conftest import data_path
from tests.fakes.spotify import FakeSpotify


def service_settings(
    tmp_path: Path, cache_dir: Path, spotify: FakeSpotify | None = None, **settings: Any
) -> Settings:
    """Settings for a test service: the shared catalog, the session's model cache, a SQLite file in
    ``tmp_path`` unless ``db`` is given; keyword arguments override."""
    values: dict[str, Any] = {
        "catalog": data_path("spotify", "tracks.csv"),
        "cache_dir": cache_dir,
        **settings,
    }
    db = values.pop("db", tmp_path / "bot.sqlite3")
    if spotify is not None:
        return spotify.settings(db, **values)
    return Settings(_env_file=None, db=db, **values)  # type: ignore[call-arg]


async def make_service(
    tmp_path: Path,
    pipeline: FaceAnalyzer,
    cache_dir: Path,
    spotify: FakeSpotify | None = None,
    **settings: Any,
) -> MoodtunesService:
    """A running service; close it with ``await service.close()``.

    ``pipeline`` is the session's loaded models (shared, so tests do not reload them); extra keyword
    arguments override settings (e.g. ``rate_limit_photos=100``, ``db=postgres_url``).
    """
    config = service_settings(tmp_path, cache_dir, spotify, **settings)
    store = await open_store(config.db)
    catalog = load_app_catalog(config)
    worker = InferenceWorker(pipeline, max_queued=config.inference_queue)
    return MoodtunesService(config, store, worker, catalog, SpotifyService(config, store))
