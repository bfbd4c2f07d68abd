"""A Spotify link binds the right person: an account authorised in a browser is linked only after the
chat user confirms, in the chat, that the account it names is theirs.

The attack: whoever opens a user's authorisation link (a forwarded link, a shared or borrowed
browser, a link preview) signs in to Spotify with *their* account, and the callback used to attach
that account to the user. Now the callback page and a pasted address only park the account (encrypted,
10 minutes), and the user is asked privately "Link the Spotify account X (Spotify user id x) to you?".
These tests drive the real service, the real callback server and spotipy against the fake Spotify,
without the face models (they are never needed here).
"""

from __future__ import annotations

import io
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.console import ConsoleChat
from core.app import texts
from core.app.people import Person, Place
from core.app.replies import Action, Reply
from core.app.service import MoodtunesService
from core.spotify import SpotifyLinkRefused, SpotifyService
from core.spotify.callback_server import CallbackServer
from core.storage import Store, open_store
from core.vision.analyzer import LazyAnalyzer
from core.vision.worker import InferenceWorker
from tests.fakes.spotify import FakeSpotify, fast_policy

ANN = Person("telegram", "1001", "Ann")
ANN_CHAT = Place("telegram", "1001", private=True)
MALLORY = Person("telegram", "6666", "Mallory")
GROUP = Place("telegram", "-100200", "Friends")


def light_service(settings: Any, store: Store, clock: Callable[[], float]) -> MoodtunesService:
    """The real service without loading any model (nothing here sends a photo)."""
    spotify = SpotifyService(settings, store, policy=fast_policy(), clock=clock)
    worker = InferenceWorker(LazyAnalyzer(settings))
    return MoodtunesService(settings, store, worker, None, spotify, clock=clock)


@dataclass
class Bot:
    service: MoodtunesService
    store: Store
    redirect_uri: str
    now: list[float]
    asked: list[tuple[Person, Reply]] = field(default_factory=list)
    """What the adapters' notifier delivered privately (the confirmation questions)."""

    async def link_url(self, person: Person = ANN, place: Place = ANN_CHAT) -> str:
        reply = await self.service.link_spotify(person, place)
        reply = reply.direct or reply
        assert reply.link is not None, reply.text
        return reply.link

    async def user(self, person: Person = ANN) -> int:
        user = await self.store.find_user(person.platform, person.external_id)
        assert user is not None
        return user


@pytest.fixture
async def bot(fake_spotify: FakeSpotify, tmp_path: Path) -> AsyncIterator[Bot]:
    """The service over a SQLite file, its callback server on a free port, a settable clock."""
    fake_spotify.add_user("mallory", "Mallory M.")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    redirect_uri = f"http://127.0.0.1:{sock.getsockname()[1]}/spotify/callback"
    settings = fake_spotify.settings(tmp_path / "db.sqlite3", redirect_uri=redirect_uri)
    store = await open_store(settings.db)
    now = [1_000_000.0]
    service = light_service(settings, store, lambda: now[0])
    running = Bot(service, store, redirect_uri, now)

    async def notify(person: Person, reply: Reply) -> None:
        running.asked.append((person, reply))

    service.on_spotify_linked(notify)
    server = CallbackServer(service.spotify)
    await server.start(sock=sock)
    try:
        yield running
    finally:
        await server.close()
        await service.close()


def button(reply: Reply, action: Action) -> str:
    [data] = [b.data for b in reply.buttons if b.action is action]
    return data


