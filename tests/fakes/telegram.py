"""A fake Telegram Bot API on 127.0.0.1, for driving the real python-telegram-bot in end-to-end tests.

Scope: what a polling photo bot uses, answered with Bot API JSON that PTB 22 parses.

* Methods: ``getMe``, ``getUpdates`` (long poll honouring ``offset``, ``limit``, ``timeout``; a second
  poller ends the first with 409 Conflict, as Telegram does), ``getFile`` plus downloads under
  ``/file/bot<token>/<path>`` (files over 20 MB answer "Bad Request: file is too big"), ``sendMessage``,
  ``sendPhoto`` / ``sendDocument`` (multipart uploads are kept byte for byte), ``sendChatAction``,
  ``answerCallbackQuery``, ``editMessageText`` / ``editMessageCaption`` / ``editMessageReplyMarkup``,
  ``deleteMessage``, ``getChat``, and harmless no-ops for webhook, command-list and session methods.
* Telegram's rules that bots trip over: ``text`` / ``caption`` length, HTML and MarkdownV2 parse errors,
  ``callback_data`` over 64 bytes, "message is not modified", a bot cannot start a private chat, a
  blocked user, group privacy mode (only commands, mentions and replies reach the bot), bad chat ids.
* Webhooks: after ``setWebhook`` updates are POSTed to the URL with the secret token and redelivered until
  answered 2xx (:mod:`tests.fakes.telegram_webhook`); ``getUpdates`` then answers 409 as Telegram does.
  :meth:`FakeTelegram.hold` pauses every Bot API request at arrival, so a test can kill a bot process
  with requests in flight: a held request whose client went away is dropped, never carried out.
* Not covered: inline mode, payments, media groups, message entities beyond commands / mentions /
  URLs, and re-encoding: the largest ``PhotoSize`` of a photo is the exact bytes the test sent.

Point PTB at it with ``ApplicationBuilder().token(fake.token).base_url(fake.base_url)
.base_file_url(fake.base_file_url)``; PTB appends the token to both (``<base_url><token>/<method>`` and
``<base_file_url><token>/<file_path>``, the latter percent-encoding the token's colon).
"""

from __future__ import annotations

import asyncio
import html
import io
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import (
    CallLog,
    Changes,
    LoopbackServer,
    UploadedFile,
    image_size,
    json_response,
    read_body,
)
from tests.fakes.telegram_webhook import WebhookDelivery

DOWNLOAD_LIMIT = 20 * 1024 * 1024
"""Telegram lets bots download files of at most 20 MB."""

MESSAGE_METHODS = frozenset({"sendMessage", "sendPhoto", "sendDocument"})
"""The bot calls that put a new message into a chat (what :meth:`FakeTelegram.wait_for_messages` counts)."""

_NO_OPS = frozenset(
    {
        "close",
        "logOut",
        "setMyDescription",
        "setMyShortDescription",
        "setMyName",
        "setChatMenuButton",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "reply_parameters",
        "link_preview_options",
        "allowed_updates",
        "commands",
        "scope",
        "media",
    }
)
_INT_PARAMS = frozenset({"message_id", "offset", "limit", "user_id", "reply_to_message_id"})
_HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre"}
    | {"blockquote", "tg-emoji"}
)
_MDV2_ALWAYS_ESCAPED = frozenset(".!#+-={}")
_PHOTO_BOXES = (90, 320, 800, 1280)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


class _ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


@dataclass(frozen=True)
class TgUser:
    """A Telegram user the test acts as."""

    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The Bot API ``User`` object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


ANONYMOUS_ADMIN = TgUser(1087968824, "Group", "GroupAnonymousBot", is_bot=True, language_code=None)
"""The ``from`` of a message an anonymous group admin sends (its ``sender_chat`` is the group)."""
CHANNEL_BOT = TgUser(136817688, "Channel", "Channel_Bot", is_bot=True, language_code=None)
"""The ``from`` of a message sent as a channel (its ``sender_chat`` is the channel)."""


@dataclass(frozen=True)
class TgChat:
    """A chat: the private chat with one user (``id`` is the user's id) or a group."""

    id: int
    type: str
    title: str | None = None
    user: TgUser | None = None
    privacy_mode: bool = True
    """Groups: the bot sees only commands, mentions of it and replies to it (Telegram's default)."""

    def to_dict(self) -> dict[str, Any]:
        """The Bot API ``Chat`` object."""
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
        if self.title is not None:
            data["title"] = self.title
        return data


