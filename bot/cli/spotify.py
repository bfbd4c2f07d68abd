"""Spotify commands for operators: ``keygen``, ``spotify link``, ``spotify unlink``, ``spotify playlist``.

``moodtunes keygen`` prints a new Fernet key for ``MOODTUNES_SECRET_KEY``. ``spotify link`` prints the
authorisation URL for a CLI user, then authorises on whichever comes first: the browser reaching the
callback server at the redirect URI, or the redirected address pasted on standard input; it then
names the Spotify account and links it only if ``yes`` is typed (as the chat asks its users).
``spotify playlist`` picks tracks for an emotion from the local catalog and makes a private playlist.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
from pathlib import Path
from typing import Any

from bot.cli.common import (
    add_db,
    add_json,
    emit,
    fail,
    local_person,
    local_place,
    printable,
    settings_from,
)
from bot.console import LOCAL
from core.app.context import App, load_app_catalog, open_app
from core.app.people import Person, Place
from core.app.replies import Reply
from core.errors import MoodtunesError
from core.spotify import generate_key
from core.spotify.callback_server import CallbackServer
from core.spotify.oauth_state import STATE_TTL_S


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keygen`` and the ``spotify`` sub-commands."""
    p = sub.add_parser("keygen", help="print a new Fernet key for MOODTUNES_SECRET_KEY")
    p.set_defaults(handler=_keygen)

    spotify = sub.add_parser("spotify", help="link Spotify accounts and make playlists")
    actions = spotify.add_subparsers(dest="spotify_command", metavar="ACTION", required=True)

    p = actions.add_parser("link", help="link a user's Spotify account (prints the URL to open)")
    add_db(p)
    p.add_argument("--user", required=True, help="user name (a CLI user, as given to enroll)")
    p.add_argument(
        "--no-server",
        action="store_true",
        help="do not listen at the redirect URI; only take the pasted address",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=STATE_TTL_S,
        help="seconds to wait (default: 600, the link's lifetime)",
    )
    p.set_defaults(handler=lambda a: asyncio.run(_link(a)))

    p = actions.add_parser("unlink", help="delete a user's Spotify tokens")
    add_db(p)
    p.add_argument("--user", required=True, help="user name")
    p.set_defaults(handler=lambda a: asyncio.run(_unlink(a)))

    p = actions.add_parser("playlist", help="make a private playlist for an emotion on a linked account")
    add_db(p)
    p.add_argument("--user", required=True, help="user name (linked with `spotify link`)")
    p.add_argument("--emotion", required=True, help="e.g. happy, sad, angry, neutral")
    p.add_argument("-n", "--count", type=int, default=None, help="number of tracks (default 10)")
    p.add_argument("--policy", choices=("match", "lift"), default="match", help="match or lift the mood")
    p.add_argument("--catalog", type=Path, help="track catalog (env MOODTUNES_CATALOG)")
    add_json(p)
    p.set_defaults(handler=lambda a: asyncio.run(_playlist(a)))


