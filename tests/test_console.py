"""The console adapter (``moodtunes chat``): commands, photos as paths, buttons by number or by name."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.console import ConsoleChat
from core.app import texts
from core.app.service import MoodtunesService
from core.vision.analyzer import FaceAnalyzer
from tests.conftest import data_path
from tests.service_fixtures import make_service

pytestmark = pytest.mark.slow


def photos(person: str) -> list[str]:
    return [str(p) for p in sorted(data_path("faces", "lfw10", person).iterdir())]


@pytest.fixture
async def chat(tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path) -> AsyncIterator[ConsoleChat]:
    service: MoodtunesService = await make_service(tmp_path, pipeline, cache_dir)
    yield ConsoleChat(service, out=io.StringIO(), user="ann")
    await service.close()


def printed(chat: ConsoleChat) -> str:
    """Everything the console printed so far."""
    assert isinstance(chat.out, io.StringIO)
    return chat.out.getvalue()


async def say(chat: ConsoleChat, line: str) -> str:
    """Send one line, print the reply as the terminal would, and return the reply's text."""
    reply = await chat.handle(line)
    assert reply is not None
    chat.show(reply)
    return reply.text


async def test_enrol_recognise_buttons_and_forget(chat: ConsoleChat, tmp_path: Path) -> None:
    blair = photos("Tony_Blair")
    assert "Do you agree?" in await say(chat, "/enroll")
    assert [b.label for b in chat.buttons] == ["Yes, enrol me", "No"]
    assert await say(chat, "yes") == texts.SEND_SELFIE  # a button answered by its first word
    assert "I'll recognise you" in await say(chat, blair[0])
    assert "3 songs" in await say(chat, "/tracks 3")

    text = await say(chat, blair[4])
    assert text.startswith("Hi ann!")
    out = printed(chat)
    annotated = Path(out.rsplit("(annotated photo: ", 1)[1].split(")", 1)[0])
    assert annotated.is_file() and annotated.read_bytes()[:2] == b"\xff\xd8"
    first = {line for line in out.splitlines() if "open.spotify.com/track/" in line}
    assert len(first) == 3

    before = printed(chat)
    await say(chat, "More tracks")  # a button by its whole label, any case
    more = {
        line.split("  ", 1)[1]
        for line in printed(chat)[len(before) :].splitlines()
        if "open.spotify.com/track/" in line
    }
    assert len(more) == 3 and not more & {line.split("  ", 1)[1] for line in first}
    assert [b.label for b in chat.buttons] == ["Lift my mood", "More tracks"]
    assert await say(chat, "7") == "Pick a button from 1 to 2."
    assert "Lifting the mood" in await say(chat, "1")  # the buttons outlive the error reply

    assert "Are you sure?" in await say(chat, "/forget")
    assert (await say(chat, "Yes")).startswith("Done. I deleted everything about you")
    assert "I don't know you yet" in await say(chat, blair[4])


async def test_bad_input_gets_a_clear_answer(chat: ConsoleChat, tmp_path: Path) -> None:
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    assert await say(chat, str(notes)) == "That file is not a photo I can read (JPEG, PNG, WebP or GIF)."
    missing = tmp_path / "missing.jpg"
    no_file = f"No file at {missing}. Type a photo's path, a /command, or /help."
    assert await say(chat, str(missing)) == no_file
    assert (await say(chat, "/nope")) == "I don't know /nope. Send /help to see what I can do."
    assert "1 to 50" in await say(chat, "/tracks lots")
    assert await chat.handle("   ") is None


async def test_photo_paths_as_terminals_paste_them(chat: ConsoleChat, tmp_path: Path) -> None:
    selfie = tmp_path / "my selfie.jpg"
    selfie.write_bytes(Path(photos("Colin_Powell")[0]).read_bytes())
    escaped = str(selfie).replace(" ", "\\ ")
    for line in (str(selfie), f"'{selfie}'", f'"{selfie}"', escaped):
        assert "I don't know you yet" in await say(chat, line), line


def test_moodtunes_chat_reads_the_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cache_dir: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOODTUNES_CACHE_DIR", str(cache_dir))
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    colin = photos("Colin_Powell")[0]
    monkeypatch.setattr("sys.stdin", io.StringIO(f"/tracks 2\n{colin}\n/quit\n"))
    assert main(["chat", "--db", str(tmp_path / "chat.sqlite3"), "--user", "ann"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bot> Hi! I'm moodtunes.")
    assert "I'll send 2 songs per photo" in out and "I don't know you yet" in out
    assert out.count("open.spotify.com/track/") == 2
    assert "bye (annotated photos are in" in out
