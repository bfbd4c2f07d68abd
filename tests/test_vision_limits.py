"""Limits on what many photos at once can cost, without the models: large decodes two at a time,
and the memory of photos waiting for the models."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import core.vision.imaging as imaging
from core.errors import Busy
from core.vision.analyzer import FaceAnalysis
from core.vision.faces import DetectedFace, FaceList
from core.vision.worker import InferenceWorker
from tests import hostile


def test_large_images_are_decoded_two_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six 14 MP photos decoded at once by six threads: at most two convert at the same time
    (each needs a few hundred megabytes at 40 MP); small photos are not held back."""
    lock, inside, most = threading.Lock(), [0], [0]
    real = imaging._rgb_array

    def counting(img: object) -> np.ndarray:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.05)
            return real(img)  # type: ignore[arg-type]
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(imaging, "_rgb_array", counting)
    big, small = hostile.png_zeros(4000, 3500), hostile.encode(hostile.gradient(400, 300), "PNG")
    with ThreadPoolExecutor(6) as pool:
        assert all(rgb.shape == (3500, 4000, 3) for rgb in pool.map(imaging.decode_image, [big] * 6))
    assert most[0] == imaging.LARGE_DECODES == 2
    most[0] = 0
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(imaging.decode_image, [small] * 6))
    assert most[0] > 2


def photo(height: int, width: int) -> np.ndarray:
    """An RGB image of that shape taking no memory (the fake models never read its pixels)."""
    return np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (height, width, 3))


class SlowAnalyzer:
    """Stands in for the models: one face per image, after a pause."""

    model_id = "fake"
    threshold = 0.5

    def __init__(self) -> None:
        self.release = threading.Event()

    def analyze_many(
        self, images: list[tuple[np.ndarray, list[DetectedFace] | None]]
    ) -> list[list[FaceAnalysis] | Exception]:
        self.release.wait(10)
        face = DetectedFace((0, 0, 10, 10), 1.0, np.zeros((5, 2)))
        return [FaceList([FaceAnalysis(face, np.zeros(512, np.float32), None)]) for _ in images]


async def test_photos_waiting_for_the_models_are_bounded_in_pixels() -> None:
    """32 photos of 40 MP waiting would hold 3.8 GB: beyond 400 MP in flight, new ones are 'busy'."""
    analyzer = SlowAnalyzer()
    worker = InferenceWorker(analyzer, max_images=1, max_queued=64, max_queued_pixels=100_000_000)
    big = photo(5000, 8000)  # 40 MP
    first = asyncio.ensure_future(worker.analyze(big))  # being analysed
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(worker.analyze(big))  # waiting: 80 MP in flight
    await asyncio.sleep(0.05)
    with pytest.raises(Busy):
        await worker.analyze(big)  # 120 MP > 100 MP
    small = asyncio.ensure_future(worker.analyze(photo(1000, 1000)))  # 81 MP: fine
    await asyncio.sleep(0.05)
    assert worker.queued_pixels == 81_000_000
    analyzer.release.set()
    assert [len(r) for r in await asyncio.gather(first, second, small)] == [1, 1, 1]
    assert worker.queued_pixels == 0
    alone = await worker.analyze(photo(20000, 8000))  # over the bound, but alone
    assert len(alone) == 1
    await worker.close()
