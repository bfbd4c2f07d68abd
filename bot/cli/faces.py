"""Face commands: ``enroll``, ``identify``, ``analyze`` and ``forget``, over the application.

Each file gets one line (text or ``--json``); a file that fails gets its own ``"error"`` line with a
``"code"`` (``internal`` for the unexpected, with the traceback in the log) and the next file is
processed. ``enroll`` and ``forget`` run the same code as ``/enroll`` and ``/forget`` in chat.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from bot.cli.common import (
    add_db,
    add_json,
    check_file,
    emit,
    error_record,
    fail,
    local_person,
    local_place,
    open_cli_app,
    settings_from,
)
from bot.console import LOCAL
from core.app.photos import group_mood
from core.errors import NoFace
from core.vision.imaging import read_image_file
from core.vision.recognizer import IdentifiedFace

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the face sub-commands."""
    p = sub.add_parser("enroll", help="enrol a user's face from selfies (one dominant face each)")
    add_db(p)
    p.add_argument(
        "--chat", default=None, help="chat: the scope faces are matched in (default: the terminal's)"
    )
    p.add_argument("--user", required=True, help="user name")
    add_json(p)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(handler=lambda a: asyncio.run(_enroll(a)))

    p = sub.add_parser("identify", help="name every face in the photos (or unknown)")
    add_db(p)
    p.add_argument("--chat", default=None, help="chat whose enrolled users are matched")
    add_json(p)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(handler=lambda a: asyncio.run(_identify(a, with_emotion=False)))

    p = sub.add_parser("analyze", help="faces with boxes, identity and emotion")
    add_db(p)
    p.add_argument("--chat", default=None, help="chat to identify faces in")
    add_json(p)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(handler=lambda a: asyncio.run(_identify(a, with_emotion=True)))

    p = sub.add_parser("forget", help="delete a user everywhere: face samples, settings, tokens")
    add_db(p)
    p.add_argument("--user", required=True, help="user name (as given to enroll)")
    p.add_argument("--platform", default=LOCAL, help=f"platform the user is from (default {LOCAL})")
    add_json(p)
    p.set_defaults(handler=lambda a: asyncio.run(_forget(a)))


async def _enroll(args: argparse.Namespace) -> int:
    failures = 0
    async with open_cli_app(settings_from(args), with_catalog=False) as app:
        user, chat = await app.service.ids(local_person(args.user), local_place(args.chat))
        for path in args.images:
            try:
                result = await app.service.recognizer.enroll(user, chat, read_image_file(check_file(path)))
            except Exception as exc:  # noqa: BLE001 - any failure on one file is that file's error line
                failures += 1
                _log_unexpected(path, exc)
                emit(error_record(str(path), exc), args.json, "")
                continue
            record = {
                "file": str(path),
                "user": args.user,
                "chat": local_place(args.chat).external_id,
                "box": result.analysis.face.rounded_box(),
                "samples": result.samples,
            }
            emit(
                record,
                args.json,
                f"{path}: enrolled {args.user} in chat {record['chat']} ({result.samples} samples)",
            )
    return 1 if failures else 0


def face_record(face: IdentifiedFace, with_emotion: bool) -> dict[str, Any]:
    """JSON form of one identified face."""
    record: dict[str, Any] = {
        "box": face.analysis.face.rounded_box(),
        "score": round(face.analysis.face.score, 4),
        "user": face.match.name,
        "similarity": round(face.match.similarity, 4),
    }
    emotion = face.analysis.emotion
    if with_emotion and emotion is not None:
        record["emotion"] = emotion.label
        record["emotion_scores"] = {k: round(v, 4) for k, v in emotion.scores.items()}
    return record


def _face_text(face: dict[str, Any]) -> str:
    who = face["user"] or "unknown"
    text = f"  {who} (similarity {face['similarity']:.2f}) at {face['box']}"
    if "emotion" in face:
        text += f", {face['emotion']} {face['emotion_scores'][face['emotion']]:.0%}"
    return text


def _count_text(shown: int, found: int, more: bool) -> str:
    """``3 face(s)``, or ``the 20 largest of 625 faces`` when only the largest were analysed."""
    if found <= shown:
        return f"{shown} face(s)"
    return f"the {shown} largest of {'at least ' if more else ''}{found} faces"


async def _identify(args: argparse.Namespace, with_emotion: bool) -> int:
    failures = 0
    async with open_cli_app(settings_from(args), with_catalog=False) as app:
        place = local_place(args.chat)
        chat = await app.store.find_chat(place.platform, place.external_id)
        for path in args.images:
            try:
                faces = await app.service.recognizer.identify(chat, read_image_file(check_file(path)))
                if not faces:
                    raise NoFace("no face found")
            except Exception as exc:  # noqa: BLE001 - any failure on one file is that file's error line
                failures += 1
                _log_unexpected(path, exc)
                emit(error_record(str(path), exc), args.json, "")
                continue
            records = [face_record(f, with_emotion) for f in faces]
            text = f"{path}: {_count_text(len(records), faces.found, faces.more)}\n"
            text += "\n".join(_face_text(r) for r in records)
            record: dict[str, Any] = {"file": str(path), "faces": records, "faces_found": faces.found}
            group = group_mood(faces) if with_emotion else None
            if group is not None:  # the mood the songs would follow: the faces' blend, bigger ones weigh more
                record["group"] = {
                    "emotion": group.emotion,
                    "summary": group.text,
                    "scores": {k: round(v, 4) for k, v in group.probabilities.items()},
                }
                text += f"\n  the group: {group.text}"
            emit(record, args.json, text)
    return 1 if failures else 0


async def _forget(args: argparse.Namespace) -> int:
    async with open_cli_app(settings_from(args), lazy_models=True, with_catalog=False) as app:
        user = await app.store.find_user(args.platform, args.user)
        if user is None:
            message = f"no user {args.user!r} on {args.platform}"
            if args.json:
                emit({"user": args.user, "error": message, "code": "not_found"}, True, "")
                return 1
            return fail(message)
        deleted = await app.service.forget_user(user)
    emit(
        {
            "user": args.user,
            "deleted": True,
            "embeddings": deleted.embeddings,
            "spotify_tokens": deleted.spotify_tokens,
        },
        args.json,
        f"deleted {args.user}: {deleted.embeddings} face samples, settings and "
        f"{deleted.spotify_tokens} Spotify token(s)",
    )
    return 0


def _log_unexpected(path: Path, exc: BaseException) -> None:
    if error_record(str(path), exc)["code"] == "internal":
        log.error("unexpected failure on %s", path, exc_info=exc)
