"""Shared pieces of the CLI: settings from flags, the face services, and one-line output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.config import Settings, load_settings
from core.errors import MoodtunesError
from core.imaging import MIN_SIDE, read_image_file
from core.inference import InferenceWorker
from core.pipeline import FacePipeline
from core.recognition import Recognizer
from core.storage import Store

CLI_PLATFORM = "cli"
"""Users and chats made from the command line live under this platform name."""


def add_db(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``--db PATH`` (default: MOODTUNES_DB, else the user data directory)."""
    parser.add_argument("--db", type=Path, required=required, help="SQLite file (env MOODTUNES_DB)")


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: one JSON object per line."""
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings with CLI flags (``--db``, ``--catalog``, ``--log-level``) over the environment."""
    return load_settings(
        db=getattr(args, "db", None),
        catalog=getattr(args, "catalog", None),
        log_level=getattr(args, "log_level", None),
    )


@dataclass
class FaceServices:
    """What the face commands need: the store (if any), the worker and the recognizer."""

    store: Store | None
    worker: InferenceWorker
    recognizer: Recognizer | None


@asynccontextmanager
async def face_services(settings: Settings, with_store: bool = True) -> AsyncIterator[FaceServices]:
    """Open the store (optional) and load the models; close everything on exit."""
    pipeline = FacePipeline(settings)
    worker = InferenceWorker(pipeline)
    store = await Store.open(settings.db) if with_store else None
    try:
        recognizer = Recognizer(store, worker) if store is not None else None
        yield FaceServices(store, worker, recognizer)
    finally:
        await worker.close()
        if store is not None:
            await store.close()


def load_image(path: Path, min_side: int = MIN_SIDE) -> np.ndarray:
    """Decode an image file; raises FileNotFoundError or a BadImage error."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return read_image_file(path, min_side)


def error_record(file: str, exc: BaseException) -> dict[str, Any]:
    """The JSON line for a file that failed."""
    code = (
        exc.code
        if isinstance(exc, MoodtunesError)
        else ("file_not_found" if isinstance(exc, FileNotFoundError) else "error")
    )
    message = str(exc) if isinstance(exc, MoodtunesError | FileNotFoundError) else repr(exc)
    return {"file": file, "error": message, "code": code}


def emit(record: dict[str, Any], as_json: bool, text: str) -> None:
    """Print the record as one JSON line, or ``text`` for people; errors go to stderr in text mode."""
    if as_json:
        print(json.dumps(record, ensure_ascii=False), flush=True)
    elif "error" in record:
        print(f"{record['file']}: {record['error']}", file=sys.stderr, flush=True)
    else:
        print(text, flush=True)
