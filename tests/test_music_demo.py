"""Step 5 of ``moodtunes demo``: the music lines."""

from __future__ import annotations

from pathlib import Path

from core.config import Settings
from core.music.demo import demo_lines
from tests.conftest import data_path
from tests.synthetic_catalog import write_synthetic_catalog


def settings(tmp_path: Path, catalog: Path | None, **more: object) -> Settings:
    return Settings(catalog=catalog, cache_dir=tmp_path / "cache", _env_file=None, **more)  # type: ignore[call-arg]


def test_demo_lines_with_a_catalog(tmp_path: Path) -> None:
    csv = tmp_path / "tracks.csv"
    write_synthetic_catalog(csv, 600, seed=1)
    lines = demo_lines(settings(tmp_path, csv), "angry")
    assert lines[0].startswith("5. music for an angry face: loud and intense; 10 tracks from tracks.csv")
    assert lines[1].startswith("   one recommendation takes ") and lines[1].endswith("requests)")
    tracks = lines[2:]
    assert len(tracks) == 10 and all("https://open.spotify.com/track/" in t for t in tracks)
    assert list((tmp_path / "cache").glob("catalog-tracks-*.parquet"))  # the next demo starts fast


def test_demo_without_any_catalog_says_how_to_get_one(tmp_path: Path) -> None:
    [line] = demo_lines(settings(tmp_path, None, data_dir=tmp_path / "absent"), "happy")
    assert line.startswith("5. ") and "MOODTUNES_CATALOG" in line and "moodtunes catalog fetch" in line


def test_demo_with_a_broken_catalog(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    [line] = demo_lines(settings(tmp_path, bad), "happy")
    assert line.startswith("5. music: cannot use the catalog") and "missing column(s)" in line


def test_demo_falls_back_to_the_shared_catalog(tmp_path: Path) -> None:
    shared = data_path("spotify", "tracks.csv")
    assert settings(tmp_path, None).default_catalog == shared
    lines = demo_lines(settings(tmp_path, None), "sad")
    assert lines[0].startswith("5. music for a sad face: slow and melancholic; 10 tracks from tracks.csv")
    assert "14,360 tracks" in lines[0]


def test_unknown_emotion_falls_back_to_neutral(tmp_path: Path) -> None:
    csv = tmp_path / "tracks.csv"
    write_synthetic_catalog(csv, 300, seed=1)
    lines = demo_lines(settings(tmp_path, csv), "contempt")
    assert "using neutral" in lines[0] and "calm and mellow" in lines[0]
