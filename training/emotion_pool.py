"""Train a pool of emotion networks in parallel on one GPU, for the ensemble to be chosen from.

The pool is what ``models/emotion`` was chosen from (see :mod:`training.emotion_ensemble`). Each
network trains on FER2013 train less the holdout (:func:`training.emotion_dataset.holdout_split`);
each card carries the network's holdout accuracy per TTA mode, and the choice of members, epochs and
TTA is made on the holdout alone (:mod:`training.emotion_ensemble`). FER2013 PublicTest does not travel.

Steps:

1. ``python -m training.emotion_pool pack --data ../shared/data/fer2013 --out .gpu/fer_train``:
   FER2013 train as raw pixels (xz, 46 MB) and labels, in :func:`load_split` order.
2. On the GPU machine: ``python -m training.emotion_pool run --pack fer_train --out $OUT``: every
   job of :data:`POOL` runs as its own process, the processes time-slicing the GPU. After two epochs
   (the warm-up, whose learning rates do not depend on the run's length) the driver measures the
   speed of each job and gives each "long" job the largest epoch count of :data:`LONG_EPOCHS` that
   ends inside ``--budget`` seconds (:func:`decide`); the other jobs keep theirs. A job with
   ``swa_epochs`` (every job of :data:`POOL`: :data:`SWA_EPOCHS`) then averages its network
   (:mod:`training.emotion_swa`, ``<name>-swa.pt``), which the budget counts. Weights, cards and the
   log come back in at most 8 files, the averages first; what does not fit is named in ``pool.json``.
   ``--jobs`` (a JSON list) replaces :data:`POOL`: a job names its architecture, seed and epochs and
   may set any field of :data:`RECIPE_KEYS` (learning rate, weight decay, label smoothing, widths,
   ...) and ``swa_epochs`` / ``swa_lr``; the list is checked before anything starts.
   The pack travels with the working tree, whose limit (64 MiB) it and the shipped weights (31 MB)
   exceed together: the jobs do not read ``models/emotion/*.pt``, so move them into ``.gpu/`` for the
   call and back after it (the tests check their sha256).
3. Refit: once :mod:`training.emotion_ensemble` has chosen members on the holdout,
   ``python -m training.emotion_pool refit-jobs models/emotion/emotion_model.json`` prints the jobs that
   train each member's recipe again (same architecture, seed and epoch count, and its weight
   averaging) on all of train, to be run as in step 2 with ``--jobs`` and composed with
   ``emotion_ensemble compose --tta`` (the chosen TTA).

Lessons of the H200 runs: each job is bound by its own CPU process (2.1-2.5 s per epoch of the
48-384 VGG at batch 128 with 4 jobs time-sliced, 2.5-3.1 s with 8 under MPS), so jobs do not speed
up when others end. Under CUDA MPS (``--mps``) all 8 jobs of a run stalled when the first to finish
ran its extra CUDA pass after training (a holdout-probability pass, since removed), and the deadline
killed them all; without MPS, 4 jobs ran to the end. MPS is therefore off unless asked for.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.vision.emotion.classifier import card_path
from training.emotion_dataset import HOLDOUT_FRACTION, FaceSet, load_split

if TYPE_CHECKING:
    from training.train_emotion import TrainConfig

SWA_EPOCHS = 8
"""Epochs of stochastic weight averaging a pool job runs after its schedule (``swa_epochs``; 0: none),
at ``swa_lr`` (default :data:`training.emotion_swa.LR`): the shipped members' recipe."""

