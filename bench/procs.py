"""Start and stop the processes a benchmark measures: upstream and gunicorn."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from .client import Client

ROOT = Path(__file__).resolve().parent.parent
#: How long a process may take to start listening, in seconds.
START_TIMEOUT = 30.0
_LISTENING = re.compile(r"Listening at: http://[\d.]+:(\d+)")
_WORKER = re.compile(r"Booting worker with pid: (\d+)")
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _clean_env() -> dict[str, str]:
    """Return the environment without the developer's dashboard settings."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRISK_", "FLASK_", "SESSION_"))
        and name not in {"SECRET_KEY", "SECRET_KEY_FALLBACKS", "TRUSTED_HOSTS"}
    }


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [
        int(child)
        for task in tasks.iterdir()
        for child in (task / "children").read_text().split()
    ]


def _cpu_seconds(pid: int) -> float:
    """Return ``pid``'s user + system CPU time from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    """Return the CPU time of ``pid`` and its children (a master and workers)."""
    return _cpu_seconds(pid) + sum(_cpu_seconds(child) for child in _children(pid))


class Upstream:
    """The demo AIRisk API in its own process (``bench.upstream``)."""

    def __init__(self, latency_ms: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.upstream", "--latency-ms", str(latency_ms)],
            cwd=ROOT,
            env=_clean_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            _stop(self.process)
            raise RuntimeError("the demo API did not start")
        self.port: int = json.loads(line)["port"]
        self.url = f"http://127.0.0.1:{self.port}"
        self._control = Client(self.url)

    def control(self, action: str, **params: int) -> dict[str, Any]:
        """Call ``/_bench/<action>`` and return its counters."""
        query = "&".join(f"{k}={v}" for k, v in params.items())
        # One kept-alive connection, so control calls add no connection counts.
        result: dict[str, Any] = json.loads(
            self._control.fetch(f"/_bench/{action}?{query}")
        )
        return result

    def cpu_seconds(self) -> float:
        """Return the CPU time of the demo API process and its workers."""
        return _tree_cpu_seconds(self.process.pid)

    def set_latency(self, ms: int) -> None:
        """Make every API answer wait ``ms`` milliseconds."""
        self.control("latency", ms=ms)

    def stop(self) -> None:
        """Terminate the process."""
        self._control.close()
        _stop(self.process)
        if self.process.stdout is not None:
            self.process.stdout.close()


class Gunicorn:
    """One gunicorn master with threaded workers, on a free loopback port.

    ``worker_pid`` and :meth:`peak_rss_kib` are the first worker's;
    :meth:`cpu_seconds` adds up the master and every worker.
    """

    def __init__(
        self, app: str, env: dict[str, str], threads: int = 8, workers: int = 1
    ) -> None:
        self.log = tempfile.NamedTemporaryFile(
            "w+", prefix="bench-gunicorn-", suffix=".log"
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-k",
                "gthread",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--bind",
                "127.0.0.1:0",
                app,
            ],
            cwd=ROOT,
            env={**_clean_env(), **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.port, self.worker_pid = self._wait_for_start()
        self.url = f"http://127.0.0.1:{self.port}"

    def _wait_for_start(self) -> tuple[int, int]:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            text = Path(self.log.name).read_text()
            port, worker = _LISTENING.search(text), _WORKER.search(text)
            if self.process.poll() is not None:
                break
            if port and worker:
                url = f"http://127.0.0.1:{port.group(1)}/static/app.js"
                try:
                    requests.get(url, timeout=5)
                    return int(port.group(1)), int(worker.group(1))
                except requests.ConnectionError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gunicorn did not start:\n{text[-2000:]}")

    def cpu_seconds(self) -> float:
        """Return the CPU time (user + system) of the master and its workers."""
        return _tree_cpu_seconds(self.process.pid)

    def peak_rss_kib(self) -> int:
        """Return the worker's peak resident set size (VmHWM), in KiB."""
        status = Path(f"/proc/{self.worker_pid}/status").read_text()
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        assert match, "no VmHWM in /proc/<pid>/status"
        return int(match.group(1))

    def stop(self) -> None:
        """Stop the master (and with it the worker)."""
        _stop(self.process)
        self.log.close()


def dashboard(
    upstream: Upstream, session_dir: str, workers: int = 1, **settings: int | str
) -> Gunicorn:
    """Start the dashboard with ``settings`` (e.g. ``AIRISK_CACHE_TTL=0``)."""
    folder = tempfile.mkdtemp(dir=session_dir)
    env = {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "AIRISK_BASE_URL": upstream.url,
        "SESSION_DIR": folder,
        # The review and trail database, upgraded first as `serve` does.
        "DATABASE_URL": f"sqlite:///{folder}/airisk-viewer.db",
        **{name: str(value) for name, value in settings.items()},
    }
    subprocess.run(
        [sys.executable, "-m", "webapp.cli", "db", "upgrade"],
        env={**_clean_env(), **env},
        check=True,
        capture_output=True,
    )
    return Gunicorn("webapp:create_app()", env, workers=workers)


def bare(upstream: Upstream, workers: int = 1) -> Gunicorn:
    """Start the bare route app (``bench.bare_app``) against ``upstream``."""
    return Gunicorn(
        "bench.bare_app:create_bare_app()",
        {"AIRISK_BASE_URL": upstream.url},
        workers=workers,
    )


def sign_in(base_url: str, token: str) -> str:
    """Enter ``token`` on the token form like a browser; return the session cookie.

    :raises RuntimeError: if the form does not sign in.
    """
    with requests.Session() as browser:
        form = browser.get(f"{base_url}/token", timeout=30)
        match = _CSRF.search(form.text)
        if not match:
            raise RuntimeError("no CSRF token on the token form")
        answer = browser.post(
            f"{base_url}/token",
            data={"csrf_token": match.group(1), "token": token, "next": ""},
            allow_redirects=False,
            timeout=30,
        )
        cookie = browser.cookies.get("session")
        if answer.status_code not in (302, 303) or not cookie:
            raise RuntimeError(f"sign-in failed with HTTP {answer.status_code}")
        return f"session={cookie}"
