"""Run the face analyzer off the event loop, batching faces across concurrent requests.

One worker thread owns the models. Requests queue up while it is busy; when it frees, it takes
everything waiting (up to ``max_images``) and runs one FaceNet and one emotion forward pass over
all their faces, which is faster per face than one pass per request. The queue is bounded: when
``max_queued`` images, or ``max_queued_pixels`` pixels, wait already, a new request is refused at once
with :class:`~core.errors.Busy` (the user is told to try again in a minute) instead of waiting behind
them. (The pixel bound caps the memory of waiting photos: 32 photos of 40 megapixels are 3.8 GB.)
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from core.errors import Busy
from core.vision.analyzer import Analyzer, FaceAnalysis
from core.vision.faces import DetectedFace

log = logging.getLogger(__name__)


@dataclass
class _Job:
    rgb: np.ndarray
    faces: list[DetectedFace] | None
    future: asyncio.Future[list[FaceAnalysis]]


class InferenceWorker:
    """Async front of a :class:`~core.vision.analyzer.FaceAnalyzer` (or any :class:`Analyzer`).

    Args:
        analyzer: the loaded models.
        max_images: most images analysed in one batch (default 16).
        max_queued: most images waiting for the models before new ones are refused (default 64).
        max_queued_pixels: most pixels of the images waiting or being analysed (default 400 million,
            1.2 GB of RGB; 32 photos of 12 megapixels fit). One image is always accepted when none waits.
    """

    def __init__(
        self,
        analyzer: Analyzer,
        max_images: int = 16,
        max_queued: int = 64,
        max_queued_pixels: int = 400_000_000,
    ) -> None:
        self.analyzer = analyzer
        self.max_images = max_images
        self.max_queued = max_queued
        self.max_queued_pixels = max_queued_pixels
        self.queued_pixels = 0
        """Pixels of the images waiting for the models, or being analysed, now."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moodtunes-inference")
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        """Batches run so far (for tests and benchmarks)."""

    @property
    def queued(self) -> int:
        """Images waiting for the models now."""
        return self._queue.qsize() if self._queue is not None else 0

    async def analyze(self, rgb: np.ndarray, faces: list[DetectedFace] | None = None) -> list[FaceAnalysis]:
        """Faces of one image with embeddings and emotions (see :meth:`FaceAnalyzer.analyze_many`).

        Raises :class:`~core.errors.Busy` at once when the queue is full.
        """
        self._ensure_started()
        assert self._queue is not None
        pixels = _pixels(rgb)
        if self._queue.qsize() >= self.max_queued or (
            self.queued_pixels and self.queued_pixels + pixels > self.max_queued_pixels
        ):
            raise Busy()
        future: asyncio.Future[list[FaceAnalysis]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(rgb, faces, future))
        self.queued_pixels += pixels
        return await future

    def _ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self.queued_pixels = 0
            self._task = asyncio.get_running_loop().create_task(self._serve(), name="inference")

    async def _serve(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            while not self._queue.empty() and len(jobs) < self.max_images:
                jobs.append(self._queue.get_nowait())
            taken = sum(_pixels(j.rgb) for j in jobs)
            try:
                await self._run(loop, [j for j in jobs if not j.future.cancelled()])
            finally:
                self.queued_pixels -= taken

    async def _run(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job]) -> None:
        if not jobs:
            return
        try:
            results = await loop.run_in_executor(
                self._executor, self.analyzer.analyze_many, [(j.rgb, j.faces) for j in jobs]
            )
        except Exception as exc:
            log.exception("inference batch of %d images failed", len(jobs))
            results = [exc] * len(jobs)
        self.batches += 1
        for job, result in zip(jobs, results, strict=True):
            if job.future.done():
                continue
            if isinstance(result, Exception):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    async def close(self) -> None:
        """Stop serving; requests already being computed finish first."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=True)


def _pixels(rgb: np.ndarray) -> int:
    return int(rgb.shape[0] * rgb.shape[1]) if rgb.ndim >= 2 else 0
