"""Face commands: ``enroll``, ``identify``, ``analyze`` and ``forget``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.cli.common import (
    CLI_PLATFORM,
    add_db,
    add_json,
    emit,
    error_record,
    face_services,
    load_image,
    settings_from,
)
from core.errors import MoodtunesError, NoFace
from core.recognition import IdentifiedFace


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the face sub-commands."""
    p = sub.add_parser("enroll", help="enrol a user's face from selfies (one dominant face each)")
    add_db(p)
    p.add_argument("--chat", default="default", help="chat id: the scope faces are matched in")
    p.add_argument("--user", required=True, help="user name")
    add_json(p)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(handler=lambda a: asyncio.run(_enroll(a)))

    p = sub.add_parser("identify", help="name every face in the photos (or unknown)")
    add_db(p)
    p.add_argument("--chat", default="default", help="chat id whose enrolled users are matched")
    add_json(p)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(handler=lambda a: asyncio.run(_identify(a, with_emotion=False)))

    p = sub.add_parser("analyze", help="faces with boxes, identity and emotion")
    add_db(p)
    p.add_argument("--chat", default=None, help="chat id to identify faces in (needs --db or env)")
    add_json(p)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(handler=lambda a: asyncio.run(_identify(a, with_emotion=True)))

    p = sub.add_parser("forget", help="delete a user everywhere: face samples, settings, tokens")
    add_db(p)
    p.add_argument("--user", required=True, help="user name (as given to enroll)")
    p.add_argument("--platform", default=CLI_PLATFORM, help="platform the user is from (default cli)")
    add_json(p)
    p.set_defaults(handler=lambda a: asyncio.run(_forget(a)))


async def _enroll(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    failures = 0
    async with face_services(settings) as svc:
        assert svc.store is not None and svc.recognizer is not None
        user_id = await svc.store.ensure_user(CLI_PLATFORM, args.user, args.user)
        chat_id = await svc.store.ensure_chat(CLI_PLATFORM, args.chat, args.chat)
        for path in args.images:
            try:
                result = await svc.recognizer.enroll(user_id, chat_id, load_image(path))
            except (MoodtunesError, FileNotFoundError) as exc:
                failures += 1
                emit(error_record(str(path), exc), args.json, "")
                continue
            record = {
                "file": str(path),
                "user": args.user,
                "chat": args.chat,
                "box": result.analysis.face.rounded_box(),
                "samples": result.samples,
            }
            emit(
                record,
                args.json,
                f"{path}: enrolled {args.user} in chat {args.chat} ({result.samples} samples)",
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


async def _identify(args: argparse.Namespace, with_emotion: bool) -> int:
    settings = settings_from(args)
    use_store = not with_emotion or args.chat is not None
    failures = 0
    async with face_services(settings, with_store=use_store) as svc:
        chat_id = None
        if svc.store is not None:
            chat_id = await svc.store.find_chat(CLI_PLATFORM, args.chat or "default")
        for path in args.images:
            try:
                rgb = load_image(path)
                if svc.recognizer is not None and chat_id is not None:
                    faces = await svc.recognizer.identify(chat_id, rgb)
                else:  # no gallery: every face is unknown
                    from core.identity import Match

                    faces = [IdentifiedFace(a, Match(None, None, 0.0)) for a in await svc.worker.analyze(rgb)]
                if not faces:
                    raise NoFace("no face found")
            except (MoodtunesError, FileNotFoundError) as exc:
                failures += 1
                emit(error_record(str(path), exc), args.json, "")
                continue
            records = [face_record(f, with_emotion) for f in faces]
            text = f"{path}: {len(records)} face(s)\n" + "\n".join(_face_text(r) for r in records)
            emit({"file": str(path), "faces": records}, args.json, text)
    return 1 if failures else 0


async def _forget(args: argparse.Namespace) -> int:
    from core.storage import Store

    settings = settings_from(args)
    store = await Store.open(settings.db)
    try:
        user_id = await store.find_user(args.platform, args.user)
        if user_id is None:
            message = f"no user {args.user!r} on {args.platform}"
            if args.json:
                emit({"user": args.user, "error": message, "code": "not_found"}, True, "")
            else:
                print(f"moodtunes: {message}", file=sys.stderr)
            return 1
        deleted = await store.delete_user(user_id)
    finally:
        await store.close()
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