POOL: list[dict[str, Any]] = [
    {**spec, "swa_epochs": SWA_EPOCHS}
    for spec in (
        {"name": "vgg48-s1-long", "architecture": "vgg", "seed": 1, "epochs": "long"},
        {"name": "vgg48-s2-long", "architecture": "vgg", "seed": 2, "epochs": "long"},
        {"name": "vgg48-s3-long", "architecture": "vgg", "seed": 3, "epochs": "long"},
        {"name": "vgg48-s1-e80", "architecture": "vgg", "seed": 1, "epochs": 80},
        {"name": "resnet-s1-long", "architecture": "resnet", "seed": 1, "epochs": "long"},
        {
            "name": "vgg64-s1-long",
            "architecture": "vgg",
            "widths": [64, 128, 256, 512],
            "seed": 1,
            "epochs": "long",
        },
        {"name": "resnet-s2-long", "architecture": "resnet", "seed": 2, "epochs": "long"},
        {"name": "resnet-s3-long", "architecture": "resnet", "seed": 3, "epochs": "long"},
    )
]
"""The jobs, most wanted first (the last are dropped when even the shortest long run does not fit)."""
LONG_EPOCHS = (300, 250, 200, 160, 120, 100, 80)
"""Epoch counts a long job may get, longest first."""
WARMUP_EPOCHS = 2
RECIPE_KEYS = (
    "widths",
    "convs_per_stage",
    "blocks_per_stage",
    "dropout",
    "lr",
    "weight_decay",
    "batch_size",
    "label_smoothing",
    "class_weight_power",
)
"""Fields of :class:`training.train_emotion.TrainConfig` a job may set (the recipe; the rest are the
defaults). ``warmup_epochs`` is not among them: :func:`decide` times every job's first
:data:`WARMUP_EPOCHS` epochs, which must be the warm-up for the timing to hold."""
JOB_KEYS = frozenset(
    {"name", "architecture", "seed", "epochs", "holdout", "swa_epochs", "swa_lr", *RECIPE_KEYS}
)
BUNDLE_BYTES = 16_000_000
"""Largest file to send back (the device returns files of up to 16 MiB, at most 8)."""
BUNDLES = 5
"""Tars of weights sent back (with ``pool.json`` and ``log.txt``: 7 files of the 8 allowed)."""


def pack(data: Path, out: Path) -> None:
    """Write ``<out>.xz`` (train pixels, vertical-delta + LZMA2) and ``<out>_labels.npy``."""
    faces = load_split(data / "train")
    out.parent.mkdir(parents=True, exist_ok=True)
    filters = [{"id": lzma.FILTER_DELTA, "dist": 48}, {"id": lzma.FILTER_LZMA2, "preset": 6}]
    Path(f"{out}.xz").write_bytes(lzma.compress(faces.images.tobytes(), lzma.FORMAT_XZ, filters=filters))
    np.save(f"{out}_labels.npy", faces.labels.astype(np.int8))


def unpack(prefix: Path) -> FaceSet:
    """The :class:`FaceSet` that :func:`pack` wrote."""
    labels = np.load(f"{prefix}_labels.npy").astype(np.int64)
    pixels = np.frombuffer(lzma.decompress(Path(f"{prefix}.xz").read_bytes()), dtype=np.uint8)
    return FaceSet(pixels.reshape(len(labels), 48, 48).copy(), labels)


def decide(
    jobs: list[dict[str, Any]],
    epoch_seconds: dict[str, float],
    seconds_left: float,
    menu: tuple[int, ...] = LONG_EPOCHS,
) -> dict[str, int]:
    """Epochs per job (0 = stop it): a long job gets the longest run of ``menu`` that ends in time.

    Jobs are taken as independent: each is bound by its own CPU process, so none speeds up when
    others end. A job with a fixed count keeps it if it ends in time. A job's weight averaging
    (``swa_epochs``) counts as that many epochs more, and one for its batch-norm pass.
    """
    epochs = {}
    for j in jobs:
        wanted = menu if j["epochs"] == "long" else (int(j["epochs"]),)
        swa = int(j.get("swa_epochs", 0))
        after = swa + 1 if swa else 0
        fits = [e for e in wanted if (e - WARMUP_EPOCHS + after) * epoch_seconds[j["name"]] <= seconds_left]
        epochs[j["name"]] = max(fits, default=0)
    return epochs


