"""Music commands: ``catalog import``, ``catalog fetch`` and ``recommend``.

::

    moodtunes catalog import tracks.csv --out tracks.parquet
    moodtunes catalog fetch
    moodtunes recommend --catalog tracks.parquet --emotion sad --policy lift -n 15 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.cli.common import add_json, emit, settings_from
from core.music.moods import MOODS, POLICIES
from core.vision.emotion.labels import EMOTIONS

EXIT_FAILURE, EXIT_USAGE = 1, 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``catalog`` (``import``, ``fetch``) and ``recommend``."""
    p = sub.add_parser("catalog", help="import or download a track catalog with audio features")
    csub = p.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")

    imp = csub.add_parser(
        "import",
        help="read a Spotify CSV (Kaggle 1921-2020, Spotify Tracks Dataset, spotify_tracks), "
        "cluster it by mood and store it as one Parquet file",
    )
    imp.add_argument("path", type=Path, metavar="PATH", help="CSV file (plain, .gz, .bz2 or .xz)")
    imp.add_argument(
        "--out", type=Path, help="Parquet file or folder to write (default: ./<name of PATH>.parquet)"
    )
    imp.add_argument("--seed", type=int, default=0, help="KMeans seed (default 0)")
    imp.add_argument(
        "--clusters", type=int, metavar="K", help="number of clusters (default: the elbow of the inertia)"
    )
    add_json(imp)
    imp.set_defaults(handler=_import)

    fetch = csub.add_parser(
        "fetch", help="download a public catalog, checked against a pinned sha256 (needs internet)"
    )
    fetch.add_argument("--out", type=Path, help="file to write (default: the user data folder)")
    fetch.add_argument("--url", help="another catalog to download (needs --sha256)")
    fetch.add_argument("--sha256", help="hex sha256 the download must have (with --url)")
    fetch.add_argument("--timeout", type=float, default=30.0, help="network timeout, seconds (default 30)")
    add_json(fetch)
    fetch.set_defaults(handler=_fetch)

    rec = sub.add_parser("recommend", help="tracks for an emotion or a mood from the local catalog")
    rec.add_argument("--catalog", type=Path, help="CSV or imported catalog (env MOODTUNES_CATALOG)")
    which = rec.add_mutually_exclusive_group(required=True)
    which.add_argument("--emotion", choices=EMOTIONS, help="emotion of the face")
    which.add_argument("--mood", choices=list(MOODS), help="music mood wanted")
    rec.add_argument(
        "-n", type=int, dest="n", help="number of tracks, 1-50 (default: MOODTUNES_TRACKS_DEFAULT, 10)"
    )
    rec.add_argument(
        "--policy", choices=POLICIES, default="match", help="match the mood (default) or lift it"
    )
    rec.add_argument(
        "--exclude", action="append", default=[], metavar="ID", help="track id not to repeat (repeatable)"
    )
    rec.add_argument("--json", action="store_true", help="print a JSON array of tracks")
    rec.set_defaults(handler=_recommend)


def _fail(message: str, as_json: bool, code: str, status: int = EXIT_FAILURE) -> int:
    """One line on stderr (and a JSON error object on stdout in JSON mode); returns ``status``."""
    if as_json:
        print(json.dumps({"error": message, "code": code}, ensure_ascii=False), flush=True)
    print(f"moodtunes: {message}", file=sys.stderr, flush=True)
    return status


