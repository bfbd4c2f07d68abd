"""The operator CLI: ``moodtunes keygen``, ``spotify link`` (paste and callback), ``spotify playlist``."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from bot.cli import main
from core.music import load_catalog
from tests.fakes.spotify import FakeSpotify
from tests.synthetic_catalog import write_synthetic_catalog


class _Screen(io.StringIO):
    """stdout that lets another thread wait for the authorisation URL to be printed."""

    def __init__(self) -> None:
        super().__init__()
        self.url_printed = threading.Event()

    def write(self, text: str) -> int:
        n = super().write(text)
        if "/authorize?" in self.getvalue():
            self.url_printed.set()
        return n

    def auth_url(self) -> str:
        assert self.url_printed.wait(10), self.getvalue()
        match = re.search(r"(http://127\.0\.0\.1:\d+/authorize\?\S+)", self.getvalue())
        assert match, self.getvalue()
        return match.group(1)


class _Browser(io.StringIO):
    """stdin whose first read plays the user: open the URL, agree, then paste (or follow) the redirect;
    then answer the question that names the account with ``answer``."""

    def __init__(
        self, fake: FakeSpotify, screen: _Screen, user: str, follow: bool, answer: str = "yes"
    ) -> None:
        super().__init__()
        self.fake, self.screen, self.user, self.follow = fake, screen, user, follow
        self.answers = [answer + "\n"]
        self.done = False
        self.callback_status: int | None = None

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        if self.done:
            return self.answers.pop(0) if self.answers else ""
        self.done = True
        location = self.fake.consent_location(self.screen.auth_url(), user=self.user)
        if self.follow:  # the browser follows the redirect to the CLI's callback server
            self.callback_status = requests.get(location, timeout=10).status_code
            return self.answers.pop(0)
        return location + "\n"


@pytest.fixture
def fake_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_proxy_env: None) -> Iterator[FakeSpotify]:
    """A fake Spotify in a thread, the MOODTUNES_* environment pointing at it, and a free redirect port."""
    monkeypatch.chdir(tmp_path)  # no .env file from a checkout
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake = FakeSpotify()
    with fake.in_thread():
        for key, value in fake.env(f"http://127.0.0.1:{port}/spotify/callback").items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("MOODTUNES_DB", str(tmp_path / "cli.sqlite3"))
        monkeypatch.setenv("MOODTUNES_CACHE_DIR", str(tmp_path / "cache"))
        yield fake


def _run(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: io.StringIO | None = None
) -> tuple[int, str]:
    screen = stdin.screen if isinstance(stdin, _Browser) else _Screen()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stdin", stdin or io.StringIO(""))
    return main(argv), screen.getvalue()


def test_keygen(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == 0
    key = capsys.readouterr().out.strip()
    Fernet(key.encode())  # a valid key
    assert main(["keygen"]) == 0
    assert capsys.readouterr().out.strip() != key


def test_link_by_pasting(monkeypatch: pytest.MonkeyPatch, fake_env: FakeSpotify) -> None:
    screen = _Screen()
    browser = _Browser(fake_env, screen, "alice", follow=False)
    code, out = _run(monkeypatch, ["spotify", "link", "--user", "ann", "--no-server"], browser)
    assert code == 0, out
    assert "paste the address" in out
    assert "Link the Spotify account Alice A. (Spotify user id alice) to you?" in out
    assert "Linked ann to the Spotify account Alice A." in out
    assert fake_env.token_grants() == ["authorization_code"]


def test_a_hostile_spotify_name_is_printed_escaped(
    monkeypatch: pytest.MonkeyPatch, fake_env: FakeSpotify
) -> None:
    """The account's display name is whatever its owner typed: no terminal escape code gets through."""
    fake_env.add_user("mal", "\x1b]0;pwned\x07\x1b[2JMal")
    browser = _Browser(fake_env, _Screen(), "mal", follow=False)
    code, out = _run(monkeypatch, ["spotify", "link", "--user", "ann", "--no-server"], browser)
    assert code == 0, out
    assert "Linked ann to the Spotify account \\x1b]0;pwned\\x07\\x1b[2JMal." in out
    assert "\x1b" not in out and "\x07" not in out


