"""Catalog import: the three public layouts, validation, de-duplication, wrong files, storage, cache."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.music import CatalogError, import_catalog, load_catalog, read_catalog, save_catalog
from core.music import store as music_store
from core.music.importer import parse_artists, read_tracks
from tests.conftest import data_path
from tests.synthetic_catalog import LAYOUTS, write_synthetic_catalog

FEATURE_VALUES = "0.5,0.6,0.7,0.1,-5.0,120.0"  # valence, energy, danceability, acousticness, loudness, tempo
ID_A, ID_B, ID_C, ID_D = (
    "4uLU6hMCjMI75M1A2tKUQC",
    "7ouMYWpwJ422jRcDASZB7P",
    "0nbXyq5TXYPCO7pr3N8S4I",
    ("696DnlkuDOXcMAnKlTgXXK"),
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def kaggle_csv(tmp_path: Path) -> Path:
    """The Kaggle 1921-2020 layout, artists as Python list literals (one with an apostrophe)."""
    head = "id,name,popularity,duration_ms,explicit,artists,id_artists,release_date,valence,energy,"
    head += "danceability,acousticness,loudness,tempo,key\n"
    rows = [
        f"{ID_A},Never Gonna,80,1000,0,\"['Rick Astley']\",\"['x']\",1987-07-27,{FEATURE_VALUES},1",
        f'{ID_B},Sweet Child,75,1000,0,"[""Guns N\' Roses""]","[\'x\']",1987,{FEATURE_VALUES},1',
        f"{ID_C},Duet,60,1000,0,\"['Artist A', 'Artist B']\",\"['x']\",2020-01,{FEATURE_VALUES},1",
    ]
    return write(tmp_path / "tracks.csv", head + "\n".join(rows) + "\n")


def test_kaggle_1921_2020_layout(tmp_path: Path) -> None:
    frame, report = read_tracks(kaggle_csv(tmp_path))
    assert report.layout == "Spotify Dataset 1921-2020"
    assert (report.rows_read, report.kept, report.rejected) == (3, 3, 0)
    rows = {r.id: r for r in frame.itertuples()}
    assert rows[ID_A].artists == ("Rick Astley",) and rows[ID_A].year == 1987
    assert rows[ID_B].artists == ("Guns N' Roses",)
    assert rows[ID_C].artists == ("Artist A", "Artist B") and rows[ID_C].year == 2020
    assert rows[ID_C].genre is None
    assert rows[ID_A].valence == pytest.approx(0.5) and rows[ID_A].tempo == pytest.approx(120.0)


def test_spotify_tracks_114k_layout(tmp_path: Path) -> None:
    head = ",track_id,artists,album_name,track_name,popularity,duration_ms,explicit,valence,energy,"
    head += "danceability,acousticness,loudness,tempo,track_genre\n"
    rows = [
        f"0,{ID_A},Artist A;Artist B,Album,Song One,50,1000,False,{FEATURE_VALUES},acoustic",
        f"1,{ID_B},Solo,Album,Song Two,40,1000,False,{FEATURE_VALUES},k-pop",
        f"2,{ID_A},Artist A;Artist B,Album,Song One,50,1000,False,{FEATURE_VALUES},pop",  # id again, genre 2
        f"3,{ID_C},Solo,Album,Song Three,30,1000,False,{FEATURE_VALUES},",
    ]
    catalog = import_catalog(write(tmp_path / "dataset.csv", head + "\n".join(rows) + "\n"))
    assert catalog.report is not None and catalog.report.layout == "Spotify Tracks Dataset (114k)"
    one = catalog.get(ID_A)
    assert one is not None
    assert one.artists == ("Artist A", "Artist B") and one.genre == "acoustic" and one.year is None
    assert one.name == "Song One" and one.popularity == 50
    assert catalog.report.duplicate_ids == 1 and len(catalog) == 3
    three = catalog.get(ID_C)
    assert three is not None and three.genre is None


def test_shared_layout_with_uris_and_unnamed_column(tmp_path: Path) -> None:
    head = ",artist,track,track_id,popularity,year,valence,energy,danceability,acousticness,loudness,tempo,"
    head += "type\n"
    rows = [
        f"0,[ocean jams],Nova,spotify:track:{ID_A},47,2017,{FEATURE_VALUES},audio_features",
        # One field too many (an unquoted comma): skipped as malformed, not read shifted.
        f"1,Tyler, The Creator,x,spotify:track:{ID_B},47,2017,{FEATURE_VALUES},audio_features",
        f"2,None,NA,https://open.spotify.com/track/{ID_C}?si=abc,47,2019,{FEATURE_VALUES},audio_features",
    ]
    frame, report = read_tracks(write(tmp_path / "tracks.csv", head + "\n".join(rows) + "\n"))
    assert report.layout == "spotify_tracks 2017-2019"
    assert report.malformed == 1 and report.kept == 2
    by_id = {r.id: r for r in frame.itertuples()}
    assert by_id[ID_A].artists == ("[ocean jams]",) and by_id[ID_A].year == 2017
    assert (by_id[ID_C].artists, by_id[ID_C].name) == (("None",), "NA")  # real names, not missing values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("['A', 'B']", ("A", "B")),
        ("[\"Guns N' Roses\", 'Slash']", ("Guns N' Roses", "Slash")),
        ("['It\\'s \"x\"']", ('It\'s "x"',)),
        ("A;B ; C", ("A", "B", "C")),
        ("Tyler, The Creator", ("Tyler, The Creator",)),
        ("[ocean jams]", ("[ocean jams]",)),
        ("[]", ()),
        ("  ", ()),
    ],
)
def test_parse_artists(text: str, expected: tuple[str, ...]) -> None:
    assert parse_artists(text) == expected


def test_rejects_and_counts_bad_rows(tmp_path: Path) -> None:
    head = "id,name,artists,popularity,valence,energy,danceability,acousticness,loudness,tempo\n"
    ok = "0.5,0.5,0.5,0.5,-5,120"
    rows = [
        f"{ID_A},Good,['X'],50,{ok}",
        f"not-an-id,Bad id,['X'],50,{ok}",
        f",No id,['X'],50,{ok}",
        f"{ID_B},Missing valence,['X'],50,,0.5,0.5,0.5,-5,120",
        f"{ID_C},,['X'],50,{ok}",
        f"{ID_D},No artists,[],50,{ok}",
        "5uLU6hMCjMI75M1A2tKUQC,Energy too high,['X'],50,0.5,1.5,0.5,0.5,-5,120",
        "6uLU6hMCjMI75M1A2tKUQC,Negative tempo,['X'],50,0.5,0.5,0.5,0.5,-5,-3",
        f"7uLU6hMCjMI75M1A2tKUQC,Popularity 140,['X'],140,{ok}",
        "8uLU6hMCjMI75M1A2tKUQC,Garbage number,['X'],50,abc,0.5,0.5,0.5,-5,120",
    ]
    frame, report = read_tracks(write(tmp_path / "t.csv", head + "\n".join(rows) + "\n"))
    assert (report.bad_id, report.missing, report.out_of_range) == (2, 4, 3)
    assert report.rejected == 9 and report.kept == 1 and list(frame["id"]) == [ID_A]
    assert "rejected 9 rows" in "\n".join(report.lines())


def test_drops_duplicates(tmp_path: Path) -> None:
    head = "id,name,artists,popularity,valence,energy,danceability,acousticness,loudness,tempo\n"
    ok = "0.5,0.5,0.5,0.5,-5,120"
    rows = [
        f"{ID_A},Song,\"['Band', 'Guest']\",40,{ok}",
        f"{ID_A},Song (copy of the same id),['Band'],90,{ok}",  # same id: the first row wins
        f"{ID_B},song ,\"['band', 'guest']\",70,{ok}",  # same name + artists: the more popular wins
        f"{ID_C},Song,['Band'],99,{ok}",  # other artists: a different track
    ]
    frame, report = read_tracks(write(tmp_path / "t.csv", head + "\n".join(rows) + "\n"))
    assert (report.duplicate_ids, report.duplicate_tracks, report.kept) == (1, 1, 2)
    assert sorted(frame["id"]) == sorted([ID_B, ID_C])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_synthetic_layouts_match_planted_defects(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "synthetic.csv"
    planted = write_synthetic_catalog(path, 1500, layout, seed=3)  # type: ignore[arg-type]
    _, report = read_tracks(path, chunk_rows=400)  # several chunks
    assert {k: report.as_dict()[k] for k in planted} == planted
    assert report.kept == 1500 - sum(planted.values())


def test_gzip_csv_reads_like_the_plain_one(tmp_path: Path) -> None:
    plain = kaggle_csv(tmp_path)
    packed = tmp_path / "tracks.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, _ = read_tracks(plain)
    b, _ = read_tracks(packed)
    assert a.drop(columns="artists").equals(b.drop(columns="artists"))
    assert list(a["artists"]) == list(b["artists"])


def test_wrong_files_get_clear_errors(tmp_path: Path) -> None:
    png = tmp_path / "photo.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100))
    with pytest.raises(CatalogError, match="not a CSV file"):
        read_tracks(png)
    with pytest.raises(CatalogError, match="empty"):
        read_tracks(write(tmp_path / "empty.csv", ""))
    zipped = tmp_path / "archive.zip"
    zipped.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(CatalogError, match="zip archive"):
        read_tracks(zipped)
    with pytest.raises(CatalogError, match="comma-separated"):
        read_tracks(write(tmp_path / "semi.csv", "id;name;artists\n1;2;3\n"))
    no_features = write(tmp_path / "songs.csv", "id,name,artists,popularity,energy\nx,y,z,1,0.5\n")
    with pytest.raises(CatalogError) as err:
        read_tracks(no_features)
    message = str(err.value)
    assert "missing column(s) valence, danceability, acousticness, loudness, tempo" in message
    assert "energy" not in message.split("missing column(s)")[1].split("(found")[0]
    assert "\n" not in message
    header_only = write(
        tmp_path / "header.csv",
        "id,name,artists,popularity,valence,energy,danceability,acousticness,loudness,tempo\n",
    )
    with pytest.raises(CatalogError, match="no valid tracks"):
        read_tracks(header_only)
    with pytest.raises(FileNotFoundError):
        load_catalog(tmp_path / "absent.csv")


def test_parquet_round_trip_keeps_tracks_clustering_and_report(tmp_path: Path) -> None:
    csv = tmp_path / "synthetic.csv"
    write_synthetic_catalog(csv, 600, "tracks-114k", seed=1)
    catalog = import_catalog(csv, seed=1)
    out = save_catalog(catalog, tmp_path / "out" / "catalog.parquet")
    again = read_catalog(out)
    assert len(again) == len(catalog) and again.source == "synthetic.csv"
    assert again.report == catalog.report
    assert again.model.k == catalog.model.k
    np.testing.assert_allclose(again.model.centroids, catalog.model.centroids)
    for emotion in ("happy", "sad"):
        assert again.recommend(emotion=emotion) == catalog.recommend(emotion=emotion)
    # A folder holding catalog.parquet is a catalog too.
    folder = tmp_path / "folder"
    folder.mkdir()
    save_catalog(catalog, folder)
    assert load_catalog(folder).recommend(mood="calm") == catalog.recommend(mood="calm")


def test_parquet_that_is_not_a_catalog(tmp_path: Path) -> None:
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), other)
    with pytest.raises(CatalogError, match="not a moodtunes catalog"):
        load_catalog(other)


def test_load_catalog_caches_the_import_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv = tmp_path / "tracks.csv"
    write_synthetic_catalog(csv, 500, seed=2)
    cache = tmp_path / "cache"
    first = load_catalog(csv, cache_dir=cache)
    [cached] = cache.glob("catalog-tracks-*.parquet")

    def no_import(*args: object, **kwargs: object) -> None:
        raise AssertionError("the CSV was imported again")

    monkeypatch.setattr(music_store, "import_catalog", no_import)
    second = load_catalog(csv, cache_dir=cache)
    assert second.recommend(emotion="happy", n=20) == first.recommend(emotion="happy", n=20)
    monkeypatch.undo()
    write_synthetic_catalog(csv, 500, seed=5)  # new content: a new import, a new cache entry
    third = load_catalog(csv, cache_dir=cache)
    assert len(list(cache.glob("catalog-tracks-*.parquet"))) == 2
    assert third.recommend(emotion="happy") != first.recommend(emotion="happy")
    assert cached.is_file()


def test_import_of_the_shared_catalog() -> None:
    path = data_path("spotify", "tracks.csv")
    frame, report = read_tracks(path)
    assert report.layout == "spotify_tracks 2017-2019"
    assert report.rows_read == 14_369 and report.rejected == 0 and report.duplicate_ids == 0
    assert report.duplicate_tracks == 9  # same title and artist under two ids, kept once (the more popular)
    assert report.kept == len(frame) == 14_360
    assert frame["id"].str.fullmatch(r"[0-9A-Za-z]{22}").all()
