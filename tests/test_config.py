"""Settings: environment, .env, CLI overrides, and one clear line for anything invalid."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("MOODTUNES_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_environment_dotenv_and_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MOODTUNES_DB=/from/dotenv.sqlite3\nMOODTUNES_LOG_LEVEL=debug\n")
    settings = load_settings()
    assert settings.db_path == Path("/from/dotenv.sqlite3") and settings.log_level == "DEBUG"
    monkeypatch.setenv("MOODTUNES_DB", "/from/env.sqlite3")
    assert load_settings().db_path == Path("/from/env.sqlite3")
    assert load_settings(db=Path("/from/flag.sqlite3"), catalog=None).db_path == Path("/from/flag.sqlite3")
    assert not load_settings().spotify_enabled
    monkeypatch.setenv("MOODTUNES_DB", "postgresql://bot:secret@db.internal:5432/moodtunes")
    assert load_settings().db_is_postgres
    with pytest.raises(ConfigError, match="PostgreSQL URL"):
        _ = load_settings().db_path


def test_shared_data_is_one_setting_and_a_linked_folder_works(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A data folder reached through a symbolic link is used as given (never resolved behind the
    user's back), and every default path under it follows it."""
    real = tmp_path / "real-data"
    (real / "spotify").mkdir(parents=True)
    (real / "spotify" / "tracks.csv").write_text("x")
    link = tmp_path / "linked-data"
    link.symlink_to(real, target_is_directory=True)
    monkeypatch.setenv("MOODTUNES_DATA_DIR", str(link))
    settings = load_settings()
    assert settings.data_dir == link and settings.default_catalog == link / "spotify" / "tracks.csv"
    monkeypatch.setenv("MOODTUNES_CATALOG", str(tmp_path / "mine.csv"))
    assert load_settings().default_catalog == tmp_path / "mine.csv"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MOODTUNES_FACE_WEIGHTS", "imagenet", "MOODTUNES_FACE_WEIGHTS"),
        ("MOODTUNES_TRACKS_DEFAULT", "80", "MOODTUNES_TRACKS_DEFAULT"),
        ("MOODTUNES_SPOTIFY_REDIRECT_URI", "http://localhost:8888/cb", "never localhost"),
        ("MOODTUNES_TELEGRAM_WEBHOOK_LISTEN", "8443", "host:port"),
        ("MOODTUNES_SPOTIFY_REDIRECT_URI", "https://bot.example.org/spotify", "CALLBACK_LISTEN"),
        ("MOODTUNES_DISCORD_SHARD_IDS", "0,x", "shard numbers"),
        ("MOODTUNES_DISCORD_SHARD_IDS", "3", "below MOODTUNES_DISCORD_SHARD_COUNT"),
    ],
)
def test_invalid_settings_fail_with_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_https_redirect_with_a_listen_address_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOODTUNES_SPOTIFY_REDIRECT_URI", "https://bot.example.org/spotify")
    monkeypatch.setenv("MOODTUNES_SPOTIFY_CALLBACK_LISTEN", "127.0.0.1:9000")
    assert load_settings().spotify_callback_listen == "127.0.0.1:9000"
