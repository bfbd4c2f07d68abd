"""A real PostgreSQL server for the tests: Debian's ``postgresql`` package, started on loopback.

:class:`PostgresServer` runs ``initdb`` into a temporary folder and starts ``postgres`` on
127.0.0.1 at a free port (fsync off: test data need not survive a power cut), as the ``postgres``
system user when the tests run as root (PostgreSQL refuses to run as root). Each test gets a fresh
database from :meth:`PostgresServer.new_database`.

When the binaries are missing the PostgreSQL tests skip, unless ``MOODTUNES_REQUIRE_SERVERS=1``
(set by ``.ci/run``) makes that a failure: CI must run them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REQUIRE = "MOODTUNES_REQUIRE_SERVERS"


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres`` (newest Debian version first), or None."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").is_file() and (candidate / "postgres").is_file():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One throw-away PostgreSQL server; :meth:`stop` removes it and its data."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="moodtunes-pg-"))
        self.port = free_port()
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam(self.user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Superuser URL of the ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresServer:
        """initdb, then start the server and wait until it accepts connections."""
        data = self.root / "data"
        subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True,
            capture_output=True,
            user=self.user,
            cwd=self.root,
        )
        self.process = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "server.log", "wb"),  # noqa: SIM115 - closed with the process
            user=self.user,
            cwd=self.root,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if self._ready():
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("postgres did not start in 30 s")

    def _ready(self) -> bool:
        probe = subprocess.run(
            [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
        )
        return probe.returncode == 0

    def new_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        subprocess.run(
            [*self._psql(), "-c", f"CREATE DATABASE {name}"],
            check=True,
            capture_output=True,
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _psql(self) -> list[str]:
        return [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q"]

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_or_skip() -> PostgresServer:
    """A started server; skips (or fails, under ``MOODTUNES_REQUIRE_SERVERS=1``) without PostgreSQL."""
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL is not installed (Debian: apt-get install postgresql)"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{message}, and {REQUIRE}=1 requires it")
        pytest.skip(message)
    return PostgresServer(bindir).start()