def _keygen(args: argparse.Namespace) -> int:
    print(generate_key())
    return 0


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    """Lines of standard input, read by a daemon thread (so a pending read never blocks exit); None at EOF."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def read() -> None:
        try:
            for line in iter(sys.stdin.readline, ""):
                if line.strip():
                    put(line.strip())
        except (OSError, ValueError):
            pass
        put(None)

    threading.Thread(target=read, name="stdin-paste", daemon=True).start()
    return queue


async def _link(args: argparse.Namespace) -> int:
    """The same linking as ``/linkspotify`` in chat, for a local user, with the same confirmation."""
    settings = settings_from(args)
    async with open_app(settings, lazy_models=True, with_catalog=False) as app:
        if not app.spotify.enabled:
            return fail(str(app.spotify.disabled_reason))
        person, place = local_person(args.user), local_place()
        loop = asyncio.get_running_loop()
        asked: asyncio.Future[Reply] = loop.create_future()

        async def on_question(who: Person, reply: Reply) -> None:
            if who.platform == person.platform and who.external_id == person.external_id and not asked.done():
                asked.set_result(reply)

        app.service.on_spotify_linked(on_question)
        server: CallbackServer | None = None
        if not args.no_server:
            try:
                server = CallbackServer(app.spotify)
                await server.start()
            except (ValueError, OSError) as exc:
                server = None
                print(f"(not listening at the redirect URI: {exc}; paste the address instead)", flush=True)
        lines = _stdin_lines(loop)
        try:
            reply = await app.service.link_spotify(person, place)
            if reply.error or reply.link is None:
                return fail(reply.text)
            print(
                "Open this address in a browser and allow access (valid for 10 minutes):"
                f"\n\n  {reply.link}\n",
                flush=True,
            )
            print(
                "Waiting for Spotify to send the browser back, or paste the address it was sent to:"
                if server is not None
                else "Then paste the address the browser was sent to:",
                flush=True,
            )
            async with asyncio.timeout(args.timeout):
                question, answer = await _wait_for_question(
                    app, person, place, asked, lines, server is not None
                )
                if question is None:
                    return fail("no address was pasted; nothing was linked")
                if question.error or len(question.buttons) != 2:
                    return fail(question.text)
                done = await _confirm(app, person, place, question, answer, lines)
        except TimeoutError:
            return fail("timed out waiting for the Spotify link; run the command again")
        finally:
            if server is not None:
                await server.close()
        if done.error:
            return fail("nothing was linked")
        user = await app.store.find_user(person.platform, person.external_id)
        name = await app.spotify.linked_name(user) if user is not None else None
    print(printable(f"Linked {args.user} to the Spotify account {name or 'you chose'}."), flush=True)
    return 0


async def _wait_for_question(
    app: App,
    person: Person,
    place: Place,
    asked: asyncio.Future[Reply],
    lines: asyncio.Queue[str | None],
    serving: bool,
) -> tuple[Reply | None, str | None]:
    """The question confirming the account (from the callback page, or the answer to a pasted address),
    and a line typed meanwhile that answers it, if any; ``(None, None)`` if standard input ends first
    (and no callback page is waiting)."""
    stdin_open = True
    early: str | None = None
    while True:
        waiters: list[asyncio.Future[Any]] = [asked]
        reader: asyncio.Future[str | None] | None = None
        if stdin_open:
            reader = asyncio.ensure_future(lines.get())
            waiters.append(reader)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if reader is not None and not reader.done():
                reader.cancel()
        line = reader.result() if reader is not None and reader.done() else None
        if asked.done():
            return asked.result(), early if early is not None else line
        if reader is None or not reader.done():
            continue
        if line is None:
            if not serving:
                return None, None
            stdin_open = False  # keep waiting for the browser
            continue
        if "state=" not in line:
            early = line  # typed before the callback page asked: the answer to its question
            continue
        answer = await app.service.handle_text(person, place, line)
        return answer or Reply("That is not a Spotify address.", error=True), None


async def _confirm(
    app: App,
    person: Person,
    place: Place,
    question: Reply,
    answer: str | None,
    lines: asyncio.Queue[str | None],
) -> Reply:
    """Show the question; "yes" presses its Yes button, anything else (or end of input) its No."""
    print(printable(question.text), flush=True)
    print("Type yes to link it, anything else to cancel:", flush=True)
    if answer is None:
        answer = await lines.get()
    yes = (answer or "").strip().casefold() in ("y", "yes")
    button = question.buttons[0 if yes else 1]
    reply = await app.service.press(person, place, button.data)
    print(printable(reply.text), flush=True)
    return reply if yes else Reply(reply.text, error=True)


async def _unlink(args: argparse.Namespace) -> int:
    async with open_app(settings_from(args), lazy_models=True, with_catalog=False) as app:
        user = await app.store.find_user(LOCAL, args.user)
        removed = user is not None and await app.spotify.unlink(user)
    print(f"{args.user}: Spotify {'unlinked' if removed else 'was not linked'}")
    return 0


async def _playlist(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    count = args.count if args.count is not None else settings.tracks_default
    if not 1 <= count <= 10_000:
        return fail("-n must be between 1 and 10000")
    async with open_app(settings, lazy_models=True, with_catalog=False) as app:
        if not app.spotify.enabled:
            return fail(str(app.spotify.disabled_reason))
        user = await app.store.find_user(LOCAL, args.user)
        if user is None or not await app.spotify.is_linked(user):
            return fail(f"{args.user} has no linked Spotify account; run `moodtunes spotify link` first")
        try:
            catalog = await asyncio.to_thread(load_app_catalog, settings)
            if catalog is None:
                return fail("no track catalog: set MOODTUNES_CATALOG or pass --catalog")
            track_ids = [t.id for t in catalog.recommend(emotion=args.emotion, n=count, policy=args.policy)]
        except (MoodtunesError, OSError, ValueError, KeyError) as exc:
            return fail(f"cannot pick tracks for {args.emotion!r}: {exc}")
        if not track_ids:
            return fail(f"the catalog has no tracks for {args.emotion!r}")
        try:
            url = await app.spotify.create_playlist(user, track_ids, args.emotion)
        except MoodtunesError as exc:
            return fail(str(exc))
    emit(
        {"user": args.user, "emotion": args.emotion, "tracks": len(track_ids), "url": url},
        args.json,
        f"Made a playlist of {len(track_ids)} songs for {args.user} ({args.emotion}): {url}",
    )
    return 0
