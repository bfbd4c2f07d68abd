"""The emotion model: shipped weights, accuracy on FER2013 PublicTest, training, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.cli import main
from core.vision.emotion.classifier import DEFAULT_WEIGHTS, EmotionClassifier, card_path
from core.vision.emotion.labels import EMOTIONS
from core.vision.manifest import file_sha256, model_entry
from tests.conftest import data_path
from training.train_emotion import TrainConfig, evaluation_of, train


def test_shipped_weights_match_the_manifest_and_card() -> None:
    entry = model_entry("moodtunes-emotion-cnn")
    assert file_sha256(DEFAULT_WEIGHTS) == entry["files"]["models/emotion/emotion_cnn.pt"]
    card = json.loads(card_path(DEFAULT_WEIGHTS).read_text())
    assert card["classes"] == list(EMOTIONS) and card["sha256"] == file_sha256(DEFAULT_WEIGHTS)
    assert DEFAULT_WEIGHTS.stat().st_size < 6_000_000  # "a few MB at most"


def test_probabilities_are_batched_and_normalised() -> None:
    clf = EmotionClassifier()
    faces = np.random.default_rng(0).integers(0, 255, (5, 48, 48), dtype=np.uint8)
    probs = clf.probabilities(faces)
    assert probs.shape == (5, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(clf.probabilities(faces[2:3])[0], probs[2], atol=1e-5)
    assert clf.probabilities(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    with pytest.raises(ValueError):
        clf.probabilities(np.zeros((1, 32, 32), np.uint8))


@pytest.mark.slow
def test_accuracy_on_fer2013_public_test() -> None:
    result = evaluation_of(DEFAULT_WEIGHTS, data_path("fer2013", "val"))
    print("\n" + result.table())
    assert result.count == 3435
    assert result.accuracy >= 0.66  # mini-Xception's published figure
    assert result.happy_sad_rest_accuracy >= 0.75
    assert result.per_class_recall["happy"] >= 0.8


@pytest.fixture(scope="module")
def tiny_fer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-images-per-class copy of FER2013's layout, as links to the shared files."""
    source = data_path("fer2013")
    root = tmp_path_factory.mktemp("fer")
    for split, count in (("train", 20), ("val", 5)):
        for emotion in EMOTIONS:
            folder = root / split / emotion
            folder.mkdir(parents=True)
            for path in sorted((source / split / emotion).iterdir())[:count]:
                (folder / path.name).symlink_to(path)
    return root


def tiny_config(data: Path, out: Path, epochs: int, resume: bool = False) -> TrainConfig:
    return TrainConfig(
        data=data,
        out=out,
        epochs=epochs,
        batch_size=32,
        widths=(8, 16, 16, 32),
        warmup_epochs=1,
        resume=resume,
        device="cpu",
    )


@pytest.mark.slow
def test_training_is_deterministic_checkpointed_and_resumable(tiny_fer: Path, tmp_path: Path) -> None:
    quiet = lambda *_: None  # noqa: E731
    straight = train(tiny_config(tiny_fer, tmp_path / "a" / "m.pt", epochs=2), log=quiet)
    again = train(tiny_config(tiny_fer, tmp_path / "b" / "m.pt", epochs=2), log=quiet)
    first = torch.load(tmp_path / "a" / "m.pt", weights_only=True)
    second = torch.load(tmp_path / "b" / "m.pt", weights_only=True)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert straight["training"]["history"] == [
        {**h, "seconds": s["seconds"]}
        for h, s in zip(again["training"]["history"], straight["training"]["history"], strict=True)
    ]

    # One epoch, stop, resume to two: the same weights as two epochs in one go.
    train(tiny_config(tiny_fer, tmp_path / "c" / "m.pt", epochs=1), log=quiet)
    assert (tmp_path / "c" / "m.ckpt").is_file()
    resumed_log: list[str] = []
    train(tiny_config(tiny_fer, tmp_path / "c" / "m.pt", epochs=2, resume=True), log=resumed_log.append)
    assert any("resumed" in line for line in resumed_log)
    third = torch.load(tmp_path / "c" / "m.pt", weights_only=True)
    assert all(torch.equal(first[k], third[k]) for k in first)
    card = json.loads((tmp_path / "c" / "m.json").read_text())
    assert card["training"]["epochs"] == 2 and card["validation"]["count"] == 35
    assert (
        EmotionClassifier(tmp_path / "c" / "m.pt").predict(np.zeros((1, 48, 48), np.uint8))[0].label
        in EMOTIONS
    )


@pytest.mark.slow
def test_emotion_cli_json_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    happy = sorted(data_path("fer2013", "val", "happy").iterdir())[:3]
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    status = main(
        ["emotion", "--no-detect", "--json", *map(str, happy), str(bad), str(tmp_path / "missing.jpg")]
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1 and len(lines) == 5
    assert [set(line) for line in lines[:3]] == [{"file", "label", "scores"}] * 3
    assert sum(line["label"] == "happy" for line in lines[:3]) >= 2
    assert abs(sum(lines[0]["scores"].values()) - 1) < 1e-3
    assert lines[3]["code"] == "not_an_image" and lines[4]["code"] == "file_not_found"

    status = main(["emotion", "--json", str(data_path("photos", "multiface.jpg"))])
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 0 and len(record["faces"]) == 6
    assert {"box", "label", "scores"} == set(record["faces"][0])
