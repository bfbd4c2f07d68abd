"""Shared fixtures: where the shared data lives, and session-wide loaded models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.fakes.spotify"]  # fake_spotify, spotify_settings, ... fixtures everywhere

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
"""``../shared/data`` beside the project (see its README)."""


def data_path(*parts: str) -> Path:
    """A path under the shared data; skips the calling test with a clear reason when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path} (clone with ../shared beside the project)")
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache for the test session (FaceNet weights are converted into it once)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def settings_env(cache_dir: Path) -> Iterator[None]:
    """Environment with the session cache; no .env file from the developer's checkout leaks in."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MOODTUNES_CACHE_DIR", str(cache_dir))
    mp.chdir(ROOT / "tests")
    yield
    mp.undo()


@pytest.fixture(scope="session")
def pipeline(cache_dir: Path):  # type: ignore[no-untyped-def]
    """The real face pipeline (MTCNN, FaceNet CASIA-WebFace, emotion CNN), loaded once."""
    from core.config import Settings
    from core.pipeline import FacePipeline

    return FacePipeline(Settings(cache_dir=cache_dir, _env_file=None))  # type: ignore[call-arg]
