"""The mood journal: opt-in, per user. ``/journal on`` asks consent (Yes / No); while it is on, each photo
reply records the emotion the songs followed and the mood of the songs sent, with the time (never the
photo); ``/history`` draws the last 30 days as a PNG chart with a one-line summary ("Mostly happy this
week, calmer than last week."); ``/journal off`` stops it and deletes the entries, ``/forget`` deletes
everything (ON DELETE CASCADE), and entries older than 30 days are swept.

The switch, the open consent question (its random token, bound to the user, expiring) and the entries
live in the store, so any worker answers the buttons and a restart loses nothing. The chart is drawn
in a thread (:mod:`core.app.charts`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from core.app import texts
from core.app.charts import DayMood, day_range, history_chart, utc_day
from core.app.i18n import _
from core.app.replies import Action, Button, Reply
from core.music import Track
from core.storage import JournalEntry, Store

log = logging.getLogger(__name__)

JOURNAL_DAYS = 30
"""Days /history shows."""
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
ASK_TTL_S = 600.0
"""How long the consent question's buttons work."""
CHANGE_THRESHOLD = 0.15
"""A week is "calmer" or "happier" than the one before when its mean arousal or valence moved this much
(both on a -1..1 scale, see :data:`EMOTION_AXES`)."""
EMOTION_AXES: dict[str, tuple[float, float]] = {
    "happy": (0.8, 0.5),
    "surprise": (0.4, 0.8),
    "neutral": (0.0, 0.0),
    "sad": (-0.7, -0.4),
    "fear": (-0.6, 0.7),
    "disgust": (-0.6, 0.3),
    "angry": (-0.6, 0.8),
}
"""(valence, arousal) of each FER2013 emotion on Russell's circumplex, roughly, -1..1."""


def mostly(entries: Sequence[JournalEntry]) -> str:
    """The most frequent emotion of ``entries`` (ties: the one seen last); ``entries`` not empty."""
    counts = Counter(e.emotion for e in entries)
    last_seen = {e.emotion: e.at for e in entries}
    return max(counts, key=lambda emotion: (counts[emotion], last_seen[emotion]))


def _axes(entries: Sequence[JournalEntry]) -> tuple[float, float]:
    points = [EMOTION_AXES.get(e.emotion, (0.0, 0.0)) for e in entries]
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


def _word(emotion: str) -> str:
    word = texts.EMOTION_WORDS.get(emotion)
    return _(word) if word is not None else emotion


def summary_line(entries: Sequence[JournalEntry], now: float) -> str:
    """One line about the last 30 days: the emotion of most photos in the last 7 days, and how this
    week compares with the 7 days before (calmer or livelier by arousal, happier or gloomier by
    valence, when either moved by :data:`CHANGE_THRESHOLD`)."""
    recent = [e for e in entries if now - JOURNAL_DAYS * DAY_S < e.at <= now]
    if not recent:
        return _(texts.SUMMARY_NOTHING)
    this_week = [e for e in recent if e.at > now - WEEK_S]
    last_week = [e for e in recent if now - 2 * WEEK_S < e.at <= now - WEEK_S]
    if not this_week:
        return _(texts.SUMMARY_QUIET_WEEK).format(emotion=_word(mostly(recent)))
    emotion = _word(mostly(this_week))
    if not last_week:
        return _(texts.SUMMARY_FIRST_WEEK).format(emotion=emotion)
    (v1, a1), (v0, a0) = _axes(this_week), _axes(last_week)
    changes = []
    if a1 - a0 <= -CHANGE_THRESHOLD:
        changes.append(_(texts.CHANGE_CALMER))
    elif a1 - a0 >= CHANGE_THRESHOLD:
        changes.append(_(texts.CHANGE_LIVELIER))
    if v1 - v0 >= CHANGE_THRESHOLD:
        changes.append(_(texts.CHANGE_HAPPIER))
    elif v1 - v0 <= -CHANGE_THRESHOLD:
        changes.append(_(texts.CHANGE_GLOOMIER))
    if not changes:
        return _(texts.SUMMARY_SAME).format(emotion=emotion)
    change = (
        changes[0] if len(changes) == 1 else _(texts.CHANGE_BOTH).format(first=changes[0], second=changes[1])
    )
    return _(texts.SUMMARY_COMPARED).format(emotion=emotion, change=change)


def daily(entries: Sequence[JournalEntry], now: float, days: int = JOURNAL_DAYS) -> list[DayMood]:
    """The last ``days`` UTC days ending today: photos per emotion, and the mean valence and energy of
    the songs sent (over the photos that had songs)."""
    out = []
    for day in day_range(utc_day(now), days):
        todays = [e for e in entries if utc_day(e.at) == day]
        with_songs = [e for e in todays if e.valence is not None and e.energy is not None]
        out.append(
            DayMood(
                day,
                dict(Counter(e.emotion for e in todays)),
                sum(e.valence or 0.0 for e in with_songs) / len(with_songs) if with_songs else None,
                sum(e.energy or 0.0 for e in with_songs) / len(with_songs) if with_songs else None,
            )
        )
    return out


