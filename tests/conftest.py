"""Shared fixtures: where the shared data lives, and session-wide loaded models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.paths import default_data_dir
from tests.pg import PostgresServer, start_or_skip

pytest_plugins = ["tests.fakes.spotify"]  # fake_spotify, spotify_settings, ... fixtures everywhere

ROOT = Path(__file__).resolve().parents[1]
DATA = default_data_dir() or ROOT.parent / "shared" / "data"
"""``../shared/data`` beside the project (see its README): the same folder the application finds."""


def data_path(*parts: str) -> Path:
    """A path under the shared data; skips the calling test with a clear reason when it is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path} (clone with ../shared beside the project)")
    return path


@pytest.fixture(scope="session", autouse=True)
def private_user_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes to the real user data folder (the default database lives there)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    yield
    mp.undo()


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
    from core.vision.analyzer import FaceAnalyzer

    return FaceAnalyzer(Settings(cache_dir=cache_dir, _env_file=None))  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (skips without PostgreSQL, unless CI requires it)."""
    server = start_or_skip()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each backend: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "test.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture(scope="session")
def tiny_fer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-images-per-class copy of FER2013's layout (train/ and val/), as links to the shared files."""
    from core.vision.emotion.labels import EMOTIONS

    source = data_path("fer2013")
    root = tmp_path_factory.mktemp("fer")
    for split, count in (("train", 20), ("val", 5)):
        for emotion in EMOTIONS:
            folder = root / split / emotion
            folder.mkdir(parents=True)
            for path in sorted((source / split / emotion).iterdir())[:count]:
                (folder / path.name).symlink_to(path)
    return root
