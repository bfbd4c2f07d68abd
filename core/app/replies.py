"""Platform-neutral replies: what the service answers, for the adapters to render.

A :class:`Reply` carries plain text (no markup), optional structured parts (faces, tracks), an
optional picture (the annotated photo as JPEG, or a chart as PNG), buttons and pick-one menus. Each
adapter renders it its own way (Telegram HTML, Discord embeds, console text); :func:`render_text` is
the plain-text rendering.

A reply is written in the language of the user it answers (:mod:`core.app.i18n`): its text is
translated when it is made, and :attr:`Reply.language` records that language, so the adapters render
the rest (face lines, headings, labels) in the same language, whenever and wherever they render it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum

from core.app import texts
from core.app.i18n import _, current_language, speaking
from core.music import Track


class Action(StrEnum):
    """What a button does; adapters encode ``f"{action}:{token}"`` as callback data (<= 64 bytes)."""

    PLAYLIST = "playlist"
    LIFT = "lift"
    MATCH = "match"
    MORE = "more"
    ENROLL_YES = "enroll-yes"
    ENROLL_NO = "enroll-no"
    FORGET_YES = "forget-yes"
    FORGET_NO = "forget-no"
    SPOTIFY_YES = "spotify-yes"
    """The user confirms that the Spotify account named in the question is theirs (token: the question)."""
    SPOTIFY_NO = "spotify-no"
    RATE = "rate"
    """Open the per-song "not this one / more like this" menus of a track list (token: result, list, page)."""
    NOPE = "nope"
    """Not this one: never send this track to the presser again (token: result and track id)."""
    LIKE = "like"
    """More like this: rank the track's artists up within the mood (token: result and track id)."""
    JOURNAL_YES = "journal-yes"
    """Consent to the mood journal (token: the question)."""
    JOURNAL_NO = "journal-no"

    @property
    def public(self) -> bool:
        """Its answer is for everyone who saw the photo reply (more songs), not only the presser."""
        return self in (Action.LIFT, Action.MATCH, Action.MORE)


@dataclass(frozen=True)
class Button:
    """A button under a reply: ``label`` shown, ``action`` + ``token`` sent back when pressed."""

    label: str
    action: Action
    token: str = "-"

    @property
    def data(self) -> str:
        """Compact callback data, e.g. ``"more:Xy12ab"``."""
        return f"{self.action.value}:{self.token}"

    @staticmethod
    def parse(data: str) -> tuple[Action, str] | None:
        """Inverse of :attr:`data`; None for anything that is not ours."""
        action, _colon, token = data.partition(":")
        try:
            return Action(action), token
        except ValueError:
            return None


@dataclass(frozen=True)
class Menu:
    """A pick-one list under a reply, each option a :class:`Button` (its label names the choice).

    Discord shows a select menu with ``placeholder``; Telegram a column of buttons marked ``symbol``
    (menus of equal length side by side, one row per option); the console numbers the options.
    """

    placeholder: str
    symbol: str
    options: tuple[Button, ...]


@dataclass(frozen=True)
class FaceLine:
    """One face of a photo: who (None = unknown), the emotion and its probability (0..1)."""

    name: str | None
    emotion: str | None
    confidence: float | None
    box: tuple[int, int, int, int]

    def describe(self) -> str:
        """E.g. ``"Ann looks happy (87%)"`` or ``"Someone I don't know yet"`` (in the current language)."""
        who = self.name or _(texts.FACE_UNKNOWN)
        if self.emotion is None or self.confidence is None:
            return who
        return _(texts.FACE_LOOKS).format(
            name=who, emotion=emotion_name(self.emotion), confidence=self.confidence
        )

    def label(self) -> str:
        """The label on the annotated photo, e.g. ``"Ann · happy 87%"`` (in the current language)."""
        label = self.name or _(texts.FACE_LABEL_UNKNOWN)
        if self.emotion is not None and self.confidence is not None:
            label += f" · {emotion_name(self.emotion)} {self.confidence:.0%}"
        return label


def emotion_name(label: str) -> str:
    """A face's emotion (``"happy"``, a model label) as a photo reply names it, in the current language."""
    name = texts.EMOTION_NAMES.get(label)
    return _(name) if name is not None else label


@dataclass(frozen=True)
class Reply:
    """What to send back. ``error`` marks refusals (bad input, limits) so adapters can style them."""

    text: str
    faces: tuple[FaceLine, ...] = ()
    tracks: tuple[Track, ...] = ()
    mood: str | None = None
    photo: bytes | None = None
    """A picture: the annotated photo (JPEG) or a chart (PNG, see :func:`is_png`)."""
    buttons: tuple[Button, ...] = ()
    menus: tuple[Menu, ...] = ()
    link: str | None = None
    """A URL the user should open (Spotify authorisation or a new playlist)."""
    error: bool = False
    emotion: str | None = None
    """The emotion the songs follow (the sender's face, else the largest), for logs and tests."""
    closes_question: bool = False
    """The answer to a Yes/No question: adapters remove that question's buttons."""
    direct: Reply | None = None
    """A part for the sender's eyes only (e.g. an authorisation link asked for in a group): adapters
    deliver it in a private chat, and say so (or how to open one) where the command was sent."""
    language: str = field(default_factory=current_language)
    """The language the reply is written in (the current one when it was made): adapters render it
    :meth:`speaking` it."""

    def speaking(self) -> AbstractContextManager[None]:
        """``with reply.speaking():`` render the reply's other parts in its language."""
        return speaking(self.language)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_png(data: bytes | None) -> bool:
    """Whether a reply's picture is PNG (a chart) rather than JPEG (an annotated photo)."""
    return data is not None and data.startswith(PNG_SIGNATURE)


def track_line(index: int, track: Track) -> str:
    """``"3. Song - Artist A, Artist B  https://open.spotify.com/track/..."``."""
    return f"{index}. {track.name} - {', '.join(track.artists)}  {track.url}"


def render_text(reply: Reply) -> str:
    """The whole reply as plain text, in its language (the console adapter and logs use it)."""
    with reply.speaking():
        parts = [reply.text]
        if reply.faces:
            parts.append("\n".join(f"- {face.describe()}" for face in reply.faces))
        if reply.tracks:
            header = f"{_(texts.SONGS_FOR_MOOD)} ({reply.mood}):" if reply.mood else f"{_(texts.SONGS)}:"
            lines = "\n".join(track_line(i, t) for i, t in enumerate(reply.tracks, 1))
            parts.append(f"{header}\n{lines}")
    if reply.link and reply.link not in reply.text:
        parts.append(reply.link)
    return "\n\n".join(p for p in parts if p)
