"""``open_app(settings)``: the whole application in one context, for every entry point.

The chat platforms (``moodtunes run``), the terminal chat and every CLI command (enrol, identify,
forget, link, ...) open the same :class:`App`, so they run the same code over the same store::

    async with open_app(settings) as app:
        reply = await app.service.handle_photo(person, place, photo_bytes)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from core.app import metrics
from core.app.service import MoodtunesService
from core.config import Settings
from core.music import Catalog, load_catalog
from core.spotify import SpotifyService
from core.storage import Store, open_store
from core.vision.analyzer import Analyzer, FaceAnalyzer, LazyAnalyzer
from core.vision.worker import InferenceWorker

log = logging.getLogger(__name__)


@dataclass
class App:
    """The opened application: settings, store, models, catalog, Spotify and the service over them."""

    settings: Settings
    store: Store
    worker: InferenceWorker
    catalog: Catalog | None
    spotify: SpotifyService
    service: MoodtunesService


def load_app_catalog(settings: Settings) -> Catalog | None:
    """The configured catalog, else the shared one, else None (replies then say how to get one)."""
    path = settings.default_catalog
    if path is None:
        log.warning("no music catalog: set MOODTUNES_CATALOG")
        return None
    return load_catalog(path, settings.cache_dir)


@contextlib.asynccontextmanager
async def open_app(
    settings: Settings,
    *,
    analyzer: Analyzer | None = None,
    lazy_models: bool = False,
    with_catalog: bool = True,
    sweep: bool = False,
) -> AsyncIterator[App]:
    """Open the store, load the models and the catalog (in threads); close everything on exit.

    Args:
        settings: the settings.
        analyzer: already loaded models to use (tests share one); default: load them.
        lazy_models: load the models only if a photo comes (CLI commands that may not need them).
        with_catalog: load the track catalog (CLI face commands skip it).
        sweep: run the expiry sweeper in the background (long-running processes).
    """
    store = await open_store(settings.db, settings.db_pool_size)
    worker: InferenceWorker | None = None
    sweeper: asyncio.Task[None] | None = None
    try:
        if analyzer is None:
            analyzer = (
                LazyAnalyzer(settings) if lazy_models else await asyncio.to_thread(FaceAnalyzer, settings)
            )
        worker = InferenceWorker(analyzer, max_queued=settings.inference_queue)
        metrics.QUEUE_DEPTH.set_function(lambda: worker.queued if worker is not None else 0)
        catalog = await asyncio.to_thread(load_app_catalog, settings) if with_catalog else None
        spotify = SpotifyService(settings, store)
        service = MoodtunesService(settings, store, worker, catalog, spotify)
        if sweep:  # a long-running process: re-encrypt old tokens under a new key, then keep things tidy
            if "," in settings.secret_key.get_secret_value():
                rotation = await spotify.rotate_key()
                log.info("spotify tokens re-encrypted under the new key: %s", rotation)
            sweeper = asyncio.create_task(service.sweep_forever(), name="sweeper")
        yield App(settings, store, worker, catalog, spotify, service)
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if worker is not None:
            await worker.close()
        await store.close()
