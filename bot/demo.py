"""``moodtunes demo``: the whole flow on scikit-image's astronaut photo (NASA, public domain).

Steps: decode the photo, find faces, read emotions; enrol the astronaut in a throw-away database
and recognise her again in an altered copy of the photo (mirrored, tilted, shrunk); show how a photo
without a face is refused (scikit-image's cat); recommend tracks for the emotion found (when a
catalog is available); say how to chat with the bot in the terminal.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from core.app.context import open_app
from core.app.people import Person, Place
from core.app.service import MoodtunesService
from core.config import Settings
from core.errors import MoodtunesError
from core.music.demo import demo_lines
from core.vision.imaging import read_image_file
from core.vision.recognizer import Recognizer


def skimage_photo(name: str) -> Path:
    """Path of an image that ships inside scikit-image (``skimage/data/<name>``)."""
    import skimage

    return Path(skimage.__file__).parent / "data" / name


def altered(rgb: np.ndarray) -> np.ndarray:
    """The photo mirrored, rotated 8 degrees and shrunk to 70%: a different shot of the same face."""
    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 8, 0.7)
    return cv2.warpAffine(rgb[:, ::-1].copy(), matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def run_demo(settings: Settings, db: Path | None = None) -> int:
    """Run the demo; returns the exit status: 1 when a step does not give the result it shows off
    (no face, the astronaut not recognised, the cat enrolled), so ``make demo`` is a smoke test too."""
    return asyncio.run(_demo(settings, db))


async def _demo(settings: Settings, db: Path | None) -> int:
    photo = skimage_photo("astronaut.png")
    print(f"moodtunes demo on {photo.name} (scikit-image; NASA portrait of Eileen Collins, public domain)")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        demo_settings = settings.model_copy(update={"db": str(db or Path(tmp) / "demo.sqlite3")})
        async with open_app(demo_settings, with_catalog=False) as app:
            recognizer = app.service.recognizer
            print(f"  models loaded in {time.perf_counter() - t0:.1f} s ({recognizer.model_id})")
            status = await _faces(app.service, recognizer, read_image_file(photo))
    print(f"Try the bot in your terminal: {_command()} chat")
    return status


async def _faces(service: MoodtunesService, recognizer: Recognizer, rgb: np.ndarray) -> int:
    """Steps 1-5: faces and emotions, enrolment, recognition in an altered copy, the cat, music."""
    t0 = time.perf_counter()
    analyses = await service.worker.analyze(rgb)
    print(f"1. {len(analyses)} face(s) found in {1000 * (time.perf_counter() - t0):.0f} ms")
    if not analyses:
        print("   FAILED: no face in a portrait; the face models are not working")
        return 1
    for a in analyses:
        line = f"   box {a.face.rounded_box()} score {a.face.score:.3f}"
        if a.emotion is not None:
            top = sorted(a.emotion.scores.items(), key=lambda kv: -kv[1])[:3]
            line += "; emotion " + ", ".join(f"{k} {v:.0%}" for k, v in top)
        print(line)
    user, chat = await service.ids(
        Person("demo", "eileen", "Eileen Collins"), Place("demo", "demo-chat", "demo")
    )
    enrolled = await recognizer.enroll(user, chat, rgb)
    print(f"2. enrolled Eileen Collins from that photo ({enrolled.samples} sample)")
    found = await recognizer.identify(chat, altered(rgb))
    for face in found:
        who = face.match.name or "someone I don't know yet"
        print(
            f"3. in a mirrored, tilted, smaller copy: {who} (similarity {face.match.similarity:.2f},"
            f" threshold {recognizer.threshold:.2f})"
        )
    status = 0
    if not any(face.match.user_id == user for face in found):
        print("   FAILED: she was not recognised in the altered copy")
        status = 1
    cat = read_image_file(skimage_photo("chelsea.png"))
    try:
        await recognizer.enroll(user, chat, cat)
        print("4. FAILED: scikit-image's cat was enrolled as a face")
        status = 1
    except MoodtunesError as exc:
        print(f"4. enrolling scikit-image's cat is refused: {exc}")
    emotion = analyses[0].emotion.label if analyses[0].emotion else "neutral"
    _demo_music(service.settings, emotion)
    return status


def _command() -> str:
    """How the user started this program (``.venv/bin/moodtunes`` from ``make demo``), else ``moodtunes``."""
    started = sys.argv[0] if sys.argv else ""
    return started if Path(started).name == "moodtunes" else "moodtunes"


def _demo_music(settings: Settings, emotion: str) -> None:
    """Step 5: songs for the emotion found (core.music.demo picks the catalog or says how to get one)."""
    for line in demo_lines(settings, emotion):
        print(line)
