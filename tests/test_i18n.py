"""Languages: every message has a translation in each shipped language, nothing a chat user reads is
English outside gettext, the language is decided per user, and end to end a Spanish-speaking user gets
Spanish on Telegram and Discord while an English-speaking one in the same run stays in English."""

from __future__ import annotations

import ast
import asyncio
import html
import itertools
import re
import socket
import string
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import discord.http
import pytest
from babel.messages.catalog import Catalog as PoCatalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po
from discord.gateway import DiscordWebSocket
from pydantic import SecretStr

from bot import discord_bot
from bot.discord_bot import CommandTranslator, DiscordAdapter
from core.app import texts
from core.app.commands import COMMANDS, fill, help_text
from core.app.i18n import (
    DEFAULT,
    LANGUAGES,
    Message,
    _,
    catalog,
    current_language,
    negotiate,
    speaking,
    translation,
    use_language,
)
from core.app.people import Person, Place
from core.app.photos import mood_line
from core.app.replies import FaceLine, Reply, render_text
from core.app.service import MoodtunesService, choose_language
from core.errors import FileTooLarge, MoodtunesError, NoFace
from core.music import Catalog, import_catalog
from core.music.moods import FEATURE_WORDS, MOODS, POLICIES
from core.spotify.callback_server import CallbackServer
from core.storage import open_store
from core.vision.analyzer import FaceAnalyzer
from core.vision.emotion.labels import EMOTIONS
from core.vision.headers import read_header
from tests.conftest import ROOT, data_path
from tests.fakes.discord import DcUser, DiscordCall, FakeDiscord, SentInteraction
from tests.fakes.spotify import FakeSpotify
from tests.fakes.telegram import BotCall
from tests.service_fixtures import make_service
from tests.synthetic_catalog import write_synthetic_catalog
from tests.telegram_harness import Harness, running_harness
from tests.test_spotify_confirm import light_service, open_page

OTHERS = [code for code in LANGUAGES if code != DEFAULT]
"""The shipped languages besides English (the source)."""
LOCALE = ROOT / "core" / "app" / "locale"
WAIT = 60.0  # seconds for a reply that analyses a photo: the machine is shared and has 2 cores


# The catalogs -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> PoCatalog:
    """The messages of the source, extracted as ``make messages`` does (pybabel extract with the options
    in pyproject.toml: keywords ``_`` and ``N_`` over core/ and bot/)."""
    out = tmp_path_factory.mktemp("messages") / "moodtunes.pot"
    mp = pytest.MonkeyPatch()
    mp.chdir(ROOT)
    try:
        CommandLineInterface().run(["pybabel", "-q", "extract", "-o", str(out)])
    finally:
        mp.undo()
    with out.open("rb") as handle:
        return read_po(handle)


def ids(po: PoCatalog) -> set[str]:
    return {str(m.id) for m in po if m.id}


def fields(message: str) -> set[tuple[str, str, str | None]]:
    """The ``{name!conversion:spec}`` fields of a template (names, conversions, format specs)."""
    return {
        (name, spec, conv) for _, name, spec, conv in string.Formatter().parse(message) if name is not None
    }


def test_the_extraction_finds_the_chat_messages(extracted: PoCatalog) -> None:
    found = ids(extracted)
    assert len(found) > 250
    assert {texts.WELCOME, texts.TRACKS_SET, NoFace.default, texts.BUTTON_PLAYLIST} <= found
    assert "{count} songs for the mood" in found and "Lifting the mood:" in found
    for command in COMMANDS:  # every description and option description
        assert command.description in found
        assert all(option.description in found for option in command.options)
    assert all(not fields(m) or all(name for name, _, _ in fields(m)) for m in found), "no positional {}"


def test_the_committed_template_is_up_to_date(extracted: PoCatalog) -> None:
    with (LOCALE / "moodtunes.pot").open("rb") as handle:
        committed = read_po(handle)
    assert ids(committed) == ids(extracted), "run `make messages` and translate what it adds"


