"""A running Telegram bot for end-to-end tests: the real python-telegram-bot polling the fake Bot API,
the real service (models, SQLite file, catalog) and Spotify through its fake, with driver helpers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.telegram_bot import TelegramAdapter
from core.app.service import MoodtunesService
from core.vision.analyzer import FaceAnalyzer
from tests.fakes.spotify import FakeSpotify
from tests.fakes.telegram import BotCall, FakeTelegram, TgChat, TgUser
from tests.service_fixtures import make_service

WAIT = 60.0  # generous: the CI machine is shared and has 2 cores


@dataclass
class Harness:
    fake: FakeTelegram
    service: MoodtunesService
    adapter: TelegramAdapter
    spotify: FakeSpotify

    async def say(self, user: TgUser, chat: TgChat | None, text: str, replies: int = 1) -> list[BotCall]:
        """``user`` writes ``text``; wait for ``replies`` new bot messages in that chat and return them."""
        where = chat or self.fake.private_chat(user)
        before = len(self._messages(where))
        self.fake.send_text(user, chat, text)
        return (await self.fake.wait_for_messages(where, before + replies, WAIT))[before:]

    async def photo(self, user: TgUser, chat: TgChat | None, path: Path, replies: int = 2) -> list[BotCall]:
        """``user`` sends a photo; wait for ``replies`` new bot messages (photo + songs by default)."""
        where = chat or self.fake.private_chat(user)
        before = len(self._messages(where))
        self.fake.send_photo(user, chat, path.read_bytes())
        return (await self.fake.wait_for_messages(where, before + replies, WAIT))[before:]

    async def press(self, user: TgUser, message: BotCall, data: str, replies: int = 1) -> list[BotCall]:
        """``user`` presses a button; wait for the query answer and ``replies`` new messages."""
        where = self.fake.private_chat(user) if message.chat_id == user.id else message.chat_id
        assert where is not None
        before = len(self._messages(where))
        query = self.fake.press_button(user, message, data)
        await self.fake.wait_for_answer(query, WAIT)
        return (await self.fake.wait_for_messages(where, before + replies, WAIT))[before:]

    def _messages(self, chat: TgChat | int) -> list[BotCall]:
        return [
            c for c in self.fake.sent_to(chat) if c.method in ("sendMessage", "sendPhoto", "sendDocument")
        ]


@contextlib.asynccontextmanager
async def running_harness(
    tmp_path: Path, pipeline: FaceAnalyzer, cache_dir: Path, spotify: FakeSpotify, **settings: Any
) -> AsyncIterator[Harness]:
    """The bot started on a fresh fake Telegram (photos rate-limited at 100); stopped on exit."""
    async with FakeTelegram() as fake:
        service = await make_service(
            tmp_path,
            pipeline,
            cache_dir,
            spotify,
            telegram_token=fake.token,
            telegram_api_url=fake.base_url,
            **{"rate_limit_photos": 100, **settings},
        )
        adapter = TelegramAdapter(service, service.settings)
        await adapter.start()
        try:
            yield Harness(fake, service, adapter, spotify)
        finally:
            await adapter.stop()
            await service.close()
