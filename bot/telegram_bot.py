"""Telegram adapter (python-telegram-bot 22): long polling by default, a webhook when configured.

Every handler is a small async function that turns the update into a :class:`Person`, a
:class:`Place` and bytes or text, calls :class:`~core.service.MoodtunesService`, and renders the
:class:`~core.replies.Reply`: an annotated photo with a short caption, then the songs as an HTML
message with inline buttons. Photos and images sent as documents both work; files over 20 MB are
refused from their declared size, before any download.

Settings: ``MOODTUNES_TELEGRAM_TOKEN``; ``MOODTUNES_TELEGRAM_API_URL`` (Bot API base, default
``https://api.telegram.org/bot``; the file URL follows from it) to use a local Bot API server or a
test fake; ``MOODTUNES_TELEGRAM_WEBHOOK_URL`` to receive updates by webhook instead of polling.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.commands import COMMANDS, dispatch
from core.config import Settings, split_host_port
from core.imaging import MAX_BYTES
from core.replies import Reply
from core.service import MoodtunesService, Person, Place

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024
MESSAGE_LIMIT = 4096
CONCURRENT_UPDATES = 64
"""Updates handled at once: photos from many users overlap, and the inference worker batches them."""


def _text(value: str) -> str:
    """Escape text for Telegram HTML (quotes need no escaping outside attributes)."""
    return html.escape(value, quote=False)


def file_url_for(api_url: str) -> str:
    """Bot API file base for an API base: ``https://host/bot`` -> ``https://host/file/bot``."""
    base = api_url.rstrip("/")
    return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file/bot"


def webhook_secret(token: str) -> str:
    """The secret Telegram sends back with every webhook update (derived from the bot token, so
    forged posts to the webhook address are refused without another setting)."""
    return hashlib.sha256(f"moodtunes-webhook:{token}".encode()).hexdigest()[:64]


def person_of(update: Update) -> Person:
    """The sender of an update."""
    user = update.effective_user
    assert user is not None
    return Person("telegram", str(user.id), user.full_name)


def place_of(update: Update) -> Place:
    """The chat of an update: the scope faces are matched in."""
    chat = update.effective_chat
    assert chat is not None
    return Place("telegram", str(chat.id), chat.title or chat.full_name or "")


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The reply's buttons, one row each."""
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data)] for b in reply.buttons]
    )


