"""The REST API under ``/api/v10``: routing, the bot token, recording every call, injected failures; and
the routes for the gateway address, users, the application and its commands, channels, guilds, members and
channel messages. Interaction callbacks and webhooks are routed here and answered in ``interactions.py``."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.messages import Messages
from tests.fakes.discord.records import DcChannel, DiscordCall, DiscordError, form_error
from tests.fakes.discord.state import DiscordState
from tests.fakes.loopback import CallLog, json_response, read_body


@dataclass
class RestRequest:
    """A routed request: the call recorded for it, the path's named groups and the query string."""

    call: DiscordCall
    params: dict[str, str]
    query: dict[str, str]

    @property
    def body(self) -> dict[str, Any]:
        """The JSON payload when it is an object, else empty."""
        return self.call.payload if isinstance(self.call.payload, dict) else {}


Handler = Callable[[RestRequest], Awaitable[Any]]
Route = tuple[str, str, str, bool, Handler]
"""(kind, method, path regex, needs the bot token, handler); the answer is JSON, or 204 for None."""

CHANNEL = r"/channels/(?P<channel_id>\d+)"
MESSAGE = r"(?P<message_id>\d+)"


class Rest:
    """The REST API: records every request in :attr:`log` and answers it from the state."""

    def __init__(
        self,
        state: DiscordState,
        gateway: Gateway,
        messages: Messages,
        log: CallLog[DiscordCall],
        more_routes: Sequence[Route] = (),
    ) -> None:
        self.state = state
        self.gateway = gateway
        self.messages = messages
        self.log = log
        self.routes = [*self._routes(), *more_routes]

    async def handle(self, request: web.Request) -> web.Response:
        """``/api/v{n}/...``: the first route matching method and path answers."""
        path = "/" + request.match_info["tail"]
        body = await read_body(request)
        if body.json is not None or "payload_json" not in body.form:
            payload = body.json if body.json is not None else body.text
        else:
            payload = json.loads(body.form["payload_json"])
        call = DiscordCall(
            len(self.log.calls), "unknown", request.method, path, payload, body.files, dict(request.query)
        )
        with self.log.recording(call):
            try:
                for kind, method, pattern, needs_token, handler in self.routes:
                    match = re.fullmatch(pattern, path)
                    if match is None or method != request.method:
                        continue
                    call.kind = kind
                    if needs_token and request.headers.get("Authorization") != f"Bot {self.state.token}":
                        raise DiscordError(401, 0, "401: Unauthorized")
                    failure = self.log.injected_failure(kind)
                    if failure is not None:
                        raise failure
                    params = {k: v for k, v in match.groupdict().items() if v is not None}
                    result = await handler(RestRequest(call, params, dict(request.query)))
                    if result is None:
                        call.status = 204
                        return web.Response(status=204)
                    return json_response(result)
                raise DiscordError(404, 0, "404: Not Found")
            except DiscordError as exc:
                call.status, call.error = exc.status, exc.body()
                return json_response(exc.body(), exc.status)

    async def cdn(self, request: web.Request) -> web.Response:
        """``/attachments/{channel_id}/{attachment_id}/{filename}``: the attachment's bytes."""
        stored = self.state.attachments.get(int(request.match_info["attachment_id"]))
        if stored is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored[0], content_type=stored[1])

    def _routes(self) -> list[Route]:
        commands = r"/applications/(?P<app_id>\d+)(?:/guilds/(?P<guild_id>\d+))?/commands"
        guild = r"/guilds/(?P<guild_id>\d+)"
        reaction = rf"{CHANNEL}/messages/{MESSAGE}/reactions/[^/]+/@me"
        return [
            ("gateway_bot", "GET", r"/gateway/bot", True, self._gateway_bot),
            ("gateway", "GET", r"/gateway", False, self._gateway_bot),
            ("get_me", "GET", r"/users/@me", True, self._get_me),
            ("get_user", "GET", r"/users/(?P<user_id>\d+)", True, self._get_user),
            ("create_dm", "POST", r"/users/@me/channels", True, self._create_dm),
            ("app_info", "GET", r"/(?:oauth2/)?applications/@me", True, self._app_info),
            ("commands", "PUT", commands, True, self._sync),
            ("get_commands", "GET", commands, True, self._get_commands),
            ("upsert_command", "POST", commands, True, self._upsert),
            ("get_channel", "GET", CHANNEL, True, self._get_channel),
            ("message", "POST", rf"{CHANNEL}/messages", True, self._post_message),
            ("get_message", "GET", rf"{CHANNEL}/messages/{MESSAGE}", True, self._get_message),
            ("edit", "PATCH", rf"{CHANNEL}/messages/{MESSAGE}", True, self._edit_message),
            ("delete", "DELETE", rf"{CHANNEL}/messages/{MESSAGE}", True, self._delete_message),
            ("typing", "POST", rf"{CHANNEL}/typing", True, self._typing),
            ("reaction", "PUT", reaction, True, self._reaction),
            ("unreaction", "DELETE", reaction, True, self._reaction),
            ("get_guild", "GET", guild, True, self._get_guild),
            ("get_guild_channels", "GET", rf"{guild}/channels", True, self._get_guild_channels),
            ("get_member", "GET", rf"{guild}/members/(?P<user_id>\d+)", True, self._get_member),
        ]

    # ------------------------------------------------------------------ gateway, users, application

    async def _gateway_bot(self, req: RestRequest) -> dict[str, Any]:
        return {
            "url": self.gateway.url,
            "shards": self.state.shard_count,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    async def _get_me(self, req: RestRequest) -> dict[str, Any]:
        return {
            **self.state.bot.to_dict(),
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "email": None,
        }

    async def _get_user(self, req: RestRequest) -> dict[str, Any]:
        user = self.state.users.get(int(req.params["user_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return user.to_dict()

    async def _create_dm(self, req: RestRequest) -> dict[str, Any]:
        user = self.state.users.get(int(req.body.get("recipient_id") or 0))
        if user is None:
            raise form_error("recipient_id", "USER_NOT_FOUND", "Unknown User")
        return self.state.dm_channel(user).to_dict()

    async def _app_info(self, req: RestRequest) -> dict[str, Any]:
        state = self.state
        return {
            "id": str(state.application_id),
            "name": state.bot.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": state.owner.to_dict(),
            "team": None,
            "flags": state.application_flags(),
            "bot": state.bot.to_dict(),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": len(state.guilds),
            "integration_types_config": {"0": {}},
        }

    # ------------------------------------------------------------------ application commands

    def _check_app(self, req: RestRequest) -> int | None:
        if int(req.params["app_id"]) != self.state.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = req.params.get("guild_id")
        if guild_id is not None and int(guild_id) not in self.state.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return int(guild_id) if guild_id is not None else None

    def _command(
        self, body: dict[str, Any], guild_id: int | None, index: int, existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        name, type_ = str(body.get("name", "")), int(body.get("type", 1))
        where = f"{index}.name" if index >= 0 else "name"
        if type_ == 1 and (not re.fullmatch(r"[-_\w]{1,32}", name) or name != name.lower()):
            raise form_error(where, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if type_ == 1 and not 1 <= len(str(body.get("description", ""))) <= 100:
            raise form_error(
                where.replace("name", "description"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        options = body.get("options") or []
        if len(options) > 25:
            raise form_error(
                where.replace("name", "options"), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        required = [bool(o.get("required")) for o in options if o.get("type") not in (1, 2)]
        if required != sorted(required, reverse=True):
            raise form_error(
                where.replace("name", "options"),
                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                "Required options must be placed before non-required options",
            )
        command = {
            "id": existing["id"] if existing else str(self.state.snowflake()),
            "application_id": str(self.state.application_id),
            "version": str(self.state.snowflake()),
            "default_member_permissions": None,
            "type": type_,
            "nsfw": False,
            "description": "",
            "dm_permission": True,
            "contexts": None,
            "integration_types": [0],
            **body,
        }
        if guild_id is not None:
            command["guild_id"] = str(guild_id)
        return command

    async def _sync(self, req: RestRequest) -> list[dict[str, Any]]:
        guild_id = self._check_app(req)
        body = req.call.payload
        if not isinstance(body, list):
            raise form_error("_", "BASE_TYPE_ARRAY", "Must be an array.")
        commands = self.state.commands
        previous = {c["name"]: c for c in commands.get(guild_id, [])}
        names = [c.get("name") for c in body]
        if len(names) != len(set(names)):
            raise form_error(
                "_", "APPLICATION_COMMANDS_DUPLICATE_NAME", "Application command names must be unique"
            )
        commands[guild_id] = [
            self._command(c, guild_id, i, previous.get(c.get("name"))) for i, c in enumerate(body)
        ]
        return commands[guild_id]

    async def _get_commands(self, req: RestRequest) -> list[dict[str, Any]]:
        return self.state.commands.get(self._check_app(req), [])

    async def _upsert(self, req: RestRequest) -> dict[str, Any]:
        guild_id = self._check_app(req)
        current = self.state.commands.setdefault(guild_id, [])
        existing = next((c for c in current if c["name"] == req.body.get("name")), None)
        command = self._command(req.body, guild_id, -1, existing)
        if existing is not None:
            current[current.index(existing)] = command
        else:
            current.append(command)
        return command

    # ------------------------------------------------------------------ channels, guilds, messages

    def _channel(self, req: RestRequest) -> DcChannel:
        channel = self.state.channels.get(int(req.params["channel_id"]))
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        req.call.channel_id = channel.id
        return channel

    def _stored(self, req: RestRequest) -> dict[str, Any]:
        channel = self._channel(req)
        message = self.state.messages.get(int(req.params["message_id"]))
        if message is None or int(message["channel_id"]) != channel.id:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def _get_channel(self, req: RestRequest) -> dict[str, Any]:
        return self._channel(req).to_dict()

    async def _get_guild(self, req: RestRequest) -> dict[str, Any]:
        guild = self.state.guilds.get(int(req.params["guild_id"]))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        payload = self.state.guild_payload(guild, full=False)
        return {**payload, "approximate_member_count": len(guild.member_ids)}

    async def _get_guild_channels(self, req: RestRequest) -> list[dict[str, Any]]:
        guild = self.state.guilds.get(int(req.params["guild_id"]))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return [c.to_dict() for c in guild.channels]

    async def _get_member(self, req: RestRequest) -> dict[str, Any]:
        guild = self.state.guilds.get(int(req.params["guild_id"]))
        user_id = int(req.params["user_id"])
        if guild is None or user_id not in guild.member_ids:
            raise DiscordError(404, 10007, "Unknown Member")
        return self.state.member(guild, self.state.users[user_id])

    async def _typing(self, req: RestRequest) -> None:
        self._channel(req)

    async def _reaction(self, req: RestRequest) -> None:
        self._stored(req)

    async def _get_message(self, req: RestRequest) -> dict[str, Any]:
        return self._stored(req)

    async def _post_message(self, req: RestRequest) -> dict[str, Any]:
        channel = self._channel(req)
        body = req.body
        message = self.messages.compose(channel, body, req.call.files, type_=0)
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id"):
            referenced = self.state.messages.get(int(reference["message_id"]))
            if referenced is None and reference.get("fail_if_not_exists", True):
                raise form_error("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
            if referenced is not None:
                message["type"] = 19
                message["message_reference"] = self.state.reference(channel, referenced)
                message["referenced_message"] = referenced
        return await self.messages.publish(req.call, message)

    async def _edit_message(self, req: RestRequest) -> dict[str, Any]:
        message = self._stored(req)
        if message["author"]["id"] != str(self.state.bot.id):
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        return await self.messages.apply_edit(req.call, message, req.call.payload or {}, req.call.files)

    async def _delete_message(self, req: RestRequest) -> None:
        await self.messages.remove(self._stored(req))
