"""Hostile photos end to end: the command line over a folder of them (one process, bounded time and
memory, one line per file), the Telegram bot answering each politely while other users are served,
and the command line's handling of a bad ``--db``.

The files are made on the fly by :mod:`tests.hostile` (scan bombs, 625 faces, 1:160 strips, TIFF,
EPS and friends, bombs, truncations, thousands of frames, 16-bit and CMYK pixels, and seeded random
mutations of real photos); none is committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cli import main
from core.app import texts
from core.vision.faces.facenet_weights import casia_weights
from tests import hostile
from tests.conftest import ROOT, data_path
from tests.test_e2e_telegram import WAIT, Harness, harness  # noqa: F401 - the fixture, shared

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PEAK_RSS_LIMIT = 2 * 1024**3
TIME_LIMIT_S = 240.0
EXPECTED_CODES = {
    "scan_bomb_3000.jpg": "too_complex",
    "scan_bomb_small_200.jpg": "too_complex",
    "jpeg_fill_bytes.jpg": "too_complex",
    "jpeg_junk.jpg": "too_complex",
    "jpeg_many_segments.jpg": "too_complex",
    "png_many_chunks.png": "too_complex",
    "thin_250x40000.jpg": "bad_aspect_ratio",
    "wide_40000x250.png": "bad_aspect_ratio",
    "strip_64x5000.jpg": "bad_aspect_ratio",
    "tiff.tif": "unsupported_format",
    "bmp.bmp": "unsupported_format",
    "ico.ico": "unsupported_format",
    "eps.eps": "unsupported_format",
    "jpeg_arithmetic.jpg": "unsupported_format",
    "tga.tga": "not_an_image",
    "jpeg_huge_header.jpg": "too_many_pixels",
    "gif_huge_screen.gif": "too_many_pixels",
    "webp_huge_canvas.webp": "too_many_pixels",
    "png_bomb_20000.png": "too_many_pixels",
    "png_zeros_12000.png": "too_many_pixels",
    "png_zero_size.png": "image_too_small",
    "truncated_jpeg.jpg": "truncated_image",
    "empty.jpg": "not_an_image",
    "gif_5000_frames.gif": "no_face",  # 5,000 frames: only the first is decoded
    "png_16bit_rgb.png": "no_face",
    "png_zeros_6000.png": "no_face",
    "limit_rgba_40mp.png": "no_face",
    "limit_progressive_16_scans_40mp.jpg": "no_face",
}


MEASURE = (
    "import resource, subprocess, sys\n"
    "status = subprocess.call(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(status)\n"
)
"""Runs a command and writes its peak RSS. A small process of its own starts the command, because
a child's ``ru_maxrss`` counts the memory of whatever it was forked from (this test process, with
its models, is over 2 GB)."""


def run_measured(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int, str, str, float, int]:
    """Run ``argv``; returns exit status, stdout, stderr, wall seconds and its peak RSS in bytes."""
    out, err, rss = cwd / "stdout.txt", cwd / "stderr.txt", cwd / "maxrss.txt"
    started = time.perf_counter()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", MEASURE, str(rss), *argv],
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    elapsed = time.perf_counter() - started
    peak = int(rss.read_text()) * (1 if sys.platform == "darwin" else 1024)
    return status, out.read_text(), err.read_text(), elapsed, peak


def test_one_identify_process_answers_every_hostile_file(tmp_path: Path, cache_dir: Path) -> None:
    """Over 60 hostile files: each gets its own line (faces, or an error with a code, never
    ``internal``), no traceback, peak RSS under 2 GB, and the whole run in bounded time."""
    casia_weights(cache_dir)  # converted once per session; the child only loads it
    files = hostile.write_hostile(tmp_path / "hostile")
    assert len(files) >= 60
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOODTUNES_")}
    env |= {"PYTHONPATH": str(ROOT), "MOODTUNES_CACHE_DIR": str(cache_dir)}
    argv = [sys.executable, "-m", "bot", "identify", "--db", str(tmp_path / "fuzz.sqlite3"), "--json"]
    status, stdout, stderr, elapsed, peak = run_measured(
        argv + [str(f) for f in files], tmp_path, env, timeout=2 * TIME_LIMIT_S
    )
    print(f"\nfuzz: {len(files)} files, {elapsed:.1f} s, peak RSS {peak / 2**20:.0f} MB, exit {status}")
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(f) for f in files]
    assert "Traceback" not in stderr and " ERROR " not in stderr, stderr[-3000:]
    by_name = {Path(line["file"]).name: line for line in lines}
    for line in lines:
        assert "faces" in line or ("error" in line and line["code"] not in ("internal", "error")), line
    codes = {name: by_name[name].get("code", "no_face") for name in EXPECTED_CODES}
    assert codes == EXPECTED_CODES
    tile = by_name["face_tile_625.jpg"]
    assert len(tile["faces"]) == 20 and tile["faces_found"] > 20
    outcomes = {line.get("code", "faces") for line in lines}
    print("outcomes:", sorted(outcomes))
    assert status == 1  # some files failed, as they should
    assert peak < PEAK_RSS_LIMIT
    assert elapsed < TIME_LIMIT_S


async def test_hostile_photos_get_polite_answers_while_others_are_served(
    harness: Harness,  # noqa: F811 - the fixture imported above
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each hostile file sent to the Telegram bot gets a clear answer; a user sending an ordinary
    photo at the same time as the expensive ones is answered too, and the next photo works."""
    caplog.set_level(logging.INFO)
    fake = harness.fake
    mallory, ann = fake.add_user("Mallory"), fake.add_user("Ann")
    selfie = sorted(data_path("faces", "lfw10", "Colin_Powell").iterdir())[0].read_bytes()
    expected = {
        "scan_bomb_3000.jpg": "built in an unusual way",
        "face_tile_625.jpg": "I looked at the 20 largest of",
        "thin_250x40000.jpg": "too long and thin",
        "tiff.tif": "TIFF format",
        "eps.eps": "EPS",
        "jpeg_huge_header.jpg": "65000x65000",
        "png_bomb_20000.png": "20000x20000",
        "webp_huge_canvas.webp": "16384x16384",
        "truncated_jpeg.jpg": "cut off or damaged",
        "png_many_chunks.png": "built in an unusual way",
        "png_16bit_rgb.png": texts.NO_FACE[:30],
        "text.jpg": "not a photo",
    }
    mallory_chat, ann_chat = fake.private_chat(mallory), fake.private_chat(ann)
    for name, answer in expected.items():
        data = hostile.KINDS[name]()
        before, ann_before = len(harness._messages(mallory_chat)), len(harness._messages(ann_chat))
        fake.send_document(mallory, None, data, name, "application/octet-stream")
        fake.send_photo(ann, None, selfie)  # at the same time
        replies = 2 if name == "face_tile_625.jpg" else 1
        started = asyncio.get_running_loop().time()
        answers = (await fake.wait_for_messages(mallory_chat, before + replies, WAIT))[before:]
        photo, songs = (await fake.wait_for_messages(ann_chat, ann_before + 2, WAIT))[ann_before:]
        waited = asyncio.get_running_loop().time() - started
        text = " ".join(a.text or "" for a in answers)
        assert answer in text, (name, text)
        assert texts.OOPS not in text and texts.SORRY not in text
        assert photo.method == "sendPhoto" and songs.buttons, f"Ann was not served after {name}"
        print(f"{name}: answered, and Ann served, within {waited:.1f} s")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Mallory's next ordinary photo is answered as usual.
    photo, songs = await harness.photo(
        mallory, None, sorted(data_path("faces", "lfw10", "Hugo_Chavez").iterdir())[0]
    )
    assert photo.method == "sendPhoto" and songs.buttons