@pytest.mark.parametrize("language", OTHERS)
def test_every_message_has_a_translation_with_the_same_placeholders(
    extracted: PoCatalog, language: str
) -> None:
    path = LOCALE / language / "LC_MESSAGES" / "moodtunes.po"
    with path.open("rb") as handle:
        po = read_po(handle, locale=language)
    problems = []
    for message in sorted(ids(extracted)):
        entry = po.get(message)
        if entry is None or not entry.string:
            problems.append(f"untranslated: {message!r}")
        elif entry.fuzzy:
            problems.append(f"fuzzy: {message!r}")
        elif fields(str(entry.string)) != fields(message):
            problems.append(f"placeholders differ: {message!r} -> {entry.string!r}")
        else:  # it formats: no stray brace, every field known
            string.Formatter().vformat(str(entry.string), (), defaultdict(lambda: 1))
    assert not problems, "\n".join(problems)
    loaded = catalog(language)  # what the bot reads at run time
    assert ids(extracted) <= set(loaded)


@pytest.mark.parametrize("language", OTHERS)
def test_menus_fit_the_platforms_limits(language: str) -> None:
    for command in COMMANDS:
        for template in (command.description, *(o.description for o in command.options)):
            text = fill(template, language)
            assert 1 <= len(text) <= 100, text  # Discord's limit (Telegram's is 256)
            assert text != fill(template, DEFAULT), f"not translated: {template!r}"
        with speaking(language):
            assert command.usage().startswith(f"/{command.name}")


def test_the_music_vocabulary_is_marked() -> None:
    """The words of the mood line and of emotions come from core.music and the models: each must be in
    texts.py (so it is extracted and translated)."""
    words = {word for pair in FEATURE_WORDS.values() for word in pair}
    assert words <= set(texts.FEATURE_WORDS)
    assert set(MOODS) <= set(texts.MOOD_NAMES)
    assert set(EMOTIONS) <= set(texts.EMOTION_NAMES) and set(EMOTIONS) <= set(texts.EMOTION_WORDS)


# English only through gettext ---------------------------------------------------------------------------

USER_FACING = [
    *sorted(p for p in (ROOT / "core" / "app").glob("*.py") if p.name not in ("i18n.py", "metrics.py")),
    *(ROOT / "bot" / f"{name}.py" for name in ("telegram_bot", "discord_bot", "discord_render", "console")),
]
"""Modules that build what chat users read (metrics.py: Prometheus help for operators)."""
PROSE = re.compile(r"[A-Za-z][a-z']+ [a-z']+ [a-z']+")
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}
OPERATOR_ERRORS = {"ValueError", "RuntimeError", "TypeError", "KeyError", "ConfigError", "DiscordStartError"}
SHOWN = {"Reply": 0, "Button": 0, "Menu": 0}
"""Calls whose positional argument (index) a user reads."""
SHOWN_KEYWORDS = {"label", "placeholder", "content", "title", "description", "text", "caption"}


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _exempt(tree: ast.Module) -> set[int]:
    """Ids of the nodes allowed to hold English: docstrings (and attribute docstrings), what ``_()`` and
    ``N_()`` mark, log calls and operator errors."""
    exempt: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            docs = body[:1] + [
                b for a, b in itertools.pairwise(body) if isinstance(a, ast.Assign | ast.AnnAssign)
            ]
            exempt.update(id(d.value) for d in docs if isinstance(d, ast.Expr))
        elif isinstance(node, ast.Call) and (
            _name(node.func) in ("_", "N_")
            or (isinstance(node.func, ast.Attribute) and node.func.attr in LOG_METHODS)
        ):
            exempt.update(id(sub) for sub in ast.walk(node))
        elif (
            isinstance(node, ast.Raise)
            and isinstance(node.exc, ast.Call)
            and _name(node.exc.func) in OPERATOR_ERRORS
        ):
            exempt.update(id(sub) for sub in ast.walk(node.exc))
    return exempt


