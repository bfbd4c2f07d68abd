"""Messages: the ones the bot sends (checked against Discord's limits, attachments put on the CDN,
``attachment://`` embeds resolved), edits and deletes, echoed on the gateway as Discord does; and the ones
test users post."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.records import (
    EPHEMERAL,
    LOADING,
    UPLOAD_LIMIT,
    DcChannel,
    DcUser,
    DiscordCall,
    DiscordError,
    SentInteraction,
    form_error,
    now_iso,
    walk_components,
)
from tests.fakes.discord.state import DiscordState
from tests.fakes.loopback import UploadedFile

_KEPT_FLAGS = EPHEMERAL | (1 << 2) | (1 << 12) | (1 << 15)
"""Flags a bot may set on a message: ephemeral, suppress embeds, suppress notifications, components v2."""


def interaction_metadata(interaction: SentInteraction) -> dict[str, Any]:
    """A response message's ``interaction_metadata``."""
    metadata: dict[str, Any] = {
        "id": str(interaction.id),
        "type": interaction.type,
        "user": interaction.user.to_dict(),
        "authorizing_integration_owners": interaction.payload.get("authorizing_integration_owners", {}),
    }
    if interaction.type == 2:
        metadata["name"] = interaction.payload["data"]["name"]
    if interaction.message_id is not None:
        metadata["interacted_message_id"] = str(interaction.message_id)
    return metadata