def check_jobs(jobs: list[dict[str, Any]]) -> None:
    """Refuse a job list with a missing or unknown key or a repeated name, before any GPU time is spent."""
    names = [j.get("name") for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique: {names}")
    for j in jobs:
        missing = {"name", "architecture", "seed", "epochs"} - set(j)
        unknown = set(j) - JOB_KEYS
        if missing or unknown:
            raise ValueError(
                f"job {j.get('name')!r}: missing {sorted(missing)}, unknown {sorted(unknown)} "
                f"(a job may set {sorted(JOB_KEYS)})"
            )
        if j["epochs"] != "long" and int(j["epochs"]) <= WARMUP_EPOCHS:
            raise ValueError(f"job {j['name']!r}: epochs must be 'long' or more than {WARMUP_EPOCHS}")
        if int(j.get("swa_epochs", 0)) < 0 or float(j.get("swa_lr", 0.0)) < 0:
            raise ValueError(f"job {j['name']!r}: swa_epochs and swa_lr must not be negative")


def job_config(spec: dict[str, Any], work: Path, device: str = "cuda", limit: int = 0) -> TrainConfig:
    """The training run of one job: its recipe keys (:data:`RECIPE_KEYS`) over the defaults, weights
    to ``work/<name>.pt``, no checkpoints, cuDNN free to pick its kernels."""
    from training.train_emotion import TrainConfig

    check_jobs([spec])
    return TrainConfig(
        data=Path("fer2013"),
        out=work / f"{spec['name']}.pt",
        epochs=max(LONG_EPOCHS) if spec["epochs"] == "long" else int(spec["epochs"]),
        architecture=spec["architecture"],
        seed=int(spec["seed"]),
        holdout=float(spec.get("holdout", HOLDOUT_FRACTION)),  # 0: all of train (a refit)
        device=device,
        deterministic=False,
        checkpoint_every=0,
        limit=limit,
        **{k: spec[k] for k in RECIPE_KEYS if k in spec},
    )


def swa_weights(spec: dict[str, Any], work: Path) -> Path:
    """Where a job's weight average goes: ``work/<name>-swa.pt`` (its card beside it)."""
    return work / f"{spec['name']}-swa.pt"


def job(spec: dict[str, Any], train_npz: Path, work: Path, decision: Path) -> None:
    """Train one pool network on the GPU; write its weights and card (with its holdout scores), then,
    with ``swa_epochs``, its weight average beside it (:func:`swa_weights`)."""
    from training.emotion_swa import LR, config_of, swa
    from training.train_emotion import load_training_data, train

    with np.load(train_npz) as saved:
        faces = FaceSet(saved["images"], saved["labels"])
    device = os.environ.get("POOL_DEVICE", "cuda")
    limit = int(os.environ.get("POOL_LIMIT", "0"))  # smoke runs on a CPU
    config = job_config(spec, work, device, limit)
    data = load_training_data(config, faces)
    progress = work / "progress.jsonl"

    def log(line: str) -> None:
        with progress.open("a") as fh:
            fh.write(json.dumps({"time": time.time(), "line": line}) + "\n")

    def decide_epochs() -> int:
        log("waiting for the epoch count")
        while True:
            if decision.is_file():
                epochs = int(json.loads(decision.read_text())[spec["name"]])
                if epochs <= 0:
                    log("stopped by the driver")
                    raise SystemExit(0)
                return epochs
            time.sleep(0.2)

    train(config, log=log, data=data, decide_epochs=decide_epochs)
    if int(spec.get("swa_epochs", 0)) > 0:
        averaged = config_of(config.out, config.data, swa_weights(spec, work), device)
        swa(config.out, averaged, int(spec["swa_epochs"]), float(spec.get("swa_lr", LR)), log=log, data=data)
    log("done")


def refit_jobs(model_path: Path) -> list[dict[str, Any]]:
    """Pool jobs that train each member of a chosen model again on all of train, recipe for recipe.

    A member averaged by :mod:`training.emotion_swa` (its card's ``training.swa``) is refit as the
    network it was averaged from (the card's epochs less the SWA epochs), and the job averages it
    again with that card's SWA epochs and lr (``<name>-swa.pt``, the one to compose).
    """
    model = json.loads(model_path.read_text())
    jobs = []
    for member in model["members"]:
        card = json.loads(card_path(model_path.parent / member).read_text())
        architecture, training = card["architecture"], card["training"]
        swa_epochs = int((training.get("swa") or {}).get("epochs", 0))
        spec: dict[str, Any] = {
            "name": f"{Path(member).stem}-all",
            "architecture": architecture["type"],
            "seed": int(training["seed"]),
            "epochs": int(training["epochs"]) - swa_epochs,
            "holdout": 0.0,
        }
        if swa_epochs:
            spec |= {"swa_epochs": swa_epochs, "swa_lr": float(training["swa"]["lr"])}
        # The recipe as the card records it (cards before 2026-12-01 lack class_weight_power: the default).
        recorded = {**architecture, **training}
        spec.update({k: recorded[k] for k in RECIPE_KEYS if k in recorded})
        jobs.append(spec)
    return jobs


def _start_mps() -> dict[str, str]:
    """Start the CUDA MPS daemon and check that a client runs; the environment for clients, or {}."""
    if shutil.which("nvidia-cuda-mps-control") is None:
        print("MPS: no nvidia-cuda-mps-control; jobs time-slice the GPU", flush=True)
        return {}
    env = {"CUDA_MPS_PIPE_DIRECTORY": "/tmp/mps-pipe", "CUDA_MPS_LOG_DIRECTORY": "/tmp/mps-log"}
    for folder in env.values():
        Path(folder).mkdir(exist_ok=True)
    full = {**os.environ, **env}
    try:
        subprocess.run(["nvidia-cuda-mps-control", "-d"], env=full, check=True, timeout=20)
        check = "import torch; x = torch.ones(1024, device='cuda'); print(float(x.sum()))"
        out = subprocess.run(
            [sys.executable, "-c", check], env=full, capture_output=True, text=True, timeout=45
        )
        if out.returncode == 0 and out.stdout.strip() == "1024.0":
            print("MPS: running", flush=True)
            return env
        print(f"MPS: client failed ({out.stderr.strip()[-300:]}); stopping it", flush=True)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"MPS: {exc}; stopping it", flush=True)
    subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, env=full, timeout=20, check=False)
    return {}