@pytest.mark.parametrize("command", ["identify", "analyze", "enroll"])
def test_one_failing_file_is_its_own_error_line_and_the_next_is_processed(
    command: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    cache_dir: Path,
    tmp_path: Path,
) -> None:
    """An unexpected exception on one file (code ``internal``), a refused file, then a good one."""
    import bot.cli.faces as faces_cli

    monkeypatch.setenv("MOODTUNES_CACHE_DIR", str(cache_dir))
    monkeypatch.chdir(tmp_path)
    real = faces_cli.read_image_file

    def flaky(path: Path, *args: object) -> object:
        if path.name == "boom.jpg":
            raise RuntimeError("something no one expected")
        return real(path)

    monkeypatch.setattr(faces_cli, "read_image_file", flaky)
    blair = sorted(data_path("faces", "lfw10", "Tony_Blair").iterdir())
    boom, thin = tmp_path / "boom.jpg", tmp_path / "thin.jpg"
    boom.write_bytes(blair[0].read_bytes())
    thin.write_bytes(hostile.thin_jpeg())
    extra = ["--user", "tony"] if command == "enroll" else []
    files = [blair[0], boom, thin, blair[1]]
    status = main([command, "--db", str(tmp_path / "db.sqlite3"), "--json", *extra, *map(str, files)])
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    assert status == 1 and [line["file"] for line in lines] == [str(f) for f in files]
    assert [line.get("code") for line in lines] == [None, "internal", "bad_aspect_ratio", None]
    assert lines[1]["error"] == "unexpected error: RuntimeError"
    if command == "enroll":
        assert [lines[0]["samples"], lines[3]["samples"]] == [1, 2]


@pytest.mark.parametrize("kind", ["directory", "text file", "path under a file", "damaged database"])
def test_a_bad_db_is_one_clear_line(kind: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n")
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\x07" * 4000)
    db = {
        "directory": tmp_path,
        "text file": notes,
        "path under a file": notes / "moodtunes.sqlite3",
        "damaged database": damaged,
    }[kind]
    photo = sorted(data_path("faces", "lfw10", "Tony_Blair").iterdir())[0]
    for command in (["identify"], ["enroll", "--user", "ann"], ["analyze"]):
        status = main([*command, "--db", str(db), str(photo)])
        err = capsys.readouterr().err.strip()
        assert status == 2 and err.startswith("moodtunes: ") and "\n" not in err, err
        assert str(db) in err and "Traceback" not in err
