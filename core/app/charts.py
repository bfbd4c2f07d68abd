"""The mood history chart: a PNG drawn with matplotlib's Agg backend, never on the event loop.

:func:`history_chart` is synchronous and CPU-bound (about a tenth of a second, plus matplotlib's import
the first time); callers run it with ``asyncio.to_thread``. It uses ``matplotlib.figure.Figure`` with
an Agg canvas directly, never ``pyplot``, so no global figure state is shared between threads, and a
lock keeps two renders from running at once in one process (matplotlib is not thread-safe).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from core.app import texts
from core.app.i18n import _, current_language

EMOTION_ORDER = ("happy", "surprise", "neutral", "sad", "fear", "disgust", "angry")
"""Stacking order of the emotions, bright to dark."""
EMOTION_COLOURS = {
    "happy": "#f6c445",
    "surprise": "#f39c4a",
    "neutral": "#a7b1bb",
    "sad": "#4a78c2",
    "fear": "#8e5bb5",
    "disgust": "#5a9e5a",
    "angry": "#d64545",
}
SIZE_PX = (900, 560)
DPI = 100
_LOCK = threading.Lock()


@dataclass(frozen=True)
class DayMood:
    """One day of the journal: photos per emotion, and the mean valence / energy of the songs sent
    (None when no songs were sent that day)."""

    day: date
    emotions: dict[str, int] = field(default_factory=dict)
    valence: float | None = None
    energy: float | None = None

    @property
    def photos(self) -> int:
        """Photos that day."""
        return sum(self.emotions.values())


def utc_day(at: float) -> date:
    """The UTC date of a Unix time (the chart's days are UTC days)."""
    return datetime.fromtimestamp(at, UTC).date()


def day_range(last: date, days: int) -> list[date]:
    """``days`` consecutive dates ending with ``last``."""
    return [last - timedelta(days=days - 1 - i) for i in range(days)]


def history_chart(days: Sequence[DayMood], title: str | None = None) -> bytes:
    """PNG bytes of the chart: on top, each day's share of photos per emotion (stacked bars; empty days
    blank); below, the mean brightness (valence) and energy of the songs sent that day (0-1). Its words
    and dates are in the current language; ``title`` defaults to :data:`texts.CHART_TITLE`."""
    from babel.dates import format_date
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    title = title if title is not None else _(texts.CHART_TITLE)
    language = current_language()

    with _LOCK:
        fig = Figure(figsize=(SIZE_PX[0] / DPI, SIZE_PX[1] / DPI), dpi=DPI)
        FigureCanvasAgg(fig)
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        x = list(range(len(days)))
        base = [0.0] * len(days)
        for emotion in EMOTION_ORDER:
            shares = [d.emotions.get(emotion, 0) / d.photos if d.photos else 0.0 for d in days]
            if not any(shares):
                continue
            top.bar(
                x,
                shares,
                bottom=base,
                width=0.8,
                color=EMOTION_COLOURS[emotion],
                label=_(texts.EMOTION_WORDS[emotion]) if emotion in texts.EMOTION_WORDS else emotion,
            )
            base = [b + s for b, s in zip(base, shares, strict=True)]
        top.set_ylim(0, 1)
        top.set_ylabel(_(texts.CHART_EMOTIONS))
        top.yaxis.set_major_formatter(lambda value, _pos: f"{value:.0%}")
        top.set_title(title)
        for values, label, colour in (
            ([d.valence for d in days], _(texts.CHART_VALENCE), "#f6a623"),
            ([d.energy for d in days], _(texts.CHART_ENERGY), "#c2185b"),
        ):
            points = [(i, v) for i, v in zip(x, values, strict=True) if v is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                bottom.plot(xs, ys, marker="o", linewidth=1.5, markersize=4, color=colour, label=label)
        bottom.set_ylim(0, 1)
        bottom.set_ylabel(_(texts.CHART_SONGS))
        for axis in (top, bottom):
            if axis.get_legend_handles_labels()[0]:
                axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
        step = max(1, len(days) // 10)
        ticks = [format_date(d.day, "dd MMM", locale=language) for d in days]
        bottom.set_xticks(x[::step], ticks[::step], fontsize=8)
        bottom.set_xlabel(_(texts.CHART_DAYS))
        bottom.set_xlim(-0.6, len(days) - 0.4)
        for axis in (top, bottom):
            axis.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
