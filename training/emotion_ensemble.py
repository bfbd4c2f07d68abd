"""Choose the shipped emotion model on the holdout: ensemble members and test-time augmentation.

Candidates are networks trained on FER2013 train less the holdout (``training.train_emotion``, or the
GPU pool of ``training.emotion_pool``); one whose card has no holdout scores trained on it, and is
refused. Models are compared by a criterion on the holdout
(``--criterion``): log loss by default (the mean negative log probability the model gives the true
emotion, which moves with every face's confidence), or accuracy (which moves only when a face crosses
a decision: one face is 0.04 points of 2,489, so a greedy step on it stops at noise). For each TTA
mode, members are added greedily (the one that improves the criterion most, ties to the cheaper)
while the model stays within the CPU budget per face (``--budget-ms``, the slower of batch 1 and
batch 32, timed in turns with the other candidates; a network alone over it is not scored); the best
criterion of all modes wins, a tie going to the cheaper model, once it is timed with its members
running together (the greedy step sums their own timings; over the budget together, the next best
takes its place). With ``--precision int8`` each candidate is first quantized as
``training.emotion_quantize`` would (on a CPU with VNNI or AMX, where ``auto`` runs int8), so the
budget counts int8 costs, and the chosen model's int8 model is written beside it. PublicTest plays
no part: ``--score`` scores the chosen model on it afterwards, once, and writes the figures into the
model file and the members' cards.

``fallback`` chooses, the same way, the model for CPUs without native bfloat16 from the members of a
chosen model, each timed in float32 (about four times dearer) on such a CPU, and names it in that
model's file (``without_native_bfloat16``), where ``precision="auto"`` follows it. Run it after each
``choose`` (which removes the float32 model beside it: its members' files change), on a CPU
without AVX512-BF16 or AMX. Where no such CPU is at hand, ``--costs-from`` a float32 model chosen on
one before takes each network's cost from the networks of the same architecture timed there (a
network's cost per face depends on its architecture, not its weights); members are then costed as
the sum of their own timings, and the model file says so. ``fallback --precision int8`` chooses the
model for CPUs with AVX2 but neither VNNI nor native bfloat16 instead (``emotion_model_avx2.json``,
named under ``without_native_bfloat16_avx2``): the members quantized with 7-bit activations, timed in
int8 on such a CPU or here with the kernels capped (``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``).

``compose`` makes a model of members fixed beforehand (some of which may have trained on the holdout,
such as a network refit on all of train) and chooses only its TTA on the holdout; with ``--tta`` the
TTA is fixed too (the refit of a chosen model, ``training.emotion_pool refit-jobs``, keeps its TTA).

Usage::

    python -m training.emotion_ensemble choose --out models/emotion/emotion_model.json A.pt B.pt ...
    python -m training.emotion_ensemble choose --precision int8 --out models/emotion/emotion_model.json A.pt
    python -m training.emotion_ensemble fallback models/emotion/emotion_model.json
    python -m training.emotion_ensemble fallback --costs-from F32.json models/emotion/emotion_model.json
    python -m training.emotion_ensemble fallback --precision int8 models/emotion/emotion_model.json
    python -m training.emotion_ensemble compose --out models/emotion/emotion_model.json A.pt B.pt
    python -m training.emotion_ensemble compose --tta none --out models/emotion/emotion_model.json A.pt B.pt
    python -m training.emotion_ensemble score models/emotion/emotion_model.json
    python -m training.emotion_ensemble score --model-only models/emotion/emotion_model_float32.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from core.vision.emotion.classifier import (
    AVX2_MODEL,
    INT8_MODEL,
    PRECISIONS,
    TTA_MODES,
    WITHOUT_BFLOAT16,
    EmotionClassifier,
    card_path,
    native_bfloat16,
)
from core.vision.emotion.quantized import int8_native, isa_caps
from training.emotion_dataset import FaceSet, holdout_split, load_split, subset
from training.emotion_evaluation import evaluate, fit_of, predictions_of, public_test_scores, tta_scores
from training.emotion_quantize import int8_candidates, int8_model_path, quantize_model

BUDGET_MS = 15.0
"""CPU time per face allowed at inference, at batch 1 and at batch 32, with the TTA shipped."""

CRITERIA = ("log_loss", "accuracy")
"""What the holdout compares models by (the first is the default); see the module's docstring."""