def test_link_declined_links_nothing(
    monkeypatch: pytest.MonkeyPatch, fake_env: FakeSpotify, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator sees whose account came back and says no: nothing is linked or kept."""
    screen = _Screen()
    browser = _Browser(fake_env, screen, "bob", follow=True, answer="no")
    code, out = _run(monkeypatch, ["spotify", "link", "--user", "ann", "--timeout", "20"], browser)
    assert code == 1, out
    assert "Link the Spotify account Bob B." in out and "didn't link" in out
    assert "nothing was linked" in capsys.readouterr().err
    with sqlite3.connect(os.environ["MOODTUNES_DB"]) as db:
        assert db.execute("SELECT count(*) FROM spotify_tokens").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM spotify_pending_links").fetchone() == (0,)


def test_link_through_callback(monkeypatch: pytest.MonkeyPatch, fake_env: FakeSpotify) -> None:
    screen = _Screen()
    browser = _Browser(fake_env, screen, "bob", follow=True)
    code, out = _run(monkeypatch, ["spotify", "link", "--user", "ben", "--timeout", "20"], browser)
    assert code == 0, out
    assert browser.callback_status == 200
    assert "Waiting for Spotify" in out
    assert "Linked ben to the Spotify account Bob B." in out


def test_link_without_paste_or_server_fails(
    monkeypatch: pytest.MonkeyPatch, fake_env: FakeSpotify, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _run(monkeypatch, ["spotify", "link", "--user", "ann", "--no-server"])
    assert code == 1
    assert "no address was pasted" in capsys.readouterr().err
    assert fake_env.token_grants() == []


def test_playlist(monkeypatch: pytest.MonkeyPatch, fake_env: FakeSpotify, tmp_path: Path) -> None:
    browser = _Browser(fake_env, _Screen(), "alice", follow=False)
    assert _run(monkeypatch, ["spotify", "link", "--user", "ann", "--no-server"], browser)[0] == 0
    catalog = tmp_path / "tracks.csv"
    write_synthetic_catalog(catalog, 600, seed=3)
    monkeypatch.setenv("MOODTUNES_CACHE_DIR", str(tmp_path / "cache"))
    argv = ["spotify", "playlist", "--user", "ann", "--emotion", "happy", "-n", "15", "--json"]
    code, out = _run(monkeypatch, [*argv, "--catalog", str(catalog)])
    assert code == 0, out
    record = json.loads(out.strip().splitlines()[-1])
    assert record["tracks"] == 15 and record["emotion"] == "happy"
    [playlist] = fake_env.playlists.values()
    assert record["url"] == f"https://open.spotify.com/playlist/{playlist.id}"
    expected = load_catalog(catalog, tmp_path / "cache").recommend(emotion="happy", n=15)
    assert playlist.items == [f"spotify:track:{t.id}" for t in expected]
    assert playlist.name.startswith("moodtunes · happy · ")


def test_playlist_for_unlinked_user(monkeypatch: pytest.MonkeyPatch, fake_env: FakeSpotify) -> None:
    code, _ = _run(monkeypatch, ["spotify", "playlist", "--user", "nobody", "--emotion", "happy"])
    assert code == 1
    assert fake_env.calls == []


def test_spotify_commands_without_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("CLIENT_ID", "CLIENT_SECRET"):
        monkeypatch.delenv(f"MOODTUNES_SPOTIFY_{key}", raising=False)
    monkeypatch.delenv("MOODTUNES_SECRET_KEY", raising=False)
    db = str(tmp_path / "x.sqlite3")
    assert main(["spotify", "link", "--db", db, "--user", "ann"]) == 1
    err = capsys.readouterr().err
    assert "switched off" in err and "MOODTUNES_SPOTIFY_CLIENT_ID" in err
