"""A real nginx for the tests (Debian's ``nginx`` or ``nginx-light``), started on loopback with the
configuration ``moodtunes deploy nginx`` prints (plain HTTP instead of TLS).

Skips when nginx is missing, unless ``MOODTUNES_REQUIRE_SERVERS=1`` (set by ``.ci/run``) makes that a
failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from bot.deploy import nginx_config
from tests.pg import REQUIRE

MAIN = """\
daemon off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
{site}
}}
"""


def find_nginx() -> str | None:
    """The nginx binary, or None."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)


class Nginx:
    """nginx proxying ``listen_port`` to workers at ``base_port`` + i; :meth:`stop` removes it."""

    def __init__(
        self, binary: str, workers: int, base_port: int, listen_port: int, callback_port: int
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="moodtunes-nginx-"))
        self.port = listen_port
        site = nginx_config(
            workers, base_port, callback_port=callback_port, listen=f"127.0.0.1:{listen_port}"
        )
        (self.root / "nginx.conf").write_text(MAIN.format(root=self.root, site=site))
        self.process = subprocess.Popen(
            [binary, "-c", str(self.root / "nginx.conf"), "-p", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.root / 'error.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", listen_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start in 15 s")

    def log(self) -> str:
        """The access log so far."""
        path = self.root / "access.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        """Stop nginx and delete its folder."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def start_or_skip(workers: int, base_port: int, listen_port: int, callback_port: int) -> Nginx:
    """A started nginx; skips (or fails, under ``MOODTUNES_REQUIRE_SERVERS=1``) without nginx."""
    binary = find_nginx()
    if binary is None:
        message = "nginx is not installed (Debian: apt-get install nginx-light)"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{message}, and {REQUIRE}=1 requires it")
        pytest.skip(message)
    return Nginx(binary, workers, base_port, listen_port, callback_port)
