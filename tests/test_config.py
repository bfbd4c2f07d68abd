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
    assert settings.db == Path("/from/dotenv.sqlite3") and settings.log_level == "DEBUG"
    monkeypatch.setenv("MOODTUNES_DB", "/from/env.sqlite3")
    assert load_settings().db == Path("/from/env.sqlite3")
    assert load_settings(db=Path("/from/flag.sqlite3"), catalog=None).db == Path("/from/flag.sqlite3")
    assert not load_settings().spotify_enabled


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MOODTUNES_FACE_WEIGHTS", "imagenet", "MOODTUNES_FACE_WEIGHTS"),
        ("MOODTUNES_TRACKS_DEFAULT", "80", "MOODTUNES_TRACKS_DEFAULT"),
        ("MOODTUNES_SPOTIFY_REDIRECT_URI", "http://localhost:8888/cb", "never localhost"),
        ("MOODTUNES_TELEGRAM_WEBHOOK_LISTEN", "8443", "host:port"),
        ("MOODTUNES_SPOTIFY_REDIRECT_URI", "https://bot.example.org/spotify", "CALLBACK_LISTEN"),
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