def validate(body: dict[str, Any], files: list[UploadedFile], *, creating: bool) -> None:
    """Discord's limits on content, embeds, components and uploads; DiscordError as Discord answers."""
    content = body.get("content")
    if content is not None and len(str(content)) > 2000:
        raise form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    embeds = body.get("embeds") or []
    _validate_embeds(embeds)
    components = body.get("components") or []
    _validate_components(components, v2=bool(int(body.get("flags") or 0) & (1 << 15)))
    if len(files) > 10:
        raise form_error("files", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    if sum(len(f.data) for f in files) > UPLOAD_LIMIT:
        raise DiscordError(413, 40005, "Request entity too large")
    empty = not (content or embeds or files or components or body.get("sticker_ids") or body.get("poll"))
    if creating and empty:
        raise DiscordError(400, 50006, "Cannot send an empty message")


def _validate_embeds(embeds: list[dict[str, Any]]) -> None:
    if len(embeds) > 10:
        raise form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        for key, limit in (("title", 256), ("description", 4096)):
            text = str(embed.get(key) or "")
            total += len(text)
            if len(text) > limit:
                raise form_error(
                    f"embeds.{index}.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                )
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise form_error(
                f"embeds.{index}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for number, item in enumerate(fields):
            if not item.get("name") or not item.get("value"):
                raise form_error(
                    f"embeds.{index}.fields.{number}", "BASE_TYPE_REQUIRED", "This field is required"
                )
            total += len(str(item["name"])) + len(str(item["value"]))
    if total > 6000:
        raise form_error("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")


def _validate_components(components: list[dict[str, Any]], *, v2: bool) -> None:
    for row_index, row in enumerate(components):
        if row.get("type") == 1 and len(row.get("components") or []) > 5:
            raise form_error(
                f"components.{row_index}.components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."
            )
    if not v2 and len(components) > 5:
        raise form_error("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    custom_ids: list[str] = []
    for component in walk_components(components):
        if component.get("type") == 2:
            link = component.get("style") == 5
            if link != bool(component.get("url")) or link == ("custom_id" in component):
                raise form_error(
                    "components", "COMPONENT_INVALID", "Buttons need a custom_id, or a url with style 5"
                )
            if len(str(component.get("label") or "")) > 80:
                raise form_error("components", "BASE_TYPE_MAX_LENGTH", "Must be 80 or fewer in length.")
        if "custom_id" in component:
            if not 1 <= len(str(component["custom_id"])) <= 100:
                raise form_error("components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
            custom_ids.append(str(component["custom_id"]))
    if len(custom_ids) != len(set(custom_ids)):
        raise form_error(
            "components", "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated"
        )


def resolve_embeds(embeds: list[dict[str, Any]], attachments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``attachment://name`` image URLs become the attachment's CDN URL, as Discord renders them."""
    urls = {a["filename"]: a["url"] for a in attachments}
    resolved = []
    for embed in embeds:
        embed = {"type": "rich", **embed}
        for key in ("image", "thumbnail", "author", "footer"):
            part = embed.get(key)
            url_key = "url" if key in ("image", "thumbnail") else "icon_url"
            if isinstance(part, dict) and str(part.get(url_key, "")).startswith("attachment://"):
                name = part[url_key][len("attachment://") :]
                if name in urls:
                    embed[key] = {**part, url_key: urls[name], "proxy_" + url_key: urls[name]}
        resolved.append(embed)
    return resolved


class Messages:
    """Creating, editing and deleting messages in the state, with the gateway events they cause."""

    def __init__(self, state: DiscordState, gateway: Gateway) -> None:
        self.state = state
        self.gateway = gateway

    def attachments_for(
        self,
        channel: DcChannel,
        body: dict[str, Any],
        files: list[UploadedFile],
        previous: list[dict[str, Any]],
        *,
        ephemeral: bool,
    ) -> list[dict[str, Any]]:
        """New attachments from ``files[n]`` parts plus kept ones listed in ``body["attachments"]``."""
        store = self.state.store_attachment
        listed = body.get("attachments")
        if listed is None:
            new = [
                store(channel.id, f.filename or f.field, f.data, f.content_type, ephemeral=ephemeral)
                for f in files
            ]
            return previous + new if previous else new
        by_field = {f.field: f for f in files}
        old = {a["id"]: a for a in previous}
        result: list[dict[str, Any]] = []
        for entry in listed:
            upload = by_field.get(f"files[{entry.get('id')}]")
            if upload is not None:
                name = entry.get("filename") or upload.filename or upload.field
                attachment = store(channel.id, name, upload.data, upload.content_type, ephemeral=ephemeral)
                if entry.get("description"):
                    attachment["description"] = entry["description"]
                result.append(attachment)
            elif str(entry.get("id")) in old:
                result.append(old[str(entry.get("id"))])
            else:
                raise form_error(
                    "attachments", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {entry.get('id')}"
                )
        return result

    def compose(
        self,
        channel: DcChannel,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        type_: int,
        interaction: SentInteraction | None = None,
    ) -> dict[str, Any]:
        """A new bot message from a request body and its uploads (checked; not stored yet)."""
        validate(body, files, creating=True)
        state = self.state
        message = state.new_message(channel, state.bot, str(body.get("content") or ""), type_=type_)
        flags = int(body.get("flags") or 0) & _KEPT_FLAGS
        message["flags"] = flags
        message["tts"] = bool(body.get("tts"))
        message["attachments"] = self.attachments_for(
            channel, body, files, [], ephemeral=bool(flags & EPHEMERAL)
        )
        message["embeds"] = resolve_embeds(list(body.get("embeds") or []), message["attachments"])
        message["components"] = list(body.get("components") or [])
        if interaction is not None:
            message["webhook_id"] = str(state.application_id)
            message["application_id"] = str(state.application_id)
            message["interaction_metadata"] = interaction_metadata(interaction)
        return message

    async def apply_edit(
        self, call: DiscordCall, message: dict[str, Any], body: Any, files: list[UploadedFile]
    ) -> dict[str, Any]:
        """Edit a stored message with a request body (PATCH semantics) and publish it."""
        if not isinstance(body, dict):
            body = {}
        validate(body, files, creating=False)
        channel = self.state.channels[int(message["channel_id"])]
        edited = dict(message)
        for key in ("content", "components"):
            if key in body:
                edited[key] = body[key] if body[key] is not None else ("" if key == "content" else [])
        if "attachments" in body or files:
            edited["attachments"] = self.attachments_for(
                channel,
                body,
                files,
                list(message["attachments"]),
                ephemeral=bool(message["flags"] & EPHEMERAL),
            )
        if "embeds" in body:
            edited["embeds"] = resolve_embeds(list(body["embeds"] or []), edited["attachments"])
        if "flags" in body and body["flags"] is not None:
            edited["flags"] = (message["flags"] & EPHEMERAL) | (int(body["flags"]) & ~EPHEMERAL & ~LOADING)
        else:
            edited["flags"] = message["flags"] & ~LOADING
        edited["mentions"] = self.state.mentions(edited["content"])
        edited["edited_timestamp"] = now_iso()
        if not (edited["content"] or edited["embeds"] or edited["attachments"] or edited["components"]):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        return await self.publish(call, edited, update=True)

    async def publish(
        self, call: DiscordCall, message: dict[str, Any], *, update: bool = False
    ) -> dict[str, Any]:
        """Store ``message``, record it on ``call``, and echo it on the gateway (not ephemeral ones)."""
        self.state.messages[int(message["id"])] = message
        call.message = message
        call.channel_id = int(message["channel_id"])
        if self.state.echo_bot_messages and not message["flags"] & EPHEMERAL:
            event = "MESSAGE_UPDATE" if update else "MESSAGE_CREATE"
            await self.gateway.dispatch(event, self.state.event_message(message))
        return message

    async def remove(self, message: dict[str, Any]) -> None:
        """Delete a stored message; MESSAGE_DELETE unless it was ephemeral."""
        del self.state.messages[int(message["id"])]
        event: dict[str, Any] = {"id": message["id"], "channel_id": message["channel_id"]}
        channel = self.state.channels.get(int(message["channel_id"]))
        if channel is not None and channel.guild_id is not None:
            event["guild_id"] = str(channel.guild_id)
        if not message["flags"] & EPHEMERAL:
            await self.gateway.dispatch("MESSAGE_DELETE", event)

    async def from_user(
        self,
        user: DcUser,
        channel: DcChannel,
        content: str,
        attachments: Sequence[tuple[str, bytes, str]],
        reply_to: DiscordCall | dict[str, Any] | None,
    ) -> dict[str, Any]:
        """``user`` posts a message (attachments: filename, bytes, content type): stored, MESSAGE_CREATE."""
        state = self.state
        message = state.new_message(channel, user, content, type_=0)
        message["attachments"] = [state.store_attachment(channel.id, *spec) for spec in attachments]
        if reply_to is not None:
            referenced = state.message_of(reply_to)
            message["type"] = 19
            message["message_reference"] = state.reference(channel, referenced)
            message["referenced_message"] = referenced
        state.messages[int(message["id"])] = message
        await self.gateway.dispatch("MESSAGE_CREATE", state.event_message(message))
        return message