async def open_page(location: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as browser, browser.get(location) as page:
        return page.status, await page.text()


async def test_the_wrong_persons_browser_cannot_silently_attach_an_account(
    bot: Bot, fake_spotify: FakeSpotify
) -> None:
    # Ann asks for a link; Mallory's browser opens it (forwarded, or Mallory's session in a shared browser).
    location = await fake_spotify.authorize(await bot.link_url(), user="mallory")
    status, page = await open_page(location)
    assert status == 200 and "Mallory M." in page and "not linked yet" in page
    ann = await bot.user()
    assert not await bot.service.spotify.is_linked(ann)  # nothing was attached

    # Ann, and only Ann, is asked privately, and the question names the account and its Spotify id.
    [(asked, question)] = bot.asked
    assert (asked.platform, asked.external_id) == (ANN.platform, ANN.external_id)
    assert "Mallory M." in question.text and "mallory" in question.text
    assert [b.action for b in question.buttons] == [Action.SPOTIFY_YES, Action.SPOTIFY_NO]
    assert all(len(b.data.encode()) <= 64 for b in question.buttons)  # Telegram's callback_data limit

    # Mallory cannot answer for Ann, even with the button's data in hand.
    refused = await bot.service.press(MALLORY, GROUP, button(question, Action.SPOTIFY_YES))
    assert refused.error
    assert not await bot.service.spotify.is_linked(ann)
    assert not await bot.service.spotify.is_linked(await bot.user(MALLORY))
    assert await bot.store.spotify_count_pending(ann) == 1

    # Ann says no: nothing is linked and nothing is kept.
    no = await bot.service.press(ANN, ANN_CHAT, button(question, Action.SPOTIFY_NO))
    assert no.text == texts.SPOTIFY_DECLINED and no.closes_question
    assert await bot.store.spotify_count_pending() == 0
    assert await bot.store.spotify_token(ann) is None
    late_yes = await bot.service.press(ANN, ANN_CHAT, button(question, Action.SPOTIFY_YES))
    assert late_yes.error and not await bot.service.spotify.is_linked(ann)


async def test_yes_links_the_named_account(bot: Bot, fake_spotify: FakeSpotify) -> None:
    location = await fake_spotify.authorize(await bot.link_url(), user="alice")
    question = await bot.service.handle_text(ANN, ANN_CHAT, location)  # the pasted address
    assert question is not None and "Alice A." in question.text and not question.error
    ann = await bot.user()
    assert not await bot.service.spotify.is_linked(ann)
    yes = await bot.service.press(ANN, ANN_CHAT, button(question, Action.SPOTIFY_YES))
    assert yes.text == texts.SPOTIFY_LINKED.format(name="Alice A.") and yes.closes_question
    assert await bot.service.spotify.linked_name(ann) == "Alice A."
    assert await bot.store.spotify_count_pending() == 0
    again = await bot.service.press(ANN, ANN_CHAT, button(question, Action.SPOTIFY_YES))
    assert again.text == yes.text  # pressed (or delivered) again: the same answer, nothing else changes
    assert await bot.service.spotify.linked_name(ann) == "Alice A."


async def test_the_callback_page_asks_in_the_chat_and_yes_links(bot: Bot, fake_spotify: FakeSpotify) -> None:
    status, page = await open_page(await fake_spotify.authorize(await bot.link_url(), user="alice"))
    assert status == 200 and "go back to the chat" in page
    [(_, question)] = bot.asked
    yes = await bot.service.press(ANN, ANN_CHAT, button(question, Action.SPOTIFY_YES))
    assert "Spotify linked as Alice A." in yes.text
    assert await bot.service.spotify.is_linked(await bot.user())


async def test_a_newer_authorisation_replaces_the_question(bot: Bot, fake_spotify: FakeSpotify) -> None:
    first = await bot.service.handle_text(
        ANN, ANN_CHAT, await fake_spotify.authorize(await bot.link_url(), user="mallory")
    )
    second = await bot.service.handle_text(
        ANN, ANN_CHAT, await fake_spotify.authorize(await bot.link_url(), user="alice")
    )
    assert first is not None and second is not None
    assert await bot.store.spotify_count_pending() == 1
    stale = await bot.service.press(ANN, ANN_CHAT, button(first, Action.SPOTIFY_YES))
    assert stale.error and not await bot.service.spotify.is_linked(await bot.user())
    await bot.service.press(ANN, ANN_CHAT, button(second, Action.SPOTIFY_YES))
    assert await bot.service.spotify.linked_name(await bot.user()) == "Alice A."


async def test_expired_confirmations_are_refused_and_swept(fake_spotify: FakeSpotify, db_url: str) -> None:
    settings = fake_spotify.settings(db_url)  # type: ignore[arg-type]
    store = await open_store(db_url)
    now = [1_000_000.0]
    service = light_service(settings, store, lambda: now[0])
    try:
        url = (await service.link_spotify(ANN, ANN_CHAT)).link
        assert url is not None
        question = await service.handle_text(ANN, ANN_CHAT, await fake_spotify.authorize(url))
        assert question is not None and question.buttons
        ann = await store.find_user(ANN.platform, ANN.external_id)
        assert ann is not None and await store.spotify_count_pending(ann) == 1

        now[0] += 601  # the question lasts 10 minutes
        late = await service.press(ANN, ANN_CHAT, button(question, Action.SPOTIFY_YES))
        assert late.error and "expired" in late.text
        assert not await service.spotify.is_linked(ann)
        assert await store.spotify_count_pending() == 0  # the late answer deleted it

        # One left unanswered is swept once expired, with nothing linked.
        url = (await service.link_spotify(ANN, ANN_CHAT)).link
        assert url is not None
        await service.handle_text(ANN, ANN_CHAT, await fake_spotify.authorize(url))
        assert (await service.sweep())["spotify_pending_links"] == 0
        now[0] += 601
        assert (await service.sweep())["spotify_pending_links"] == 1
        assert await store.spotify_count_pending() == 0
        assert not await service.spotify.is_linked(ann)
    finally:
        await service.close()


async def test_a_hostile_spotify_name_is_escaped_in_the_terminal(bot: Bot, fake_spotify: FakeSpotify) -> None:
    """A Spotify display name is chosen by whoever owns the account: the terminal chat prints its control
    characters escaped, never as escape codes (clear the screen, retitle the window, fake a prompt)."""
    hostile = "\x1b[2J\x1b]0;pwned\x07Mal\rbot> all good"
    fake_spotify.add_user("mal", hostile)
    out = io.StringIO()
    console = ConsoleChat(bot.service, out=out, user="ann")
    link = await bot.link_url(console.person, console.place)
    console.show(await _reply(console, await fake_spotify.authorize(link, user="mal")))
    console.show(await _reply(console, "yes"))
    printed = out.getvalue()
    assert "\\x1b[2J\\x1b]0;pwned\\x07Mal\\x0dbot> all good" in printed
    assert not any(c in printed for c in "\x1b\x07\r")
    assert await bot.service.spotify.is_linked(await bot.user(console.person))


async def _reply(console: ConsoleChat, line: str) -> Reply:
    reply = await console.handle(line)
    assert reply is not None
    return reply


async def test_a_redelivered_paste_is_asked_again_not_refused(
    fake_spotify: FakeSpotify, spotify_service: SpotifyService, spotify_store: Store
) -> None:
    """A worker authorised a pasted address and died before asking; Telegram delivers the same message
    again: its state is used up, but the same request gets the same account with a fresh question."""
    user = await spotify_store.ensure_user("telegram", "1", "Ann")
    pasted = await fake_spotify.authorize(await spotify_service.start_link(user), user="alice")
    first = await spotify_service.finish_link(user, pasted, "telegram:41")
    again = await spotify_service.finish_link(user, pasted, "telegram:41")
    assert (again.display_name, again.spotify_id) == (first.display_name, first.spotify_id)
    assert again.confirm != first.confirm  # the first question never reached the user
    with pytest.raises(SpotifyLinkRefused):  # another request with the used state is still refused
        await spotify_service.finish_link(user, pasted, "telegram:42")
    assert await spotify_service.confirm_link(user, again.confirm) == first.display_name
    assert await spotify_service.is_linked(user)
