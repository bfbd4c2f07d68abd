"""The fake Telegram Bot API driven by the real python-telegram-bot: a throwaway bot, end to end."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.telegram import DOWNLOAD_LIMIT, FakeTelegram
from tests.images import annotate, jpeg

pytestmark = pytest.mark.timeout(30)


@dataclass
class Seen:
    """What the throwaway bot received and produced, for the test to compare with the fake's record."""

    downloads: list[bytes] = field(default_factory=list)
    uploads: list[bytes] = field(default_factory=list)


def build_bot(fake: FakeTelegram, seen: Seen) -> Application:
    """A tiny PTB bot: /start with a button, photo -> annotated photo, documents, a text echo."""

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Help", callback_data="help")]])
        assert update.effective_message is not None
        await update.effective_message.reply_text("Send me a selfie.", reply_markup=keyboard)

    async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        await context.bot.send_chat_action(message.chat_id, ChatAction.UPLOAD_PHOTO)
        file = await message.photo[-1].get_file()
        data = bytes(await file.download_as_bytearray())
        seen.downloads.append(data)
        annotated = annotate(data)
        seen.uploads.append(annotated)
        again = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]])
        await message.reply_photo(
            annotated,
            caption="<b>1 face</b>: happy",
            parse_mode=ParseMode.HTML,
            reply_markup=again,
            do_quote=True,
        )

    async def document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.document is not None
        try:
            await message.document.get_file()
        except BadRequest as exc:
            await message.reply_text(f"refused: {exc.message}")

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer(f"pressed {query.data}")
        if query.data == "help":
            await query.edit_message_text("Help: send one clear selfie.")
        else:
            await query.edit_message_reply_markup(None)

    app = (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.PHOTO, photo))
    app.add_handler(MessageHandler(filters.Document.ALL, document))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_handler(CallbackQueryHandler(button))
    return app


@dataclass
class Running:
    fake: FakeTelegram
    app: Application
    seen: Seen


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    """The fake and the bot polling it; afterwards, no task, thread or server may be left over."""
    threads_before = set(threading.enumerate())
    seen = Seen()
    async with FakeTelegram() as fake:
        app = build_bot(fake, seen)
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling()
        try:
            yield Running(fake, app, seen)
        finally:
            await app.updater.stop()
            await app.stop()
            await app.shutdown()
    leftover_tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not leftover_tasks, leftover_tasks
    new_threads = [
        t for t in set(threading.enumerate()) - threads_before if not t.name.startswith("asyncio_")
    ]
    assert not new_threads, new_threads


async def test_start_command_replies_with_a_button_that_gets_answered(running: Running) -> None:
    fake = running.fake
    alice = fake.add_user("Alice", username="alice")
    assert fake.calls[0].method == "getMe"  # PTB's initialize()

    fake.send_text(alice, None, "/start")
    [reply] = await fake.wait_for_messages(alice, 1)
    assert reply.method == "sendMessage"
    assert reply.text == "Send me a selfie."
    assert reply.callback_data == ["help"]

    query_id = fake.press_button(alice, reply, "help")
    answer = await fake.wait_for_answer(query_id)
    assert answer.params["text"] == "pressed help"
    edit = await fake.wait_for_call("editMessageText", chat=alice)
    assert edit.result["text"] == "Help: send one clear selfie."
    assert (
        "reply_markup" not in edit.result
    )  # an edit without reply_markup drops the keyboard, as on Telegram
    with pytest.raises(ValueError, match="no button"):
        fake.press_button(alice, reply, "help")


