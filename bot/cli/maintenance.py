"""Housekeeping commands: ``models prepare`` (offline model set-up), ``demo`` and ``rotate-key``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.cli.common import add_db, fail, settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``models``, ``demo`` and ``rotate-key``."""
    p = sub.add_parser("models", help="prepare and check the model files")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    prep = msub.add_parser("prepare", help="convert FaceNet weights (offline) and verify every model")
    prep.set_defaults(handler=_prepare)

    p = sub.add_parser("demo", help="the whole flow on a photo that ships with scikit-image")
    p.add_argument("--db", type=Path, help="SQLite file for the demo (default: a temporary one)")
    p.add_argument(
        "--catalog",
        type=Path,
        help="track catalog (default: MOODTUNES_CATALOG, else the shared one)",
    )
    p.set_defaults(handler=_demo)

    p = sub.add_parser(
        "rotate-key",
        help="re-encrypt stored Spotify tokens under the first key of MOODTUNES_SECRET_KEY",
        description=(
            "Key rotation: set MOODTUNES_SECRET_KEY=NEW,OLD (moodtunes keygen makes NEW) for every "
            "process, run this once, then set MOODTUNES_SECRET_KEY=NEW: the old key can be destroyed."
        ),
    )
    add_db(p)
    p.set_defaults(handler=lambda a: asyncio.run(_rotate_key(a)))


def _prepare(args: argparse.Namespace) -> int:
    from core.vision.models_check import prepare_models

    settings = settings_from(args)
    ok = True
    for line, good in prepare_models(settings):
        print(("ok    " if good else "FAIL  ") + line)
        ok &= good
    if not ok:
        print("moodtunes: some models are not ready (see FAIL lines)", file=sys.stderr)
    return 0 if ok else 1


def _demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo(settings_from(args), args.db)


async def _rotate_key(args: argparse.Namespace) -> int:
    from core.spotify import SpotifyError, SpotifyService
    from core.storage import open_store

    settings = settings_from(args)
    store = await open_store(settings.db, settings.db_pool_size)
    try:
        result = await SpotifyService(settings, store).rotate_key()
    except SpotifyError as exc:
        return fail(str(exc))
    finally:
        await store.close()
    print(
        f"Re-encrypted {result.reencrypted} stored Spotify token(s) under the first key of "
        "MOODTUNES_SECRET_KEY; the other keys can now be removed from it."
    )
    if result.unreadable:
        return fail(
            f"{result.unreadable} stored Spotify token(s) could not be read with any of the keys and "
            "were left as they are (those users must link Spotify again)"
        )
    return 0
