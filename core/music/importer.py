"""Read a track CSV in any of the common public layouts and normalise it to one schema.

Layouts recognised (column names are matched case-insensitively, through :data:`ALIASES`):

* Kaggle "Spotify Dataset 1921-2020" (``tracks.csv`` 600k rows, ``data.csv`` 170k):
  ``id, name, artists, popularity, release_date, <features>``; artists as a Python list literal
  (``['Artist A', "Guns N' Roses"]``).
* Hugging Face / Kaggle "Spotify Tracks Dataset" (114k): ``track_id, artists, track_name,
  popularity, <features>, track_genre``; artists joined by ``;``.
* ``spotify_tracks.csv`` 2017-2019 (../shared/data/spotify/tracks.csv): unnamed first column,
  ``artist, track, track_id`` with ``spotify:track:<id>`` URIs, ``year``.

Every row becomes: bare 22-character Spotify ``id``, ``name``, ``artists`` (a tuple), ``popularity``
(0-100), ``year`` (or missing), ``genre`` (or missing), the :data:`~core.music.schema.FEATURES` and
the :data:`~core.music.schema.OPTIONAL_FEATURES` (NaN where the file lacks the column or the value is
missing or out of range). Rows with a bad id, a missing value or a required feature out of range are
rejected and counted; then
duplicates are dropped: the same id (first kept), then the same name and artists, compared
case-insensitively (the most popular kept: the same song is often on an album and a single).
"""

from __future__ import annotations

import ast
import bz2
import csv
import gzip
import io
import lzma
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd
from tqdm import tqdm
from tqdm.utils import CallbackIOWrapper

from core.music.errors import CatalogError
from core.music.schema import (
    FEATURE_RANGES,
    FEATURES,
    OPTIONAL_FEATURE_RANGES,
    OPTIONAL_FEATURES,
    POPULARITY_RANGE,
    YEAR_RANGE,
)

ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "track_id", "uri", "track_uri", "spotify_id"),
    "name": ("name", "track_name", "track", "title", "song", "song_name"),
    "artists": ("artists", "artist", "track_artist", "artist_name", "artist_names"),
    "popularity": ("popularity", "track_popularity"),
    "year": ("year",),
    "release_date": ("release_date", "track_album_release_date", "album_release_date"),
    "genre": ("track_genre", "genre", "playlist_genre", "genres"),
}
"""Accepted source column names for each schema field (first match wins); features use their own name."""

REQUIRED: tuple[str, ...] = ("id", "name", "artists", "popularity", *FEATURES)
"""Fields a catalog must have."""

CHUNK_ROWS = 100_000
"""Rows parsed per chunk (bounds memory on large files)."""
PROGRESS_MIN_BYTES = 16 * 1024 * 1024
"""With ``progress=None``, a bar is shown for files at least this big when stderr is a terminal."""

_ID = r"^\s*(?:spotify:track:|https?://open\.spotify\.com/(?:intl-[A-Za-z-]+/)?track/)?([0-9A-Za-z]{22})(?:\?\S*)?\s*$"
_QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")
_NA_WORDS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]
_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}


@dataclass
class ImportReport:
    """What an import did. Counts are rows; ``seconds`` is the whole import (read, cluster, store)."""

    source: str
    layout: str
    rows_read: int = 0
    malformed: int = 0
    bad_id: int = 0
    missing: int = 0
    out_of_range: int = 0
    duplicate_ids: int = 0
    duplicate_tracks: int = 0
    kept: int = 0
    seconds: float = 0.0

    @property
    def rejected(self) -> int:
        """Rows refused for a bad id, a missing value or a value out of range."""
        return self.bad_id + self.missing + self.out_of_range

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (``rejected`` included)."""
        return {**asdict(self), "rejected": self.rejected}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        """Inverse of :meth:`as_dict`."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def lines(self) -> list[str]:
        """Human summary, a few lines."""
        return [
            f"{self.source}: {self.layout} layout, {self.rows_read:,} rows read",
            f"kept {self.kept:,} tracks; dropped {self.duplicate_ids:,} duplicate ids and "
            f"{self.duplicate_tracks:,} duplicate name+artists",
            f"rejected {self.rejected:,} rows: {self.bad_id:,} bad or missing id, {self.missing:,} missing "
            f"values, {self.out_of_range:,} features out of range"
            + (f"; skipped {self.malformed:,} malformed lines" if self.malformed else ""),
        ]


def parse_artists(value: str) -> tuple[str, ...]:
    """Artists from ``"['A', 'B']"`` (a Python list literal), ``"A;B"`` or ``"A"``; order kept."""
    text = value.strip()
    items: list[str] = []
    if text.startswith("[") and text.endswith("]"):  # a list literal, unless a name like "[ocean jams]"
        items = [_unquote(m.group(0)) for m in _QUOTED.finditer(text)]
        if not items and text[1:-1].strip():
            items = [text]
    else:
        items = text.split(";")
    return tuple(s for s in (item.strip() for item in items) if s)


def _unquote(token: str) -> str:
    if "\\" not in token:
        return token[1:-1]
    try:
        return str(ast.literal_eval(token))
    except (ValueError, SyntaxError):
        return token[1:-1]


