"""Interactions: INTERACTION_CREATE for slash commands (options typed by the synced schema) and component
presses; the bot's answers: callbacks ``POST /interactions/{id}/{token}/callback`` (types 4-9, the
3-second deadline, one initial response) and the interaction webhooks (follow-ups, ``@original``)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.messages import Messages, interaction_metadata
from tests.fakes.discord.records import (
    EPHEMERAL,
    LOADING,
    PERMISSIONS,
    UPLOAD_LIMIT,
    DcChannel,
    DcUser,
    DiscordCall,
    DiscordError,
    SentInteraction,
    form_error,
    walk_components,
)
from tests.fakes.discord.rest import MESSAGE, RestRequest, Route
from tests.fakes.discord.state import DiscordState

_ALLOWED_RESPONSES = {2: (4, 5, 9), 3: (4, 5, 6, 7, 9)}
"""Interaction type -> the callback types Discord accepts for it."""


def find_component(message: dict[str, Any], custom_id: str) -> dict[str, Any]:
    """The enabled component ``custom_id`` on ``message``; ValueError naming the ones it has."""
    components = list(walk_components(message.get("components") or []))
    found = [c for c in components if c.get("custom_id") == custom_id]
    if not found:
        available = [c["custom_id"] for c in components if "custom_id" in c]
        raise ValueError(f"message {message['id']} has no component {custom_id!r}; it has {available}")
    if found[0].get("disabled"):
        raise ValueError(f"component {custom_id!r} is disabled")
    return found[0]


class Interactions:
    """Starting interactions (test side) and answering them (the bot's REST calls)."""

    def __init__(self, state: DiscordState, gateway: Gateway, messages: Messages) -> None:
        self.state = state
        self.gateway = gateway
        self.messages = messages

    # ------------------------------------------------------------------ test side

    async def slash_command(
        self, user: DcUser, channel: DcChannel, name: str, options: dict[str, Any] | None
    ) -> SentInteraction:
        """``/name`` (``"group sub"`` for subcommands) with option values typed by the synced schema."""
        words = name.split()
        command, guild_scoped = self._find_command(words[0], channel)
        schema: list[dict[str, Any]] = command.get("options") or []
        data: dict[str, Any] = {"id": command["id"], "name": words[0], "type": 1}
        if guild_scoped:
            data["guild_id"] = str(channel.guild_id)
        resolved: dict[str, dict[str, Any]] = {}
        nested = data
        for word in words[1:]:
            sub = next((o for o in schema if o["name"] == word and o.get("type") in (1, 2)), None)
            if sub is None:
                raise LookupError(f"/{name}: no subcommand {word!r}")
            child: dict[str, Any] = {"name": word, "type": sub["type"], "options": []}
            nested.setdefault("options", []).append(child)
            nested, schema = child, sub.get("options") or []
        built = [self._option(o, (options or {}), channel, resolved) for o in schema]
        unknown = set(options or {}) - {o["name"] for o in schema}
        if unknown:
            raise ValueError(
                f"/{name} has no options {sorted(unknown)}; it has {[o['name'] for o in schema]}"
            )
        nested["options"] = [o for o in built if o is not None]
        if resolved:
            data["resolved"] = resolved
        return await self._interact(2, user, channel, data)

    async def component(
        self, user: DcUser, message: DiscordCall | dict[str, Any], custom_id: str, values: list[str] | None
    ) -> SentInteraction:
        """A press of the button ``custom_id`` (``values`` None) or a pick in that select menu."""
        stored = self.state.message_of(message)
        component = find_component(stored, custom_id)
        kind = component.get("type")
        if values is None and kind != 2:
            raise ValueError(f"{custom_id!r} is not a button (type {kind})")
        if values is not None and kind not in (3, 5, 6, 7, 8):
            raise ValueError(f"{custom_id!r} is not a select menu")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": kind}
        if values is not None:
            data["values"] = values
        channel = self.state.channels[int(stored["channel_id"])]
        return await self._interact(3, user, channel, data, stored)

    def _find_command(self, name: str, channel: DcChannel) -> tuple[dict[str, Any], bool]:
        commands = self.state.commands
        if channel.guild_id is not None:
            for command in commands.get(channel.guild_id, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command, True
        for command in commands.get(None, []):
            if command["name"] == name and command.get("type", 1) == 1:
                return command, False
        synced = {str(k): [c["name"] for c in v] for k, v in commands.items()}
        raise LookupError(f"/{name} is not a synced command (synced: {synced})")

    def _option(
        self,
        schema: dict[str, Any],
        given: dict[str, Any],
        channel: DcChannel,
        resolved: dict[str, dict[str, Any]],
    ) -> dict[str, Any] | None:
        state = self.state
        name, type_ = schema["name"], int(schema.get("type", 3))
        if name not in given:
            if schema.get("required"):
                raise ValueError(f"option {name!r} is required")
            return None
        value = given[name]
        if type_ == 11:
            filename, data, content_type = value
            attachment = state.store_attachment(channel.id, filename, data, content_type, ephemeral=True)
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            value = attachment["id"]
        elif type_ == 6:
            user = value if isinstance(value, DcUser) else state.users[int(value)]
            resolved.setdefault("users", {})[str(user.id)] = user.to_dict()
            if channel.guild_id is not None:
                member = state.member(state.guilds[channel.guild_id], user, with_user=False)
                resolved.setdefault("members", {})[str(user.id)] = {**member, "permissions": PERMISSIONS}
            value = str(user.id)
        elif type_ == 7:
            target = value if isinstance(value, DcChannel) else state.channels[int(value)]
            resolved.setdefault("channels", {})[str(target.id)] = {
                **target.to_dict(),
                "permissions": PERMISSIONS,
            }
            value = str(target.id)
        elif type_ == 4:
            value = int(value)
        elif type_ == 10:
            value = float(value)
        elif type_ == 5:
            value = bool(value)
        else:
            value = str(value)
        choices = schema.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise ValueError(f"{value!r} is not a choice of {name!r}")
        return {"name": name, "type": type_, "value": value}

    async def _interact(
        self,
        type_: int,
        user: DcUser,
        channel: DcChannel,
        data: dict[str, Any],
        message: dict[str, Any] | None = None,
    ) -> SentInteraction:
        state = self.state
        interaction_id = state.snowflake()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(state.application_id),
            "type": type_,
            "data": data,
            "token": token,
            "version": 1,
            "channel_id": str(channel.id),
            "channel": {**channel.to_dict(), "permissions": PERMISSIONS},
            "app_permissions": PERMISSIONS,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": UPLOAD_LIMIT,
        }
        if channel.guild_id is not None:
            guild = state.guilds[channel.guild_id]
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member={**state.member(guild, user), "permissions": PERMISSIONS},
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
        else:
            payload.update(user=user.to_dict(), authorizing_integration_owners={"0": "0"}, context=1)
        if message is not None:
            payload["message"] = state.event_message(message)
        interaction = SentInteraction(
            interaction_id,
            token,
            type_,
            payload,
            channel.id,
            user,
            time.monotonic(),
            message_id=int(message["id"]) if message else None,
        )
        state.interactions[interaction_id] = interaction
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # ------------------------------------------------------------------ the bot's answers (REST)

    def routes(self) -> list[Route]:
        """The interaction callback and webhook routes (no bot token: the interaction token is the key)."""
        hook = r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)"
        callback = r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback"
        original, followup = rf"{hook}/messages/@original", rf"{hook}/messages/{MESSAGE}"
        return [
            ("interaction_callback", "POST", callback, False, self._callback),
            ("followup", "POST", hook, False, self._followup),
            ("get_original", "GET", original, False, self._get_hook_message),
            ("edit_original", "PATCH", original, False, self._edit_hook_message),
            ("delete_original", "DELETE", original, False, self._delete_hook_message),
            ("get_followup", "GET", followup, False, self._get_hook_message),
            ("edit_followup", "PATCH", followup, False, self._edit_hook_message),
            ("delete_followup", "DELETE", followup, False, self._delete_hook_message),
        ]

    def _by_token(self, req: RestRequest) -> SentInteraction:
        token = req.params["token"]
        interaction = next((i for i in self.state.interactions.values() if i.token == token), None)
        if interaction is None or int(req.params["app_id"]) != self.state.application_id:
            raise DiscordError(404, 10015, "Unknown Webhook")
        req.call.interaction, req.call.channel_id = interaction, interaction.channel_id
        return interaction

    async def _callback(self, req: RestRequest) -> dict[str, Any] | None:
        state = self.state
        interaction = state.interactions.get(int(req.params["interaction_id"]))
        if interaction is None or interaction.token != req.params["token"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        req.call.interaction, req.call.channel_id = interaction, interaction.channel_id
        if interaction.response_type is not None:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        late = time.monotonic() - interaction.created
        if state.interaction_deadline is not None and late > state.interaction_deadline:
            raise DiscordError(404, 10062, "Unknown interaction")
        type_ = int(req.body.get("type", 0))
        if type_ not in _ALLOWED_RESPONSES.get(interaction.type, ()):
            raise form_error("type", "INTERACTION_RESPONSE_TYPE_INVALID", f"Value {type_} is not valid here")
        data = req.body.get("data") or {}
        channel = state.channels[interaction.channel_id]
        message_type = 20 if interaction.type == 2 else 0
        message: dict[str, Any] | None = None
        if type_ == 4:
            message = self.messages.compose(
                channel, data, req.call.files, type_=message_type, interaction=interaction
            )
            message = await self.messages.publish(req.call, message)
        elif type_ == 5:
            message = state.new_message(channel, state.bot, "", type_=message_type)
            message.update(
                flags=LOADING | (int(data.get("flags") or 0) & EPHEMERAL),
                webhook_id=str(state.application_id),
                application_id=str(state.application_id),
                interaction_metadata=interaction_metadata(interaction),
            )
            message = await self.messages.publish(req.call, message)
            interaction.thinking = True
        elif type_ == 7:
            assert interaction.message_id is not None
            original = state.messages[interaction.message_id]
            message = await self.messages.apply_edit(req.call, original, data, req.call.files)
        interaction.response_type = type_
        if message is not None:
            interaction.original_message_id = int(message["id"])
        elif interaction.message_id is not None and type_ == 6:
            interaction.original_message_id = interaction.message_id
        if req.query.get("with_response") not in ("1", "true", "True"):
            return None
        info: dict[str, Any] = {"id": str(interaction.id), "type": interaction.type}
        resource: dict[str, Any] = {"type": type_}
        if message is not None:
            info.update(
                response_message_id=message["id"],
                response_message_loading=type_ == 5,
                response_message_ephemeral=bool(message["flags"] & EPHEMERAL),
            )
            resource["message"] = message
        return {"interaction": info, "resource": resource}

    async def _followup(self, req: RestRequest) -> dict[str, Any] | None:
        interaction = self._by_token(req)
        if interaction.response_type is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        channel = self.state.channels[interaction.channel_id]
        files = req.call.files
        if interaction.thinking and interaction.original_message_id is not None:
            # The first follow-up after a "thinking" defer replaces the loading message, ephemeral or not.
            original = self.state.messages[interaction.original_message_id]
            body = {**req.body, "flags": original["flags"] & EPHEMERAL}
            fresh = self.messages.compose(
                channel, body, files, type_=original["type"], interaction=interaction
            )
            fresh["id"] = original["id"]
            interaction.thinking = False
            message = await self.messages.publish(req.call, fresh, update=True)
        else:
            message = self.messages.compose(channel, req.body, files, type_=0, interaction=interaction)
            message = await self.messages.publish(req.call, message)
        wait = req.query.get("wait", "false").lower() in ("1", "true")
        return message if wait else None

    def _hook_message(self, req: RestRequest, interaction: SentInteraction) -> dict[str, Any]:
        message_id = req.params.get("message_id")
        target = interaction.original_message_id if message_id is None else int(message_id)
        message = self.state.messages.get(target) if target is not None else None
        if message is None:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def _get_hook_message(self, req: RestRequest) -> dict[str, Any]:
        return self._hook_message(req, self._by_token(req))

    async def _edit_hook_message(self, req: RestRequest) -> dict[str, Any]:
        interaction = self._by_token(req)
        message = self._hook_message(req, interaction)
        if int(message["id"]) == interaction.original_message_id:
            interaction.thinking = False
        return await self.messages.apply_edit(req.call, message, req.call.payload or {}, req.call.files)

    async def _delete_hook_message(self, req: RestRequest) -> None:
        interaction = self._by_token(req)
        await self.messages.remove(self._hook_message(req, interaction))
