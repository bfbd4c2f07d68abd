"""Where things are: assets shipped inside the packages, and the shared data folder.

Assets (model weights, the model manifest, SQL migrations, fitted music moods) are read through
:mod:`importlib.resources`, so they are found the same way in a checkout and in an installed wheel.
The shared data folder (FER2013, face photos, a Spotify catalog; see ``../shared/data/README.md``) is
one setting, ``MOODTUNES_DATA_DIR``; by default it is ``../shared/data`` beside a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
"""The project root when running from a checkout (inside site-packages for a wheel install)."""


def resource(package: str, *parts: str) -> Path:
    """The file ``parts`` inside an importable ``package`` (e.g. ``resource("models", "manifest.json")``).

    Packages here are plain folders (a checkout or an unpacked wheel), so the resource is a real path.
    """
    return Path(str(files(package).joinpath(*parts)))


def default_data_dir() -> Path | None:
    """``../shared/data`` beside the checkout when it exists (a symbolic link is kept as given), else None."""
    candidate = CHECKOUT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def data_file(data_dir: Path | None, *parts: str) -> Path | None:
    """``data_dir/parts...`` when that exists, else None."""
    if data_dir is None:
        return None
    path = data_dir.joinpath(*parts)
    return path if path.exists() else None
