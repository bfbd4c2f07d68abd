"""Who sent a message and where: the two small types every adapter builds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    """The sender: ``platform`` (telegram, discord, local) and that platform's user id.

    ``display_name`` is the user's own name on the platform (never a per-server nickname).
    ``anonymous`` marks senders that are not one person (a Telegram channel post or an anonymous group
    admin): they get replies but cannot enrol or link accounts. ``language`` is the language code the
    platform reports for the sender (Telegram's ``language_code``, Discord's interaction ``locale``,
    the terminal's ``LANG``), None when this message carries none; replies are in it unless the user
    chose another with ``/language``.
    """

    platform: str
    external_id: str
    display_name: str = ""
    anonymous: bool = False
    language: str | None = None


@dataclass(frozen=True)
class Place:
    """Where the message came from: a chat (Telegram), a server or DM channel (Discord), the terminal.

    It is the scope faces are matched in. ``private`` is a one-to-one chat with the bot (it belongs to
    the user and goes with them on /forget). ``ephemeral`` says this answer is shown to the sender
    alone although the place is shared (Discord's ephemeral replies in a server).
    """

    platform: str
    external_id: str
    title: str = ""
    private: bool = False
    ephemeral: bool = False

    @property
    def seen_by_sender_only(self) -> bool:
        """Whether an answer here is for the sender's eyes only (links may be posted)."""
        return self.private or self.ephemeral
