"""Personal music without models: the journal summary and days, the chart, the ranking hooks on a
synthetic catalog, the rating tokens, the new command options, and how Telegram and Discord draw
menus and charts."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot import discord_render
from bot.telegram_bot import keyboard
from core.app import texts
from core.app.charts import DayMood, history_chart, utc_day
from core.app.commands import BY_NAME, ArgumentError, parse_options
from core.app.feedback import list_key, rate_button
from core.app.journal import daily, entry_for, mostly, summary_line, window_start
from core.app.replies import Action, Button, Menu, Reply, is_png
from core.music import Catalog, Track, import_catalog
from core.music.recommend import preferred_quota
from core.spotify.top import TopTaste, TopTrack, parse_top_artists, parse_top_tracks
from core.storage import JournalEntry, ResultRow
from tests.synthetic_catalog import write_synthetic_catalog

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0


def entries(*spec: tuple[float, str]) -> list[JournalEntry]:
    """Journal entries ``(days ago, emotion)``, oldest first."""
    return sorted((JournalEntry(NOW - days * DAY, emotion) for days, emotion in spec), key=lambda e: e.at)


# The journal's summary line --------------------------------------------------------------------------


def test_summary_says_the_main_emotion_and_how_the_week_changed() -> None:
    calmer_happier = entries(
        (1, "happy"), (2, "happy"), (3, "neutral"), (4, "happy"), (8, "angry"), (9, "angry")
    )
    assert summary_line(calmer_happier, NOW) == "Mostly happy this week, calmer and happier than last week."
    # Happy both weeks, but last week also angry: calmer (and happier) than last week.
    assert summary_line(entries((1, "happy"), (2, "happy"), (8, "happy"), (9, "angry")), NOW) == (
        "Mostly happy this week, calmer and happier than last week."
    )
    calmer = entries((1, "sad"), (2, "sad"), (8, "fear"), (10, "fear"))
    assert summary_line(calmer, NOW) == "Mostly sad this week, calmer than last week."
    livelier = entries((1, "surprise"), (2, "surprise"), (8, "neutral"), (9, "neutral"))
    assert summary_line(livelier, NOW) == "Mostly surprised this week, livelier and happier than last week."
    same = entries((1, "happy"), (9, "happy"))
    assert summary_line(same, NOW) == "Mostly happy this week, about the same as last week."
    gloomier = entries((1, "disgust"), (8, "happy"), (9, "neutral"))
    assert summary_line(gloomier, NOW) == "Mostly disgusted this week, gloomier than last week."


def test_summary_without_a_week_to_compare() -> None:
    assert summary_line([], NOW) == texts.SUMMARY_NOTHING
    assert summary_line(entries((1, "fear"), (2, "fear")), NOW) == "Mostly fearful this week."
    assert summary_line(entries((10, "sad"), (12, "sad"), (20, "happy")), NOW) == (
        "No photos this week; mostly sad over the last 30 days."
    )
    assert summary_line(entries((40, "sad")), NOW) == texts.SUMMARY_NOTHING  # older than 30 days


def test_mostly_breaks_ties_by_the_latest() -> None:
    assert mostly(entries((3, "sad"), (2, "happy"))) == "happy"
    assert mostly(entries((3, "happy"), (2, "sad"), (1, "happy"))) == "happy"


def test_days_count_emotions_and_average_the_songs() -> None:
    track = Track("x" * 22, "Song", ("A",), 50, None, None, 0.8, 0.4, 0.5)
    quiet = Track("y" * 22, "Other", ("B",), 50, None, None, 0.2, 0.2, 0.5)
    happy = entry_for("happy", [track, quiet], "match", "happy", NOW - DAY)
    sad = entry_for("sad", [quiet], "match", "sad", NOW - DAY)
    bare = entry_for("neutral", [], "match", "calm", NOW)
    assert (happy.valence, happy.energy, happy.tracks) == (pytest.approx(0.5), pytest.approx(0.3), 2)
    assert bare.valence is None and bare.tracks == 0
    days = daily([happy, sad, bare], NOW)
    assert len(days) == 30 and days[-1].day == utc_day(NOW)
    assert days[-2].emotions == {"happy": 1, "sad": 1} and days[-2].valence == pytest.approx(0.35)
    assert days[-1].emotions == {"neutral": 1} and days[-1].valence is None
    assert all(d.photos == 0 for d in days[:-2])
    assert window_start(NOW) == datetime(2026, 11, 1, tzinfo=UTC).timestamp()


def test_the_chart_is_a_png_of_the_expected_size() -> None:
    days = daily(entries((0, "happy"), (1, "sad"), (1, "happy"), (5, "angry")), NOW)
    png = history_chart(days)
    assert is_png(png) and 10_000 < len(png) < 400_000
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (900, 560)
    empty = history_chart([DayMood(d.day) for d in days])  # nothing to draw still draws the axes
    assert is_png(empty)


# Ranking hooks ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    path = tmp_path_factory.mktemp("music") / "tracks.csv"
    write_synthetic_catalog(path, 2000, "kaggle-1921-2020", seed=11)
    return import_catalog(path, seed=0)


def in_mood(catalog: Catalog, mood: str, track: Track) -> bool:
    """The track is a typical track of one of the mood's chosen clusters."""
    row = catalog.artist_rows(track.artists)
    rows = [r for r in row.tolist() if catalog.track(r).id == track.id]
    return catalog.cluster_of(track.id) in catalog.chosen_clusters(mood) and bool(catalog.typical[rows[0]])


