"""Spotify commands for operators: ``keygen``, ``spotify link``, ``spotify unlink``, ``spotify playlist``.

``moodtunes keygen`` prints a new Fernet key for ``MOODTUNES_SECRET_KEY``. ``spotify link`` prints the
authorisation URL for a CLI user, then finishes on whichever comes first: the browser reaching the
callback server at the redirect URI, or the redirected address pasted on standard input.
``spotify playlist`` picks tracks for an emotion from the local catalog and makes a private playlist.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from bot.cli.common import CLI_PLATFORM, add_db, add_json, emit, settings_from
from core.config import Settings
from core.errors import MoodtunesError
from core.spotify import SpotifyService, generate_key
from core.spotify.callback_server import CallbackServer
from core.spotify.oauth_state import STATE_TTL_S
from core.storage import Store

DEFAULT_CATALOG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "spotify" / "tracks.csv"
"""Catalog used when ``MOODTUNES_CATALOG`` / ``--catalog`` is not given: ``../shared/data/spotify``."""


class _Track(Protocol):
    id: str


class _Catalog(Protocol):
    def recommend(self, *, emotion: str, n: int, policy: str = "match") -> Sequence[_Track]: ...


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


def _fail(message: str) -> int:
    print(f"moodtunes: {message}", file=sys.stderr, flush=True)
    return 1


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
    settings = settings_from(args)
    store = await Store.open(settings.db)
    server: CallbackServer | None = None
    try:
        service = SpotifyService(settings, store)
        if not service.enabled:
            return _fail(str(service.disabled_reason))
        user_id = await store.ensure_user(CLI_PLATFORM, args.user, args.user)
        loop = asyncio.get_running_loop()
        linked: asyncio.Future[str] = loop.create_future()

        async def on_linked(linked_user: int, name: str) -> None:
            if linked_user == user_id and not linked.done():
                linked.set_result(name)

        service.on_linked(on_linked)
        if not args.no_server:
            try:
                server = CallbackServer(service)
                await server.start()
            except (ValueError, OSError) as exc:
                server = None
                print(f"(not listening at the redirect URI: {exc}; paste the address instead)", flush=True)
        url = await service.start_link(user_id)
        print(
            f"Open this address in a browser and allow access (valid for 10 minutes):\n\n  {url}\n",
            flush=True,
        )
        if server is not None:
            print(
                "Waiting for Spotify to send the browser back, or paste the address it was sent to:",
                flush=True,
            )
        else:
            print("Then paste the address the browser was sent to:", flush=True)
        async with asyncio.timeout(args.timeout):
            name = await _wait_for_link(service, user_id, linked, _stdin_lines(loop), server is not None)
    except TimeoutError:
        return _fail("timed out waiting for the Spotify link; run the command again")
    except MoodtunesError as exc:
        return _fail(str(exc))
    finally:
        if server is not None:
            await server.close()
        await store.close()
    if name is None:
        return _fail("no address was pasted; nothing was linked")
    print(f"Linked {args.user} to the Spotify account {name}.", flush=True)
    return 0


async def _wait_for_link(
    service: SpotifyService,
    user_id: int,
    linked: asyncio.Future[str],
    lines: asyncio.Queue[str | None],
    serving: bool,
) -> str | None:
    """The linked account's name from the callback or a pasted address; None if stdin ends first."""
    stdin_open = True
    while True:
        waiters: list[asyncio.Future[Any]] = [linked]
        reader: asyncio.Future[str | None] | None = None
        if stdin_open:
            reader = asyncio.ensure_future(lines.get())
            waiters.append(reader)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if reader is not None and not reader.done():
                reader.cancel()
        if linked.done():
            return linked.result()
        assert reader is not None
        pasted = reader.result()
        if pasted is None:
            if not serving:
                return None
            stdin_open = False  # keep waiting for the browser
            continue
        return await service.finish_link(user_id, pasted)


async def _unlink(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = await Store.open(settings.db)
    try:
        user_id = await store.find_user(CLI_PLATFORM, args.user)
        removed = user_id is not None and await SpotifyService(settings, store).unlink(user_id)
    finally:
        await store.close()
    print(f"{args.user}: Spotify {'unlinked' if removed else 'was not linked'}")
    return 0


def _catalog_path(settings: Settings) -> Path:
    return settings.catalog or DEFAULT_CATALOG


def _recommend(settings: Settings, emotion: str, n: int, policy: str) -> list[str]:
    """Track ids for the emotion from the local catalog (``core.music``; loaded lazily, it is heavy)."""
    music: Any = importlib.import_module("core.music")
    catalog: _Catalog = music.load_catalog(_catalog_path(settings), cache_dir=settings.cache_dir)
    return [track.id for track in catalog.recommend(emotion=emotion, n=n, policy=policy)]


async def _playlist(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    count = args.count if args.count is not None else settings.tracks_default
    if not 1 <= count <= 10_000:
        return _fail("-n must be between 1 and 10000")
    store = await Store.open(settings.db)
    try:
        service = SpotifyService(settings, store)
        if not service.enabled:
            return _fail(str(service.disabled_reason))
        user_id = await store.find_user(CLI_PLATFORM, args.user)
        if user_id is None or not await service.is_linked(user_id):
            return _fail(f"{args.user} has no linked Spotify account; run `moodtunes spotify link` first")
        try:
            track_ids = await asyncio.to_thread(_recommend, settings, args.emotion, count, args.policy)
        except ModuleNotFoundError as exc:
            if exc.name not in ("core.music", "core"):
                raise
            return _fail("the music module (core.music) is not installed; cannot pick tracks")
        except (FileNotFoundError, ValueError, KeyError) as exc:
            return _fail(f"cannot pick tracks for {args.emotion!r}: {exc}")
        if not track_ids:
            return _fail(f"the catalog has no tracks for {args.emotion!r}")
        url = await service.create_playlist(user_id, track_ids, args.emotion)
    except MoodtunesError as exc:
        return _fail(str(exc))
    finally:
        await store.close()
    emit(
        {"user": args.user, "emotion": args.emotion, "tracks": len(track_ids), "url": url},
        args.json,
        f"Made a playlist of {len(track_ids)} songs for {args.user} ({args.emotion}): {url}",
    )
    return 0
