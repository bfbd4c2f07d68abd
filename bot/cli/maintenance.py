"""Housekeeping commands: ``models prepare`` (offline model set-up) and ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.common import settings_from


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``models`` and ``demo``."""
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