def render_html(reply: Reply, with_faces: bool = True) -> str:
    """The reply as Telegram HTML: text, face lines, then linked tracks."""
    parts = [_text(reply.text)]
    if with_faces and reply.faces:
        parts.append("\n".join(f"• {_text(face.describe())}" for face in reply.faces))
    if reply.tracks:
        lines = [
            f'{i}. <a href="{html.escape(t.url)}">{_text(t.name)}</a> – {_text(", ".join(t.artists))}'
            for i, t in enumerate(reply.tracks, 1)
        ]
        heading = f"<b>Songs for the mood</b> ({_text(reply.mood)}):" if reply.mood else "<b>Songs</b>:"
        parts.append(heading + "\n" + "\n".join(lines))
    if reply.link and reply.link not in reply.text:
        parts.append(_text(reply.link))
    return "\n\n".join(p for p in parts if p)


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split at line breaks into chunks of at most ``limit`` characters."""
    chunks, current = [], ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit and current:
            chunks.append(current)
            current = line[:limit]
        else:
            current = candidate[:limit]
    return [*chunks, current] if current else chunks


class TelegramAdapter:
    """The Telegram bot over one service. :meth:`start` connects, :meth:`stop` finishes and disconnects."""

    def __init__(self, service: MoodtunesService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        token = settings.telegram_token.get_secret_value()
        if not token:
            raise ValueError("MOODTUNES_TELEGRAM_TOKEN is not set")
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(token)
            .base_url(settings.telegram_api_url)
            .base_file_url(file_url_for(settings.telegram_api_url))
            .concurrent_updates(CONCURRENT_UPDATES)
            .build()
        )
        self._add_handlers()
        self._unsubscribe = service.on_spotify_linked(self._notify)

    def _add_handlers(self) -> None:
        app = self.app
        app.add_handler(
            MessageHandler(
                (filters.PHOTO | filters.Document.ALL) & filters.CaptionRegex(r"^/enroll\b"), self.enroll
            )
        )
        for command in COMMANDS:
            app.add_handler(CommandHandler(command.name, self.command))
        app.add_handler(MessageHandler(filters.PHOTO | filters.Document.ALL, self.photo))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.text))
        app.add_handler(MessageHandler(filters.COMMAND, self.unknown_command))
        app.add_handler(MessageHandler(filters.ChatType.PRIVATE, self.other))
        app.add_handler(CallbackQueryHandler(self.button))
        app.add_error_handler(self.error)

    async def start(self) -> None:
        """Connect: check the token, publish the commands, start polling (or the webhook)."""
        await self.app.initialize()
        await self.app.bot.set_my_commands([BotCommand(c.name, c.description) for c in COMMANDS])
        await self.app.start()
        updater = self.app.updater
        assert updater is not None
        allowed = ["message", "callback_query"]
        if self.settings.telegram_webhook_url:
            host, port = split_host_port(self.settings.telegram_webhook_listen)
            await updater.start_webhook(
                listen=host,
                port=port,
                url_path=urlsplit(self.settings.telegram_webhook_url).path.lstrip("/"),
                webhook_url=self.settings.telegram_webhook_url,
                secret_token=webhook_secret(self.settings.telegram_token.get_secret_value()),
                allowed_updates=allowed,
            )
        else:
            await updater.start_polling(allowed_updates=allowed, drop_pending_updates=False)
        log.info(
            "telegram started bot=@%s mode=%s",
            self.app.bot.username,
            "webhook" if self.settings.telegram_webhook_url else "polling",
        )

    async def stop(self) -> None:
        """Stop fetching updates, finish the replies in flight, then disconnect."""
        self._unsubscribe()
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        log.info("telegram stopped")

    # Handlers -----------------------------------------------------------------------------------

    async def command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A /command (text only)."""
        message = update.effective_message
        assert message is not None and message.text is not None
        name = message.text.split()[0][1:].split("@")[0].lower()
        argument = " ".join(context.args or [])
        await self._reply(
            message, dispatch(self.service, person_of(update), place_of(update), name, argument)
        )

    async def enroll(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/enroll sent as the caption of a photo: the photo waits for consent (in memory only)."""
        message = update.effective_message
        assert message is not None
        data = await self._download(message)
        if isinstance(data, Reply):
            await self._send(message, data)
            return
        await self._reply(message, self.service.enroll(person_of(update), place_of(update), data))

    async def photo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo, or a file sent as a document: faces, emotions and songs (or an enrolment)."""
        message = update.effective_message
        assert message is not None
        await self._action(message, ChatAction.UPLOAD_PHOTO)
        data = await self._download(message)
        if isinstance(data, Reply):
            await self._send(message, data)
            return
        await self._reply(message, self.service.handle_photo(person_of(update), place_of(update), data))

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Plain text: a pasted Spotify address finishes linking; in private chats, a nudge."""
        message = update.effective_message
        assert message is not None and message.text is not None
        reply = await self.service.handle_text(person_of(update), place_of(update), message.text)
        if reply is None and message.chat.type == "private":
            reply = Reply("Send me a photo (or /help to see what I can do).")
        if reply is not None:
            await self._send(message, reply)

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A /command we do not have (only answered in private chats, where it was surely for us)."""
        message = update.effective_message
        if message is not None and message.chat.type == "private":
            await self._send(message, Reply("I don't know that command. Send /help to see what I can do."))

    async def other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anything else in a private chat (video, sticker, voice...): say what works."""
        message = update.effective_message
        if message is not None:
            await self._send(message, Reply("I can only read photos: send me a selfie (or /help)."))

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An inline button: answer the query at once, then send what the service says."""
        query = update.callback_query
        assert query is not None
        await query.answer()
        message = query.message
        if not isinstance(message, Message) or query.data is None:
            return
        reply = await self.service.press(person_of(update), place_of(update), query.data)
        if query.data.startswith(("enroll-", "forget-")) and not reply.error:
            await self._safely(
                lambda: message.edit_reply_markup(reply_markup=None)
            )  # a question is answered once
        await self._action(message, ChatAction.TYPING)
        await self._send(message, reply)

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Last resort: log the error, and tell the user something went wrong."""
        log.error("telegram handler failed: %s", context.error, exc_info=context.error)
        if isinstance(update, Update) and update.effective_message is not None:
            target = update.effective_message
            await self._safely(
                lambda: target.reply_text("Sorry, something went wrong on my side. Please try again.")
            )

    async def _notify(self, person: Person, place: Place, reply: Reply) -> None:
        if place.platform == "telegram":
            await self._safely(
                lambda: self.app.bot.send_message(
                    int(place.external_id), render_html(reply), parse_mode=ParseMode.HTML
                )
            )

    # Plumbing -------------------------------------------------------------------------------------

    async def _download(self, message: Message) -> bytes | Reply:
        """The bytes of the message's photo or document, or a Reply saying why not."""
        attachment = message.photo[-1] if message.photo else message.document
        if attachment is None:
            return Reply("That message has no photo.", error=True)
        size = attachment.file_size or 0
        if size > MAX_BYTES:
            log.info("telegram file refused size=%d chat=%s", size, message.chat_id)
            return Reply(
                f"That file is {size / 1e6:.1f} MB; I can take photos up to {MAX_BYTES // 2**20} MB.",
                error=True,
            )
        try:
            file = await attachment.get_file()
            return bytes(await file.download_as_bytearray())
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                return Reply(
                    f"That file is too big; I can take photos up to {MAX_BYTES // 2**20} MB.", error=True
                )
            log.warning("telegram download refused: %s", exc.message)
            return Reply("Telegram wouldn't give me that file; please send it again.", error=True)
        except (NetworkError, TimedOut) as exc:
            log.warning("telegram download failed: %s", exc)
            return Reply(
                "I couldn't download that photo (network trouble); please send it again.", error=True
            )

    async def _reply(self, message: Message, work: Awaitable[Reply]) -> None:
        """Show "typing" while the service works, then send its reply."""
        task = asyncio.ensure_future(work)
        while True:
            await self._action(message, ChatAction.TYPING)
            done, _ = await asyncio.wait({task}, timeout=4.5)  # Telegram shows an action for ~5 s
            if done:
                break
        await self._send(message, task.result())

    async def _send(self, message: Message, reply: Reply) -> None:
        """Render a Reply: photo with caption (if any), then the text and tracks with the buttons."""
        markup = keyboard(reply)
        no_preview = LinkPreviewOptions(is_disabled=True)
        body = render_html(reply, with_faces=reply.photo is None)
        if reply.photo is not None:
            faces = "\n".join(f"• {_text(f.describe())}" for f in reply.faces)
            caption = f"{_text(reply.text)}\n\n{faces}".strip()[:CAPTION_LIMIT]
            photo = reply.photo
            await self._safely(
                lambda: message.reply_photo(photo, caption=caption, parse_mode=ParseMode.HTML, do_quote=False)
            )
            body = render_html(Reply("", tracks=reply.tracks, mood=reply.mood, link=reply.link)) or ""
            if not body and markup is None:
                return
        chunks = split_message(body or _text(reply.text))
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            await self._safely(
                lambda chunk=chunk, last=last: message.reply_text(  # type: ignore[misc]
                    chunk,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup if last else None,
                    link_preview_options=no_preview,
                    do_quote=False,
                )
            )

    async def _action(self, message: Message, action: str) -> None:
        await self._safely(lambda: message.chat.send_action(action))

    async def _safely(self, call: Callable[[], Awaitable[Any]], retries: int = 2) -> Any:
        """Run a Bot API call made by ``call()``; wait out flood limits (429) and retry, log and
        swallow other Telegram errors (the user cannot be told about a failed send anyway)."""
        for attempt in range(retries + 1):
            try:
                return await call()
            except RetryAfter as exc:
                wait = exc.retry_after
                delay = wait.total_seconds() if not isinstance(wait, int | float) else float(wait)
                log.warning("telegram flood limit: retry in %.0f s (attempt %d)", delay, attempt + 1)
                if attempt < retries:
                    await asyncio.sleep(delay)
            except Forbidden as exc:
                log.info("telegram forbidden: %s", exc.message)
                return None
            except TelegramError as exc:
                log.warning("telegram call failed: %s", exc)
                return None
        return None
