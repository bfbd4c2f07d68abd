"""A fake Discord (REST API, gateway WebSocket and attachment CDN) on 127.0.0.1, for the real discord.py.

Scope: what a bot with slash commands, message handlers, buttons and file uploads uses.

* REST under ``/api/v10`` (``rest.py``): ``GET /gateway/bot``, ``/users/@me``, ``/oauth2/applications/@me``;
  command sync ``PUT /applications/{app}/commands`` and the guild variant; channel messages (create with
  JSON or multipart ``payload_json`` + ``files[n]``, get, edit, delete), typing, reactions, DM channel
  creation; ``GET`` channel / guild / member.
* Interactions (``interactions.py``): INTERACTION_CREATE for slash commands and component presses;
  callbacks ``POST /interactions/{id}/{token}/callback`` (types 4, 5, 6, 7, 8, 9; ``with_response``
  answered as discord.py 2.5+ expects) and the interaction webhooks (follow-ups, ``@original`` get / edit /
  delete).
* Gateway at ``ws://127.0.0.1:<port>/gateway`` (``gateway.py``): HELLO, heartbeat ACKs, IDENTIFY -> READY
  and one GUILD_CREATE per guild of the session's shard, REQUEST_GUILD_MEMBERS -> GUILD_MEMBERS_CHUNK,
  RESUME -> INVALID_SESSION (no resuming); ``zlib-stream`` transport compression (and ``zstd-stream``
  where a zstd module is importable). Events honour the identified intents, and guild messages lose their
  content, embeds and attachments when the bot lacks MESSAGE_CONTENT and is not mentioned, as on Discord.
  The bot's own messages come back as MESSAGE_CREATE / MESSAGE_UPDATE, as on Discord.
* Sharding as Discord documents it: ``/gateway/bot`` recommends ``shards`` (``FakeDiscord(shard_count=)``);
  IDENTIFY's ``shard: [shard_id, shard_count]`` is echoed in READY (4010 Invalid shard when malformed); a
  session gets READY / GUILD_CREATE for, and the events of, only the guilds with ``(guild_id >> 22) %
  shard_count == shard_id``; DMs go to shard 0. Any number of sessions (one per shard, from one client or
  several) may be connected at once; :attr:`FakeDiscord.sessions` shows each one's ``shard`` and the
  ``events`` it was sent. ``add_guild(shard=k)`` makes a guild that shard ``k % n`` owns for every shard
  count ``n`` up to 10; by default guilds take turns (the first on shard 0, the next on shard 1...).
* Discord's rules that bots trip over (``messages.py``): the 3-second interaction deadline, one initial
  response per interaction, follow-ups before any response, the first follow-up after a "thinking" defer
  replacing that message, content / embed / component limits, empty messages, 10 MiB uploads, privileged
  intents.
* Not covered: rate limits (never 429 unless asked with :meth:`FakeDiscord.fail_next`), resuming, 4011
  "sharding required", voice, threads, permissions checks, autocomplete and modal submissions.

Layout: ``state.py`` holds what the fake knows (users, guilds, channels, messages, commands, attachments);
``gateway.py``, ``rest.py``, ``messages.py`` and ``interactions.py`` act on it; ``fake.py`` is the
:class:`FakeDiscord` facade tests drive; ``records.py`` has the value types and Discord's constants.

discord.py has no setting for its API address: set ``discord.http.Route.BASE = fake.api_url`` (a class
attribute every request and webhook route is built from). A plain ``Client`` (and an ``AutoShardedClient``
given a ``shard_count``) then connects to ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` without
asking ``/gateway/bot``, so set that to ``yarl.URL(url)`` with ``url`` from ``await
client.http.get_bot_gateway()`` (in ``setup_hook``, before ``connect``).
"""

from tests.fakes.discord.fake import FakeDiscord
from tests.fakes.discord.gateway import GatewayEvent, GatewaySession
from tests.fakes.discord.records import (
    API_VERSION,
    DIRECT_MESSAGES,
    DISCORD_EPOCH_MS,
    EPHEMERAL,
    GUILD_MEMBERS,
    GUILD_MESSAGES,
    GUILD_PRESENCES,
    GUILDS,
    LOADING,
    MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
    UPLOAD_LIMIT,
    DcChannel,
    DcGuild,
    DcUser,
    DiscordCall,
    SentInteraction,
)
from tests.fakes.discord.state import SHARD_SPREAD, shard_of
from tests.fakes.loopback import UploadedFile

__all__ = [
    "API_VERSION",
    "DIRECT_MESSAGES",
    "DISCORD_EPOCH_MS",
    "EPHEMERAL",
    "GUILDS",
    "GUILD_MEMBERS",
    "GUILD_MESSAGES",
    "GUILD_PRESENCES",
    "LOADING",
    "MESSAGE_CONTENT",
    "PRIVILEGED_INTENTS",
    "SHARD_SPREAD",
    "UPLOAD_LIMIT",
    "DcChannel",
    "DcGuild",
    "DcUser",
    "DiscordCall",
    "FakeDiscord",
    "GatewayEvent",
    "GatewaySession",
    "SentInteraction",
    "UploadedFile",
    "shard_of",
]