def run(
    pack_prefix: Path,
    out: Path,
    budget: float,
    jobs: list[dict[str, Any]],
    work: Path,
    menu: tuple[int, ...] = LONG_EPOCHS,
    mps: bool = False,
) -> None:
    """Drive the pool within ``budget`` seconds from now and gather its files into ``out``."""
    start = time.time()
    if work.exists():  # a warm machine keeps the last run's files, its epoch decision too
        shutil.rmtree(work)
    work.mkdir(parents=True)
    faces = unpack(pack_prefix)
    train_npz = work / "train.npz"
    np.savez(train_npz, images=faces.images, labels=faces.labels)
    print(f"unpacked {len(faces)} faces in {time.time() - start:.1f} s", flush=True)
    env = {**os.environ, **(_start_mps() if mps else {}), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    decision = work / "epochs.json"
    procs = {}
    for spec in jobs:
        folder = work / spec["name"]
        folder.mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "training.emotion_pool", "job", "--spec", json.dumps(spec)]
        cmd += ["--train", str(train_npz), "--work", str(folder), "--decision", str(decision)]
        procs[spec["name"]] = subprocess.Popen(
            cmd, env=env, stdout=(folder / "stdout.txt").open("w"), stderr=subprocess.STDOUT
        )
    report: dict[str, Any] = {"budget_seconds": budget, "jobs": jobs}

    def epochs_done(name: str) -> list[float]:
        path = work / name / "progress.jsonl"
        if not path.is_file():
            return []
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return [e["time"] for e in lines if e["line"].startswith("epoch=")]

    decided, shown = False, start
    while any(p.poll() is None for p in procs.values()):
        time.sleep(1.0)
        if time.time() - shown >= 30:  # progress in the output, should the command be cut short
            shown = time.time()
            counts = {s["name"]: len(epochs_done(s["name"])) for s in jobs}
            print(f"{shown - start:.0f} s: epochs done {counts}", flush=True)
        if time.time() - start > budget:
            for name, proc in procs.items():
                if proc.poll() is None:
                    print(f"{name}: past the budget, killed", flush=True)
                    proc.kill()
            break
        if decided:
            continue
        done = {s["name"]: epochs_done(s["name"]) for s in jobs}
        alive = [s for s in jobs if procs[s["name"]].poll() is None or len(done[s["name"]]) >= WARMUP_EPOCHS]
        if alive and all(len(done[s["name"]]) >= WARMUP_EPOCHS for s in alive):
            seconds = {s["name"]: done[s["name"]][1] - done[s["name"]][0] for s in alive}
            left = 0.92 * (budget - (time.time() - start) - 25)  # 25 s: the last holdout pass, the packing
            epochs = decide(alive, seconds, left, menu)
            epochs.update({s["name"]: 0 for s in jobs if s not in alive})
            decision.write_text(json.dumps(epochs))
            report["epoch_seconds_during_warmup"] = seconds
            report["epochs"] = epochs
            report["predicted_seconds"] = round(
                max((epochs[n] - WARMUP_EPOCHS) * seconds[n] for n in seconds), 1
            )
            print(f"epoch seconds {seconds}; epochs {epochs}; {left:.0f} s left", flush=True)
            decided = True
    report["wall_seconds"] = round(time.time() - start, 1)
    gather(jobs, work, out, report)


