"""Languages: every sentence a user reads comes from a gettext catalog (made and read with Babel).

English is the source language: a message's English text is its id. Other languages live in
``core/app/locale/<code>/LC_MESSAGES/moodtunes.po`` (``make messages`` re-extracts the ids and merges
them into each catalog; ``tests/test_i18n.py`` fails when a message has no translation). Messages are
marked in the code with :func:`N_` (a constant, translated where it is used) or :func:`_` (translated
at once, in the language of the user being answered).

The language of the user being answered is per task (a :class:`~contextvars.ContextVar`), set by the
service from the user's ``/language`` choice or, without one, the language their platform reports
(Telegram's ``language_code``, Discord's ``locale``).
"""

from __future__ import annotations

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
    """The shipped language of a platform's code (``"es-MX"``, ``"es_ES"`` -> ``"es"``), or None."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].strip().lower()
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


def _(message: str) -> str:
    """``message`` in the current language (the English text when there is no translation)."""
    language = _CURRENT.get()
    if language == DEFAULT:
        return message
    return catalog(language).get(message, message)
