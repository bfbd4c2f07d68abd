"""``moodtunes catalog fetch``: download a public track catalog, verified against a pinned sha256.

The default source is the 2017-2019 Spotify catalog that the tests use
(``../shared/data/spotify/tracks.csv``), from a commit-pinned GitHub raw URL, so its bytes never
change; any other URL must come with its own sha256. Bytes that do not match the checksum are
never saved. Without internet the error says so, and how to bring a catalog by hand.
"""

from __future__ import annotations

import hashlib
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs
from tqdm import tqdm

from core.config import APP_NAME
from core.music.errors import ChecksumMismatch, FetchError

MAX_DOWNLOAD_BYTES = 2 * 1024**3
"""Downloads larger than this (2 GiB) are refused."""


@dataclass(frozen=True)
class CatalogSource:
    """A downloadable catalog: its ``url``, the hex ``sha256`` of its bytes, ``size`` in bytes."""

    name: str
    url: str
    sha256: str
    size: int | None
    filename: str
    description: str


DEFAULT_SOURCE = CatalogSource(
    name="spotify-tracks-2017-2019",
    url=(
        "https://raw.githubusercontent.com/kattapriyatham/spotify_tracks_analysis/"
        "d035b2d9251ccb371578c7b8943bd5e7afbe98ad/spotify_tracks.csv"
    ),
    sha256="0aa9888e36527ec06820b48c14ae4fbf7c286446a605991860e581f40b7f5c6c",
    size=2_374_009,
    filename="spotify_tracks_2017_2019.csv",
    description="14,369 Spotify tracks from 2017-2019 with audio features and popularity "
    "(github kattapriyatham/spotify_tracks_analysis @d035b2d)",
)


def default_catalog_dir() -> Path:
    """Where fetched catalogs go by default (e.g. ``~/.local/share/moodtunes/catalogs``)."""
    return platformdirs.user_data_path(APP_NAME) / "catalogs"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _offline_hint(url: str, reason: object) -> str:
    host = urlsplit(url).netloc or url
    return (
        f"cannot download {url} ({reason}); is this machine offline or is {host} unreachable? "
        "Without internet, copy a Spotify catalog CSV here by hand and set MOODTUNES_CATALOG=PATH "
        "(or pass --catalog PATH)"
    )


def fetch_catalog(
    dest: Path,
    url: str = DEFAULT_SOURCE.url,
    sha256: str = DEFAULT_SOURCE.sha256,
    *,
    timeout: float = 30.0,
    progress: bool | None = None,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> Path:
    """Download ``url`` to ``dest`` if its bytes have the given hex ``sha256``; returns ``dest``.

    A ``dest`` that already has the right checksum is kept without downloading. The bytes go to
    ``dest`` + ``.part`` first and are renamed only once verified. ``timeout`` is seconds per
    network operation; ``progress=None`` shows a bar on a terminal. Raises :class:`FetchError`
    (offline, HTTP error, too large) or :class:`ChecksumMismatch`; ValueError for a malformed
    ``sha256``.
    """
    expected = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")
    if dest.is_file() and file_sha256(dest) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # http(s) or file://
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > max_bytes:
                raise FetchError(f"{url} is {total:,} bytes, more than the {max_bytes:,} allowed")
            show = sys.stderr.isatty() if progress is None else progress
            with (
                open(part, "wb") as out,
                tqdm(
                    total=total, unit="B", unit_scale=True, desc=dest.name, disable=not show, leave=False
                ) as bar,
            ):
                while block := response.read(1 << 16):
                    received += len(block)
                    if received > max_bytes:
                        raise FetchError(f"{url} sent more than the {max_bytes:,} bytes allowed")
                    digest.update(block)
                    out.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise FetchError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        part.unlink(missing_ok=True)
        raise FetchError(_offline_hint(url, exc.reason)) from None
    except (TimeoutError, ConnectionError) as exc:
        part.unlink(missing_ok=True)
        raise FetchError(_offline_hint(url, exc or type(exc).__name__)) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    got = digest.hexdigest()
    if got != expected:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"the file from {url} has sha256 {got}, not the pinned {expected} ({received:,} bytes); "
            "nothing was saved"
        )
    part.replace(dest)
    return dest