def test_preferred_artists_come_first_within_the_mood(catalog: Catalog) -> None:
    plain = catalog.recommend(emotion="happy", n=10)
    deeper = catalog.recommend(emotion="happy", n=50)[30:]
    liked = sorted({a for t in deeper for a in t.artists} - {a for t in plain for a in t.artists})[:4]
    preferred = catalog.recommend(emotion="happy", n=10, prefer=[name.upper() for name in liked])  # any case
    first = preferred[: preferred_quota(10)]
    assert all(set(t.artists) & set(liked) for t in first), [t.artists for t in first]
    assert all(in_mood(catalog, "happy", t) for t in preferred)
    rest = [t for t in preferred[len(first) :]]
    assert [t.id for t in rest] == [t.id for t in plain if t.id not in {f.id for f in first}][: len(rest)]
    assert catalog.recommend(emotion="happy", n=10, prefer=["Nobody At All"]) == plain


def test_a_preferred_artist_outside_the_mood_is_never_pulled_in(catalog: Catalog) -> None:
    chosen = set(catalog.chosen_clusters("happy"))
    outside = [catalog.track(r) for r in range(len(catalog)) if int(catalog.labels[r]) not in chosen]
    only_outside = [
        t.artists[0]
        for t in outside
        if all(int(catalog.labels[r]) not in chosen for r in catalog.artist_rows([t.artists[0]]).tolist())
    ][:5]
    assert only_outside, "the synthetic catalog has artists only outside the happy clusters"
    picked = catalog.recommend(emotion="happy", n=10, prefer=only_outside)
    assert picked == catalog.recommend(emotion="happy", n=10)


def test_excluded_tracks_never_come_back_and_lift_prefers_too(catalog: Catalog) -> None:
    first = catalog.recommend(emotion="sad", n=10)
    avoid = {first[0].id, first[3].id}
    again = catalog.recommend(emotion="sad", n=10, exclude=avoid, recent={t.id for t in first})
    assert not avoid & {t.id for t in again}
    lifted = catalog.recommend(emotion="sad", n=8, policy="lift")
    liked = [lifted[-1].artists[0]]
    lifted_pref = catalog.recommend(emotion="sad", n=8, policy="lift", prefer=liked)
    assert len(lifted_pref) == 8 and any(liked[0] in t.artists for t in lifted_pref)
    seeded = catalog.recommend(emotion="happy", n=10, seed=3, prefer=[*liked, first[1].artists[0]])
    assert len(seeded) == 10 and len({t.id for t in seeded}) == 10


def test_artist_rows_finds_every_credit(catalog: Catalog) -> None:
    track = next(catalog.track(r) for r in range(len(catalog)) if len(catalog.track(r).artists) > 1)
    rows = catalog.artist_rows([track.artists[1].lower()]).tolist()
    assert rows and all(track.artists[1] in catalog.track(r).artists for r in rows)
    assert catalog.artist_rows([]).dtype == np.int64 and len(catalog.artist_rows(["nobody"])) == 0


# Tokens, commands, parsing ------------------------------------------------------------------------------


