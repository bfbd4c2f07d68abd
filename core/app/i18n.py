"""Languages: every sentence a user reads comes from a gettext catalog (made and read with Babel).

English is the source language: a message's English text is its id. Other languages live in
``core/app/locale/<code>/LC_MESSAGES/moodtunes.po`` (``make messages`` re-extracts the ids and merges
them into each catalog; ``tests/test_i18n.py`` fails when a message has no translation). Messages are
marked in the code with :func:`N_` (a constant, translated where it is used) or :func:`_` (translated
at once, in the language of the user being answered). A sentence with ``{named}`` placeholders is
translated first, then filled (``_(texts.TRACKS_SET).format(count=15)``). A sentence made far from
where it is shown (an error raised deep in core) is a :class:`Message`: its template and values,
translated when shown (:meth:`core.errors.MoodtunesError.localized`).

The language of the user being answered is per task (a :class:`~contextvars.ContextVar`), set by the
service from the user's ``/language`` choice or, without one, the language their platform reports
(Telegram's ``language_code``, Discord's ``locale``, the terminal's ``LANG``); :func:`speaking` sets it
for a block (a notification sent outside a request, a reply rendered in the language it was written
in). A new language: ``pybabel init -l xx`` (options in pyproject.toml), translate the new catalog, add
the code to :data:`LANGUAGES`; ``tests/test_i18n.py`` checks that it is complete.
"""

from __future__ import annotations

import contextlib
import string
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache

from core.paths import resource

DEFAULT = "en"
LANGUAGES: dict[str, str] = {"en": "English", "es": "Español"}
"""Shipped languages: code -> the language's own name."""
DOMAIN = "moodtunes"

_CURRENT: ContextVar[str] = ContextVar("moodtunes_language", default=DEFAULT)


def N_(message: str) -> str:
    """Mark ``message`` for translation without translating it now (module constants)."""
    return message


def negotiate(code: str | None) -> str | None:
    """The shipped language of a platform's code (``"es-MX"``, ``"es_ES"`` -> ``"es"``; a POSIX locale
    such as ``"es_ES.UTF-8"`` or ``"es_ES@euro"`` too), or None."""
    if not code:
        return None
    base = code.split(".")[0].split("@")[0].replace("_", "-").split("-")[0].strip().lower()
    return base if base in LANGUAGES else None


@cache
def catalog(language: str) -> dict[str, str]:
    """``{English: translation}`` of one shipped language (empty for English)."""
    if language == DEFAULT:
        return {}
    from babel.messages.pofile import read_po

    path = resource("core.app", "locale", language, "LC_MESSAGES", f"{DOMAIN}.po")
    with path.open("rb") as handle:
        po = read_po(handle, locale=language, domain=DOMAIN)
    return {
        str(m.id): str(m.string)
        for m in po
        if m.id and isinstance(m.string, str) and m.string and not m.fuzzy
    }


def use_language(language: str | None) -> None:
    """Answer in ``language`` (a shipped code; anything else means English) for the rest of this task."""
    _CURRENT.set(language if language in LANGUAGES else DEFAULT)


def current_language() -> str:
    """The language of the user being answered in this task."""
    return _CURRENT.get()


@contextlib.contextmanager
def speaking(language: str | None) -> Iterator[None]:
    """``with speaking("es"):`` answer in ``language`` inside the block, then as before (a notification
    sent outside a request, a reply rendered in the language it was written in)."""
    token = _CURRENT.set(language if language in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def translation(message: str, language: str | None = None) -> str | None:
    """``message`` in ``language`` (default: the current one), or None when that catalog has no
    translation of it (English always has: the message is its own text)."""
    language = language or _CURRENT.get()
    if language == DEFAULT or language not in LANGUAGES:
        return message
    return catalog(language).get(message)


def _(message: str) -> str:
    """``message`` in the current language (the English text when there is no translation)."""
    language = _CURRENT.get()
    if language == DEFAULT:
        return message
    return catalog(language).get(message, message)


def placeholders(message: str) -> set[str]:
    """The named fields of a ``str.format`` template (``"{count} song(s)"`` -> ``{"count"}``)."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(message) if name}


class Message:
    """A sentence to translate when it is shown, not when it is made: an English template (marked with
    :func:`N_` where it is written) and its named values. Values may be messages themselves (a detail
    inside a sentence); they are translated too. ``str(message)`` is the English text (logs, the CLI).
    """

    __slots__ = ("params", "template")

    def __init__(self, template: str, /, **params: object) -> None:
        self.template = template
        self.params = params

    def __str__(self) -> str:
        return self.render(DEFAULT) or self.template

    def __repr__(self) -> str:
        return f"Message({self.template!r}, **{self.params!r})"

    def render(self, language: str | None = None) -> str | None:
        """The text in ``language`` (default: the current one); None when the template, or a message
        among its values, has no translation there."""
        template = translation(self.template, language)
        if template is None:
            return None
        values: dict[str, object] = {}
        for key, value in self.params.items():
            if isinstance(value, Message):
                value = value.render(language)
                if value is None:
                    return None
            values[key] = value
        return template.format(**values) if values else template

    def translated(self) -> str:
        """The text in the current language (English where there is no translation)."""
        text = self.render()
        return text if text is not None else str(self)