def english_outside_gettext(path: Path) -> list[str]:
    """String literals of ``path`` that read like English sentences (three words or more) outside
    ``_()`` / ``N_()``, docstrings, log calls and operator errors; and any wording passed where a user
    reads it (a Reply's text, a button's label, ``label=``, ``content=``...) without ``_()``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    exempt = _exempt(tree)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in exempt
            and PROSE.search(node.value)
        ):
            found.append(f"{path.name}:{node.lineno}: {node.value!r}")
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        shown = [node.args[SHOWN[name]]] if name in SHOWN and len(node.args) > SHOWN[name] else []
        shown += [k.value for k in node.keywords if k.arg in SHOWN_KEYWORDS]
        for value in shown:
            parts = value.values if isinstance(value, ast.JoinedStr) else [value]
            words = [p.value for p in parts if isinstance(p, ast.Constant) and isinstance(p.value, str)]
            if any(re.search("[A-Za-z]{2}", word) for word in words):
                found.append(f"{path.name}:{node.lineno}: {name}({ast.unparse(value)})")
    return found


@pytest.mark.parametrize("path", USER_FACING, ids=lambda p: p.name)
def test_no_user_facing_module_builds_english_outside_gettext(path: Path) -> None:
    assert not english_outside_gettext(path)


def test_the_check_finds_english_built_inline(tmp_path: Path) -> None:
    source = tmp_path / "inline.py"
    source.write_text(
        "def f(n):\n"
        '    """A docstring is fine."""\n'
        '    log.info("a log line is fine too")\n'
        '    ok = _("Translated at once, fine")\n'
        '    yes = Button("Yes", Action.YES)\n'
        '    return Reply(f"Your playlist of {n} songs is ready")\n'
    )
    found = "\n".join(english_outside_gettext(source))
    assert "Button('Yes')" in found and "Your playlist of" in found, found
    assert "docstring" not in found and "log line" not in found and "Translated" not in found, found


# Deciding the language ----------------------------------------------------------------------------------


def test_negotiate_maps_platform_codes_to_shipped_languages() -> None:
    assert negotiate("es") == negotiate("es-ES") == negotiate("es-419") == negotiate("ES_mx") == "es"
    assert negotiate("es_ES.UTF-8") == negotiate("es_ES@euro") == "es"
    assert negotiate("en-US") == negotiate("en_GB.UTF-8") == "en"
    assert negotiate("pt-BR") is None and negotiate("C.UTF-8") is None
    assert negotiate("") is None and negotiate(None) is None
    assert choose_language("es", "en", "en") == "es"  # the /language choice wins
    assert choose_language(None, "es-ES", "en") == "es"  # then this message's platform code
    assert choose_language(None, None, "es") == "es"  # then the last one reported
    assert choose_language(None, "fr", None) == choose_language(None, None, None) == "en"


async def test_use_language_is_per_task_and_speaking_restores_it() -> None:
    use_language("es")
    assert current_language() == "es" and _(texts.SONGS) == "Canciones"
    assert _("a sentence nobody translated") == "a sentence nobody translated"
    with speaking("en"):
        assert _(texts.SONGS) == "Songs"
    assert current_language() == "es"

    async def other_task() -> str:
        use_language("en")
        return _(texts.SONGS)

    assert await asyncio.create_task(other_task()) == "Songs"
    assert current_language() == "es"  # a task's language is its own
    use_language("xx")
    assert current_language() == DEFAULT
    use_language(None)
    assert translation(texts.SONGS, "es") == "Canciones" and translation("untranslated", "es") is None


def test_errors_keep_their_details_in_every_language() -> None:
    error = FileTooLarge(texts.TOO_BIG, size=25.25, limit=20)
    assert str(error) == "That file is 25.2 MB; I can take photos up to 20 MB."
    with speaking("es"):
        assert error.localized() == "Ese archivo ocupa 25.2 MB; acepto fotos de hasta 20 MB."
        try:
            read_header(b"\xff\xd8\xff\xc3\x00\x11" + bytes(40))  # a lossless JPEG: a nested detail
        except MoodtunesError as exc:
            assert str(exc).startswith("That JPEG is lossless")
            assert exc.localized() == "No sé leer ese JPEG (sin pérdida); envíame un JPEG o PNG normal."
        # Raised without a template: the class's own sentence, never English.
        assert NoFace("an English sentence nobody marked").localized() == _(NoFace.default)
        both = Message(
            texts.CHANGE_BOTH, first=Message(texts.CHANGE_CALMER), second=Message(texts.CHANGE_HAPPIER)
        )
        assert both.translated() == "más tranquila y más alegre"
        assert Message("untranslated {a}", a=Message(texts.SONGS)).translated() == "untranslated Songs"
    with speaking("en"):
        assert NoFace("an English sentence nobody marked").localized() == "an English sentence nobody marked"


def test_replies_render_in_the_language_they_were_written_in() -> None:
    with speaking("es"):
        reply = Reply("texto", faces=(FaceLine(None, "happy", 0.9, (0, 0, 1, 1)),))
    assert reply.language == "es"
    rendered = render_text(reply)  # rendered later, wherever: still Spanish
    assert "Alguien a quien todavía no conozco: alegría (90%)" in rendered
    with speaking("es"):
        assert "/like NÚMERO" in help_text("telegram", 10)


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    path = tmp_path_factory.mktemp("music") / "tracks.csv"
    write_synthetic_catalog(path, 2000, "kaggle-1921-2020", seed=11)
    return import_catalog(path, seed=0)


def test_the_mood_line_is_the_catalogs_in_english_and_translated_in_spanish(music: Catalog) -> None:
    for emotion in EMOTIONS:
        for policy in POLICIES:
            with speaking("en"):
                assert mood_line(music, emotion, policy) == music.explain(emotion, policy)
            with speaking("es"):
                spanish = mood_line(music, emotion, policy)
            words = re.findall(r"[a-z]+", spanish)
            assert not set(words) & {"happy", "calm", "sad", "lifting", "towards", "energy"}, spanish


async def test_the_store_keeps_the_choice_and_the_platforms_code(db_url: str) -> None:
    store = await open_store(db_url)
    try:
        user = await store.ensure_user("telegram", "1", "Ana", "es-ES")
        assert (await store.user_language(user)).locale == "es-ES"
        await store.ensure_user("telegram", "1", "Ana")  # a message without a code keeps the last one
        stored = await store.user_language(user)
        assert stored.choice is None and stored.locale == "es-ES"
        await store.set_language(user, "en")
        assert (await store.get_settings(user)).language == "en"
        assert (await store.find_user_language("telegram", "1")).choice == "en"
        assert (await store.find_user_language("telegram", "2")).choice is None  # unknown: nothing made
        assert await store.find_user("telegram", "2") is None
        await store.set_track_count(user, 15)
        assert (await store.get_settings(user)).language == "en"  # other settings leave it alone
        await store.set_language(user, None)
        assert (await store.user_language(user)).choice is None
        await store.delete_user(user)
        assert (await store.user_language(user)).locale is None
    finally:
        await store.close()


async def test_the_spotify_question_asked_from_the_callback_page_is_in_the_users_language(
    fake_spotify: FakeSpotify, tmp_path: Path
) -> None:
    """The question confirming a Spotify account, asked outside any request of the user (the callback
    page runs in its own task), is in the language their platform last reported."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    redirect_uri = f"http://127.0.0.1:{sock.getsockname()[1]}/spotify/callback"
    settings = fake_spotify.settings(tmp_path / "db.sqlite3", redirect_uri=redirect_uri)
    store = await open_store(settings.db)
    service = light_service(settings, store, time.time)
    asked: list[tuple[Person, Reply]] = []

    async def notify(person: Person, reply: Reply) -> None:
        asked.append((person, reply))

    service.on_spotify_linked(notify)
    server = CallbackServer(service.spotify)
    await server.start(sock=sock)
    lucia, here = Person("telegram", "2002", "Lucía", language="es"), Place("telegram", "2002", private=True)
    try:
        link = await service.link_spotify(lucia, here)
        assert link.text == spanish(texts.LINK_TEXT) and link.link is not None
        use_language("en")  # whatever this task speaks, the callback page's task decides on its own
        status, _page = await open_page(await fake_spotify.authorize(link.link, user="alice"))
        assert status == 200
        [(_who, question)] = asked
        assert question.language == "es"
        assert question.text.startswith(
            "¿Vinculo la cuenta de Spotify Alice A. (id de usuario de Spotify alice)"
        )
        assert [b.label for b in question.buttons] == [spanish(texts.SPOTIFY_CONFIRM_YES), "No"]
        quiet = Person("telegram", "2002", "Lucía")  # a press carries no language code: the stored one
        yes = await service.press(quiet, here, question.buttons[0].data)
        assert yes.text == spanish(texts.SPOTIFY_LINKED).format(name="Alice A.")
    finally:
        await server.close()
        await service.close()


