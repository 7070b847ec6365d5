"""Real processes for scale-out tests: redis-server, gunicorn dashboards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

from .app import ALICE
from .http import Browser

SECRET = "scale-out-secret-key-0123456789abcdef"


PASSWORD = "redis-test-password"


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"{what} exited early:\n{output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{what} did not start on port {port}")


class RedisServer:
    """A real redis-server on a free loopback port, with a password.

    With ``tls`` (the ``ca``, ``cert`` and ``key`` files), it listens with
    TLS only and :attr:`url` trusts that CA.
    """

    def __init__(self, directory: Path, tls: dict[str, Path] | None = None) -> None:
        if not os.path.exists(REDIS_SERVER):
            raise AssertionError(
                "redis-server is missing: install it with apt-get install "
                "redis-server (make test and .ci/run do)"
            )
        self.directory = directory
        self.tls = tls
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        if self.tls is None:
            return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"
        return (
            f"rediss://:{PASSWORD}@127.0.0.1:{self.port}/0"
            f"?ssl_ca_certs={self.tls['ca']}"
        )

    def start(self) -> None:
        if self.tls is None:
            listen = ["--port", str(self.port)]
        else:
            listen = [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.tls["cert"]),
                "--tls-key-file",
                str(self.tls["key"]),
                "--tls-ca-cert-file",
                str(self.tls["ca"]),
                "--tls-auth-clients",
                "no",
            ]
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                *listen,
                "--bind",
                "127.0.0.1",
                "--requirepass",
                PASSWORD,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_port(self.port, self.process, "redis-server")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case a test froze it
            self.process.terminate()
        try:
            self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


class Dashboard:
    """``airisk-viewer serve`` in its own process."""

    def __init__(self, env: dict[str, str], cwd: Path, threads: int = 4) -> None:
        self.port = free_port()
        self.env = env
        self.cwd = cwd
        self.threads = threads
        self.process: subprocess.Popen[str] | None = None
        self.output = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Dashboard:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "webapp.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--threads",
                str(self.threads),
            ],
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for_port(self.port, self.process, "the dashboard")
        return self

    def stop(self) -> str:
        if self.process is None or self.process.returncode is not None:
            return self.output
        self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        self.output += out
        return self.output


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRISK_", "FLASK_", "SESSION_", "CACHE_", "REDIS_"))
    }
    env.update(
        SECRET_KEY=SECRET,
        HOME=str(tmp_path),
        SESSION_DIR=str(tmp_path / "sessions"),
    )
    env.update(settings)
    return env


def sign_in(browser: Browser, token: str = ALICE) -> requests.Response:
    return browser.enter_token(token, browser.get("/token"))


def on(dashboard: Dashboard, browser: Browser) -> Browser:
    """Return a browser for ``dashboard`` sharing ``browser``'s cookies."""
    other = Browser(dashboard.url)
    other.http.cookies = browser.http.cookies
    return other
