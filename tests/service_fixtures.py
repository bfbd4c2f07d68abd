"""Build the real :class:`MoodtunesService` for end-to-end tests: real models, real SQLite file,
the shared track catalog, and Spotify pointed at a loopback :class:`FakeSpotify`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.inference import InferenceWorker
from core.pipeline import FacePipeline
from core.service import MoodtunesService, load_service_catalog
from core.spotify import SpotifyService
from core.storage import Store
from tests.conftest import data_path
from tests.fakes.spotify import FakeSpotify


async def make_service(
    tmp_path: Path,
    pipeline: FacePipeline,
    cache_dir: Path,
    spotify: FakeSpotify | None = None,
    **settings: Any,
) -> MoodtunesService:
    """A running service on ``tmp_path/bot.sqlite3``; close it with ``await service.close()``.

    ``pipeline`` is the session's loaded models (shared, so tests do not reload them); extra keyword
    arguments override settings (e.g. ``rate_limit_photos=100``).
    """
    values: dict[str, Any] = {
        "catalog": data_path("spotify", "tracks.csv"),
        "cache_dir": cache_dir,
        **settings,
    }
    db = tmp_path / "bot.sqlite3"
    if spotify is not None:
        config = spotify.settings(db, **values)
    else:
        from core.config import Settings

        config = Settings(_env_file=None, db=db, **values)  # type: ignore[call-arg]
    store = await Store.open(config.db)
    catalog = load_service_catalog(config)
    return MoodtunesService(config, store, InferenceWorker(pipeline), catalog, SpotifyService(config, store))
