"""``catalog fetch``: pinned checksum, offline and checksum-failure paths, against loopback only."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from bot.cli import main
from core.music.errors import ChecksumMismatch, FetchError
from core.music.fetch import DEFAULT_SOURCE, fetch_catalog
from tests.conftest import data_path

BODY = b"id,name\n" + b"x,y\n" * 5000


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Handler.hits.append(self.path)
        if self.path == "/missing.csv":
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Base URL of a loopback HTTP server serving BODY (and a 404 at /missing.csv)."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.hits = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SHA = hashlib.sha256(BODY).hexdigest()


def test_default_source_is_pinned() -> None:
    assert DEFAULT_SOURCE.url.startswith("https://")
    assert re.search(r"/[0-9a-f]{40}/", DEFAULT_SOURCE.url)  # a commit, not a branch: the bytes never change
    assert re.fullmatch(r"[0-9a-f]{64}", DEFAULT_SOURCE.sha256)


def test_default_checksum_is_that_of_the_shared_catalog() -> None:
    path = data_path("spotify", "tracks.csv")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == DEFAULT_SOURCE.sha256
    assert path.stat().st_size == DEFAULT_SOURCE.size


def test_download_verified(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "catalogs" / "tracks.csv"
    assert fetch_catalog(dest, f"{server}/tracks.csv", SHA, progress=False) == dest
    assert dest.read_bytes() == BODY
    fetch_catalog(dest, f"{server}/tracks.csv", SHA.upper())  # already there: no second download
    assert _Handler.hits == ["/tracks.csv"]


def test_checksum_mismatch_saves_nothing(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "tracks.csv"
    with pytest.raises(ChecksumMismatch) as exc:
        fetch_catalog(dest, f"{server}/tracks.csv", "0" * 64)
    assert SHA in str(exc.value) and "nothing was saved" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_file_in_place_is_replaced_after_verification(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "tracks.csv"
    dest.write_bytes(b"stale")
    fetch_catalog(dest, f"{server}/tracks.csv", SHA)
    assert dest.read_bytes() == BODY


def test_http_error(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_catalog(tmp_path / "x.csv", f"{server}/missing.csv", SHA)
    assert list(tmp_path.iterdir()) == []


def test_offline_error_says_what_to_do(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/tracks.csv"
    with pytest.raises(FetchError) as exc:
        fetch_catalog(tmp_path / "x.csv", url, SHA, timeout=5)
    message = str(exc.value)
    assert "offline" in message and "MOODTUNES_CATALOG" in message and "\n" not in message
    assert not isinstance(exc.value, ChecksumMismatch)


def test_too_large_is_refused(server: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="allowed"):
        fetch_catalog(tmp_path / "x.csv", f"{server}/tracks.csv", SHA, max_bytes=1000)
    assert list(tmp_path.iterdir()) == []


def test_file_url(tmp_path: Path) -> None:
    source = tmp_path / "source.csv"
    source.write_bytes(BODY)
    dest = tmp_path / "out" / "copy.csv"
    fetch_catalog(dest, source.as_uri(), SHA)
    assert dest.read_bytes() == BODY
    with pytest.raises(ChecksumMismatch):
        fetch_catalog(tmp_path / "other.csv", source.as_uri(), "f" * 64)
    with pytest.raises(FetchError):
        fetch_catalog(tmp_path / "other.csv", (tmp_path / "absent.csv").as_uri(), SHA)


def test_malformed_checksum(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="64 hex"):
        fetch_catalog(tmp_path / "x.csv", "http://127.0.0.1:1/x", "abc")


def test_cli_fetch(server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "fetched.csv"
    argv = ["catalog", "fetch", "--url", f"{server}/tracks.csv", "--out", str(dest)]
    assert main([*argv, "--sha256", SHA, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "path": str(dest),
        "url": f"{server}/tracks.csv",
        "sha256": SHA,
    }
    dest.unlink()
    assert main([*argv, "--sha256", "1" * 64]) == 1
    err = capsys.readouterr().err
    assert "nothing was saved" in err and err.count("\n") == 1 and not dest.exists()
    assert main(argv) == 2  # a URL without a checksum is refused
    assert "--url and --sha256 go together" in capsys.readouterr().err
    offline = ["catalog", "fetch", "--url", f"http://127.0.0.1:{closed_port()}/t.csv", "--sha256", SHA]
    assert main([*offline, "--out", str(dest), "--timeout", "5"]) == 1
    assert "offline" in capsys.readouterr().err