def gather(jobs: list[dict[str, Any]], work: Path, out: Path, report: dict[str, Any]) -> None:
    """Bundle weights and cards into at most :data:`BUNDLES` tars of at most :data:`BUNDLE_BYTES`:
    every job's weight average first (the better network), then the networks averaged from, while
    they fit; the report names what came back (``returned``) and what did not fit (``left_out``)."""
    out.mkdir(parents=True, exist_ok=True)
    logs = []
    for spec in jobs:
        folder = work / spec["name"]
        logs.append(f"== {spec['name']}\n" + (folder / "stdout.txt").read_text(errors="replace")[-3000:])
        progress = folder / "progress.jsonl"
        if progress.is_file():
            logs.append("\n".join(json.loads(x)["line"] for x in progress.read_text().splitlines()))
    finished = [
        weights
        for weights in [swa_weights(s, work / s["name"]) for s in jobs]
        + [work / s["name"] / f"{s['name']}.pt" for s in jobs]
        if weights.is_file() and card_path(weights).is_file()
    ]
    bundles: list[list[Path]] = []
    sizes: list[int] = []
    returned, left_out = [], []
    for weights in finished:
        files = [weights, card_path(weights)]
        size = sum(f.stat().st_size for f in files) + 10_000
        fits = [i for i, used in enumerate(sizes) if used + size <= BUNDLE_BYTES]
        if fits:
            bundles[fits[0]] += files
            sizes[fits[0]] += size
        elif len(bundles) < BUNDLES and size <= BUNDLE_BYTES:
            bundles.append(files)
            sizes.append(size)
        else:
            left_out.append(weights.stem)
            continue
        returned.append(weights.stem)
    for i, files in enumerate(bundles):
        with tarfile.open(out / f"models_{i + 1}.tar", "w") as tar:
            for f in files:
                tar.add(f, arcname=f.name)
    report["returned"] = returned
    report["left_out"] = left_out
    (out / "pool.json").write_text(json.dumps(report, indent=1))
    (out / "log.txt").write_text("\n".join(logs))
    print(json.dumps({k: report[k] for k in report if k != "jobs"}), flush=True)


def main(argv: list[str] | None = None) -> int:
    """``pack``, ``run`` (the driver), ``refit-jobs`` or ``job`` (one network, started by ``run``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", type=Path, default=Path("../shared/data/fer2013"))
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("run")
    p.add_argument("--pack", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget", type=float, default=480.0, help="seconds for everything")
    p.add_argument("--jobs", default="", help="JSON list of jobs (default: POOL)")
    p.add_argument("--work", type=Path, default=Path("/tmp/emotion-pool"))
    p.add_argument("--long-epochs", default=",".join(map(str, LONG_EPOCHS)), help="menu, longest first")
    p.add_argument("--mps", action="store_true", help="run the jobs under CUDA MPS (see the lessons above)")
    p = sub.add_parser("refit-jobs")
    p.add_argument("model", type=Path, help="a model file whose members were chosen on the holdout")
    p = sub.add_parser("job")
    p.add_argument("--spec", required=True)
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--decision", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "pack":
        pack(args.data, args.out)
    elif args.command == "run":
        jobs = json.loads(args.jobs) if args.jobs else POOL
        check_jobs(jobs)
        menu = tuple(int(e) for e in args.long_epochs.split(","))
        run(args.pack, args.out, args.budget, jobs, args.work, menu, args.mps)
    elif args.command == "refit-jobs":
        print(json.dumps(refit_jobs(args.model)))
    else:
        job(json.loads(args.spec), args.train, args.work, args.decision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
