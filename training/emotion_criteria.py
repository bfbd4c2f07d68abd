"""Which holdout criterion picks the better ensemble? A check by bootstrap on the holdout alone.

``choose`` (:mod:`training.emotion_ensemble`) compares models by holdout log loss or by accuracy. This
check runs the same choice (each TTA's single networks and greedy path, the best within the budget by
the criterion, members costed by the sum of their timings) on bootstrap resamples of the holdout, and
scores each chosen model on the resample's out-of-bag faces (about 37% of the holdout, faces the choice
never saw): the criterion whose choices read better out of bag is the one to trust. PublicTest plays
no part. Costs per network and TTA come from a model file that ``choose`` wrote for the same
candidates (``selection.ms_per_face_measured``, by file stem).

Usage::

    python -m training.emotion_criteria --costs models/emotion/emotion_model.json \\
        [--resamples 60] [--tta none flip] [--out benchmarks/results/emotion_criteria.json] A.pt B.pt ...
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.vision.emotion.classifier import EmotionClassifier
from training.emotion_ensemble import (
    BUDGET_MS,
    CRITERIA,
    Option,
    fit_of,
    holdout_faces,
    require_clean,
    tta_options,
    verified,
)
from training.emotion_evaluation import predictions_of

RESAMPLES, SEED = 60, 0
"""Bootstrap resamples of the holdout, and the seed that draws them."""


@dataclass(frozen=True)
class OutOfBag:
    """One criterion's choice on one resample: the model and how it reads on the out-of-bag faces."""

    members: tuple[str, ...]
    tta: str
    accuracy: float
    log_loss: float
    faces: int


def chosen(
    probs: dict[str, dict[str, np.ndarray]],
    costs: dict[str, dict[str, float]],
    labels: np.ndarray,
    criterion: str,
    budget: float = BUDGET_MS,
) -> Option:
    """The model ``choose`` would pick from holdout probabilities ``probs`` (TTA -> network -> (N, 7))
    and ``costs`` (network -> TTA -> ms per face), without timing members together."""
    options: list[Option] = []
    for tta, by_network in probs.items():
        within = {name: p for name, p in by_network.items() if costs[name][tta] <= budget}
        cost = {name: costs[name][tta] for name in within}
        options += tta_options(within, cost, labels, tta, budget, criterion)
    return verified(options, None, budget, criterion)[0]


def out_of_bag(
    probs: dict[str, dict[str, np.ndarray]],
    costs: dict[str, dict[str, float]],
    labels: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    budget: float = BUDGET_MS,
) -> dict[str, list[OutOfBag]]:
    """criterion -> one :class:`OutOfBag` per resample (the same resamples for every criterion)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    results: dict[str, list[OutOfBag]] = {c: [] for c in CRITERIA}
    for _ in range(resamples):
        drawn = rng.integers(0, n, n)
        left = np.setdiff1d(np.arange(n), drawn)
        resample = {tta: {k: p[drawn] for k, p in by.items()} for tta, by in probs.items()}
        for criterion in CRITERIA:
            model = chosen(resample, costs, labels[drawn], criterion, budget)
            mean = np.mean([probs[model.tta][m][left] for m in model.members], axis=0)
            accuracy, log_loss = fit_of(mean, labels[left])
            results[criterion].append(OutOfBag(model.members, model.tta, accuracy, log_loss, len(left)))
    return results


def summary(results: dict[str, list[OutOfBag]]) -> dict[str, Any]:
    """Mean out-of-bag figures per criterion, and log loss's choices against accuracy's, paired."""
    by = {
        c: {
            "out_of_bag_accuracy": round(float(np.mean([r.accuracy for r in rs])), 4),
            "out_of_bag_log_loss": round(float(np.mean([r.log_loss for r in rs])), 4),
            "chosen": dict(Counter(f"{len(r.members)} {r.tta}" for r in rs).most_common()),
        }
        for c, rs in results.items()
    }
    diff = np.array(
        [a.accuracy - b.accuracy for a, b in zip(results["log_loss"], results["accuracy"], strict=True)]
    )
    return {
        "resamples": len(diff),
        "by_criterion": by,
        "log_loss_minus_accuracy": {
            "mean": round(float(diff.mean()), 4),
            "standard_error": round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 4)
            if len(diff) > 1
            else None,
            "better_same_worse": [int((diff > 0).sum()), int((diff == 0).sum()), int((diff < 0).sum())],
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Compute the candidates' holdout probabilities, run the bootstrap, print and write the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    parser.add_argument(
        "--costs", type=Path, required=True, help="a model file choose wrote for these candidates"
    )
    parser.add_argument("--resamples", type=int, default=RESAMPLES)
    parser.add_argument("--tta", nargs="+", default=["none", "flip"], help="TTA modes to consider")
    parser.add_argument("--budget-ms", type=float, default=BUDGET_MS)
    parser.add_argument("--out", type=Path)
    parser.add_argument("candidates", type=Path, nargs="+")
    args = parser.parse_args(argv)
    costs = json.loads(args.costs.read_text())["selection"]["ms_per_face_measured"]
    missing = [c.stem for c in args.candidates if not set(args.tta) <= set(costs.get(c.stem, {}))]
    if missing:
        parser.error(
            f"{args.costs} has no timings for {missing} (with TTA {args.tta}): choose them there first"
        )
    require_clean(args.candidates)
    holdout = holdout_faces(args.data)
    probs = {
        tta: {c.stem: predictions_of(EmotionClassifier(c, tta=tta), holdout) for c in args.candidates}
        for tta in args.tta
    }
    figures = summary(out_of_bag(probs, costs, holdout.labels, args.resamples, SEED, args.budget_ms))
    figures = {"holdout_faces": len(holdout), "candidates": [c.stem for c in args.candidates], **figures}
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
