"""Packaging: the lock gives everything pyproject.toml asks for, and the built wheel works on its own.

The wheel test installs the wheel (not editable) into a bare ``--target`` folder without its
dependencies, which come from the interpreter running the tests (torch and friends are not installed
twice). It runs ``moodtunes`` from that folder in a directory outside the repository, with every
checkout taken off ``sys.path`` (this one, and any an editable install put there), so a file the
wheel lacks fails here instead of being found in the repository.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import data_path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# Runs the installed console script (``<site>/bin/moodtunes``) with checkouts off sys.path; exits 3
# when a module was imported from the repository all the same. ``probe`` prints where things live.
LAUNCHER = r"""
import json, os, runpy, sys

site, repo, *args = sys.argv[1:]


def is_checkout(entry):
    path = os.path.realpath(entry or os.getcwd())
    return path != site and any(os.path.isfile(os.path.join(path, p, "__init__.py")) for p in ("core", "bot"))


sys.path[:] = [p for p in sys.path if not is_checkout(p)]


def from_repo():
    # Modules whose file is in the checkout, but not in a venv inside it (make install's .venv).
    venv = os.path.realpath(sys.prefix) + os.sep
    files = ((n, getattr(m, "__file__", None)) for n, m in list(sys.modules.items()))
    files = ((n, os.path.realpath(f)) for n, f in files if f)
    return sorted(n for n, f in files if f.startswith(repo + os.sep) and not f.startswith(venv))


if args == ["probe"]:
    import bot, core, models, training
    from core.storage.migrations import discover, migrations_dir

    print(json.dumps({
        "packages": {m.__name__: m.__file__ for m in (bot, core, models, training)},
        "migrations": {d: str(migrations_dir(d)) for d in ("sqlite", "postgresql")},
        "n_migrations": {d: len(discover(migrations_dir(d))) for d in ("sqlite", "postgresql")},
        "from_repo": from_repo(),
    }))
    sys.exit(0)

sys.argv = ["moodtunes", *args]
try:
    runpy.run_path(os.path.join(site, "bin", "moodtunes"), run_name="__main__")
finally:
    leaked = from_repo()
    if leaked:
        print("imported from the repository:", leaked, flush=True)
        sys.exit(3)
"""


def locked() -> dict[str, tuple[str, int]]:
    """``{name: (version, number of hashes)}`` for each requirement in requirements.lock."""
    pins: dict[str, tuple[str, int]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8")):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", block)
        if match:
            pins[canonicalize_name(match[1])] = (match[2], block.count("--hash=sha256:"))
    return pins


def declared() -> list[Requirement]:
    """Runtime, dev and build requirements from pyproject.toml, plus what their extras bring in."""
    reqs = [
        Requirement(r)
        for r in PYPROJECT["project"]["dependencies"]
        + PYPROJECT["project"]["optional-dependencies"]["dev"]
        + PYPROJECT["build-system"]["requires"]
    ]
    for req in list(reqs):
        for extra in req.extras:
            try:
                extra_reqs = importlib.metadata.requires(req.name) or []
            except importlib.metadata.PackageNotFoundError:
                continue
            for line in extra_reqs:
                sub = Requirement(line)
                if sub.marker is not None and sub.marker.evaluate({"extra": extra}):
                    sub.marker = None
                    reqs.append(sub)
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def test_lock_pins_every_declared_requirement_with_hashes() -> None:
    pins = locked()
    assert len(pins) > 50, "requirements.lock looks empty"
    unhashed = sorted(name for name, (_, hashes) in pins.items() if hashes == 0)
    assert not unhashed, f"pins without a sha256: {unhashed}"
    problems = []
    for req in declared():
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} is not in requirements.lock")
        elif not req.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{req} but requirements.lock has {pins[name][0]}")
    assert not problems, "; ".join(problems) + ": run `make lock` and commit it with pyproject.toml"


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_built_wheel_prepares_models_and_runs_the_demo(tmp_path: Path, cache_dir: Path) -> None:
    dist, site, outside = tmp_path / "dist", tmp_path / "site", tmp_path / "elsewhere"
    outside.mkdir()
    # The locked build backend when it is installed (make install); else pip fetches one to build with.
    no_isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    built = run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *no_isolation, "-w", str(dist), str(ROOT)],
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("moodtunes-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    sql = ROOT / "core" / "storage" / "sql"
    migrations = [p.relative_to(ROOT).as_posix() for p in sql.rglob("*.sql")]
    assert len(migrations) >= 2
    for path in [
        "bot/cli/__init__.py",
        "core/storage/migrations.py",
        "models/manifest.json",
        "models/emotion/emotion_cnn.pt",
        "models/emotion/emotion_cnn.json",
        "training/__init__.py",
        "core/music/mood_model.json",
        *migrations,
    ]:
        assert path in names, f"{path} is not in {wheel.name}"
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]

    installed = run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOODTUNES_", "PYTHON"))}
    env |= {
        "PYTHONPATH": str(site),
        "MOODTUNES_CACHE_DIR": str(cache_dir),
        "MOODTUNES_DATA_DIR": str(data_path()),
    }

    def moodtunes(*args: str) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, str(launcher), str(site.resolve()), str(ROOT), *args], outside, env)

    probe = moodtunes("probe")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    where = json.loads(probe.stdout)
    for package, file in where["packages"].items():
        assert Path(file).resolve().is_relative_to(site.resolve()), f"{package} imported from {file}"
    for dialect in ("sqlite", "postgresql"):
        assert Path(where["migrations"][dialect]) == site.resolve() / "core" / "storage" / "sql" / dialect
        assert where["n_migrations"][dialect] >= 3
    assert where["from_repo"] == []

    prepared = moodtunes("models", "prepare")
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    lines = prepared.stdout.strip().splitlines()
    assert lines and all(line.startswith("ok ") for line in lines), prepared.stdout
    assert "models/emotion/emotion_cnn.pt sha256 matches" in prepared.stdout
    assert f"converted at {cache_dir}" in prepared.stdout

    demo = moodtunes("demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "1. 1 face(s) found" in demo.stdout
    assert "3. in a mirrored, tilted, smaller copy: Eileen Collins" in demo.stdout
    assert "4. enrolling scikit-image's cat is refused" in demo.stdout
    assert "\n5. music for" in demo.stdout and "tracks from tracks.csv" in demo.stdout  # the data setting
