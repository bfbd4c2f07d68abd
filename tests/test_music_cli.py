"""``moodtunes catalog import`` and ``moodtunes recommend``, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.synthetic_catalog import write_synthetic_catalog

KEYS = ["id", "name", "artists", "popularity", "valence", "energy", "danceability", "url"]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: no .env, no configured catalog, a throw-away cache."""
    monkeypatch.chdir(tmp_path)
    for name in ("MOODTUNES_CATALOG", "MOODTUNES_TRACKS_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MOODTUNES_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture(scope="module")
def csv_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "spotify_tracks.csv"
    write_synthetic_catalog(path, 800, "tracks-114k", seed=4)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_recommend_json(env: Path, csv_catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["recommend", "--catalog", str(csv_catalog), "--emotion", "happy", "-n", "7", "--json"], capsys
    )
    assert code == 0, err
    tracks = json.loads(out)
    assert isinstance(tracks, list) and len(tracks) == 7
    for track in tracks:
        assert list(track) == KEYS
        assert track["url"] == f"https://open.spotify.com/track/{track['id']}"
    assert len({t["id"] for t in tracks}) == 7
    assert list((env / "cache").glob("catalog-spotify_tracks-*.parquet"))  # imported once, cached


def test_recommend_defaults_from_the_environment(
    env: Path, csv_catalog: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOODTUNES_CATALOG", str(csv_catalog))
    monkeypatch.setenv("MOODTUNES_TRACKS_DEFAULT", "4")
    code, out, _ = run(["recommend", "--mood", "calm", "--json"], capsys)
    assert code == 0 and len(json.loads(out)) == 4
    code, out, _ = run(["recommend", "--emotion", "sad", "--policy", "lift"], capsys)
    assert code == 0
    assert out.startswith("4 tracks for a sad face: slow and melancholic, lifting towards upbeat and happy")
    assert out.count("https://open.spotify.com/track/") == 4


def test_recommend_exclude(env: Path, csv_catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["recommend", "--catalog", str(csv_catalog), "--emotion", "fear", "-n", "3", "--json"]
    first = json.loads(run(base, capsys)[1])
    excluded = [arg for t in first for arg in ("--exclude", t["id"])]
    more = json.loads(run([*base, *excluded], capsys)[1])
    assert len(more) == 3 and not {t["id"] for t in first} & {t["id"] for t in more}


@pytest.mark.parametrize(
    ("argv", "status", "reason"),
    [
        (["recommend", "--emotion", "happy"], 2, "no track catalog"),
        (["recommend", "--catalog", "CSV", "--emotion", "happy", "-n", "0"], 2, "between 1 and 50"),
        (["recommend", "--catalog", "CSV", "--emotion", "happy", "-n", "51"], 2, "between 1 and 50"),
        (["recommend", "--catalog", "absent.csv", "--emotion", "happy"], 1, "no such catalog"),
        (["recommend", "--catalog", "BAD", "--mood", "sad"], 1, "missing column(s) valence"),
    ],
)
def test_recommend_errors(
    env: Path,
    csv_catalog: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    status: int,
    reason: str,
) -> None:
    bad = env / "notes.csv"
    bad.write_text("id,name,artists,popularity\nx,y,z,1\n")
    argv = [str(csv_catalog) if a == "CSV" else str(bad) if a == "BAD" else a for a in argv]
    code, out, err = run(argv, capsys)
    assert code == status and out == ""
    assert reason in err and err.count("\n") == 1 and err.startswith("moodtunes: ")
    code, out, err = run([*argv, "--json"], capsys)
    assert code == status and json.loads(out)["error"] in err


def test_recommend_refuses_unknown_choices(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--emotion", "bored"], ["--mood", "groovy"], ["--emotion", "sad", "--policy", "boost"]):
        with pytest.raises(SystemExit) as exc:
            main(["recommend", "--catalog", "x.csv", *argv])
        assert exc.value.code == 2
        assert "invalid choice" in capsys.readouterr().err


def test_catalog_import_then_recommend(
    env: Path, csv_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = env / "imported" / "catalog.parquet"
    code, out, err = run(["catalog", "import", str(csv_catalog), "--out", str(out_file), "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert (
        report["rows_read"] == 800
        and report["kept"] == 800 - report["rejected"] - report["duplicate_ids"] - report["duplicate_tracks"]
    )
    assert report["rejected"] > 0 and report["duplicate_ids"] > 0  # the planted defects are counted
    assert report["k"] == len(report["clusters"]) and "elbow" in report["criterion"]
    assert out_file.is_file() and report["out"] == str(out_file)
    code, out, _ = run(["recommend", "--catalog", str(out_file), "--emotion", "surprise", "--json"], capsys)
    assert code == 0 and len(json.loads(out)) == 10
    code, out, _ = run(["catalog", "import", str(csv_catalog)], capsys)  # text mode, default --out
    assert code == 0 and (env / "spotify_tracks.parquet").is_file()
    assert "kept" in out and "clusters" in out and "valence" in out


def test_catalog_import_errors(env: Path, csv_catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = env / "selfie.jpg"
    image.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64))
    code, _, err = run(["catalog", "import", str(image)], capsys)
    assert code == 1 and "not a CSV file" in err
    code, _, err = run(["catalog", "import", str(env / "absent.csv")], capsys)
    assert code == 1 and "no such catalog" in err
    imported = env / "c.parquet"
    assert run(["catalog", "import", str(csv_catalog), "--out", str(imported)], capsys)[0] == 0
    code, _, err = run(["catalog", "import", str(imported)], capsys)
    assert code == 1 and "already an imported catalog" in err