async def test_photo_is_downloaded_exactly_and_answered_with_an_uploaded_photo(running: Running) -> None:
    fake, seen = running.fake, running.seen
    alice = fake.add_user("Alice")
    selfie = jpeg(1600, 1200)

    sent = fake.send_photo(alice, None, selfie)
    assert [(p["width"], p["height"]) for p in sent["photo"]] == [
        (90, 68),
        (320, 240),
        (800, 600),
        (1280, 960),
        (1600, 1200),
    ]

    [reply] = await fake.wait_for_messages(alice, 1)
    assert seen.downloads == [selfie]  # the largest PhotoSize is the exact bytes
    assert reply.method == "sendPhoto"
    assert reply.photo == seen.uploads[0]  # the multipart upload, byte for byte
    assert reply.files["photo"].data == seen.uploads[0]
    assert reply.text == "<b>1 face</b>: happy" and reply.result["caption"] == "1 face: happy"
    assert reply.result["reply_to_message"]["message_id"] == sent["message_id"]
    assert max(reply.result["photo"], key=lambda p: p["width"])["width"] == 1600
    action = await fake.wait_for_call("sendChatAction", chat=alice)
    assert action.params["action"] == "upload_photo" and action.index < reply.index

    query_id = fake.press_button(alice, reply, "again")
    await fake.wait_for_answer(query_id)
    edit = await fake.wait_for_call("editMessageReplyMarkup", chat=alice)
    assert "reply_markup" not in edit.result


async def test_files_over_twenty_megabytes_are_refused_by_get_file(running: Running) -> None:
    fake = running.fake
    alice = fake.add_user("Alice")
    sent = fake.send_document(
        alice, None, b"%PDF-1.4", "huge.pdf", "application/pdf", file_size=DOWNLOAD_LIMIT + 1
    )
    assert sent["document"]["file_size"] == DOWNLOAD_LIMIT + 1  # a bot can refuse before downloading

    [reply] = await fake.wait_for_messages(alice, 1)
    assert reply.text == "refused: File is too big"
    failed = [c for c in fake.calls if c.method == "getFile"]
    assert [(c.ok, c.error) for c in failed] == [(False, "Bad Request: file is too big")]


async def test_group_privacy_mode_hides_plain_chatter(running: Running) -> None:
    fake = running.fake
    alice = fake.add_user("Alice")
    group = fake.add_group("Friends")

    fake.send_text(alice, group, "hello everyone")  # privacy mode: the bot never gets this
    fake.send_text(alice, group, f"/start@{fake.bot.username}")
    fake.send_text(alice, group, f"hi @{fake.bot.username}")
    replies = await fake.wait_for_messages(group, 2)
    assert [r.text for r in replies] == ["Send me a selfie.", f"echo: hi @{fake.bot.username}"]


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # RetryAfter.retry_after type
async def test_telegram_errors_reach_the_bot(running: Running) -> None:
    fake, bot = running.fake, running.app.bot
    stranger = fake.add_user("Bob")
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(stranger.id, "hi")  # Bob never wrote to the bot

    fake.send_text(stranger, None, "hello")
    await fake.wait_for_messages(stranger, 1)
    fake.fail_next("sendMessage", "Too Many Requests: retry after 3", retry_after=3)
    with pytest.raises(RetryAfter):
        await bot.send_message(stranger.id, "hi")
    with pytest.raises(BadRequest, match=r"(?i)can't find end tag"):
        await bot.send_message(stranger.id, "<b>bold", parse_mode=ParseMode.HTML)
    with pytest.raises(BadRequest, match="reserved"):
        await bot.send_message(stranger.id, "Done.", parse_mode=ParseMode.MARKDOWN_V2)
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x" * 65)]])
        await bot.send_message(stranger.id, "hi", reply_markup=markup)
    message = await bot.send_message(stranger.id, "same")
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("same", chat_id=stranger.id, message_id=message.message_id)
    fake.block_bot(stranger)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(stranger.id, "hi")


async def test_housekeeping_calls_parse_in_ptb(running: Running) -> None:
    fake, bot = running.fake, running.app.bot
    alice = fake.add_user("Alice", username="alice")
    fake.send_text(alice, None, "hi")
    await fake.wait_for_messages(alice, 1)

    await bot.set_my_commands([("start", "Say hello"), ("mood", "Read the mood of a selfie")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "mood"]
    chat = await bot.get_chat(alice.id)
    assert (chat.id, chat.username) == (alice.id, "alice")
    sent = await bot.send_document(alice.id, b"a,b\n1,2\n", filename="tracks.csv", caption="Your playlist")
    assert sent.document is not None and sent.document.file_name == "tracks.csv"
    assert fake.sent_to(alice)[-1].document == b"a,b\n1,2\n"
    file = await bot.get_file(sent.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"a,b\n1,2\n"
    assert await bot.delete_message(alice.id, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(alice.id, sent.message_id)