FLOAT32_MODEL = "emotion_model_float32.json"
"""The file :func:`fallback` writes beside the model it serves (``choose`` removes it: stale)."""
AVX2_MODEL_FILE = "emotion_model_avx2.json"
"""The model ``fallback --precision int8`` writes (and its ``_int8`` beside it), for AVX2 without VNNI."""


K = TypeVar("K")

RESCORED = "by emotion_ensemble choose, on the holdout as drawn when the model was chosen"
"""Where a member's holdout figures come from (its training run scored the holdout of its day)."""


@dataclass(frozen=True)
class Costs:
    """CPU ms per face taken from elsewhere: architecture key -> TTA -> ms, and where they were timed."""

    table: dict[str, dict[str, float]]
    timed_in: str


def holdout_faces(data: Path, train: FaceSet | None = None) -> FaceSet:
    """The holdout part of ``data/train`` (where every choice is made); ``train``: that split already read."""
    train = load_split(data / "train") if train is None else train
    return subset(train, holdout_split(train).holdout)


class Runs(Protocol):
    """What :func:`ms_per_face` times: a loaded model, or :class:`Together`."""

    @property
    def precision(self) -> str: ...

    def probabilities(self, faces: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Together:
    """Loaded networks run one after another on the same faces, as a model of them runs them."""

    parts: tuple[EmotionClassifier, ...]

    @property
    def precision(self) -> str:
        return self.parts[0].precision

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """uint8 faces (N, 48, 48) -> (N, 7): the parts' probabilities averaged."""
        return np.mean([part.probabilities(faces) for part in self.parts], axis=0)


def ms_per_face(classifier: Runs, batch: int, repeats: int = 15) -> float:
    """Median CPU milliseconds per face at ``batch`` faces per call."""
    faces = np.random.default_rng(0).integers(0, 255, (batch, 48, 48), dtype=np.uint8)
    classifier.probabilities(faces)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        classifier.probabilities(faces)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times) / batch


def interleaved_ms(runs: Mapping[K, Runs], rounds: int = 3, repeats: int = 5) -> dict[K, float]:
    """CPU ms per face of each run, the slower of batch 1 and batch 32: the median of ``rounds``
    passes over all runs in turn, each timing ``repeats`` calls per batch size.

    A shared VM's speed drifts by up to 2x over minutes; passes in turn spread that drift over all
    runs alike, so it does not decide between them.
    """
    passes: dict[K, list[float]] = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            passes[key].append(max(ms_per_face(run, 1, repeats), ms_per_face(run, 32, repeats)))
    return {key: statistics.median(times) for key, times in passes.items()}


def timed_in(classifier: EmotionClassifier) -> str:
    """The number format and CPU the timings were taken on, for the model file."""
    cpu = "native bfloat16" if native_bfloat16(classifier.device) else "no native bfloat16"
    if classifier.precision == "int8":
        cpu = "int8 VNNI or AMX" if int8_native(classifier.device) else "no int8 VNNI or AMX"
        cpu += f" ({classifier.activation_bits}-bit activations)"
    caps = f", kernels capped by {isa_caps()}" if isa_caps() else ""
    return f"{classifier.precision} on a CPU with {cpu}{caps}, {torch.get_num_threads()} torch threads"


def architecture_key(weights: Path) -> str:
    """What a network's cost per face depends on, from its card: e.g. ``vgg 48-96-192-384 x2``."""
    arch = json.loads(card_path(weights).read_text())["architecture"]
    widths = "-".join(str(w) for w in arch["widths"])
    return f"{arch['type']} {widths} x{arch.get('convs_per_stage', 1)}"


def costs_by_architecture(model_path: Path) -> dict[str, dict[str, float]]:
    """Architecture key -> TTA -> ms per face, from a model file chosen before: its own
    ``ms_per_face_by_architecture``, or else its ``ms_per_face_measured`` (candidate stem -> TTA ->
    ms) read through the cards of those candidates beside it (the median where several share one)."""
    model = json.loads(model_path.read_text())
    if "ms_per_face_by_architecture" in model["selection"]:
        return {k: dict(v) for k, v in model["selection"]["ms_per_face_by_architecture"].items()}
    gathered: dict[str, dict[str, list[float]]] = {}
    for stem, by_tta in model["selection"]["ms_per_face_measured"].items():
        key = architecture_key(model_path.parent / f"{stem}.pt")
        for tta, ms in by_tta.items():
            gathered.setdefault(key, {}).setdefault(tta, []).append(float(ms))
    return {
        key: {tta: round(statistics.median(times), 2) for tta, times in by_tta.items()}
        for key, by_tta in gathered.items()
    }