@dataclass
class StoredFile:
    """A file the fake can serve through ``getFile`` and the download URL."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_size: int
    """The size Telegram reports; may exceed ``len(data)`` to stand for a big file without allocating it."""


@dataclass
class BotCall:
    """One Bot API call the bot made (every method but ``getUpdates``), in the order received."""

    index: int
    method: str
    """Canonical method name, e.g. ``sendPhoto``."""
    params: dict[str, Any]
    """Form / JSON / query parameters; JSON-valued ones (``reply_markup``...) decoded, ids as int."""
    files: dict[str, UploadedFile] = field(default_factory=dict)
    ok: bool = True
    result: Any = None
    """The ``result`` the fake answered (a Message dict for send / edit calls)."""
    error: str | None = None
    """The error ``description`` when ``ok`` is False."""
    photo: bytes | None = None
    """``sendPhoto``: the photo's bytes (uploaded, or the stored file a ``file_id`` named)."""
    document: bytes | None = None
    """``sendDocument``: the document's bytes."""

    @property
    def chat_id(self) -> int | str | None:
        """The target chat (``chat_id`` parameter)."""
        value = self.params.get("chat_id")
        return value if isinstance(value, int | str) else None

    @property
    def message_id(self) -> int | None:
        """The message this call created or changed."""
        if isinstance(self.result, dict) and "message_id" in self.result:
            return int(self.result["message_id"])
        value = self.params.get("message_id")
        return value if isinstance(value, int) else None

    @property
    def text(self) -> str | None:
        """``text`` or ``caption`` as the bot sent it (markup not rendered)."""
        value = self.params.get("text", self.params.get("caption"))
        return value if isinstance(value, str) else None

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        """The decoded ``reply_markup``, if any."""
        value = self.params.get("reply_markup")
        return value if isinstance(value, dict) else None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Inline keyboard buttons, row by row flattened."""
        markup = self.reply_markup or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    @property
    def callback_data(self) -> list[str]:
        """``callback_data`` of every inline button."""
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]

    def summary(self) -> str:
        """``method(chat)``, and the error of a failed call, for timeout messages."""
        return f"{self.method}({self.chat_id}){'' if self.ok else ' FAILED: ' + str(self.error)}"


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_ENTITY_PATTERNS = (
    ("bot_command", re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")),
    ("mention", re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{5,32}")),
    ("url", re.compile(r"https?://[^\s]+")),
)


def _detect_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram adds to user text (offsets and lengths in UTF-16 code units, as the API has them)."""
    found = [
        {"type": kind, "offset": _utf16_len(text[: m.start()]), "length": _utf16_len(m.group())}
        for kind, pattern in _ENTITY_PATTERNS
        for m in pattern.finditer(text)
    ]
    return sorted(found, key=lambda e: e["offset"])


_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^<>]*)>")


