"""Run the face pipeline off the event loop, batching faces across concurrent requests.

One worker thread owns the models. Requests queue up while it is busy; when it frees, it takes
everything waiting (up to ``max_images``) and runs one FaceNet and one emotion forward pass over
all their faces, which is faster per face than one pass per request.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from core.faces import DetectedFace
from core.pipeline import FaceAnalysis, FacePipeline

log = logging.getLogger(__name__)


@dataclass
class _Job:
    rgb: np.ndarray
    faces: list[DetectedFace] | None
    future: asyncio.Future[list[FaceAnalysis]]


class InferenceWorker:
    """Async front of a :class:`FacePipeline`.

    Args:
        pipeline: the loaded models.
        max_images: most images analysed in one batch (default 16).
    """

    def __init__(self, pipeline: FacePipeline, max_images: int = 16) -> None:
        self.pipeline = pipeline
        self.max_images = max_images
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moodtunes-inference")
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        """Batches run so far (for tests and benchmarks)."""

    async def analyze(self, rgb: np.ndarray, faces: list[DetectedFace] | None = None) -> list[FaceAnalysis]:
        """Faces of one image with embeddings and emotions (see :meth:`FacePipeline.analyze`)."""
        self._ensure_started()
        assert self._queue is not None
        future: asyncio.Future[list[FaceAnalysis]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(rgb, faces, future))
        return await future

    async def run(self, func, *args):  # type: ignore[no-untyped-def]
        """Run any other blocking model call on the inference thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    def _ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._serve(), name="inference")

    async def _serve(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            while not self._queue.empty() and len(jobs) < self.max_images:
                jobs.append(self._queue.get_nowait())
            jobs = [j for j in jobs if not j.future.cancelled()]
            if not jobs:
                continue
            try:
                results = await loop.run_in_executor(
                    self._executor, self.pipeline.analyze_many, [(j.rgb, j.faces) for j in jobs]
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
