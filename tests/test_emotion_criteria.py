"""The bootstrap check of the holdout criterion (training/emotion_criteria.py), on synthetic networks."""

from __future__ import annotations

import numpy as np

from training.emotion_criteria import SEED, chosen, out_of_bag, summary
from training.emotion_ensemble import tta_options, verified


def synthetic(n: int = 600, networks: int = 4, seed: int = 1) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``networks`` independent noisy readers of ``n`` faces: softmax(2.4 * one-hot(label) + N(0, 1))."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    probs = {}
    for i in range(networks):
        z = np.eye(7)[labels] * 1.2 + rng.normal(0, 1.0, (n, 7))
        e = np.exp(z)
        probs[f"n{i}"] = e / e.sum(1, keepdims=True)
    return probs, labels


def test_out_of_bag_scores_each_choice_on_the_faces_its_resample_left_out() -> None:
    by_network, labels = synthetic()
    probs = {"none": by_network}
    costs = {name: {"none": 1.0} for name in by_network}
    results = out_of_bag(probs, costs, labels, resamples=20, budget=3.0)
    # The same resamples for both criteria, each scored on the faces it did not draw.
    rng = np.random.default_rng(SEED)
    for i in range(20):
        left = len(labels) - len(np.unique(rng.integers(0, len(labels), len(labels))))
        assert results["log_loss"][i].faces == results["accuracy"][i].faces == left
    # Each choice is the one choose makes on its resample; the first resample redone by hand:
    rng = np.random.default_rng(SEED)
    drawn = rng.integers(0, len(labels), len(labels))
    resample = {"none": {k: p[drawn] for k, p in by_network.items()}}
    for criterion in ("log_loss", "accuracy"):
        options = tta_options(
            resample["none"], {k: 1.0 for k in by_network}, labels[drawn], "none", 3.0, criterion
        )
        best = verified(options, None, 3.0, criterion)[0]
        assert chosen(resample, costs, labels[drawn], criterion, budget=3.0) == best
        assert results[criterion][0].members == best.members
    # Independent readers: every one more lowers log loss, so that criterion fills the budget.
    figures = summary(results)
    assert figures["by_criterion"]["log_loss"]["chosen"] == {"3 none": 20}
    assert sum(figures["log_loss_minus_accuracy"]["better_same_worse"]) == figures["resamples"] == 20
    assert out_of_bag(probs, costs, labels, resamples=20, budget=3.0) == results  # seeded
