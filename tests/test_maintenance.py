"""``moodtunes models prepare`` (offline model set-up, checks) and ``moodtunes demo`` (run by `make demo`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import data_path

pytestmark = pytest.mark.slow


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, cache_dir: Path, tmp_path: Path) -> Path:
    monkeypatch.setenv("MOODTUNES_CACHE_DIR", str(cache_dir))
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    return tmp_path


def test_models_prepare_checks_every_model(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "prepare"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("ok    ") for line in lines)
    text = "\n".join(lines)
    assert "mtcnn" in text and "FaceNet CASIA-WebFace converted" in text
    assert "moodtunes-emotion-cnn: models/emotion/emotion_cnn.pt sha256 matches" in text


def test_models_prepare_fails_on_a_missing_model(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MOODTUNES_EMOTION_WEIGHTS", str(env / "nowhere.pt"))
    assert main(["models", "prepare"]) == 1
    captured = capsys.readouterr()
    assert f"FAIL  emotion CNN (custom) at {env / 'nowhere.pt'}" in captured.out
    assert "some models are not ready" in captured.err


def test_demo_runs_the_whole_flow(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_path("spotify", "tracks.csv")  # step 5 uses the shared catalog
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "FAILED" not in out
    assert "1. 1 face(s) found" in out and "emotion happy" in out
    assert "2. enrolled Eileen Collins" in out
    assert "3. in a mirrored, tilted, smaller copy: Eileen Collins (similarity" in out
    assert "4. enrolling scikit-image's cat is refused: I could not find a face" in out
    assert "10 tracks from tracks.csv" in out and out.count("https://open.spotify.com/track/") == 10
    assert out.rstrip().endswith("Try the bot in your terminal: moodtunes chat")


def test_demo_fails_loudly_when_a_step_does_not_work(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bot.demo

    real = bot.demo.skimage_photo
    monkeypatch.setattr(bot.demo, "skimage_photo", lambda name: real("chelsea.png"))  # the cat as "portrait"
    assert main(["demo"]) == 1
    assert "FAILED: no face in a portrait" in capsys.readouterr().out
