"""The face-match threshold: chosen on one face set, reported on the other (models/face_calibration.json)."""

from __future__ import annotations

import json

import numpy as np

from core.vision.faces.facenet_weights import MODEL_IDS
from core.vision.manifest import match_threshold
from training.calibrate_faces import DEFAULT_OUT, THRESHOLDS, lowest_threshold


def test_threshold_is_chosen_on_one_set_and_reported_on_the_others() -> None:
    report = json.loads(DEFAULT_OUT.read_text())
    calibrated = report["calibrated_on"]
    assert match_threshold(MODEL_IDS["casia-webface"]) == report["threshold"]
    table = report["sets"][calibrated]["by_threshold"]
    rejected = np.array([table[f"{t:.2f}"]["strangers_rejected"] for t in THRESHOLDS])
    assert lowest_threshold(rejected, report["target_strangers_rejected"]) == report["threshold"]
    assert set(report["in_sample"]) == {calibrated}
    assert set(report["out_of_sample"]) == set(report["sets"]) - {calibrated} != set()
    for name, row in report["out_of_sample"].items():
        assert row == report["sets"][name]["by_threshold"][f"{report['threshold']:.2f}"]
        # Out of sample, strangers are still rejected as often as the target asks.
        assert row["strangers_rejected"] >= report["target_strangers_rejected"]


def test_lowest_threshold() -> None:
    rejected = np.linspace(0.5, 1.0, len(THRESHOLDS))
    assert lowest_threshold(rejected, 0.5) == THRESHOLDS[0]
    assert lowest_threshold(rejected, 2.0) == THRESHOLDS[-1]
