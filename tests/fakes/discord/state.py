"""The fake's in-memory Discord: settings, users, guilds, channels, messages, attachments, application
commands and interactions, and the API objects (members, guilds, messages) built from them."""

from __future__ import annotations

import mimetypes
import re
import time
from collections.abc import Sequence
from typing import Any

from tests.fakes.discord.records import (
    DISCORD_EPOCH_MS,
    GUILD_MEMBERS,
    GUILD_PRESENCES,
    MESSAGE_CONTENT,
    PERMISSIONS,
    DcChannel,
    DcGuild,
    DcUser,
    DiscordCall,
    SentInteraction,
    now_iso,
)
from tests.fakes.loopback import image_size

SHARD_SPREAD = 2520
"""The least common multiple of 1..10: a guild id whose ``(id >> 22) % SHARD_SPREAD`` is ``k`` falls on
shard ``k % n`` for every shard count ``n`` from 1 to 10."""


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that owns a guild, as Discord routes: ``(guild_id >> 22) % shard_count``."""
    return (guild_id >> 22) % shard_count


class DiscordState:
    """What the fake Discord knows; the gateway, the REST API and the interactions share one."""

    def __init__(
        self,
        token: str,
        *,
        bot_name: str,
        privileged_intents: int,
        interaction_deadline: float | None,
        heartbeat_interval_ms: int,
        echo_bot_messages: bool,
        shard_count: int,
    ) -> None:
        self.token = token
        self.privileged_intents = privileged_intents
        self.interaction_deadline = interaction_deadline
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.echo_bot_messages = echo_bot_messages
        self.shard_count = shard_count
        self.port = 0
        self._last_snowflake = 0
        self.bot = DcUser(self.snowflake(), bot_name, None, bot=True)
        self.application_id = self.bot.id
        self.owner = DcUser(self.snowflake(), "app-owner", "App Owner")
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.users: dict[int, DcUser] = {self.bot.id: self.bot, self.owner.id: self.owner}
        self.guilds: dict[int, DcGuild] = {}
        self.channels: dict[int, DcChannel] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.interactions: dict[int, SentInteraction] = {}
        self.attachments: dict[int, tuple[bytes, str]] = {}
        """Attachment id -> (bytes, content type), as the CDN serves them."""
        self.dm_channels: dict[int, DcChannel] = {}
        """User id -> the DM channel between that user and the bot."""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ ids, people and places

    def snowflake(self, *, shard: int | None = None) -> int:
        """A new id, later than every earlier one; ``shard``: its timestamp is ``shard`` modulo
        :data:`SHARD_SPREAD` (a guild id on shard ``shard % n`` for shard counts ``n`` up to 10)."""
        value = max((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22, self._last_snowflake + 1)
        if shard is not None:
            if not 0 <= shard < SHARD_SPREAD:
                raise ValueError(f"shard must be in 0..{SHARD_SPREAD - 1}, not {shard}")
            stamp = value >> 22
            value = max(value, (stamp + (shard - stamp) % SHARD_SPREAD) << 22)
        self._last_snowflake = value
        return value

    def add_user(self, username: str, *, global_name: str | None, join: bool) -> DcUser:
        user = DcUser(self.snowflake(), username, global_name or username.title())
        self.users[user.id] = user
        if join:
            for guild in self.guilds.values():
                guild.member_ids.append(user.id)
        return user

    def add_guild(
        self, name: str, channels: Sequence[str], *, shard: int | None, guild_id: int | None
    ) -> DcGuild:
        """A guild with text channels; its id is ``guild_id``, or one on shard ``shard`` (default: the
        guild's number in creation order, so that guilds take turns on the shards)."""
        if guild_id is None:
            guild_id = self.snowflake(shard=len(self.guilds) if shard is None else shard)
        elif guild_id in self.guilds:
            raise ValueError(f"guild {guild_id} exists already")
        guild = DcGuild(guild_id, name, self.owner.id, member_ids=[self.bot.id, self.owner.id])
        for position, channel_name in enumerate(channels):
            channel = DcChannel(self.snowflake(), 0, channel_name, guild.id, position=position)
            guild.channels.append(channel)
            self.channels[channel.id] = channel
        self.guilds[guild.id] = guild
        return guild

    def dm_channel(self, user: DcUser) -> DcChannel:
        if user.id not in self.dm_channels:
            channel = DcChannel(self.snowflake(), 1, recipient=user)
            self.dm_channels[user.id] = channel
            self.channels[channel.id] = channel
        return self.dm_channels[user.id]

    def application_flags(self) -> int:
        """The application's flags for the privileged intents "enabled in the developer portal"."""
        flags = 0
        for intent, flag in ((GUILD_PRESENCES, 13), (GUILD_MEMBERS, 15), (MESSAGE_CONTENT, 19)):
            if self.privileged_intents & intent:
                flags |= 1 << flag
        return flags

    # ------------------------------------------------------------------ API objects

    def member(self, guild: DcGuild, user: DcUser, *, with_user: bool = True) -> dict[str, Any]:
        """The guild ``Member`` object of ``user``."""
        member: dict[str, Any] = {
            "roles": [],
            "joined_at": guild.joined_at,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = user.to_dict()
        return member

    def guild_payload(self, guild: DcGuild, *, full: bool) -> dict[str, Any]:
        """The ``Guild`` object; ``full``: as GUILD_CREATE carries it (channels, members, ...)."""
        payload: dict[str, Any] = {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "features": [],
            "emojis": [],
            "stickers": [],
            "system_channel_id": str(guild.channels[0].id) if guild.channels else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "max_members": 500_000,
            "premium_progress_bar_enabled": False,
            "application_id": None,
            "roles": [
                {
                    "id": str(guild.id),
                    "name": "@everyone",
                    "permissions": PERMISSIONS,
                    "position": 0,
                    "color": 0,
                    "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                    "icon": None,
                    "unicode_emoji": None,
                }
            ],
        }
        if full:
            payload.update(
                {
                    "joined_at": guild.joined_at,
                    "large": False,
                    "unavailable": False,
                    "member_count": len(guild.member_ids),
                    "members": [self.member(guild, self.bot)],
                    "channels": [
                        {k: v for k, v in c.to_dict().items() if k != "guild_id"} for c in guild.channels
                    ],
                    "threads": [],
                    "presences": [],
                    "voice_states": [],
                    "stage_instances": [],
                    "guild_scheduled_events": [],
                    "soundboard_sounds": [],
                }
            )
        return payload

    def new_message(self, channel: DcChannel, author: DcUser, content: str, *, type_: int) -> dict[str, Any]:
        """A ``Message`` object with a new id (not stored)."""
        return {
            "id": str(self.snowflake()),
            "channel_id": str(channel.id),
            "type": type_,
            "author": author.to_dict(),
            "content": content,
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": self.mentions(content),
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "flags": 0,
        }

    def mentions(self, content: str) -> list[dict[str, Any]]:
        """The known users ``<@id>``-mentioned in ``content``."""
        ids = dict.fromkeys(int(m) for m in re.findall(r"<@!?(\d+)>", content or ""))
        return [self.users[i].to_dict() for i in ids if i in self.users]

    def reference(self, channel: DcChannel, referenced: dict[str, Any]) -> dict[str, Any]:
        """A reply's ``message_reference`` to ``referenced``."""
        return {
            "type": 0,
            "message_id": referenced["id"],
            "channel_id": referenced["channel_id"],
            **({"guild_id": str(channel.guild_id)} if channel.guild_id else {}),
        }

    def event_message(self, message: dict[str, Any]) -> dict[str, Any]:
        """A stored message as MESSAGE_CREATE / MESSAGE_UPDATE carries it in a guild (guild_id, member)."""
        channel = self.channels.get(int(message["channel_id"]))
        event = dict(message)
        if channel is not None and channel.guild_id is not None:
            guild = self.guilds[channel.guild_id]
            event["guild_id"] = str(guild.id)
            author = self.users.get(int(message["author"]["id"]))
            if author is not None and "webhook_id" not in message:
                event["member"] = self.member(guild, author, with_user=False)
            event["mentions"] = [
                {**m, "member": self.member(guild, self.users[int(m["id"])], with_user=False)}
                for m in message.get("mentions", [])
            ]
        return event

    def store_attachment(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None,
        *,
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        """Put ``data`` on the CDN; returns the ``Attachment`` object."""
        attachment_id = self.snowflake()
        if not content_type or content_type == "application/octet-stream":  # Discord sniffs the type
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self.attachments[attachment_id] = (data, content_type)
        url = f"{self.url}/attachments/{channel_id}/{attachment_id}/{filename}"
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        size = image_size(data) if content_type.startswith("image/") else None
        if size is not None:
            attachment["width"], attachment["height"] = size
        if ephemeral:
            attachment["ephemeral"] = True
        return attachment

    def attachment_bytes(self, url: str) -> bytes:
        return self.attachments[int(url.rstrip("/").split("/")[-2])][0]

    def message_of(self, message: DiscordCall | dict[str, Any]) -> dict[str, Any]:
        """The stored message (as it is now) that a call made or a message dict names."""
        raw = message.message if isinstance(message, DiscordCall) else message
        if not isinstance(raw, dict) or "id" not in raw:
            raise ValueError(f"not a message: {message!r}")
        stored = self.messages.get(int(raw["id"]))
        if stored is None:
            raise ValueError(f"message {raw['id']} is not (or no longer) in the fake")
        return stored
