"""The ``moodtunes`` command line: enroll, identify, analyze, forget; JSON lines and per-file errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import data_path

pytestmark = pytest.mark.slow


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, object]], str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    return status, lines, captured.err


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, cache_dir: Path, tmp_path: Path) -> Path:
    monkeypatch.setenv("MOODTUNES_CACHE_DIR", str(cache_dir))
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    return tmp_path / "cli.sqlite3"


def test_enroll_identify_forget(capsys: pytest.CaptureFixture[str], env: Path) -> None:
    lfw = data_path("faces", "lfw10")
    blair = sorted((lfw / "Tony_Blair").iterdir())
    bush = sorted((lfw / "George_W_Bush").iterdir())
    db = str(env)

    status, lines, _ = run(
        capsys, "enroll", "--db", db, "--chat", "c1", "--user", "tony", "--json", *map(str, blair[:3])
    )
    assert status == 0 and [line["samples"] for line in lines] == [1, 2, 3]
    status, lines, _ = run(
        capsys, "enroll", "--db", db, "--chat", "c1", "--user", "george", "--json", str(bush[0])
    )
    assert status == 0

    bad = env.parent / "notes.jpg"
    bad.write_text("hello")
    status, lines, _ = run(
        capsys,
        "identify",
        "--db",
        db,
        "--chat",
        "c1",
        "--json",
        str(blair[5]),
        str(bush[5]),
        str(bad),
        str(env.parent / "missing.png"),
        str(data_path("faces", "lfw10", "Hugo_Chavez", "Hugo_Chavez_0001.jpg")),
    )
    assert status == 1 and len(lines) == 5
    assert lines[0]["faces"][0]["user"] == "tony"  # type: ignore[index]
    assert lines[1]["faces"][0]["user"] == "george"  # type: ignore[index]
    face = lines[0]["faces"][0]  # type: ignore[index]
    assert set(face) == {"box", "score", "user", "similarity"} and len(face["box"]) == 4
    assert lines[2]["code"] == "not_an_image" and "error" in lines[2]
    assert lines[3]["code"] == "file_not_found"
    assert lines[4]["faces"][0]["user"] is None  # type: ignore[index]

    # Another chat: nobody is enrolled there.
    status, lines, _ = run(capsys, "identify", "--db", db, "--chat", "c2", "--json", str(blair[5]))
    assert status == 0 and lines[0]["faces"][0]["user"] is None  # type: ignore[index]

    status, lines, _ = run(capsys, "forget", "--db", db, "--user", "tony", "--json")
    assert status == 0 and lines[0]["embeddings"] == 3
    status, lines, _ = run(capsys, "identify", "--db", db, "--chat", "c1", "--json", str(blair[5]))
    assert lines[0]["faces"][0]["user"] is None  # type: ignore[index]
    status, _, err = run(capsys, "forget", "--db", db, "--user", "tony")
    assert status == 1 and "no user 'tony'" in err


def test_analyze_and_text_errors(capsys: pytest.CaptureFixture[str], env: Path) -> None:
    status, lines, _ = run(capsys, "analyze", "--json", str(data_path("photos", "multiface.jpg")))
    assert status == 0 and len(lines[0]["faces"]) == 6  # type: ignore[arg-type]
    assert {"box", "user", "emotion", "emotion_scores"} <= set(lines[0]["faces"][0])  # type: ignore[index]
    group = lines[0]["group"]  # the blended mood of the photo, the one the songs would follow
    assert group["emotion"] in group["scores"] and "of 6 faces" in group["summary"]  # type: ignore[index]
    assert abs(sum(group["scores"].values()) - 1) < 1e-3  # type: ignore[index]

    import skimage

    cat = Path(skimage.__file__).parent / "data" / "chelsea.png"
    status = main(["identify", "--db", str(env), str(cat)])
    captured = capsys.readouterr()
    assert status == 1 and captured.err.strip().count("\n") == 0 and "no face" in captured.err


def test_invalid_setting_fails_at_start_with_one_line(
    capsys: pytest.CaptureFixture[str], env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOODTUNES_FACE_WEIGHTS", "imagenet")
    status = main(["identify", "--db", str(env), "x.jpg"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err and "MOODTUNES_FACE_WEIGHTS" in err