# End to end on Telegram -------------------------------------------------------------------------------------


@pytest.fixture
async def telegram(
    tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path, fake_spotify: FakeSpotify
) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, pipeline, cache_dir, fake_spotify) as running:
        yield running


def spanish(message: str) -> str:
    """The Spanish translation of a message (the test fails where there is none)."""
    text = translation(message, "es")
    assert text is not None and text != message, message
    return text


def labels_of(message: BotCall) -> set[str]:
    return {str(b["text"]) for b in message.buttons}


def mood_lines(service: MoodtunesService, language: str) -> set[str]:
    """Every mood line a photo reply can carry, in ``language``."""
    assert service.catalog is not None
    with speaking(language):
        return {mood_line(service.catalog, e, p) for e in EMOTIONS for p in POLICIES}


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_telegram_answers_a_spanish_user_in_spanish_and_others_in_english(telegram: Harness) -> None:
    fake, lfw = telegram.fake, data_path("faces", "lfw10")
    powell = sorted((lfw / "Colin_Powell").iterdir())

    # The menu: one per shipped language, then the default (English).
    menus = {
        c.params.get("language_code"): c.params["commands"] for c in fake.calls if c.method == "setMyCommands"
    }
    assert set(menus) == {None, *OTHERS}
    assert {c["command"]: c["description"] for c in menus["es"]}["help"] == spanish(texts_of("help"))
    assert {c["command"]: c["description"] for c in menus[None]}["help"] == texts_of("help")

    lucia = fake.add_user("Lucía", language_code="es")
    ann = fake.add_user("Ann", language_code="en")
    nobody = fake.add_user("Nadie", language_code=None)

    (welcome,) = await telegram.say(lucia, None, "/start")
    assert html.unescape(welcome.text or "") == spanish(texts.WELCOME)
    (helped,) = await telegram.say(lucia, None, "/help")
    assert spanish(texts.HELP_INTRO) in (helped.text or "") and "/tracks [CANTIDAD]" in (helped.text or "")
    assert spanish(texts_of("forget")) in (helped.text or "")

    photo, songs = await telegram.photo(lucia, None, powell[0])
    caption = photo.text or ""
    assert caption.startswith(spanish(texts.STRANGER)), caption
    assert re.search(r"Tu expresión: \w+ \(\d+%\)\.", caption), caption
    assert f"• {spanish(texts.FACE_UNKNOWN)}: " in caption
    assert f"<b>{spanish(texts.SONGS_FOR_MOOD)}</b> (" in (songs.text or "")
    assert any(f"({line}):" in (songs.text or "") for line in mood_lines(telegram.service, "es")), songs.text
    assert {spanish(texts.BUTTON_LIFT), spanish(texts.BUTTON_MORE), spanish(texts.RATE_BUTTON)} <= labels_of(
        songs
    )
    assert spanish(texts.BUTTON_PLAYLIST) in labels_of(songs)

    # In the same run, English for a user whose app is English, and for one whose app says nothing.
    (hello,) = await telegram.say(ann, None, "/start")
    assert html.unescape(hello.text or "") == texts.WELCOME
    photo_en, songs_en = await telegram.photo(ann, None, powell[1])
    assert (photo_en.text or "").startswith(texts.STRANGER)
    assert {texts.BUTTON_LIFT, texts.BUTTON_MORE} <= labels_of(songs_en)
    assert any(f"({line}):" in (songs_en.text or "") for line in mood_lines(telegram.service, "en"))
    (plain,) = await telegram.say(nobody, None, "/start")
    assert html.unescape(plain.text or "") == texts.WELCOME

    # /language: the current one and the choices; en switches; auto follows the app again.
    (which,) = await telegram.say(lucia, None, "/language")
    assert "español" in (which.text or "") and "/language en (English)" in (which.text or "")
    (switched,) = await telegram.say(lucia, None, "/language en")
    assert switched.text == "Done: from now on I'll talk to you in English."
    (english,) = await telegram.say(lucia, None, "/start")
    assert html.unescape(english.text or "") == texts.WELCOME
    (auto,) = await telegram.say(lucia, None, "/language auto")
    assert auto.text == "Hecho: volveré a seguir el idioma de tu app (español por ahora)."
    (bad,) = await telegram.say(lucia, None, "/language fr")
    assert (bad.text or "").startswith("Uso: /language [en|es|auto]")
    (chosen,) = await telegram.say(ann, None, "/language es")  # an English app, Spanish chosen
    assert chosen.text == "Hecho: a partir de ahora te hablaré en español."
    (unknown,) = await telegram.say(ann, None, "/dance")
    assert unknown.text == "No conozco /dance. Envía /help para ver lo que puedo hacer."