def test_rating_tokens_fit_telegrams_64_bytes() -> None:
    result = ResultRow("A" * 12, 1, 1, "happy", "match", 50, ["t" * 22] * 990, [])
    tracks = [Track(f"{i:022d}", "x", ("a",), 1, None, None, 0.5, 0.5, 0.5) for i in range(50)]
    button = rate_button(result, tracks)
    assert button.action is Action.RATE and len(button.data.encode()) <= 64
    assert button.data.startswith("rate:AAAAAAAAAAAA.940.50.") and button.data.endswith(".0")
    assert len(Button("x", Action.NOPE, f"{'A' * 12}.{'t' * 22}").data.encode()) == 40
    assert list_key(["a", "b"]) != list_key(["b", "a"]) and len(list_key([])) == 6


def test_new_commands_parse_their_options() -> None:
    journal = BY_NAME["journal"]
    assert journal.usage() == "/journal [on|off]"
    assert parse_options(journal, "ON") == {"state": "on"} and parse_options(journal, "") == {}
    with pytest.raises(ArgumentError, match=r"Usage: /journal \[on\|off\]"):
        parse_options(journal, "maybe")
    assert parse_options(BY_NAME["dislike"], "3") == {"number": 3}
    with pytest.raises(ArgumentError, match="1 to 50"):
        parse_options(BY_NAME["like"], "0")
    assert BY_NAME["history"].private and BY_NAME["like"].usage() == "/like NUMBER"


def test_spotify_top_pages_are_read_leniently() -> None:
    artists = {"items": [{"id": "1", "name": "Koffee"}, {"id": "2"}, "junk", {"name": ""}], "total": 4}
    assert parse_top_artists(artists) == ("Koffee",)
    toast = {"id": "t", "name": "Toast", "artists": [{"name": "Koffee"}, {"x": 1}]}
    tracks = {"items": [toast, {"name": "?"}]}
    assert parse_top_tracks(tracks) == (TopTrack("t", "Toast", ("Koffee",)),)
    assert parse_top_artists(None) == () and parse_top_tracks({"items": "no"}) == ()
    taste = TopTaste(("Koffee", "Drake"), (TopTrack("t", "x", ("koffee", "Burna Boy")),))
    assert taste.artist_names() == ("Koffee", "Drake", "Burna Boy")


# Rendering ---------------------------------------------------------------------------------------------


def menus() -> tuple[Menu, ...]:
    options = [(f"{i}. Song {i} - Artist", f"{'T' * 12}.{i:022d}") for i in range(1, 11)]
    return (
        Menu(texts.RATE_NOPE, "👎", tuple(Button(label, Action.NOPE, token) for label, token in options)),
        Menu(texts.RATE_LIKE, "👍", tuple(Button(label, Action.LIKE, token) for label, token in options)),
    )


def test_telegram_draws_menus_side_by_side_then_buttons() -> None:
    markup = keyboard(Reply("rate", menus=menus(), buttons=(Button(texts.RATE_NEXT, Action.RATE, "x"),)))
    assert markup is not None
    rows = markup.inline_keyboard
    assert len(rows) == 11 and [len(r) for r in rows] == [2] * 10 + [1]
    assert rows[0][0].text.startswith("👎 1. Song 1") and rows[0][1].text.startswith("👍 1. Song 1")
    assert rows[0][0].callback_data == f"nope:{'T' * 12}.{1:022d}"
    assert all(len(str(b.callback_data).encode()) <= 64 for row in rows for b in row)
    assert sum(len(r) for r in rows) <= 100


def test_discord_names_a_chart_png_and_draws_menus_as_selects(tmp_path: Path) -> None:
    png = history_chart(daily(entries((0, "happy")), NOW))
    rendered = discord_render.render(Reply("Mostly happy this week.", photo=png))
    assert rendered.file is not None and rendered.file.filename == "moodtunes.png"
    assert rendered.embeds[0].image.url == "attachment://moodtunes.png"
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, "JPEG")
    photo = discord_render.render(Reply("hi", photo=jpeg.getvalue()))
    assert photo.file is not None and photo.file.filename == "moodtunes.jpg"
    rate = Reply("rate", menus=menus(), buttons=(Button("Next", Action.RATE, "x"),))
    view = discord_render.render(rate).view
    assert view is not None
    selects = [c for c in view.to_components() for c in c["components"] if c["type"] == 3]
    assert [s["custom_id"] for s in selects] == ["pick:0", "pick:1"]
    assert selects[0]["placeholder"] == f"👎 {texts.RATE_NOPE}" and len(selects[0]["options"]) == 10
    assert selects[1]["options"][2]["value"] == f"like:{'T' * 12}.{3:022d}"
    view.stop()