@dataclass(frozen=True)
class Option:
    """One candidate model: members, TTA, holdout accuracy, estimated CPU ms per face, holdout log
    loss (nats per face)."""

    members: tuple[str, ...]
    tta: str
    accuracy: float
    ms: float
    together: bool = False
    """Whether ``ms`` was measured with all members running (else: the sum of their own timings)."""
    log_loss: float = math.nan

    def merit(self, criterion: str) -> float:
        """Higher is better: accuracy, or minus the log loss (both to 4 decimals)."""
        if criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; one of {CRITERIA}")
        value = self.accuracy if criterion == "accuracy" else -self.log_loss
        if math.isnan(value):
            raise ValueError(f"{'+'.join(self.members)} {self.tta} has no holdout {criterion}")
        return round(value, 4)

    def as_dict(self) -> dict[str, Any]:
        return {
            "members": list(self.members),
            "tta": self.tta,
            "holdout_accuracy": None if math.isnan(self.accuracy) else round(self.accuracy, 4),
            "holdout_log_loss": None if math.isnan(self.log_loss) else round(self.log_loss, 4),
            "ms_per_face": round(self.ms, 2),
            "ms_timed": "together" if self.together or len(self.members) == 1 else "sum of the members'",
        }


def greedy(
    probs: dict[str, np.ndarray],
    cost: dict[str, float],
    labels: np.ndarray,
    tta: str,
    budget: float,
    criterion: str = CRITERIA[0],
) -> list[Option]:
    """Options met along the greedy path of one TTA mode (each a member more than the last, the one
    that improves ``criterion`` most; the path ends where none improves it)."""
    chosen: list[str] = []
    total = np.zeros_like(next(iter(probs.values())))
    path: list[Option] = []
    best = -math.inf
    while True:
        scored = []
        for name in probs:
            if name in chosen or sum(cost[c] for c in chosen) + cost[name] > budget:
                continue
            accuracy, log_loss = fit_of((total + probs[name]) / (len(chosen) + 1), labels)
            ms = sum(cost[c] for c in chosen) + cost[name]
            option = Option((*chosen, name), tta, accuracy, ms, log_loss=log_loss)
            scored.append((option.merit(criterion), -cost[name], name, option))
        if not scored:
            return path
        merit, _, name, option = max(scored, key=lambda s: s[:3])
        if merit <= best:
            return path
        best = merit
        chosen.append(name)
        total = total + probs[name]
        path.append(option)


def tta_options(
    probs: dict[str, np.ndarray],
    cost: dict[str, float],
    labels: np.ndarray,
    tta: str,
    budget: float,
    criterion: str = CRITERIA[0],
) -> list[Option]:
    """The options of one TTA mode: each network alone, then the greedy path's ensembles.

    ``probs``: network -> holdout probabilities (N, 7) with that TTA; ``cost``: network -> ms per face
    (networks alone over the budget left out by the caller)."""
    options = []
    for name, p in probs.items():
        accuracy, log_loss = fit_of(p, labels)
        options.append(Option((name,), tta, accuracy, cost[name], log_loss=log_loss))
    for option in greedy(probs, cost, labels, tta, budget, criterion) if probs else []:
        if option.members not in [o.members for o in options]:
            options.append(option)
    return options


def verified(
    options: list[Option],
    measure: Callable[[Option], float] | None,
    budget: float,
    criterion: str = CRITERIA[0],
) -> tuple[Option, list[Option]]:
    """The best option by ``criterion`` (ties to the cheaper) whose members, timed together by ``measure``
    (ms per face), stay within ``budget``; and ``options`` with each option so timed updated. With no
    ``measure`` (no CPU of the costs at hand) an option keeps the sum of its members' costs.

    Options are estimated as the sum of their members' own timings; a model of several runs them
    one after another with some overhead besides, so the estimate is checked before it is chosen.
    An option over the budget when timed together gives way to the next best.
    """
    updated = list(options)
    ranked = sorted(
        (o for o in options if o.ms <= budget), key=lambda o: (o.merit(criterion), -o.ms), reverse=True
    )
    for option in ranked:
        if len(option.members) > 1 and measure is not None:
            timed = replace(option, ms=measure(option), together=True)
            updated[updated.index(option)] = timed
            print(f"{'+'.join(option.members)} {option.tta}: {timed.ms:.2f} ms/face together", flush=True)
            option = timed
        if option.ms <= budget:
            return option, updated
    raise ValueError(f"no candidate fits {budget} ms per face")


