"""Catalog files: import a CSV once, store tracks and clustering in one Parquet file, load it fast.

An imported catalog is a single Parquet file (the tracks, see
:func:`~core.music.catalog.tracks_table`) whose schema metadata holds, under the key
``moodtunes``, the fitted clustering and the import report as JSON. A folder holding
``catalog.parquet`` is accepted too. A bot start reads that file (about a second for 600k tracks)
and never a CSV: :func:`load_catalog` imports a raw CSV on the fly and, given a cache folder,
keeps the result there under the CSV's content hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.music.catalog import Catalog
from core.music.clustering import ClusterModel, fit_clusters
from core.music.errors import CatalogError
from core.music.importer import ImportReport, read_tracks
from core.music.schema import FEATURES

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
"""Version of the stored file layout; a file of another version is refused (re-import it)."""
RULES_VERSION = 3
"""Version of the import and clustering rules; part of the cache key, so cached imports are redone.

3: optional features (``instrumentalness``) are imported. A file written under 2 still reads (it
lacks the column, so the mood model without it is used)."""
META_KEY = b"moodtunes"
CATALOG_FILE = "catalog.parquet"
"""File name looked for when a catalog path is a folder."""
_PARQUET_MAGIC = b"PAR1"


def import_catalog(path: Path, seed: int = 0, k: int | None = None, progress: bool | None = None) -> Catalog:
    """Import a track CSV: normalise, validate, de-duplicate, cluster.

    ``seed`` drives KMeans; ``k=None`` chooses the number of clusters by the elbow criterion;
    ``progress=None`` shows a bar for big files on a terminal. The report's ``seconds`` covers the
    whole import. Raises FileNotFoundError or :class:`CatalogError`.
    """
    t0 = time.perf_counter()
    frame, report = read_tracks(path, progress)
    model = fit_clusters(frame[list(FEATURES)].to_numpy(dtype=np.float64), seed=seed, k=k)
    catalog = Catalog.from_frame(frame, model, report, source=path.name)
    report.seconds = round(time.perf_counter() - t0, 3)
    return catalog


def save_catalog(catalog: Catalog, out: Path) -> Path:
    """Write ``catalog`` to ``out`` (a ``.parquet`` file, or a folder to hold ``catalog.parquet``).

    The write is atomic (temporary file, then rename). Returns the file written.
    """
    target = out / CATALOG_FILE if out.is_dir() else out
    target.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format_version": FORMAT_VERSION,
        "source": catalog.source,
        "clustering": catalog.model.to_json(),
        "report": catalog.report.as_dict() if catalog.report else None,
    }
    schema_meta = dict(catalog.table.schema.metadata or {})
    schema_meta[META_KEY] = json.dumps(meta).encode()
    table = catalog.table.replace_schema_metadata(schema_meta)
    fd, tmp = tempfile.mkstemp(prefix=".catalog-", suffix=".parquet", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        Path(tmp).chmod(0o644)  # mkstemp makes it private; a catalog is not secret
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def is_imported(path: Path) -> bool:
    """True for a Parquet file, or a folder holding ``catalog.parquet``."""
    if path.is_dir():
        return (path / CATALOG_FILE).is_file()
    with open(path, "rb") as fh:
        return fh.read(4) == _PARQUET_MAGIC


def read_catalog(path: Path) -> Catalog:
    """Read an imported catalog (file or folder); :class:`CatalogError` if it is not one."""
    file = path / CATALOG_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no such catalog: {file}")
    try:
        table = pq.read_table(file)
    except (pa.ArrowException, OSError) as exc:
        raise CatalogError(f"{file.name}: cannot read the catalog ({exc})") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise CatalogError(
            f"{file.name} is a Parquet file but not a moodtunes catalog; import the CSV with "
            "`moodtunes catalog import`"
        )
    try:
        meta = json.loads(raw)
    except ValueError:
        raise CatalogError(f"{file.name}: damaged catalog metadata; import the CSV again") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise CatalogError(
            f"{file.name} was written by another moodtunes version (format {meta.get('format_version')}, "
            f"this one reads {FORMAT_VERSION}); import the CSV again"
        )
    try:
        report = ImportReport.from_dict(meta["report"]) if meta.get("report") else None
        model = ClusterModel.from_json(meta["clustering"])
        source = meta.get("source", file.name)
        return Catalog(table.replace_schema_metadata(None), model, report, source=source)
    except (KeyError, ValueError, TypeError, pa.ArrowException) as exc:
        raise CatalogError(f"{file.name}: damaged catalog ({exc!r}); import the CSV again") from None


def content_key(path: Path, seed: int = 0) -> str:
    """sha256 (hex) of the file's bytes, the format and rules versions and the seed: the cache key."""
    digest = hashlib.sha256(f"moodtunes-catalog:{FORMAT_VERSION}:{RULES_VERSION}:{seed}:".encode())
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def cache_file(path: Path, cache_dir: Path, seed: int = 0) -> Path:
    """Where the imported form of CSV ``path`` is cached: ``catalog-<stem>-<hash16>.parquet``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.name.split(".")[0])[:40] or "tracks"
    return cache_dir / f"catalog-{stem}-{content_key(path, seed)[:16]}.parquet"


def load_catalog(
    path: Path, cache_dir: Path | None = None, *, seed: int = 0, progress: bool | None = None
) -> Catalog:
    """Load a catalog: an imported one (file or folder) as is, a raw CSV by importing it.

    With ``cache_dir``, a CSV's import is stored there under its content hash and reused by the next
    load (a changed file gets a new import). Raises FileNotFoundError or :class:`CatalogError`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such catalog: {path}")
    if is_imported(path):
        return read_catalog(path)
    if cache_dir is None:
        return import_catalog(path, seed=seed, progress=progress)
    cached = cache_file(path, Path(cache_dir), seed)
    if cached.is_file():
        try:
            return read_catalog(cached)
        except CatalogError as exc:
            log.warning("ignoring bad cached catalog %s: %s", cached, exc)
    catalog = import_catalog(path, seed=seed, progress=progress)
    try:
        save_catalog(catalog, cached)
    except OSError as exc:
        log.warning("cannot cache the imported catalog in %s: %s", cache_dir, exc)
    return catalog