def texts_of(command: str) -> str:
    """A command's English description."""
    return fill(next(c.description for c in COMMANDS if c.name == command), DEFAULT)


# End to end on Discord -------------------------------------------------------------------------------------


@dataclass
class Discord:
    fake: FakeDiscord
    service: MoodtunesService
    locales: dict[int, str]
    """Discord user id -> the locale their client reports with each interaction."""

    async def command(self, user: DcUser, name: str, options: dict[str, Any] | None = None) -> DiscordCall:
        interaction = await self.fake.slash_command(user, None, name, options)
        return await self._answer(interaction)

    async def _answer(self, interaction: SentInteraction) -> DiscordCall:
        await self.fake.wait_for_response(interaction)
        [followup] = await self.fake.wait_for_followups(interaction, timeout=WAIT)
        return followup


@pytest.fixture
def discord_addresses(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore discord.py's process-wide addresses afterwards; READY without the 2 s guild wait."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    monkeypatch.setattr(discord_bot, "GUILD_READY_TIMEOUT_S", 0.1)
    yield


@pytest.fixture
async def on_discord(
    discord_addresses: None,
    fake_spotify: FakeSpotify,
    pipeline: FaceAnalyzer,
    cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Discord]:
    threads = set(threading.enumerate())
    service = await make_service(tmp_path, pipeline, cache_dir, fake_spotify, rate_limit_photos=100)
    try:
        async with FakeDiscord() as fake:
            locales: dict[int, str] = {}
            dispatch = fake.gateway.dispatch

            async def with_locale(event: str, data: dict[str, Any]) -> int:
                """Interactions carry their user's locale (the fake always says en-US)."""
                if event == "INTERACTION_CREATE":
                    user = (data.get("member") or {}).get("user") or data.get("user") or {}
                    data["locale"] = locales.get(int(user.get("id", 0)), data["locale"])
                return await dispatch(event, data)

            monkeypatch.setattr(fake.gateway, "dispatch", with_locale)
            settings = service.settings.model_copy(
                update={"discord_token": SecretStr(fake.token), "discord_api_url": fake.api_url}
            )
            adapter = DiscordAdapter(service, settings)
            await adapter.start()
            try:
                yield Discord(fake, service, locales)
            finally:
                await adapter.stop()
    finally:
        await service.close()
    for thread in set(threading.enumerate()) - threads:
        if not thread.name.startswith("asyncio_") and thread.name != "tqdm_monitor":
            thread.join(timeout=2)


def said(message: DiscordCall) -> str:
    parts = [message.content or ""]
    for embed in message.embeds:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
    return re.sub(r"\\(.)", r"\1", "\n".join(p for p in parts if p))  # markdown escapes removed


def button_labels(message: DiscordCall) -> list[str]:
    rows = message.components
    return [str(c["label"]) for row in rows for c in row.get("components", []) if c.get("type") == 2]


def lfw(person: str, number: int) -> tuple[str, bytes, str]:
    path = data_path("faces", "lfw10", person, f"{person}_{number:04d}.jpg")
    return path.name, path.read_bytes(), "image/jpeg"


async def test_the_discord_translator_localises_descriptions_only() -> None:
    translator = CommandTranslator()
    help_command = next(c for c in COMMANDS if c.name == "help")
    string_ = discord_bot.described(help_command.description)
    assert str(string_) == help_command.description

    class Context:
        location = discord.app_commands.TranslationContextLocation.command_description

    for locale in (discord.Locale.spain_spanish, discord.Locale.latin_american_spanish):
        assert await translator.translate(string_, locale, Context()) == spanish(help_command.description)  # type: ignore[arg-type]
    assert await translator.translate(string_, discord.Locale.american_english, Context()) is None  # type: ignore[arg-type]
    assert await translator.translate(string_, discord.Locale.french, Context()) is None  # type: ignore[arg-type]
    Context.location = discord.app_commands.TranslationContextLocation.command_name
    assert (
        await translator.translate(
            discord.app_commands.locale_str("help"), discord.Locale.spain_spanish, Context()
        )
        is None
    )  # type: ignore[arg-type]


@pytest.mark.timeout(300)
async def test_discord_answers_a_spanish_user_in_spanish_and_others_in_english(on_discord: Discord) -> None:
    fake = on_discord.fake
    synced = {c["name"]: c for c in fake.commands[None]}
    (count,) = synced["tracks"]["options"]
    for locale in ("es-ES", "es-419"):
        assert synced["help"]["description_localizations"][locale] == spanish(texts_of("help"))
        assert synced["tracks"]["description_localizations"][locale] == fill(
            next(c.description for c in COMMANDS if c.name == "tracks"), "es"
        )
        assert count["description_localizations"][locale] == spanish("Songs per photo")
    assert synced["help"]["description"] == texts_of("help") and count["description"] == "Songs per photo"
    assert "en-US" not in synced["help"].get("description_localizations", {})

    lucia, ann = fake.add_user("lucia", global_name="Lucía"), fake.add_user("ann", global_name="Ann")
    on_discord.locales[lucia.id] = "es-ES"

    welcome = await on_discord.command(lucia, "start")
    assert welcome.embeds[0]["description"] == discord.utils.escape_markdown(spanish(texts.WELCOME))

    mood = await on_discord.command(lucia, "mood", {"photo": lfw("Colin_Powell", 1)})
    text = said(mood)
    assert text.startswith(spanish(texts.STRANGER)), text
    assert f"{spanish(texts.FACE)}: {spanish(texts.FACE_UNKNOWN)}: " in text
    assert any(f"{spanish(texts.MOOD)}: {line}" in text for line in mood_lines(on_discord.service, "es")), (
        text
    )
    assert mood.embeds[1]["title"].startswith("10 canciones para el ánimo (")
    assert button_labels(mood) == [
        spanish(texts.BUTTON_PLAYLIST),
        spanish(texts.BUTTON_LIFT),
        spanish(texts.BUTTON_MORE),
        spanish(texts.RATE_BUTTON),
    ]

    # A photo in a DM carries no locale: the one her last interaction reported answers it.
    dm = fake.dm_channel(lucia)
    await fake.send_message(lucia, dm, "", attachments=[lfw("Colin_Powell", 2)])
    [direct] = await fake.wait_for_messages(dm, 1, timeout=WAIT)
    assert said(direct).startswith(spanish(texts.STRANGER))

    # English for Ann in the same run; /language en switches Lucía back.
    hello = await on_discord.command(ann, "start")
    assert hello.embeds[0]["description"] == texts.WELCOME
    english = await on_discord.command(ann, "mood", {"photo": lfw("Colin_Powell", 3)})
    assert said(english).startswith(texts.STRANGER) and english.embeds[1]["title"].startswith(
        "10 songs for the mood"
    )
    switched = await on_discord.command(lucia, "language", {"language": "en"})
    assert switched.embeds[0]["description"] == "Done: from now on I'll talk to you in English."
    back = await on_discord.command(lucia, "start")
    assert back.embeds[0]["description"] == texts.WELCOME


# The console ------------------------------------------------------------------------------------------


def test_the_console_reads_the_terminals_language() -> None:
    from bot.console import terminal_language

    assert terminal_language({"LANG": "es_ES.UTF-8"}) == "es_ES.UTF-8"
    assert terminal_language({"LC_ALL": "en_US.UTF-8", "LANG": "es_ES.UTF-8"}) == "en_US.UTF-8"
    assert terminal_language({"LC_ALL": "", "LC_MESSAGES": "es_MX", "LANG": "C"}) == "es_MX"
    assert terminal_language({"LANG": "C.UTF-8"}) is None and terminal_language({}) is None
    assert Person("local", "ann", language="es_ES.UTF-8").language == "es_ES.UTF-8"
    assert Place("local", "default").private is False