def window_start(now: float, days: int = JOURNAL_DAYS) -> float:
    """Unix time of the start (UTC midnight) of the first of the last ``days`` days."""
    first = day_range(utc_day(now), days)[0]
    return datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()


def entry_for(emotion: str, tracks: Sequence[Track], policy: str, mood: str, at: float) -> JournalEntry:
    """The journal entry of one photo reply: its emotion, the songs' mood, their mean valence and energy."""
    valence = sum(t.valence for t in tracks) / len(tracks) if tracks else None
    energy = sum(t.energy for t in tracks) / len(tracks) if tracks else None
    return JournalEntry(at, emotion, mood, policy, len(tracks), valence, energy)


class MoodJournal:
    """``/journal``, its consent buttons, recording photo replies, and ``/history``.

    Args:
        store: the store (the switch, the question and the entries live there).
        ttl_s: how long the consent question waits for its answer, seconds.
        clock: Unix time (tests pass a fake).
    """

    def __init__(
        self, store: Store, ttl_s: float = ASK_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock

    async def command(self, user: int, state: str | None) -> Reply:
        """``/journal`` (whether it is on), ``/journal on`` (ask consent first) or ``/journal off``."""
        now = self._clock()
        if state == "off":
            deleted = await self.store.journal_disable(user, now)
            log.info("journal off user=%s deleted=%d", user, deleted)
            return Reply(_(texts.JOURNAL_OFF).format(count=deleted))
        current = await self.store.journal_state(user)
        if current.enabled or state is None:
            if not current.enabled:
                return Reply(_(texts.JOURNAL_STATUS_OFF))
            count = len(await self.store.journal_entries(user, window_start(now)))
            return Reply(_(texts.JOURNAL_STATUS_ON).format(count=count))
        token = secrets.token_urlsafe(9)
        await self.store.journal_ask(user, token, now + self.ttl_s, now)
        return Reply(
            _(texts.JOURNAL_CONSENT),
            buttons=(
                Button(_(texts.JOURNAL_CONSENT_YES), Action.JOURNAL_YES, token),
                Button(_(texts.JOURNAL_CONSENT_NO), Action.JOURNAL_NO, token),
            ),
        )

    async def answer(self, user: int, action: Action, token: str) -> Reply:
        """The Yes / No of the consent question ``token``; only the user it was asked of can answer it."""
        enable = action is Action.JOURNAL_YES
        if await self.store.journal_answer(user, token, enable, self._clock()):
            log.info("journal %s user=%s", "on" if enable else "declined", user)
            return Reply(_(texts.JOURNAL_ON if enable else texts.JOURNAL_DECLINED), closes_question=True)
        state = await self.store.journal_state(user)
        if state.ask_token is None and state.enabled:  # answered already (a double tap, a redelivery)
            return Reply(
                _(texts.JOURNAL_ANSWERED).format(state=_(texts.JOURNAL_STATE_ON)), closes_question=True
            )
        return Reply(_(texts.QUESTION_EXPIRED).format(command="journal on"), error=True)

    async def record(self, user: int, emotion: str | None, tracks: Sequence[Track], policy: str) -> bool:
        """Record a photo reply if the user's journal is on; True if recorded. Never raises: a journal
        that cannot be written must not cost the user their songs."""
        if emotion is None:
            return False
        try:
            if not (await self.store.journal_state(user)).enabled:
                return False
            from core.music.moods import plan_for

            mood = plan_for(emotion, None, policy).start.name
            return await self.store.journal_add(user, entry_for(emotion, tracks, policy, mood, self._clock()))
        except Exception:
            log.exception("journal entry failed user=%s", user)
            return False

    async def history(self, user: int) -> Reply:
        """``/history``: the chart of the last 30 days with its summary, or a clear text when the journal
        is off or empty."""
        if not (await self.store.journal_state(user)).enabled:
            return Reply(_(texts.HISTORY_OFF))
        now = self._clock()
        entries = await self.store.journal_entries(user, window_start(now))
        if not entries:
            return Reply(_(texts.HISTORY_EMPTY))
        summary = summary_line(entries, now)
        png = await asyncio.to_thread(history_chart, daily(entries, now))
        log.info("history user=%s entries=%d bytes=%d", user, len(entries), len(png))
        return Reply(_(texts.HISTORY_CAPTION).format(summary=summary, count=len(entries)), photo=png)
