"""Discord rendering: a :class:`~core.app.replies.Reply` as embeds, its picture, buttons and menus.

Embeds carry the text, faces, mood and numbered songs with their Spotify links; the picture (the
annotated photo as ``moodtunes.jpg``, or a chart as ``moodtunes.png``) is attached and shown in the
first embed; each button's ``custom_id`` is :attr:`Button.data`, and one :class:`ReplyButton` dynamic
item serves every button. A :class:`~core.app.replies.Menu` becomes a select menu (``custom_id``
``pick:<n>``) whose option values are the options' :attr:`Button.data`, served by one
:class:`ReplyMenu` dynamic item. So presses and picks keep working after a restart and on any worker.
Everything is rendered in the reply's language (:attr:`Reply.language`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import discord

from core.app import texts
from core.app.i18n import _
from core.app.replies import Action, Button, Menu, Reply, is_png
from core.music import Track

PHOTO_NAME = "moodtunes.jpg"
CHART_NAME = "moodtunes.png"
COLOUR = discord.Colour(0x1DB954)
ERROR_COLOUR = discord.Colour(0xE11D48)
MENU_OPTIONS = 25
"""Options of one select menu (Discord's limit)."""
MESSAGE_BUDGET = 5900
"""Characters for all embeds of one message (Discord allows 6000)."""
BUTTON_STYLES = {
    Action.PLAYLIST: discord.ButtonStyle.success,
    Action.ENROLL_YES: discord.ButtonStyle.primary,
    Action.FORGET_YES: discord.ButtonStyle.danger,
}

_BUTTON_TEMPLATE = "(?P<action>" + "|".join(re.escape(a.value) for a in Action) + "):(?P<token>\\S+)"
_NO_BRACKETS = str.maketrans("[]", "()")


# Rendering ---------------------------------------------------------------------------------------


class ReplyButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=_BUTTON_TEMPLATE):
    """A reply's button (``custom_id`` = :attr:`Button.data`); a press, even after a restart, goes to
    the adapter of the client that received it."""

    def __init__(self, button: Button) -> None:
        style = BUTTON_STYLES.get(button.action, discord.ButtonStyle.secondary)
        super().__init__(discord.ui.Button(label=button.label[:80], custom_id=button.data, style=style))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        """Rebuild the button from the pressed component."""
        label = getattr(item, "label", None) or match["action"]
        return cls(Button(label, Action(match["action"]), match["token"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Hand the press to the adapter."""
        adapter = getattr(interaction.client, "adapter", None)
        if adapter is not None and self.item.custom_id:
            await adapter.on_press(interaction, self.item.custom_id)


class ReplyMenu(discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]], template=r"pick:(?P<index>\d+)"):
    """A reply's menu as a select menu; the value picked is a :attr:`Button.data`, handed to the adapter
    like a button press (even after a restart: the options travel with the message)."""

    def __init__(self, index: int, placeholder: str, options: list[discord.SelectOption]) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=f"pick:{index}",
                placeholder=placeholder[:150],
                options=options[:MENU_OPTIONS],
                min_values=1,
                max_values=1,
            )
        )

    @classmethod
    def of(cls, index: int, menu: Menu) -> ReplyMenu:
        """The select menu of ``menu`` (at most 25 options, as Discord allows)."""
        options = [discord.SelectOption(label=b.label[:100], value=b.data[:100]) for b in menu.options]
        return cls(index, f"{menu.symbol} {menu.placeholder}", options)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        """Rebuild the select menu from the picked component."""
        options = list(getattr(item, "options", None) or [discord.SelectOption(label="-", value="-")])
        return cls(int(match["index"]), getattr(item, "placeholder", None) or "", options)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Hand the picked option's data to the adapter, as a press."""
        adapter = getattr(interaction.client, "adapter", None)
        data: Any = interaction.data or {}
        values = data.get("values") or []
        if adapter is not None and values:
            await adapter.on_press(interaction, str(values[0]))


@dataclass
class Rendered:
    """A reply as discord.py ``send()`` arguments."""

    embeds: list[discord.Embed]
    file: discord.File | None = None
    view: discord.ui.View | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Messageable.send`` and ``Webhook.send`` (absent parts left out)."""
        parts: dict[str, Any] = {"embeds": self.embeds}
        if self.file is not None:
            parts["file"] = self.file
        if self.view is not None:
            parts["view"] = self.view
        return parts


def render(reply: Reply) -> Rendered:
    """A :class:`Reply` as embeds (text, faces, mood, numbered songs with links), its picture
    (``attachment://moodtunes.jpg`` for a photo, ``moodtunes.png`` for a chart, shown in the first
    embed) and a view of its menus and buttons, in the reply's language."""
    with reply.speaking():
        return _render(reply)


def _render(reply: Reply) -> Rendered:
    colour = ERROR_COLOUR if reply.error else COLOUR
    text = _escape(reply.text)
    if reply.link and reply.link not in reply.text:
        text = f"{text}\n\n{reply.link}"
    main = discord.Embed(description=_clip(text, 4096), colour=colour)
    if reply.faces:
        lines = "\n".join(_escape(face.describe()) for face in reply.faces)
        main.add_field(
            name=_(texts.FACES) if len(reply.faces) > 1 else _(texts.FACE),
            value=_clip(lines, 1024),
            inline=False,
        )
    if reply.mood:
        main.add_field(name=_(texts.MOOD), value=_clip(_escape(reply.mood), 1024))
    file = None
    if reply.photo is not None:
        name = CHART_NAME if is_png(reply.photo) else PHOTO_NAME
        description = _(texts.FACES_MARKED) if reply.faces else None
        file = discord.File(io.BytesIO(reply.photo), filename=name, description=description)
        main.set_image(url=f"attachment://{name}")
    embeds = [main, *_track_embeds(reply.tracks, reply.mood, colour, MESSAGE_BUDGET - len(main))]
    view = None
    if reply.buttons or reply.link or reply.menus:
        view = discord.ui.View(timeout=None)
        for index, menu in enumerate(reply.menus[:4]):  # 5 rows a message: one is left for buttons
            view.add_item(ReplyMenu.of(index, menu))
        for button in reply.buttons:
            view.add_item(ReplyButton(button))
        if reply.link and len(reply.link) <= 512:
            view.add_item(discord.ui.Button(label=_(texts.OPEN_LINK), url=reply.link))
    return Rendered(embeds, file, view)


def _track_embeds(
    tracks: Sequence[Track], mood: str | None, colour: discord.Colour, budget: int
) -> list[discord.Embed]:
    """Numbered masked links, labels shortened so that all fit in ``budget`` characters."""
    if not tracks:
        return []
    title = _(texts.SONGS_COUNT_FOR_MOOD).format(count=len(tracks)) + (f" ({mood})" if mood else "")
    per_line = (budget - len(title)) // len(tracks)
    lines = []
    for number, track in enumerate(tracks, 1):
        room = max(12, per_line - len(track.url) - len(f"{number}. []()\n"))
        label = _escape(f"{track.name} - {', '.join(track.artists)}".translate(_NO_BRACKETS))
        if len(label) > room:  # never end on a lone backslash: it would escape the closing bracket
            label = label[: room - 1].rstrip("\\") + "…"
        lines.append(f"{number}. [{label}]({track.url})")
    chunks: list[str] = []
    for line in lines:
        if chunks and len(chunks[-1]) + 1 + len(line) <= 4096:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return [
        discord.Embed(title=title if index == 0 else None, description=chunk, colour=colour)
        for index, chunk in enumerate(chunks)
    ]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    """Plain text (names come from users) shown literally, not as Discord markdown."""
    return discord.utils.escape_markdown(text)