def choose(
    candidates: list[Path],
    data: Path,
    out: Path,
    budget: float = BUDGET_MS,
    precision: str = "auto",
    install: bool = True,
    name: str = "moodtunes-emotion",
    costs: Costs | None = None,
    criterion: str = CRITERIA[0],
    bits: int = 8,
) -> dict[str, Any]:
    """Pick members and TTA on the holdout by ``criterion``, timed in ``precision``; write ``out``.

    With ``install`` the chosen members are copied beside ``out`` as ``emotion_cnn.pt``, ``_2``, ...
    (:func:`install_members`); without it they must lie beside ``out`` already and are named as they
    are, their cards untouched. A ``precision`` other than ``auto`` is written into the model file;
    ``int8`` instead quantizes each candidate first (calibrated as :mod:`training.emotion_quantize`
    does, its activations to ``bits``), times and scores it in int8, and writes the chosen model's
    int8 model beside it.
    ``costs`` (from :func:`costs_by_architecture`) replaces timing on this CPU: each candidate costs
    what its architecture cost there, a model the sum of its members.
    """
    require_clean(candidates)
    # int8 calibrates on the fit part too: the split is read once for both
    train = load_split(data / "train") if precision == "int8" else None
    holdout = holdout_faces(data, train)
    options: list[Option] = []
    timing: dict[str, dict[str, float]] = {}
    every: dict[str, dict[str, np.ndarray]] = {}  # candidate -> TTA -> holdout probabilities
    with tempfile.TemporaryDirectory() as folder:
        sources = {path: path for path in candidates}
        if train is not None:  # int8: each candidate quantized as the chosen model will be
            sources = int8_candidates(candidates, train, Path(folder), bits)
        loaded = {
            (path.stem, tta): EmotionClassifier(sources[path], tta=tta, precision=precision)
            for tta in TTA_MODES
            for path in candidates
        }
    if costs is None:
        measured = interleaved_ms(loaded)
    else:
        arch = {path.stem: architecture_key(path) for path in candidates}
        measured = {(stem, tta): costs.table[arch[stem]][tta] for stem, tta in loaded}
    for tta in TTA_MODES:
        probs, cost = {}, {}
        for path in candidates:
            clf, ms = loaded[path.stem, tta], measured[path.stem, tta]
            timing.setdefault(path.stem, {})[tta] = round(ms, 2)
            if ms > budget:  # alone over the budget: no model holds it, so it is not scored
                print(f"{path.stem} {tta}: {ms:.2f} ms/face, over the budget", flush=True)
                continue
            probs[path.stem] = every.setdefault(path.stem, {})[tta] = predictions_of(clf, holdout)
            cost[path.stem] = ms
        found = tta_options(probs, cost, holdout.labels, tta, budget, criterion)
        for o in found[: len(probs)]:  # each network alone comes first
            print(
                f"{o.members[0]} {tta}: holdout {o.accuracy:.4f} ({o.log_loss:.4f} nats), {o.ms:.2f} ms",
                flush=True,
            )
        options += found

    def together(option: Option) -> float:
        return interleaved_ms({"model": Together(tuple(loaded[m, option.tta] for m in option.members))})[
            "model"
        ]

    best, options = verified(options, together if costs is None else None, budget, criterion)
    print(f"chosen: {best.as_dict()}", flush=True)

    if install:
        members = install_members(best.members, candidates, every, holdout.labels, out.parent)
        # A float32 or int8 model beside names members by file, and the files now hold other networks.
        (out.parent / FLOAT32_MODEL).unlink(missing_ok=True)
        (out.parent / AVX2_MODEL_FILE).unlink(missing_ok=True)
        int8_model_path(out.parent / AVX2_MODEL_FILE).unlink(missing_ok=True)
        int8_model_path(out).unlink(missing_ok=True)
    else:
        by_stem = {p.stem: p for p in candidates}
        if any(by_stem[s].parent.resolve() != out.parent.resolve() for s in best.members):
            raise ValueError(f"members must lie beside {out} when they are not installed")
        members = [by_stem[s].name for s in best.members]
    model: dict[str, Any] = {
        "name": name,
        "members": members,
        **({} if precision in ("auto", "int8") else {"precision": precision}),
        "tta": best.tta,
        "combine": "softmax averaged over the members and over the TTA views",
        "selection": {
            "protocol": __doc__.split("\n\n")[1].replace("\n", " "),
            "split": f"holdout of {data / 'train'} ({len(holdout)} faces)",
            "criterion": criterion,
            "budget_ms_per_face": budget,
            "timed_in": timed_in(clf) if costs is None else costs.timed_in,
            "ms_per_face_measured": timing,
            **({} if costs is None else {"ms_per_face_by_architecture": costs.table}),
            "options": [
                o.as_dict() for o in sorted(options, key=lambda o: (o.tta, len(o.members), o.members))
            ],
        },
        "holdout": None,
        "public_test": None,
    }
    out.write_text(json.dumps(model, indent=2) + "\n")
    if precision == "int8":  # the float model file, and its int8 model beside it (as timed and scored)
        quantize_model(out, data, bits=bits, train=train)
        model[INT8_MODEL] = int8_model_path(out).name
    model["holdout"] = evaluate(
        predictions_of(EmotionClassifier(out, precision=precision), holdout).argmax(1), holdout.labels
    ).as_dict()
    out.write_text(json.dumps(model, indent=2) + "\n")
    return model


