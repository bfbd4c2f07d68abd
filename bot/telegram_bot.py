"""Telegram adapter (python-telegram-bot 22): long polling by default, a webhook when configured.

Every handler is a small async function that turns the update into a :class:`Person`, a
:class:`Place` and bytes or text, calls :class:`~core.app.service.MoodtunesService`, and renders the
:class:`~core.app.replies.Reply`: an annotated photo with a short caption, then the songs as an HTML
message with inline buttons. Photos and images sent as documents both work; a file is downloaded only
after its sender passed the rate limit, and files over 20 MB are refused from their declared size.

Settings: ``MOODTUNES_TELEGRAM_TOKEN``; ``MOODTUNES_TELEGRAM_API_URL`` (Bot API base, default
``https://api.telegram.org/bot``; the file URL follows from it) to use a local Bot API server or a
test fake; ``MOODTUNES_TELEGRAM_WEBHOOK_URL`` to receive updates by webhook (see
:mod:`bot.telegram_webhook`: every update handled once, across any number of workers).

Languages: the sender's ``language_code`` travels with each update as :attr:`Person.language`; the
language of each update's answers is decided before any handler runs (:meth:`TelegramAdapter.begin`),
and a reply is rendered in the language it was written in. The command menu is published once per
shipped language (``setMyCommands`` with ``language_code``) and once as the default (English).
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

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
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from core.app import texts
from core.app.commands import BY_NAME, commands_for, fill, split_command
from core.app.i18n import DEFAULT, LANGUAGES, _
from core.app.people import Person, Place
from core.app.replies import Reply
from core.app.requests import set_request
from core.app.service import MoodtunesService
from core.app.uploads import too_big
from core.config import Settings
from core.errors import DownloadFailed
from core.vision.imaging import MAX_BYTES

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024
MESSAGE_LIMIT = 4096
CONCURRENT_UPDATES = 64
"""Updates handled at once when polling; photo work beyond the inference queue is refused as busy."""
ALLOWED_UPDATES = ["message", "callback_query"]


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
    """The sender of an update. A message sent as a chat (an anonymous group admin, a channel post)
    is not one person: it gets a sender scoped to that chat, marked anonymous."""
    message = update.effective_message
    chat = update.effective_chat
    sender_chat = message.sender_chat if message is not None else None
    if sender_chat is not None and chat is not None:
        return Person("telegram", f"chat:{chat.id}:{sender_chat.id}", sender_chat.title or "", anonymous=True)
    user = update.effective_user
    assert user is not None
    return Person("telegram", str(user.id), user.full_name, language=user.language_code or None)


def place_of(update: Update) -> Place:
    """The chat of an update: the scope faces are matched in."""
    chat = update.effective_chat
    assert chat is not None
    return Place("telegram", str(chat.id), chat.title or "", private=chat.type == "private")


MENU_LABEL = 40
"""Characters of a menu option's button label (Telegram shortens long labels anyway)."""


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The reply's menus, side by side (row ``i`` holds option ``i`` of each menu, marked with the menu's
    symbol, e.g. "👎 3. Song" and "👍 3. Song"), then its buttons, one row each."""
    if not reply.buttons and not reply.menus:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for i in range(max((len(m.options) for m in reply.menus), default=0)):
        row = []
        for menu in reply.menus:
            if i < len(menu.options):
                option = menu.options[i]
                label = f"{menu.symbol} {option.label}"
                label = label if len(label) <= MENU_LABEL else label[: MENU_LABEL - 1] + "…"
                row.append(InlineKeyboardButton(label, callback_data=option.data))
        rows.append(row)
    rows += [[InlineKeyboardButton(b.label, callback_data=b.data)] for b in reply.buttons]
    return InlineKeyboardMarkup(rows)


def render_html(reply: Reply, with_faces: bool = True) -> str:
    """The reply as Telegram HTML, in its language: text, face lines, then linked tracks."""
    parts = [_text(reply.text)]
    with reply.speaking():
        if with_faces and reply.faces:
            parts.append(face_lines(reply))
        if reply.tracks:
            lines = [
                f'{i}. <a href="{html.escape(t.url)}">{_text(t.name)}</a> – {_text(", ".join(t.artists))}'
                for i, t in enumerate(reply.tracks, 1)
            ]
            heading = (
                f"<b>{_text(_(texts.SONGS_FOR_MOOD))}</b> ({_text(reply.mood)}):"
                if reply.mood
                else f"<b>{_text(_(texts.SONGS))}</b>:"
            )
            parts.append(heading + "\n" + "\n".join(lines))
    if reply.link and reply.link not in reply.text:
        parts.append(_text(reply.link))
    return "\n\n".join(p for p in parts if p)


def face_lines(reply: Reply, escape: bool = True) -> str:
    """The reply's faces, one line each (``• Ann looks happy (87%)``), in the reply's language,
    escaped for HTML unless ``escape`` is False."""
    with reply.speaking():
        return "\n".join(f"• {_text(f.describe()) if escape else f.describe()}" for f in reply.faces)


def caption(plain: str, limit: int = CAPTION_LIMIT) -> str:
    """A photo caption as HTML: ``plain`` cut to Telegram's limit (which counts the text as shown, not
    the markup) before it is escaped, so an escape such as ``&amp;`` is never cut in half."""
    plain = plain.strip()
    if len(plain) > limit:
        plain = plain[: limit - 1] + "…"
    return _text(plain)


def menu_commands(language: str) -> list[BotCommand]:
    """The command menu in ``language`` (descriptions translated)."""
    return [BotCommand(c.name, fill(c.description, language)) for c in commands_for("telegram")]


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


@dataclass
class Delivery:
    """The answer to one webhook update being sent: the first ``skip`` messages were already sent by
    a worker that died (they are not sent again), and ``record(n)`` stores that ``n`` are sent."""

    skip: int = 0
    record: Callable[[int], Awaitable[object]] | None = None
    sent: int = 0


CURRENT_DELIVERY: ContextVar[Delivery | None] = ContextVar("moodtunes_telegram_delivery", default=None)
"""The delivery of the update being handled in this task (None when polling)."""


class TelegramAdapter:
    """The Telegram bot over one service. :meth:`start` connects, :meth:`stop` finishes and disconnects.

    Args:
        service: the running service.
        settings: the Telegram token and URLs.
        receive: ``"polling"`` (default without a webhook URL), ``"webhook"`` (the adapter is fed by
            :class:`bot.telegram_webhook.WebhookServer`), or ``"none"`` (send only).
        register_webhook: tell Telegram the webhook URL at start (one worker of several does it).
    """

    def __init__(
        self,
        service: MoodtunesService,
        settings: Settings,
        receive: str | None = None,
        register_webhook: bool = True,
    ) -> None:
        self.service = service
        self.settings = settings
        self.receive = receive or ("webhook" if settings.telegram_webhook_url else "polling")
        self.register_webhook = register_webhook
        token = settings.telegram_token.get_secret_value()
        if not token:
            raise ValueError("MOODTUNES_TELEGRAM_TOKEN is not set")
        builder = (
            ApplicationBuilder()
            .token(token)
            .base_url(settings.telegram_api_url)
            .base_file_url(file_url_for(settings.telegram_api_url))
            .concurrent_updates(CONCURRENT_UPDATES)
        )
        if self.receive != "polling":
            builder = builder.updater(None)
        self.app: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self._add_handlers()
        self._unsubscribe = service.on_spotify_linked(self.notify)

    def _add_handlers(self) -> None:
        app = self.app
        app.add_handler(TypeHandler(Update, self.begin), group=-1)
        app.add_handler(MessageHandler(filters.PHOTO | filters.Document.ALL, self.photo))
        app.add_handler(MessageHandler(filters.COMMAND, self.command))
        app.add_handler(MessageHandler(filters.TEXT, self.text))
        app.add_handler(MessageHandler(filters.ChatType.PRIVATE, self.other))
        app.add_handler(CallbackQueryHandler(self.button))
        app.add_error_handler(self.error)

    async def start(self) -> None:
        """Connect: check the token, publish the commands (one menu per shipped language, then the
        default), start polling (or register the webhook)."""
        await self.app.initialize()
        for language in (code for code in LANGUAGES if code != DEFAULT):
            await self._safely(
                lambda language=language: self.app.bot.set_my_commands(  # type: ignore[misc]
                    menu_commands(language), language_code=language
                )
            )
        await self._safely(lambda: self.app.bot.set_my_commands(menu_commands(DEFAULT)))
        await self.app.start()
        if self.receive == "polling":
            assert self.app.updater is not None
            await self.app.updater.start_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
        elif self.receive == "webhook" and self.register_webhook:
            await self.app.bot.set_webhook(
                self.settings.telegram_webhook_url,
                secret_token=webhook_secret(self.settings.telegram_token.get_secret_value()),
                allowed_updates=ALLOWED_UPDATES,
                max_connections=100,
            )
        log.info("telegram started bot=@%s mode=%s", self.app.bot.username, self.receive)

    async def stop(self) -> None:
        """Stop fetching updates, finish the replies in flight, then disconnect."""
        self._unsubscribe()
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        log.info("telegram stopped")

    async def process(self, data: dict[str, Any], delivery: Delivery | None = None) -> None:
        """Handle one update received by the webhook (returns when its replies are sent)."""
        token = CURRENT_DELIVERY.set(delivery)
        try:
            await self.app.process_update(Update.de_json(data, self.app.bot))
        finally:
            CURRENT_DELIVERY.reset(token)

    # Handlers -----------------------------------------------------------------------------------

    async def begin(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Before any handler: mark the request, so a redelivered update gets the same answer, and
        decide the language of the answers (the sender's choice, else their app's)."""
        set_request(f"telegram:{update.update_id}")
        if update.effective_user is not None or update.effective_message is not None:
            try:
                await self.service.speak_to(person_of(update))
            except Exception:  # the service decides again; a store hiccup must not drop the update
                log.warning("telegram language not decided update=%s", update.update_id, exc_info=True)

    async def command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A /command (text only)."""
        message = update.effective_message
        assert message is not None and message.text is not None
        parts = split_command(message.text, self.app.bot.username or "")
        if parts is None or (parts[0] not in BY_NAME and message.chat.type != "private"):
            return  # for another bot, or unknown in a group (where it may be another bot's)
        work = self.service.text_command(
            person_of(update), place_of(update), message.text, bot_username=self.app.bot.username or ""
        )
        await self._reply(message, work)

    async def photo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A photo, or a file sent as a document: faces, emotions and songs (or an enrolment).
        With ``/enroll`` as its caption, the photo is the enrolment selfie (it waits for consent)."""
        message = update.effective_message
        assert message is not None
        person, place = person_of(update), place_of(update)
        download = self._downloader(message)
        caption = (message.caption or "").strip()
        if caption.startswith("/"):
            work = self.service.text_command(
                person, place, caption, photo=download, bot_username=self.app.bot.username or ""
            )
            await self._reply(message, work)
            return
        await self._action(message, ChatAction.UPLOAD_PHOTO)
        await self._reply(message, self.service.handle_photo(person, place, download))

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Plain text: a pasted Spotify address finishes linking; in private chats, a nudge."""
        message = update.effective_message
        assert message is not None and message.text is not None
        reply = await self.service.handle_text(person_of(update), place_of(update), message.text)
        if reply is None and message.chat.type == "private":
            reply = Reply(_(texts.SEND_A_PHOTO))
        if reply is not None:
            await self._send(message, reply)

    async def other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anything else in a private chat (video, sticker, voice...): say what works."""
        message = update.effective_message
        if message is not None:
            await self._send(message, Reply(_(texts.ONLY_PHOTOS)))

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An inline button: answer the query at once, then send what the service says."""
        query = update.callback_query
        assert query is not None
        await self._safely(lambda: query.answer())
        message = query.message
        if not isinstance(message, Message) or query.data is None:
            return
        reply = await self.service.press(person_of(update), place_of(update), query.data)
        if reply.closes_question:  # a question is answered once
            await self._safely(lambda: message.edit_reply_markup(reply_markup=None))
        await self._action(message, ChatAction.TYPING)
        await self._send(message, reply)

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Last resort: log the error, and tell the user something went wrong."""
        log.error("telegram handler failed: %r", context.error, exc_info=context.error)
        if isinstance(update, Update) and update.effective_message is not None:
            target = update.effective_message
            sorry = _(texts.SORRY)
            await self._deliver(lambda: target.reply_text(sorry))

    async def notify(self, person: Person, reply: Reply) -> None:
        """Tell a Telegram user privately (their private chat's id is their user id), with the
        reply's buttons (the question that confirms a Spotify account)."""
        if person.platform != "telegram" or not person.external_id.isdigit():
            return
        await self._safely(
            lambda: self.app.bot.send_message(
                int(person.external_id),
                render_html(reply),
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(reply),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )

    # Plumbing -------------------------------------------------------------------------------------

    def _downloader(self, message: Message) -> Callable[[], Awaitable[bytes]]:
        """``await download()`` for the message's photo or document; raises FileTooLarge or DownloadFailed."""

        async def download() -> bytes:
            attachment = message.photo[-1] if message.photo else message.document
            if attachment is None:
                raise DownloadFailed(texts.NO_PHOTO_IN_MESSAGE)
            size = attachment.file_size or 0
            if size > MAX_BYTES:
                log.info("telegram file refused size=%d chat=%s", size, message.chat_id)
                raise too_big(size)
            try:
                file = await attachment.get_file()
                return bytes(await file.download_as_bytearray())
            except BadRequest as exc:
                if "too big" in exc.message.lower():
                    raise too_big() from None
                log.warning("telegram download refused: %s", exc.message)
                raise DownloadFailed(texts.TELEGRAM_REFUSED_FILE) from None
            except (NetworkError, TimedOut) as exc:
                log.warning("telegram download failed: %s", exc)
                raise DownloadFailed(texts.NETWORK_TROUBLE) from None

        return download

    async def _reply(self, message: Message, work: Awaitable[Reply | None]) -> None:
        """Show "typing" while the service works, then send its reply."""
        task = asyncio.ensure_future(work)
        while True:
            await self._action(message, ChatAction.TYPING)
            done, _pending = await asyncio.wait({task}, timeout=4.5)  # Telegram shows an action for ~5 s
            if done:
                break
        reply = task.result()
        if reply is not None:
            await self._send(message, reply)

    async def _send(self, message: Message, reply: Reply) -> None:
        """Render a Reply: photo with caption (if any), then the text and tracks with the buttons; a
        private part goes to the sender's private chat."""
        if reply.direct is not None and not await self._send_direct(message, reply.direct):
            name = self.app.bot.username or "me"
            with reply.speaking():
                text = _(texts.OPEN_PRIVATE_CHAT).format(bot=f"@{name}")
            reply = replace(reply, text=text, direct=None)
        markup = keyboard(reply)
        no_preview = LinkPreviewOptions(is_disabled=True)
        body = render_html(reply, with_faces=reply.photo is None)
        if reply.photo is not None:
            text = caption(f"{reply.text}\n\n{face_lines(reply, escape=False)}")
            photo = reply.photo
            await self._deliver(
                lambda: message.reply_photo(photo, caption=text, parse_mode=ParseMode.HTML, do_quote=False)
            )
            body = render_html(replace(reply, text="", faces=(), photo=None)) or ""
            if not body and markup is None:
                return
        chunks = split_message(body or _text(reply.text))
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            await self._deliver(
                lambda chunk=chunk, last=last: message.reply_text(  # type: ignore[misc]
                    chunk,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup if last else None,
                    link_preview_options=no_preview,
                    do_quote=False,
                )
            )

    async def _send_direct(self, message: Message, direct: Reply) -> bool:
        """Deliver a private part in the sender's private chat (never in the group); False when
        Telegram refuses (the sender never started a chat with the bot)."""
        user = message.from_user
        if user is None:
            return False
        if direct.photo is not None:  # e.g. the /history chart asked for in a group
            photo, text = direct.photo, caption(direct.text)
            sent = await self._deliver(
                lambda: self.app.bot.send_photo(
                    user.id,
                    photo,
                    caption=text,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(direct),
                )
            )
            return sent is not None
        sent = await self._deliver(
            lambda: self.app.bot.send_message(
                user.id,
                render_html(direct),
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(direct),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        return sent is not None

    async def _deliver(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Send one message of an answer (via :meth:`_safely`), once: under a webhook delivery that
        already sent it (a redelivered update), skip it; else record it as sent when it was."""
        delivery = CURRENT_DELIVERY.get()
        if delivery is not None and delivery.sent < delivery.skip:
            delivery.sent += 1
            return True  # sent before this worker took the update over
        result = await self._safely(call)
        if delivery is not None:
            delivery.sent += 1
            if delivery.record is not None:
                await delivery.record(delivery.sent)
        return result

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