def _render_html(text: str) -> str:
    """Check Telegram-flavoured HTML and return the plain text; _ApiError like Telegram's on bad markup."""
    stack: list[str] = []
    plain: list[str] = []
    pos = 0
    while True:
        lt = text.find("<", pos)
        if lt < 0:
            plain.append(text[pos:])
            break
        plain.append(text[pos:lt])
        match = _TAG_RE.match(text, lt)
        offset = len(text[:lt].encode())
        if match is None:
            raise _bad(f"can't parse entities: Unexpected end of name token at byte offset {offset}")
        closing, name = match.group(1) == "/", match.group(2).lower()
        if name not in _HTML_TAGS:
            kind = "end" if closing else "start"
            raise _bad(f'can\'t parse entities: Unsupported {kind} tag "{name}" at byte offset {offset}')
        if closing:
            if not stack or stack[-1] != name:
                raise _bad(
                    f"can't parse entities: Unmatched end tag at byte offset {offset}, expected \"</"
                    f'{stack[-1] if stack else ""}>", found "</{name}>"'
                )
            stack.pop()
        else:
            stack.append(name)
        pos = match.end()
    if stack:
        raise _bad(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return html.unescape("".join(plain))


def _render_markdown_v2(text: str) -> str:
    """Check the MarkdownV2 escaping rule bots break most (reserved characters) and return plain-ish text."""
    plain: list[str] = []
    chars = iter(enumerate(text))
    for index, char in chars:
        if char == "\\":
            nxt = next(chars, None)
            if nxt is not None:
                plain.append(nxt[1])
            continue
        if char in _MDV2_ALWAYS_ESCAPED:
            raise _bad(
                f"can't parse entities: Character '{char}' is reserved and must be escaped with the "
                f"preceding '\\' (at byte offset {len(text[:index].encode())})"
            )
        if char not in "*_~|`[]()>":
            plain.append(char)
    return "".join(plain)


def _render(text: str, parse_mode: Any) -> str:
    mode = str(parse_mode or "").lower()
    if mode == "html":
        return _render_html(text)
    if mode == "markdownv2":
        return _render_markdown_v2(text)
    if mode == "markdown":
        return re.sub(r"[*_`\[\]]", "", text)
    return text


def _check_markup(markup: Any) -> dict[str, Any] | None:
    """Validate an inline keyboard the way Telegram does; other keyboards pass through unchecked."""
    if not isinstance(markup, dict):
        return None
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise _bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise _bad("BUTTON_DATA_INVALID")
            kinds = {"callback_data", "url", "switch_inline_query", "web_app", "login_url", "pay"}
            kinds |= {"switch_inline_query_current_chat", "copy_text", "callback_game"}
            if not kinds & button.keys():
                raise _bad(
                    "can't parse inline keyboard button: InlineKeyboardButton must have exactly one "
                    "of the optional fields"
                )
    return markup


def _photo_variants(data: bytes, size: tuple[int, int]) -> list[tuple[int, int, bytes]]:
    """Telegram-like thumbnails (JPEG, boxed to 90/320/800/1280 px) smaller than the photo, then the photo."""
    width, height = size
    variants: list[tuple[int, int, bytes]] = []
    boxes = [box for box in _PHOTO_BOXES if max(width, height) > box]
    if boxes:
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as image:
                image.draft("RGB", (boxes[-1], boxes[-1]))
                source = image.convert("RGB")
            for box in boxes:
                thumb = source.copy()
                thumb.thumbnail((box, box))
                out = io.BytesIO()
                thumb.save(out, "JPEG", quality=80)
                variants.append((thumb.width, thumb.height, out.getvalue()))
        except Exception:
            variants = []  # undecodable body (e.g. truncated JPEG): serve the original only
    variants.append((width, height, data))
    return variants


def _as_int(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


class FakeTelegram(LoopbackServer):
    """A loopback Telegram Bot API server with a driver API for tests.

    Use as ``async with FakeTelegram() as fake:``; then point PTB at :attr:`base_url` and
    :attr:`base_file_url` with token :attr:`token`. Test side: :meth:`add_user`, :meth:`add_group`,
    :meth:`send_text`, :meth:`send_photo`, :meth:`send_document`, :meth:`press_button` queue updates; the
    bot's calls land in :attr:`calls` / :attr:`sent` and can be awaited with :meth:`wait_for_messages`,
    :meth:`wait_for_call` and :meth:`wait_for_answer`.
    """

    def __init__(
        self,
        token: str = "7000000001:FAKE-telegram-token",
        *,
        bot_username: str = "moodtunes_test_bot",
        bot_name: str = "MoodTunes Test",
        download_limit: int = DOWNLOAD_LIMIT,
    ) -> None:
        prefix = token.partition(":")[0]
        self.token = token
        self.download_limit = download_limit
        self.bot = TgUser(
            id=int(prefix) if prefix.isdigit() else 7000000001,
            first_name=bot_name,
            username=bot_username,
            language_code=None,
            is_bot=True,
        )
        self._log = CallLog[BotCall](BotCall.summary)
        self.calls: list[BotCall] = self._log.calls
        """Every bot call except ``getUpdates``, in order (failed ones too, with ``ok`` False)."""
        self.commands: list[dict[str, Any]] = []
        """The last ``setMyCommands`` list."""
        self.webhook_url = ""
        self.updates_delivered = 0
        """How many updates ``getUpdates`` has handed out (a redelivery counts again)."""
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(10_000_001)
        self._user_ids = itertools.count(100_000_001)
        self._group_ids = itertools.count(1_000_000_001)
        self._file_ids = itertools.count(1)
        self._query_ids = itertools.count(4_000_000_000_001)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._users: dict[int, TgUser] = {}
        self._chats: dict[int, TgChat] = {}
        self._started_private: set[int] = set()
        self._blocked: set[int] = set()
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._queries: dict[str, bool] = {}
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._updates_changed = Changes()
        self._closing = False
        self.webhook: WebhookDelivery | None = None
        """Delivery to the registered webhook (None while polling)."""
        self._running = asyncio.Event()
        self._running.set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """What to pass to ``ApplicationBuilder().base_url()`` (PTB appends the token)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """What to pass to ``ApplicationBuilder().base_file_url()`` (PTB appends the token)."""
        return f"{self.url}/file/bot"

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _before_stop(self) -> None:
        """End pending long polls and webhook deliveries (stop the bot first)."""
        self._closing = True
        self._running.set()
        if self.webhook is not None:
            await self.webhook.stop()
        self._updates_changed.notify()
        self._log.changes.notify()

    # ------------------------------------------------------------------ driver: people and chats

    def add_user(
        self,
        first_name: str = "Alice",
        *,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str | None = "en",
    ) -> TgUser:
        """A new user (ids from 100000001 up); their private chat opens when they first write."""
        user = TgUser(next(self._user_ids), first_name, username, last_name, language_code)
        self._users[user.id] = user
        self._chats[user.id] = TgChat(user.id, "private", user=user)
        return user

    def private_chat(self, user: TgUser) -> TgChat:
        """The private chat between ``user`` and the bot."""
        return self._chats[user.id]

    def add_group(self, title: str = "Test group", *, privacy_mode: bool = True) -> TgChat:
        """A supergroup the bot is a member of (``privacy_mode`` as set in @BotFather; default on)."""
        chat = TgChat(
            -next(self._group_ids) - 1_000_000_000_000, "supergroup", title, privacy_mode=privacy_mode
        )
        self._chats[chat.id] = chat
        return chat

    def block_bot(self, user: TgUser) -> None:
        """``user`` blocks the bot: its sends to their private chat answer 403 Forbidden."""
        self._blocked.add(user.id)

    # ------------------------------------------------------------------ driver: updates

    def send_text(
        self,
        user: TgUser,
        chat: TgChat | None,
        text: str,
        *,
        reply_to: BotCall | dict[str, Any] | None = None,
        sender_chat: TgChat | None = None,
    ) -> dict[str, Any]:
        """``user`` writes ``text`` (commands, mentions and URLs get entities); returns the Message.

        ``sender_chat``: the message is sent on behalf of a chat, as Telegram does for an anonymous group
        admin (the group itself; ``user`` is then :data:`ANONYMOUS_ADMIN`) or a post as a channel (the
        channel; ``user`` is :data:`CHANNEL_BOT`).
        """
        content: dict[str, Any] = {"text": text, "entities": _detect_entities(text)}
        if sender_chat is not None:
            content["sender_chat"] = sender_chat.to_dict()
        return self._user_message(user, chat, content, reply_to)

    def send_photo(
        self,
        user: TgUser,
        chat: TgChat | None,
        data: bytes,
        *,
        caption: str | None = None,
        file_size: int | None = None,
        size: tuple[int, int] | None = None,
        reply_to: BotCall | dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``user`` sends a photo; returns the Message with several ``PhotoSize`` entries, smallest first.

        The largest entry serves ``data`` exactly; smaller ones are JPEG thumbnails. ``file_size`` overrides
        the reported size of the largest entry (to stand for a huge file); ``size`` gives (width, height)
        when ``data`` is not a decodable image.
        """
        dims = size or image_size(data)
        if dims is None:
            raise ValueError(
                "send_photo needs image bytes (or size=(w, h)); use send_document for other data"
            )
        sizes = []
        variants = _photo_variants(data, dims)
        for number, (width, height, body) in enumerate(variants, start=1):
            reported = file_size if file_size is not None and number == len(variants) else len(body)
            stored = self._store_file("photos", "jpg", body, reported)
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.file_size,
                    "width": width,
                    "height": height,
                }
            )
        content: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
            content["caption_entities"] = _detect_entities(caption)
        return self._user_message(user, chat, content, reply_to)

    def send_document(
        self,
        user: TgUser,
        chat: TgChat | None,
        data: bytes,
        filename: str,
        mime_type: str,
        *,
        caption: str | None = None,
        file_size: int | None = None,
    ) -> dict[str, Any]:
        """``user`` sends a file as a document (no compression); ``file_size`` overrides the reported size."""
        extension = filename.rpartition(".")[2] if "." in filename else "bin"
        stored = self._store_file("documents", extension, data, len(data) if file_size is None else file_size)
        content: dict[str, Any] = {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": filename,
                "mime_type": mime_type,
                "file_size": stored.file_size,
            }
        }
        if caption is not None:
            content["caption"] = caption
            content["caption_entities"] = _detect_entities(caption)
        return self._user_message(user, chat, content, None)

    def press_button(self, user: TgUser, message: BotCall | dict[str, Any], callback_data: str) -> str:
        """``user`` presses the inline button with ``callback_data`` on a bot message; returns the query id.

        Raises ValueError when the message (as it is now, after edits) has no such button.
        """
        stored = self._stored_message(message)
        buttons = [b for row in stored.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
        available = [b.get("callback_data") for b in buttons]
        if callback_data not in available:
            raise ValueError(
                f"message {stored['message_id']} has no button {callback_data!r}; it has {available}"
            )
        query_id = str(next(self._query_ids))
        self._queries[query_id] = False
        self._push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.to_dict(),
                    "message": stored,
                    "chat_instance": str(abs(stored["chat"]["id"]) * 7 + 3),
                    "data": callback_data,
                }
            }
        )
        return query_id

    def fail_next(
        self, method: str, description: str, *, error_code: int = 400, retry_after: int | None = None
    ) -> None:
        """Make the next call of ``method`` fail with this error (``retry_after`` gives a 429 flood wait)."""
        parameters = None if retry_after is None else {"retry_after": retry_after}
        code = 429 if retry_after is not None else error_code
        self._log.fail_next(method.lower(), _ApiError(code, description, parameters))

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by the bot (through a later ``offset``)."""
        return len(self._updates)

    # ------------------------------------------------------------------ driver: what the bot did

    @property
    def sent(self) -> list[BotCall]:
        """The successful calls that addressed a chat or answered a callback query, in order."""
        return [
            c for c in self.calls if c.ok and (c.chat_id is not None or c.method == "answerCallbackQuery")
        ]

    def sent_to(self, chat: TgChat | TgUser | int) -> list[BotCall]:
        """:attr:`sent` restricted to one chat (a user means their private chat)."""
        chat_id = chat if isinstance(chat, int) else chat.id
        return [c for c in self.sent if c.chat_id == chat_id]

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes behind a ``file_id`` (the test's uploads and the bot's)."""
        return self._files[file_id].data

    async def wait_for_messages(
        self, chat: TgChat | TgUser | int, count: int = 1, timeout: float = 5.0
    ) -> list[BotCall]:
        """Wait until the bot has put ``count`` messages (MESSAGE_METHODS) into ``chat``; return them all."""
        chat_id = chat if isinstance(chat, int) else chat.id
        return await self._log.at_least(
            lambda c: c.ok and c.chat_id == chat_id and c.method in MESSAGE_METHODS,
            count,
            timeout=timeout,
            missing=f"bot sent fewer than {count} messages to chat {chat_id}",
        )

    async def wait_for_call(
        self,
        method: str | None = None,
        *,
        chat: TgChat | TgUser | int | None = None,
        predicate: Callable[[BotCall], bool] | None = None,
        after: int = 0,
        timeout: float = 5.0,
    ) -> BotCall:
        """The first successful call (index >= ``after``) matching ``method``, ``chat`` and ``predicate``."""
        chat_id = chat if chat is None or isinstance(chat, int) else chat.id
        return await self._log.first(
            lambda c: (
                c.ok
                and (method is None or c.method == method)
                and (chat_id is None or c.chat_id == chat_id)
                and (predicate is None or predicate(c))
            ),
            after=after,
            timeout=timeout,
            missing=f"no {method or 'call'} matched (chat {chat_id})",
        )

    async def wait_for_answer(self, query_id: str, timeout: float = 5.0) -> BotCall:
        """The bot's ``answerCallbackQuery`` for the query :meth:`press_button` returned."""
        return await self.wait_for_call(
            "answerCallbackQuery",
            predicate=lambda c: str(c.params.get("callback_query_id")) == query_id,
            timeout=timeout,
        )

    # ------------------------------------------------------------------ internals: state

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _store_file(self, folder: str, extension: str, data: bytes, file_size: int) -> StoredFile:
        number = next(self._file_ids)
        stored = StoredFile(
            file_id=f"AgACAgIAAxkBAAIB{number:08d}{folder[:3]}",
            file_unique_id=f"AQADuq{number:06d}",
            file_path=f"{folder}/file_{number}.{extension}",
            data=data,
            file_size=file_size,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _push_update(self, body: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **body})
        self._updates_changed.notify()
        if self.webhook is not None:
            self.webhook.notify()
        return update_id

    def _take_updates(self) -> list[dict[str, Any]]:
        """The waiting updates, handed to the webhook delivery (which owns them from now on)."""
        taken, self._updates = self._updates, []
        return taken

    def hold(self) -> None:
        """Pause every Bot API request at arrival until :meth:`release`."""
        self._running.clear()

    def release(self) -> None:
        """Carry out the held requests whose clients are still connected; drop the others."""
        self._running.set()

    def _user_message(
        self,
        user: TgUser,
        chat: TgChat | None,
        content: dict[str, Any],
        reply_to: BotCall | dict[str, Any] | None,
    ) -> dict[str, Any]:
        chat = chat or self._chats[user.id]
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat.id),
            "from": user.to_dict(),
            "chat": chat.to_dict(),
            "date": int(time.time()),
            **content,
        }
        if reply_to is not None:
            message["reply_to_message"] = self._stored_message(reply_to)
        self._messages[(chat.id, message["message_id"])] = message
        if chat.type == "private":
            self._started_private.add(user.id)
        if self._bot_sees(chat, message):
            self._push_update({"message": message})
        return message

    def _bot_sees(self, chat: TgChat, message: dict[str, Any]) -> bool:
        if chat.type == "private" or not chat.privacy_mode:
            return True
        text = message.get("text", message.get("caption", ""))
        entities = message.get("entities", message.get("caption_entities", []))
        if any(e["type"] == "bot_command" for e in entities) or f"@{self.bot.username}" in text:
            return True
        replied = message.get("reply_to_message") or {}
        return bool(replied.get("from", {}).get("id") == self.bot.id)

    def _stored_message(self, message: BotCall | dict[str, Any]) -> dict[str, Any]:
        raw = message.result if isinstance(message, BotCall) else message
        if not isinstance(raw, dict) or "message_id" not in raw:
            raise ValueError(f"not a message: {message!r}")
        return self._messages.get((raw["chat"]["id"], raw["message_id"]), raw)

    # ------------------------------------------------------------------ internals: HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self._running.is_set():
            await self._running.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)  # the client died while held: nothing is carried out
        path = request.path  # decoded: PTB percent-encodes the token's ':' in file URLs
        if path.startswith("/file/bot"):
            token, _, file_path = path[len("/file/bot") :].partition("/")
            return self._download(token, file_path)
        if not path.startswith("/bot"):
            return self._error(_ApiError(404, "Not Found"))
        token, _, method = path[len("/bot") :].partition("/")
        if token != self.token:
            return self._error(_ApiError(401, "Unauthorized"))
        params, files = await self._read_params(request)
        name = method.lower()
        if name == "getupdates":
            try:
                return self._ok(await self._get_updates(params))
            except _ApiError as exc:
                return self._error(exc)
        handler = self._handlers().get(name)
        call = BotCall(len(self.calls), handler[0] if handler else method, params, files)
        with self._log.recording(call):
            try:
                if handler is None:
                    raise _ApiError(404, "Not Found")
                failure = self._log.injected_failure(name)
                if failure is not None:
                    raise failure
                call.result = await handler[1](call)
                return self._ok(call.result)
            except _ApiError as exc:
                call.ok, call.error = False, exc.description
                return self._error(exc)

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        body = await read_body(request)
        raw: dict[str, Any] = {**request.query, **body.form}
        if isinstance(body.json, dict):
            raw.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.json.items()})
        files = {f.field: f for f in body.files}
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if key in _JSON_PARAMS and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            elif key in _INT_PARAMS or key == "chat_id":
                value = _as_int(value)
            params[key] = value
        return params, files

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return json_response({"ok": True, "result": result})

    @staticmethod
    def _error(exc: _ApiError) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
        if exc.parameters:
            body["parameters"] = exc.parameters
        return json_response(body, exc.code)

    def _download(self, token: str, file_path: str) -> web.Response:
        stored = self._files_by_path.get(file_path)
        if token != self.token or stored is None or stored.file_size > self.download_limit:
            return self._error(_ApiError(404, "Not Found"))
        return web.Response(body=stored.data, content_type="application/octet-stream")

    def _handlers(self) -> dict[str, tuple[str, Callable[[BotCall], Any]]]:
        table: dict[str, Callable[[BotCall], Any]] = {
            "getMe": self._get_me,
            "getFile": self._get_file,
            "getChat": self._get_chat,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
        }
        table.update({name: self._no_op for name in _NO_OPS})
        return {name.lower(): (name, handler) for name, handler in table.items()}

    # ------------------------------------------------------------------ methods

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if isinstance(params.get("allowed_updates"), list):
            self._allowed_updates = params["allowed_updates"] or None
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._updates_changed.notify()  # an older long poll still waiting ends with 409, as on Telegram
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise _ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self._allowed_updates:
                allowed = set(self._allowed_updates)
                self._updates = [u for u in self._updates if allowed & u.keys()]
            ready = self._updates[:limit]
            if ready or self._closing or loop.time() >= deadline:
                self.updates_delivered += len(ready)
                return ready
            await self._updates_changed.wait(deadline - loop.time())

    async def _get_me(self, call: BotCall) -> dict[str, Any]:
        return {
            **self.bot.to_dict(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_file(self, call: BotCall) -> dict[str, Any]:
        stored = self._files.get(str(call.params.get("file_id")))
        if stored is None:
            raise _bad("invalid file_id")
        if stored.file_size > self.download_limit:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    async def _get_chat(self, call: BotCall) -> dict[str, Any]:
        chat = self._chat(call)
        return {
            **chat.to_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _chat(self, call: BotCall, *, sending: bool = False) -> TgChat:
        chat_id = call.params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise _bad("chat not found")
        if sending and chat.type == "private":
            if chat.id in self._blocked:
                raise _ApiError(403, "Forbidden: bot was blocked by the user")
            if chat.id not in self._started_private:
                raise _ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        return chat

    def _bot_message(self, chat: TgChat, call: BotCall, content: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat.id),
            "from": self.bot.to_dict(),
            "chat": chat.to_dict(),
            "date": int(time.time()),
            **content,
        }
        markup = _check_markup(call.params.get("reply_markup"))
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        reply = call.params.get("reply_parameters")
        reply_id = (
            reply.get("message_id") if isinstance(reply, dict) else call.params.get("reply_to_message_id")
        )
        if reply_id is not None:
            replied = self._messages.get((chat.id, int(reply_id)))
            allow = isinstance(reply, dict) and reply.get("allow_sending_without_reply")
            if replied is None and not allow:
                raise _bad("message to be replied not found")
            if replied is not None:
                message["reply_to_message"] = replied
        self._messages[(chat.id, message["message_id"])] = message
        return message

    def _text_content(self, call: BotCall, key: str, limit: int) -> dict[str, Any]:
        text = call.params.get(key)
        if text is None or text == "":
            if key == "text":
                raise _bad("message text is empty")
            return {}
        plain = _render(str(text), call.params.get("parse_mode"))
        if len(plain) > limit:
            raise _bad("message is too long" if key == "text" else "message caption is too long")
        if not plain.strip() and key == "text":
            raise _bad("message text is empty")
        return {key: plain}

    async def _send_message(self, call: BotCall) -> dict[str, Any]:
        chat = self._chat(call, sending=True)
        content = self._text_content(call, "text", 4096)
        return self._bot_message(chat, call, content)

    def _input_file(self, call: BotCall, key: str) -> tuple[bytes | None, str | None, UploadedFile | None]:
        """(bytes, existing file_id, upload) for a file parameter: an upload, attach://, file_id or URL."""
        value = call.params.get(key)
        upload = call.files.get(key)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = call.files.get(value[len("attach://") :])
        if upload is not None:
            return upload.data, None, upload
        if isinstance(value, str) and value in self._files:
            return self._files[value].data, value, None
        if isinstance(value, str) and re.match(r"https?://", value):
            return None, None, None
        raise _bad(
            "wrong file identifier/HTTP URL specified" if value else f"there is no {key} in the request"
        )

    async def _send_photo(self, call: BotCall) -> dict[str, Any]:
        chat = self._chat(call, sending=True)
        data, _, _ = self._input_file(call, "photo")
        content = self._text_content(call, "caption", 1024)
        sizes: list[dict[str, Any]] = []
        if data is not None:
            dims = image_size(data)
            if dims is None:
                raise _bad("IMAGE_PROCESS_FAILED")
            if sum(dims) > 10_000 or max(dims) > 20 * min(dims):
                raise _bad("PHOTO_INVALID_DIMENSIONS")
            for width, height, body in _photo_variants(data, dims):
                stored = self._store_file("photos", "jpg", body, len(body))
                sizes.append(
                    {
                        "file_id": stored.file_id,
                        "file_unique_id": stored.file_unique_id,
                        "file_size": stored.file_size,
                        "width": width,
                        "height": height,
                    }
                )
        call.photo = data
        return self._bot_message(chat, call, {"photo": sizes, **content})

    async def _send_document(self, call: BotCall) -> dict[str, Any]:
        chat = self._chat(call, sending=True)
        data, file_id, upload = self._input_file(call, "document")
        content = self._text_content(call, "caption", 1024)
        if file_id is not None:
            stored = self._files[file_id]
            name, mime = stored.file_path.rpartition("/")[2], "application/octet-stream"
        else:
            body = data or b""
            name = (upload.filename if upload else None) or "document"
            mime = (upload.content_type if upload else None) or "application/octet-stream"
            stored = self._store_file("documents", name.rpartition(".")[2] or "bin", body, len(body))
        call.document = data
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": name,
            "mime_type": mime,
            "file_size": stored.file_size,
        }
        return self._bot_message(chat, call, {"document": document, **content})

    async def _send_chat_action(self, call: BotCall) -> bool:
        self._chat(call, sending=True)
        if call.params.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    async def _answer_callback_query(self, call: BotCall) -> bool:
        query_id = str(call.params.get("callback_query_id"))
        if self._queries.get(query_id, True):
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if len(str(call.params.get("text") or "")) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        self._queries[query_id] = True
        return True

    def _editable(self, call: BotCall) -> dict[str, Any] | None:
        """The stored message an edit targets; None for inline messages (``inline_message_id``)."""
        if call.params.get("inline_message_id"):
            return None
        chat = self._chat(call)
        message = self._messages.get((chat.id, _as_int(call.params.get("message_id"))))
        if message is None:
            raise _bad("message to edit not found")
        if message["from"]["id"] != self.bot.id:
            raise _bad("message can't be edited")
        return message

    def _apply_edit(
        self, message: dict[str, Any], call: BotCall, changes: dict[str, Any], drop: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Replace the stored message; an edit without ``reply_markup`` removes the inline keyboard."""
        markup = _check_markup(call.params.get("reply_markup"))
        new = {k: v for k, v in message.items() if k not in drop and k not in ("reply_markup", "edit_date")}
        new.update(changes)
        if markup is not None and "inline_keyboard" in markup:
            new["reply_markup"] = markup
        if new == {k: v for k, v in message.items() if k != "edit_date"}:
            raise _bad(_NOT_MODIFIED.removeprefix("Bad Request: "))
        new["edit_date"] = int(time.time())
        self._messages[(message["chat"]["id"], message["message_id"])] = new
        return new

    async def _edit_message_text(self, call: BotCall) -> dict[str, Any] | bool:
        message = self._editable(call)
        content = self._text_content(call, "text", 4096)
        if message is None:
            return True
        if "text" not in message:
            raise _bad("there is no text in the message to edit")
        return self._apply_edit(message, call, content)

    async def _edit_message_caption(self, call: BotCall) -> dict[str, Any] | bool:
        message = self._editable(call)
        content = self._text_content(call, "caption", 1024)
        if message is None:
            return True
        if "text" in message:
            raise _bad("there is no caption in the message to edit")
        return self._apply_edit(message, call, content, drop=("caption",))

    async def _edit_message_reply_markup(self, call: BotCall) -> dict[str, Any] | bool:
        message = self._editable(call)
        if message is None:
            _check_markup(call.params.get("reply_markup"))
            return True
        return self._apply_edit(message, call, {})

    async def _delete_message(self, call: BotCall) -> bool:
        chat = self._chat(call)
        if self._messages.pop((chat.id, _as_int(call.params.get("message_id"))), None) is None:
            raise _bad("message to delete not found")
        return True

    async def _set_my_commands(self, call: BotCall) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise _bad('field "commands" must be an Array')
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands = commands
        return True

    async def _get_my_commands(self, call: BotCall) -> list[dict[str, Any]]:
        return self.commands

    async def _delete_my_commands(self, call: BotCall) -> bool:
        self.commands = []
        return True

    async def _set_webhook(self, call: BotCall) -> bool:
        self.webhook_url = str(call.params.get("url") or "")
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None
        if self.webhook_url:
            self.webhook = WebhookDelivery(
                self.webhook_url,
                str(call.params.get("secret_token") or ""),
                int(call.params.get("max_connections") or 40),
                self._take_updates,
            )
            self.webhook.start()
            self.webhook.notify()
        return True

    async def _delete_webhook(self, call: BotCall) -> bool:
        self.webhook_url = ""
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None
        if str(call.params.get("drop_pending_updates")).lower() == "true":
            self._updates.clear()
        return True

    async def _get_webhook_info(self, call: BotCall) -> dict[str, Any]:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _no_op(self, call: BotCall) -> bool:
        return True