def member_file(index: int) -> str:
    """The file name of the ``index``-th member (0-based) beside the model file."""
    return "emotion_cnn.pt" if index == 0 else f"emotion_cnn_{index + 1}.pt"


def install_members(
    chosen: tuple[str, ...],
    candidates: list[Path],
    probs: dict[str, dict[str, np.ndarray]],
    labels: np.ndarray,
    folder: Path,
) -> list[str]:
    """Copy the ``chosen`` candidates (by stem) into ``folder`` as ``emotion_cnn.pt``, ``_2``, ...
    with their cards, and return the file names. All are read before any is written, so candidates
    may be the members of the model before (in ``folder``). Each card keeps its ``pool_name`` (or
    gets the candidate's stem) and has its holdout scores redone from ``probs`` (stem -> TTA ->
    holdout probabilities (N, 7)) against ``labels``: the holdout as drawn now, a subset of the one a
    network scored when it trained should the split have lost faces since, so card and model agree.
    Members left from a bigger model before are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = {p.stem: p for p in candidates}
    staged = [(stem, sources[stem].read_bytes(), card_path(sources[stem]).read_text()) for stem in chosen]
    names = []
    for i, (stem, weights, card_text) in enumerate(staged):
        target, card = folder / member_file(i), json.loads(card_text)
        target.write_bytes(weights)
        card["weights_file"], card["pool_name"] = target.name, card.get("pool_name", stem)
        card["holdout"] = {**tta_scores(probs[stem], labels), "scored": RESCORED}
        card_path(target).write_text(json.dumps(card, indent=2) + "\n")
        names.append(target.name)
    index = len(chosen)
    while (folder / member_file(index)).is_file():
        stale = folder / member_file(index)
        stale.unlink()
        card_path(stale).unlink(missing_ok=True)
        index += 1
    return names


def holdout_clean(weights: Path) -> bool:
    """Whether a network trained without the holdout (its card then scores it there)."""
    return bool(json.loads(card_path(weights).read_text()).get("holdout"))


def require_clean(candidates: list[Path]) -> None:
    """Refuse candidates that trained on the holdout (a card without holdout scores: a network of
    all of train, such as a refit): their holdout figures would be in-sample and would win."""
    seen = [c.name for c in candidates if not holdout_clean(c)]
    if seen:
        raise ValueError(
            f"{', '.join(seen)} trained on the holdout (no holdout scores on the card): the holdout "
            "cannot choose among them; use compose for a model of fixed members"
        )


def compose(
    members: list[Path],
    data: Path,
    out: Path,
    budget: float = BUDGET_MS,
    tta: str | None = None,
    criterion: str = CRITERIA[0],
) -> dict[str, Any]:
    """A model of fixed ``members`` (beside ``out``); only the TTA is chosen, on the holdout.

    The TTA is scored on the holdout with the members that never trained on it (at least one is
    needed), and timed with all members; the best TTA by ``criterion`` within ``budget`` wins. A given
    ``tta`` is taken as chosen before (it is only timed, and no member need be clean).
    """
    clean = [m for m in members if holdout_clean(m)]
    if not clean and tta is None:
        raise ValueError("no member was trained without the holdout: the TTA cannot be chosen")
    holdout = holdout_faces(data) if clean else None
    names = [m.name for m in members]
    options = []
    for mode in TTA_MODES if tta is None else (tta,):
        out.write_text(json.dumps({"members": names, "tta": mode}))
        timed = EmotionClassifier(out)
        ms = max(ms_per_face(timed, 1), ms_per_face(timed, 32))
        accuracy = log_loss = float("nan")
        if holdout is not None:
            out.write_text(json.dumps({"members": [m.name for m in clean], "tta": mode}))
            accuracy, log_loss = fit_of(predictions_of(EmotionClassifier(out), holdout), holdout.labels)
        print(
            f"{mode}: holdout {accuracy:.4f} ({log_loss:.4f} nats, {len(clean)} clean), {ms:.2f} ms",
            flush=True,
        )
        options.append(Option(tuple(m.name for m in clean), mode, accuracy, ms, log_loss=log_loss))
    if tta is not None:
        best = options[0]
        if best.ms > budget:
            raise ValueError(f"TTA {tta} with these members takes {best.ms:.1f} ms per face, over {budget}")
    else:
        best = max((o for o in options if o.ms <= budget), key=lambda o: (o.merit(criterion), -o.ms))
    model: dict[str, Any] = {
        "name": "moodtunes-emotion",
        "members": names,
        "tta": best.tta,
        "combine": "softmax averaged over the members and over the TTA views",
        "selection": {
            "protocol": (
                "Members fixed beforehand; the TTA is chosen on the holdout (scored with the members "
                f"trained without it, timed with all members): the best {criterion} within the budget."
                if tta is None
                else "Members and TTA fixed beforehand (chosen on the holdout before the members were "
                "refit); the TTA is only timed here."
            ),
            "split": f"holdout of {data / 'train'} ({len(holdout)} faces)"
            if holdout is not None
            else "none used here",
            "budget_ms_per_face": budget,
            "timed_in": timed_in(timed),
            "options": [o.as_dict() for o in options],
        },
        "holdout": None,
        "public_test": None,
    }
    if holdout is not None and len(clean) == len(members):
        out.write_text(json.dumps(model, indent=2) + "\n")
        scored = evaluate(predictions_of(EmotionClassifier(out), holdout).argmax(1), holdout.labels)
        model["holdout"] = scored.as_dict()
    else:
        model["holdout_note"] = "members trained on the holdout: the model as a whole has no holdout figure"
    out.write_text(json.dumps(model, indent=2) + "\n")
    print(f"chosen TTA: {best.as_dict()}", flush=True)
    return model


def fallback(
    model_path: Path,
    data: Path,
    budget: float = BUDGET_MS,
    costs_from: Path | None = None,
    criterion: str = CRITERIA[0],
    precision: str = "float32",
) -> dict[str, Any]:
    """Choose the float32 model (for CPUs with neither VNNI, native bfloat16 nor AVX2) from
    ``model_path``'s members and name it there (``auto`` follows it); timed on this CPU, or costed by
    architecture from the float32 model file ``costs_from``. ``precision="int8"``: the model for CPUs
    with AVX2 but neither VNNI nor native bfloat16 instead (:data:`AVX2_MODEL_FILE`, named under
    ``without_native_bfloat16_avx2``): members quantized with 7-bit activations (exact with AVX2's
    16-bit sums), timed and scored so; run it on such a CPU, or here with the kernels capped
    (``core.vision.emotion.quantized.ISA_CAPS``)."""
    if precision not in ("float32", "int8") or (precision == "int8" and costs_from is not None):
        raise ValueError("fallback runs in float32 (optionally costed from a model), or in int8 timed here")
    main = json.loads(model_path.read_text())
    out = model_path.parent / (FLOAT32_MODEL if precision == "float32" else AVX2_MODEL_FILE)
    members = [model_path.parent / m for m in main["members"]]
    costs = None
    if costs_from is not None:
        earlier = json.loads(costs_from.read_text())["selection"]["timed_in"]
        costs = Costs(
            costs_by_architecture(costs_from), f"{earlier} (by architecture, from {costs_from.name})"
        )
    chosen = choose(
        members,
        data,
        out,
        budget,
        precision,
        install=False,
        name=f"{main['name']}-{'float32' if precision == 'float32' else 'avx2'}",
        costs=costs,
        criterion=criterion,
        bits=7,
    )
    where = (
        "has neither VNNI nor native bfloat16 and no AVX2 model serves it (no AVX2, e.g. ARM)"
        if precision == "float32"
        else "has AVX2 but neither VNNI nor native bfloat16"
    )
    timed = "float32" if precision == "float32" else "int8 with 7-bit activations (its int8 model)"
    chosen["serves"] = (
        f"{model_path.name} where the CPU {where} (precision auto); the same networks, "
        f"fewer of them, within {budget:g} ms per face timed in {timed}"
    )
    out.write_text(json.dumps(chosen, indent=2) + "\n")
    main[WITHOUT_BFLOAT16 if precision == "float32" else AVX2_MODEL] = out.name
    model_path.write_text(json.dumps(main, indent=2) + "\n")
    return chosen


def score(model_path: Path, data: Path, members: bool = True) -> dict[str, Any]:
    """Score the model (and, with ``members``, each member) on PublicTest (deduplicated and full);
    write it into the model file (and the members' cards)."""
    model = json.loads(model_path.read_text())
    scores = public_test_scores(EmotionClassifier(model_path), data)
    model["public_test"] = {"tta": model["tta"], **scores.as_dict()}
    model_path.write_text(json.dumps(model, indent=2) + "\n")
    print(
        f"{model_path.name}: {scores.deduplicated.accuracy:.4f} deduplicated, {scores.full.accuracy:.4f} full"
    )
    for name in model.get("members", []) if members else []:
        weights = model_path.parent / name
        card = json.loads(card_path(weights).read_text())
        member = public_test_scores(EmotionClassifier(weights), data)
        card["public_test"] = {"tta": card.get("tta", "flip"), **member.as_dict()}
        card_path(weights).write_text(json.dumps(card, indent=2) + "\n")
        print(f"  {name}: {member.deduplicated.accuracy:.4f} deduplicated, {member.full.accuracy:.4f} full")
    return model


def main(argv: list[str] | None = None) -> int:
    """``choose``, ``fallback`` or ``compose`` (on the holdout), or ``score`` (on PublicTest, afterwards)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("choose")
    p.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget-ms", type=float, default=BUDGET_MS)
    p.add_argument("--criterion", choices=CRITERIA, default=CRITERIA[0])
    p.add_argument(
        "--precision", choices=PRECISIONS, default="auto", help="int8: quantize, time and score in int8"
    )
    p.add_argument("candidates", type=Path, nargs="+")
    p = sub.add_parser("compose")
    p.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget-ms", type=float, default=BUDGET_MS)
    p.add_argument("--tta", choices=TTA_MODES, help="a TTA chosen before (then only timed)")
    p.add_argument("--criterion", choices=CRITERIA, default=CRITERIA[0])
    p.add_argument("members", type=Path, nargs="+", help="weights beside --out")
    p = sub.add_parser("fallback")
    p.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    p.add_argument("--budget-ms", type=float, default=BUDGET_MS)
    p.add_argument("model", type=Path, help="the chosen model (its members are the candidates)")
    p.add_argument("--costs-from", type=Path, help="a float32 model timed on a CPU without bf16 before")
    p.add_argument(
        "--precision",
        choices=("float32", "int8"),
        default="float32",
        help="int8: 7-bit activations, timed here",
    )
    p.add_argument("--criterion", choices=CRITERIA, default=CRITERIA[0])
    p = sub.add_parser("score")
    p.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    p.add_argument("--model-only", action="store_true", help="leave the members' cards as they are")
    p.add_argument("model", type=Path)
    args = parser.parse_args(argv)
    if args.command == "choose":
        choose(args.candidates, args.data, args.out, args.budget_ms, args.precision, criterion=args.criterion)
    elif args.command == "fallback":
        fallback(args.model, args.data, args.budget_ms, args.costs_from, args.criterion, args.precision)
    elif args.command == "compose":
        compose(args.members, args.data, args.out, args.budget_ms, args.tta, args.criterion)
    else:
        score(args.model, args.data, members=not args.model_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