def _compression(head: bytes) -> str | None:
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)


def _decompressed(fileobj: Any, kind: str | None) -> IO[bytes]:
    """``fileobj`` itself, or a decompressing reader over it for ``kind`` gzip, bz2 or xz."""
    if kind == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=fileobj))
    if kind == "bz2":
        return cast(IO[bytes], bz2.BZ2File(fileobj))
    if kind == "xz":
        return cast(IO[bytes], lzma.LZMAFile(fileobj))
    return cast(IO[bytes], fileobj)


@contextmanager
def _open_csv(path: Path, progress: bool) -> Iterator[IO[bytes]]:
    """The decompressed byte stream of the file, with a progress bar over the bytes read from disk."""
    size = path.stat().st_size
    with (
        open(path, "rb") as raw,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=f"importing {path.name}",
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        kind = _compression(raw.read(8))
        raw.seek(0)
        wrapped = CallbackIOWrapper(bar.update, raw, "read")
        if kind is None:
            yield cast(IO[bytes], wrapped)
        else:
            with _decompressed(wrapped, kind) as stream:
                yield stream


def read_header(path: Path) -> list[str]:
    """Column names of a CSV; raises :class:`CatalogError` when the file is not a CSV."""
    with open(path, "rb") as raw:
        head = raw.read(8)
        raw.seek(0)
        try:
            with _decompressed(raw, _compression(head)) as stream:
                sample = stream.read(65_536)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise CatalogError(f"{path.name}: cannot decompress ({exc})") from None
    if head.startswith(b"PK\x03\x04"):
        raise CatalogError(f"{path.name} is a zip archive: unzip it and pass the CSV inside")
    if not sample.strip():
        raise CatalogError(f"{path.name} is empty: expected a CSV of tracks with audio features")
    if b"\x00" in sample:
        raise CatalogError(f"{path.name} is not a CSV file (binary content)")
    first = sample.split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff")
    other = next((d for d in ";\t|" if d in first), None)
    if "," not in first and other is not None:
        raise CatalogError(f"{path.name}: expected comma-separated values, found {other!r} separators")
    return next(csv.reader(io.StringIO(first)))


def resolve_columns(header: list[str], source: str) -> dict[str, str]:
    """Map schema fields to the file's column names; raises :class:`CatalogError` naming what is missing."""
    by_lower = {h.strip().lower(): h for h in header}
    found: dict[str, str] = {}
    for fld, names in {**ALIASES, **{f: (f,) for f in (*FEATURES, *OPTIONAL_FEATURES)}}.items():
        for name in names:
            if name in by_lower:
                found[fld] = by_lower[name]
                break
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        shown = ", ".join(h for h in header[:12] if h.strip()) + (", ..." if len(header) > 12 else "")
        raise CatalogError(
            f"{source} is not a track catalog: missing column(s) {', '.join(missing)} "
            f"(found: {shown or 'none'}). A catalog needs a Spotify track id, name, artists, popularity "
            f"and the audio features {', '.join(FEATURES)}"
        )
    return found


def detect_layout(columns: dict[str, str]) -> str:
    """Name of the public layout the resolved columns look like (for the report)."""
    src = {k: v.strip().lower() for k, v in columns.items()}
    if src.get("genre") == "track_genre" and src.get("name") == "track_name":
        return "Spotify Tracks Dataset (114k)"
    if src.get("id") == "id" and src.get("release_date") == "release_date":
        return "Spotify Dataset 1921-2020"
    if src.get("name") == "track" and src.get("artists") == "artist":
        return "spotify_tracks 2017-2019"
    return "generic"


def _as_text(column: pd.Series) -> pd.Series:
    return column.astype("string").str.strip()


def _artists(column: pd.Series) -> np.ndarray:
    codes, uniques = pd.factorize(_as_text(column))
    parsed = np.empty(len(uniques) + 1, dtype=object)
    parsed[:-1] = [parse_artists(str(u)) for u in uniques]
    parsed[-1] = ()
    return parsed[codes]  # code -1 (missing) picks the empty tuple at the end


def _normalise(chunk: pd.DataFrame, cols: dict[str, str], report: ImportReport) -> pd.DataFrame:
    """Valid rows of one chunk in the schema; counts the rejected ones in ``report``."""
    report.rows_read += len(chunk)
    ids = _as_text(chunk[cols["id"]]).str.extract(_ID, expand=False)
    names = _as_text(chunk[cols["name"]])
    artists = _artists(chunk[cols["artists"]])
    popularity = pd.to_numeric(chunk[cols["popularity"]], errors="coerce")
    features = {f: pd.to_numeric(chunk[cols[f]], errors="coerce") for f in FEATURES}
    bad_id = ids.isna().to_numpy()
    missing = (
        names.isna().to_numpy()
        | (names.fillna("") == "").to_numpy()
        | np.fromiter((len(a) == 0 for a in artists), dtype=bool, count=len(artists))
        | popularity.isna().to_numpy()
    )
    low, high = POPULARITY_RANGE
    out = ~popularity.between(low, high).to_numpy()
    for f, values in features.items():
        missing |= values.isna().to_numpy()
        low_f, high_f = FEATURE_RANGES[f]
        out |= ~values.between(low_f, high_f).to_numpy()
    missing &= ~bad_id
    out &= ~(bad_id | missing)
    report.bad_id += int(bad_id.sum())
    report.missing += int(missing.sum())
    report.out_of_range += int(out.sum())
    keep = ~(bad_id | missing | out)

    if "year" in cols:
        year = pd.to_numeric(chunk[cols["year"]], errors="coerce")
    elif "release_date" in cols:
        year = pd.to_numeric(_as_text(chunk[cols["release_date"]]).str.extract(r"^(\d{4})", expand=False))
    else:
        year = pd.Series(np.nan, index=chunk.index)
    year = year.where(year.between(*YEAR_RANGE))
    optional: dict[str, np.ndarray] = {}
    for f in OPTIONAL_FEATURES:
        if f in cols:
            values = pd.to_numeric(chunk[cols[f]], errors="coerce")
            values = values.where(values.between(*OPTIONAL_FEATURE_RANGES[f]))
            optional[f] = values.to_numpy(dtype=np.float32, na_value=np.nan)[keep]
        else:
            optional[f] = np.full(int(keep.sum()), np.nan, dtype=np.float32)
    genre = np.full(len(chunk), None, dtype=object)
    if "genre" in cols:
        text = _as_text(chunk[cols["genre"]])
        given = (text.notna() & (text != "")).fillna(False).to_numpy(dtype=bool)
        genre[given] = text.to_numpy(dtype=object)[given]

    out_frame = pd.DataFrame(
        {
            "id": ids.astype(object).to_numpy()[keep],
            "name": names.astype(object).to_numpy()[keep],
            "artists": artists[keep],
            "popularity": popularity.to_numpy()[keep].astype(np.int16),
            "year": year.to_numpy(dtype=np.float64, na_value=np.nan)[keep],
            "genre": genre[keep],
            **{f: v.to_numpy(dtype=np.float32)[keep] for f, v in features.items()},
            **optional,
        }
    )
    return out_frame


def _dedupe(frame: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    dup_id = frame["id"].duplicated(keep="first")
    report.duplicate_ids = int(dup_id.sum())
    frame = frame[~dup_id]
    name_key = frame["name"].astype("string").str.casefold().str.replace(r"\s+", " ", regex=True)
    artist_key = frame["artists"].map(lambda a: "\x1f".join(a).casefold())
    key = name_key + "\x1e" + artist_key
    by_popularity = frame["popularity"].sort_values(ascending=False, kind="stable").index
    dup_track = key.loc[by_popularity].duplicated(keep="first")
    drop = dup_track[dup_track].index
    report.duplicate_tracks = len(drop)
    return frame.drop(index=drop).reset_index(drop=True)


def read_tracks(
    path: Path, progress: bool | None = None, chunk_rows: int = CHUNK_ROWS
) -> tuple[pd.DataFrame, ImportReport]:
    """Read, validate and de-duplicate a track CSV (plain, gzip, bz2 or xz).

    Returns the tracks (columns ``id, name, artists, popularity, year, genre``, the features and the
    optional features; ``year`` and the optional features are float with NaN for unknown) and the
    report. ``progress=None`` shows a bar on big files when stderr is a terminal. Raises
    FileNotFoundError, or :class:`CatalogError` for a file that is not a usable catalog.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no such catalog file: {path}")
    header = read_header(path)
    cols = resolve_columns(header, path.name)
    report = ImportReport(source=path.name, layout=detect_layout(cols))
    if progress is None:
        progress = sys.stderr.isatty() and path.stat().st_size >= PROGRESS_MIN_BYTES
    used = sorted(set(cols.values()))
    text_cols = {cols[f] for f in ("id", "name", "artists", "release_date", "genre") if f in cols}
    parts: list[pd.DataFrame] = []
    try:
        with _open_csv(path, progress) as stream, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)  # mixed types in unused columns
            reader = pd.read_csv(  # every column, so lines with too many fields are caught and skipped
                stream,
                dtype={c: str for c in text_cols},
                chunksize=chunk_rows,
                encoding="utf-8",
                encoding_errors="replace",
                on_bad_lines="warn",
                keep_default_na=False,  # a song may be called "None" or "NA"; only numbers use NA words
                na_values={c: [""] if c in text_cols else _NA_WORDS for c in used},
            )
            for chunk in reader:
                parts.append(_normalise(chunk, cols, report))
        report.malformed = sum(str(w.message).count("Skipping line") for w in caught)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise CatalogError(f"{path.name}: cannot parse as CSV ({str(exc).strip().splitlines()[0]})") from None
    frame = (
        pd.concat(parts, ignore_index=True) if parts else _normalise(pd.DataFrame(columns=used), cols, report)
    )
    frame = _dedupe(frame, report)
    report.kept = len(frame)
    if not report.kept:
        raise CatalogError(
            f"{path.name}: no valid tracks ({report.rows_read:,} rows read, {report.rejected:,} rejected)"
        )
    return frame, report