def _import(args: argparse.Namespace) -> int:
    from core.music.errors import CatalogError
    from core.music.store import import_catalog, is_imported, save_catalog

    path: Path = args.path
    if path.is_file() and is_imported(path):
        return _fail(f"{path} is already an imported catalog; use it as --catalog", args.json, "bad_catalog")
    out: Path = args.out or Path.cwd() / (path.name.split(".")[0] + ".parquet")
    try:
        catalog = import_catalog(path, seed=args.seed, k=args.clusters)
        saved = save_catalog(catalog, out)
    except FileNotFoundError as exc:
        return _fail(str(exc), args.json, "file_not_found")
    except CatalogError as exc:
        return _fail(str(exc), args.json, exc.code)
    except ValueError as exc:
        return _fail(str(exc), args.json, "bad_argument", EXIT_USAGE)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc}", args.json, "write_failed")
    report = catalog.report
    assert report is not None
    model = catalog.model
    record: dict[str, Any] = {
        **report.as_dict(),
        "out": str(saved),
        "k": model.k,
        "criterion": model.criterion,
        "silhouette": model.silhouette,
        "clusters": [
            {"index": c.index, "size": c.size, "valence": round(c.valence, 4), "energy": round(c.energy, 4)}
            for c in catalog.clusters
        ],
    }
    text = "\n".join(
        [
            *report.lines(),
            f"{model.k} clusters ({model.criterion}, seed {model.seed}):",
            *(f"  {line}" for line in catalog.describe()),
            f"saved {saved} in {report.seconds:.1f} s; use it with --catalog {saved} "
            f"or MOODTUNES_CATALOG={saved}",
        ]
    )
    emit(record, args.json, text)
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from core.music.errors import ChecksumMismatch, FetchError
    from core.music.fetch import DEFAULT_SOURCE, default_catalog_dir, fetch_catalog

    if (args.url is None) != (args.sha256 is None):
        return _fail(
            "--url and --sha256 go together: every download is checked against its checksum",
            args.json,
            "bad_argument",
            EXIT_USAGE,
        )
    url = args.url or DEFAULT_SOURCE.url
    sha256 = args.sha256 or DEFAULT_SOURCE.sha256
    name = (
        DEFAULT_SOURCE.filename if args.url is None else (url.rstrip("/").rsplit("/", 1)[-1] or "catalog.csv")
    )
    out: Path = args.out or default_catalog_dir() / name
    try:
        path = fetch_catalog(out, url, sha256, timeout=args.timeout)
    except ChecksumMismatch as exc:
        return _fail(str(exc), args.json, exc.code)
    except FetchError as exc:
        return _fail(str(exc), args.json, exc.code)
    except ValueError as exc:
        return _fail(str(exc), args.json, "bad_argument", EXIT_USAGE)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc}", args.json, "write_failed")
    emit(
        {"path": str(path), "url": url, "sha256": sha256},
        args.json,
        f"saved {path} (sha256 verified); use it with --catalog {path} or MOODTUNES_CATALOG={path}",
    )
    return 0


def _recommend(args: argparse.Namespace) -> int:
    from core.music.errors import CatalogError
    from core.music.store import load_catalog

    settings = settings_from(args)
    if settings.catalog is None:
        return _fail(
            "no track catalog: pass --catalog PATH or set MOODTUNES_CATALOG "
            "(`moodtunes catalog fetch` downloads one)",
            args.json,
            "no_catalog",
            EXIT_USAGE,
        )
    n = args.n if args.n is not None else settings.tracks_default
    try:
        catalog = load_catalog(settings.catalog, cache_dir=settings.cache_dir)
    except FileNotFoundError as exc:
        return _fail(str(exc), args.json, "file_not_found")
    except CatalogError as exc:
        return _fail(str(exc), args.json, exc.code)
    try:
        tracks = catalog.recommend(
            emotion=args.emotion, mood=args.mood, n=n, policy=args.policy, exclude=set(args.exclude)
        )
        label = catalog.mood_of(args.emotion, args.policy, mood=args.mood)
    except ValueError as exc:
        return _fail(str(exc), args.json, "bad_argument", EXIT_USAGE)
    if args.json:
        print(json.dumps([t.as_dict() for t in tracks], ensure_ascii=False, indent=2), flush=True)
        return 0
    word = args.emotion or args.mood
    asked = f"{'an' if word[0] in 'aeiou' else 'a'} {word} {'face' if args.emotion else 'mood'}"
    print(f"{len(tracks)} tracks for {asked}: {label} (from {catalog.source})")
    for i, t in enumerate(tracks, 1):
        print(
            f"{i:>3}. {t.label()} (popularity {t.popularity}, valence {t.valence:.2f}, energy {t.energy:.2f})"
        )
        print(f"     {t.url}")
    return 0
