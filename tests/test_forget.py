"""/forget forgets: through the real service (real models, a real SQLite file, Spotify on the fake), a
user enrols, links Spotify, sends photos, then /forget. Afterwards the bytes of the database and of its
-wal and -shm files hold neither the user's name, nor their platform id, nor any of their face
embeddings; a photo of them cannot match; and work in flight for them when they were deleted (an
enrolment, a Spotify code exchange) stores nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from core.app import texts
from core.app.people import Person, Place
from core.app.replies import Action, Reply
from core.app.service import MoodtunesService
from core.spotify import SpotifyService
from core.storage import open_store
from core.vision.analyzer import FaceAnalyzer, LazyAnalyzer
from core.vision.worker import InferenceWorker
from tests.conftest import data_path
from tests.fakes.spotify import FakeSpotify, fast_policy
from tests.service_fixtures import make_service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NAME = "Zebedee Quokkafield"
PLATFORM_ID = "7301294058"
ZED = Person("telegram", PLATFORM_ID, NAME)
ZED_CHAT = Place("telegram", PLATFORM_ID, private=True)  # Telegram: the private chat's id is the user's
GROUP = Place("telegram", "-1009988776655", "Quokka club")
BEA = Person("telegram", "5550001111", "Bea")
VECTOR_WINDOW = 256
"""Bytes of an embedding looked for (64 of its 512 float32 values), at several offsets."""


def photo(number: int, person: str = "Tony_Blair") -> bytes:
    return sorted(data_path("faces", "lfw10", person).iterdir())[number].read_bytes()


def button(reply: Reply, action: Action) -> str:
    [data] = [b.data for b in reply.buttons if b.action is action]
    return data


def raw_bytes(db: Path) -> dict[str, bytes]:
    """Every file SQLite keeps for the database (the file, its -wal and -shm), by name."""
    return {p.name: p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")) if p.is_file()}


def leaks(files: dict[str, bytes], vectors: list[np.ndarray]) -> list[str]:
    """What of the user is still in the files."""
    found = []
    for name, raw in files.items():
        for label, needle in (
            ("name", NAME.encode()),
            ("first name", b"Zebedee"),
            ("surname", b"Quokkafield"),
            ("platform id", PLATFORM_ID.encode()),
            ("spotify name", b"Zed on Spotify"),
        ):
            if needle in raw:
                found.append(f"{label} in {name}")
        for i, vector in enumerate(vectors):
            data = np.asarray(vector, dtype="<f4").tobytes()
            for start in range(0, len(data) - VECTOR_WINDOW + 1, 512):
                if data[start : start + VECTOR_WINDOW] in raw:
                    found.append(f"embedding {i} bytes {start}.. in {name}")
                    break
    return found


async def test_forget_leaves_no_trace_in_the_files(
    tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path, fake_spotify: FakeSpotify
) -> None:
    fake_spotify.add_user("zed", "Zed on Spotify")
    service = await make_service(tmp_path, pipeline, cache_dir, fake_spotify, rate_limit_photos=100)
    try:
        await _enrol_link_use_and_forget(service, fake_spotify)
    finally:
        await service.close()
    db = service.store.path
    assert db is not None
    assert leaks(raw_bytes(db), VECTORS) == []  # and still none once the WAL is checkpointed on close


VECTORS: list[np.ndarray] = []


async def _enrol_link_use_and_forget(service: MoodtunesService, fake_spotify: FakeSpotify) -> None:
    store = service.store
    db = store.path
    assert db is not None

    # Enrol privately (consent, then a selfie), and in a group with the photo given with /enroll.
    consent = await service.enroll(ZED, ZED_CHAT)
    assert (await service.press(ZED, ZED_CHAT, button(consent, Action.ENROLL_YES))).text == texts.SEND_SELFIE
    assert "recognise you" in (await service.handle_photo(ZED, ZED_CHAT, photo(0))).text
    consent = await service.enroll(ZED, GROUP, photo(1))
    assert "recognise you" in (await service.press(ZED, GROUP, button(consent, Action.ENROLL_YES))).text
    await service.set_track_count(ZED, GROUP, 7)

    # Link Spotify (pasted address, confirmed), and leave a second link and a question open.
    link = (await service.link_spotify(ZED, ZED_CHAT)).link
    assert link is not None
    question = await service.handle_text(ZED, ZED_CHAT, await fake_spotify.authorize(link, user="zed"))
    assert question is not None
    assert "Zed on Spotify" in (await service.press(ZED, ZED_CHAT, button(question, Action.SPOTIFY_YES))).text
    await service.link_spotify(ZED, GROUP)  # a state (with where to ask) left pending
    link = (await service.link_spotify(ZED, ZED_CHAT)).link
    assert link is not None
    await service.handle_text(ZED, ZED_CHAT, await fake_spotify.authorize(link, user="zed"))  # unanswered

    # Photos: recognised, buttons pressed; a friend's photo of them in the group names them too.
    mine = await service.handle_photo(ZED, GROUP, photo(2))
    assert mine.text.startswith("Hi Zebedee") and len(mine.tracks) == 7
    await service.press(ZED, GROUP, button(mine, Action.MORE))
    theirs = await service.handle_photo(BEA, GROUP, photo(3))
    assert [f.name for f in theirs.faces] == [NAME]
    await service.forget(ZED, GROUP)  # a question left open in the group

    user = await store.find_user("telegram", PLATFORM_ID)
    assert user is not None
    model = service.recognizer.model_id
    vectors = []
    for place in (ZED_CHAT, GROUP):
        chat = await store.find_chat(place.platform, place.external_id)
        assert chat is not None
        rows = await store.gallery(chat, model)
        vectors += [v for v, u in zip(rows.vectors, rows.user_ids, strict=True) if u == user]
    assert len(vectors) == 2
    before = leaks(raw_bytes(db), vectors)  # the check finds them while they are stored
    assert {"name", "platform id", "embedding 0", "embedding 1"} <= {
        e.rsplit(" in ", 1)[0].split(" bytes")[0] for e in before
    }
    VECTORS[:] = vectors

    # /forget, confirmed.
    confirm = await service.forget(ZED, ZED_CHAT)
    done = await service.press(ZED, ZED_CHAT, button(confirm, Action.FORGET_YES))
    assert "2 face sample(s)" in done.text and "Spotify" in done.text
    assert leaks(raw_bytes(db), vectors) == []

    # A photo of them afterwards matches nobody.
    after = await service.handle_photo(BEA, GROUP, photo(4))
    assert after.faces and [f.name for f in after.faces] == [None]
    assert await store.find_user("telegram", PLATFORM_ID) is None


async def test_an_enrolment_in_flight_for_a_deleted_user_stores_nothing(
    tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path, db_url: str
) -> None:
    service = await make_service(tmp_path, pipeline, cache_dir, db=db_url, rate_limit_photos=100)
    try:
        consent = await service.enroll(ZED, ZED_CHAT)
        await service.press(ZED, ZED_CHAT, button(consent, Action.ENROLL_YES))
        user = await service.store.find_user("telegram", PLATFORM_ID)
        assert user is not None
        analysed, go_on = asyncio.Event(), asyncio.Event()
        enrollment = service.recognizer.enrollment

        async def slow_enrollment(rgb: np.ndarray):  # type: ignore[no-untyped-def]
            analysis = await enrollment(rgb)
            analysed.set()
            await go_on.wait()
            return analysis

        service.recognizer.enrollment = slow_enrollment  # type: ignore[method-assign]
        selfie = asyncio.create_task(service.handle_photo(ZED, ZED_CHAT, photo(0)))
        await asyncio.wait_for(analysed.wait(), 60)
        await service.forget_user(user)  # the /forget confirmed meanwhile (another chat, another worker)
        go_on.set()
        reply = await selfie
        assert reply.error and "deleted meanwhile" in reply.text
        assert await service.store.db.fetchval("SELECT count(*) FROM face_embeddings") == 0
        assert await service.store.find_user("telegram", PLATFORM_ID) is None
    finally:
        await service.close()


async def test_a_spotify_code_exchange_in_flight_for_a_deleted_user_stores_nothing(
    fake_spotify: FakeSpotify, db_url: str
) -> None:
    settings = fake_spotify.settings(db_url)  # type: ignore[arg-type]
    store = await open_store(db_url)
    spotify = SpotifyService(settings, store, policy=fast_policy())
    service = MoodtunesService(settings, store, InferenceWorker(LazyAnalyzer(settings)), None, spotify)
    try:
        link = (await service.link_spotify(ZED, ZED_CHAT)).link
        assert link is not None
        location = await fake_spotify.authorize(link)
        fake_spotify.delay("POST", "/api/token", 1.0)  # Spotify takes its time exchanging the code
        pasted = asyncio.create_task(service.handle_text(ZED, ZED_CHAT, location))
        while not fake_spotify.calls_to("POST", "/api/token"):
            await asyncio.sleep(0.01)
        user = await store.find_user("telegram", PLATFORM_ID)
        assert user is not None
        await service.forget_user(user)
        reply = await pasted
        assert reply is not None and reply.error and "deleted meanwhile" in reply.text
        for table in ("spotify_pending_links", "spotify_tokens", "spotify_oauth_states", "users"):
            assert await store.db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    finally:
        await service.close()


async def test_a_private_chat_stored_without_its_owner_goes_with_the_user(db_url: str) -> None:
    """A private chat row an older version stored without its owner (its id is the user's Telegram id)
    is claimed on the user's next message, and deleted with them."""
    store = await open_store(db_url)
    try:
        legacy = await store.ensure_chat("telegram", PLATFORM_ID, "Zebedee Quokkafield")
        user = await store.ensure_user("telegram", PLATFORM_ID, NAME)
        assert await store.ensure_chat("telegram", PLATFORM_ID, "", owner_user_id=user) == legacy
        group = await store.ensure_chat("telegram", GROUP.external_id, GROUP.title)
        assert await store.ensure_chat("telegram", GROUP.external_id, "", owner_user_id=None) == group
        await store.delete_user(user)
        assert await store.find_chat("telegram", PLATFORM_ID) is None
        assert await store.find_chat("telegram", GROUP.external_id) == group  # shared chats stay
    finally:
        await store.close()
